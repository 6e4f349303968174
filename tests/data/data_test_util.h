// Small helpers shared by the data tests: building IDX files, gzip, PNGs.
#pragma once

#include <stb_image_write.h>
#include <torch/types.h>
#include <zlib.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace gradlens::data::testutil {

namespace fs = std::filesystem;

/// An IDX file: big-endian magic, big-endian sizes, then `data`.
inline std::string idx_bytes(uint32_t magic, const std::vector<uint32_t>& dims,
                             const std::vector<uint8_t>& data) {
  std::string s;
  auto be = [&](uint32_t v) {
    for (int k = 3; k >= 0; --k) s.push_back(static_cast<char>((v >> (8 * k)) & 0xff));
  };
  be(magic);
  for (uint32_t d : dims) be(d);
  s.append(reinterpret_cast<const char*>(data.data()), data.size());
  return s;
}

/// Bytes 0, 1, 2, ... (mod 256).
inline std::vector<uint8_t> ramp(size_t n, uint8_t start = 0) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(start + i);
  return v;
}

/// gzip-compresses `raw` (a single gzip member).
inline std::string gzip(const std::string& raw) {
  z_stream zs;
  std::memset(&zs, 0, sizeof(zs));
  if (deflateInit2(&zs, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    throw std::runtime_error("deflateInit2");
  std::string out(deflateBound(&zs, raw.size()) + 64, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(raw.data()));
  zs.avail_in = static_cast<uInt>(raw.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  if (deflate(&zs, Z_FINISH) != Z_STREAM_END) throw std::runtime_error("deflate");
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

inline void write_bytes(const fs::path& p, const std::string& bytes) {
  fs::create_directories(p.parent_path());
  std::ofstream f(p, std::ios::binary);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

/// Writes a uint8 [H, W, C] tensor as PNG.
inline void write_png(const fs::path& p, const torch::Tensor& hwc) {
  fs::create_directories(p.parent_path());
  const auto t = hwc.contiguous();
  const int h = static_cast<int>(t.size(0)), w = static_cast<int>(t.size(1)),
            c = static_cast<int>(t.size(2));
  if (stbi_write_png(p.c_str(), w, h, c, t.data_ptr<uint8_t>(), w * c) == 0)
    throw std::runtime_error("stbi_write_png " + p.string());
}

/// A [H, W, C] image whose every pixel is `value`.
inline torch::Tensor solid(int64_t h, int64_t w, int64_t c, int value) {
  return torch::full({h, w, c}, value, torch::kUInt8);
}

}  // namespace gradlens::data::testutil
