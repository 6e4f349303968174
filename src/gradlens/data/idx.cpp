#include "gradlens/data/idx.h"
#include <torch/types.h>

#include <zlib.h>

#include <cstring>
#include <limits>

#include "gradlens/core/check.h"
#include "gradlens/core/fs.h"

namespace gradlens::data {

namespace {

constexpr int kMaxNdim = 8;
constexpr uint8_t kTypeUint8 = 0x08;
// Deflate cannot expand data by more than about 1032:1; a declared size above
// this bound for the compressed input is necessarily truncated, and checking
// it first keeps allocations proportional to the input.
constexpr uint64_t kMaxDeflateRatio = 1100;

bool is_gzip(const std::string& bytes) {
  return bytes.size() >= 2 && static_cast<uint8_t>(bytes[0]) == 0x1f &&
         static_cast<uint8_t>(bytes[1]) == 0x8b;
}

std::string hex32(uint32_t v) {
  char buf[11];
  std::snprintf(buf, sizeof(buf), "0x%08x", v);
  return buf;
}

/// Sequential reader over the file's (decompressed) content.
class Source {
 public:
  virtual ~Source() = default;
  /// Reads up to `n` bytes into `dst`; returns how many were read (fewer
  /// only at the end of the data).
  virtual size_t read(uint8_t* dst, size_t n) = 0;
  /// Upper bound on the bytes left to read.
  virtual uint64_t max_remaining() const = 0;
  virtual bool compressed() const = 0;
};

class RawSource final : public Source {
 public:
  explicit RawSource(const std::string& bytes) : bytes_(bytes) {}
  size_t read(uint8_t* dst, size_t n) override {
    const size_t take = std::min(n, bytes_.size() - pos_);
    if (take > 0) std::memcpy(dst, bytes_.data() + pos_, take);
    pos_ += take;
    return take;
  }
  uint64_t max_remaining() const override { return bytes_.size() - pos_; }
  bool compressed() const override { return false; }

 private:
  const std::string& bytes_;
  size_t pos_ = 0;
};

class GzipSource final : public Source {
 public:
  GzipSource(const std::string& bytes, const std::string& name) : name_(name) {
    GRADLENS_CHECK(bytes.size() <= std::numeric_limits<uInt>::max(), name_,
                   ": compressed file of ", bytes.size(),
                   " bytes is too large for zlib; decompress it first");
    std::memset(&zs_, 0, sizeof(zs_));
    // 16 + MAX_WBITS: expect a gzip wrapper.
    GRADLENS_CHECK(inflateInit2(&zs_, 16 + MAX_WBITS) == Z_OK, name_,
                   ": cannot initialise zlib to decompress it");
    zs_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
    zs_.avail_in = static_cast<uInt>(bytes.size());
  }
  ~GzipSource() override { inflateEnd(&zs_); }
  GzipSource(const GzipSource&) = delete;
  GzipSource& operator=(const GzipSource&) = delete;

  size_t read(uint8_t* dst, size_t n) override {
    size_t produced = 0;
    while (produced < n && !finished_) {
      const size_t want = std::min<size_t>(n - produced, std::numeric_limits<uInt>::max());
      zs_.next_out = dst + produced;
      zs_.avail_out = static_cast<uInt>(want);
      const int rc = inflate(&zs_, Z_NO_FLUSH);
      produced += want - zs_.avail_out;
      if (rc == Z_STREAM_END) {
        if (zs_.avail_in == 0) {
          finished_ = true;
        } else {
          // Another gzip member may follow (as `cat a.gz b.gz` produces).
          GRADLENS_CHECK(zs_.avail_in >= 2 && zs_.next_in[0] == 0x1f && zs_.next_in[1] == 0x8b,
                         name_, ": ", zs_.avail_in,
                         " trailing bytes after the gzip stream; the file is corrupt, download "
                         "or decompress it again");
          GRADLENS_CHECK(inflateReset(&zs_) == Z_OK, name_, ": zlib inflateReset failed");
        }
      } else if (rc == Z_BUF_ERROR || (rc == Z_OK && zs_.avail_in == 0 && zs_.avail_out != 0)) {
        // No progress is possible with output space left: the compressed
        // input ended in the middle of a stream.
        GRADLENS_CHECK(zs_.avail_out == 0, name_,
                       ": truncated gzip stream (the compressed file ends early); download or "
                       "copy it again");
      } else {
        GRADLENS_CHECK(rc == Z_OK, name_, ": corrupt gzip data (zlib: ",
                       zs_.msg != nullptr ? std::string(zs_.msg) : "error " + std::to_string(rc),
                       "); download or decompress it again");
      }
    }
    return produced;
  }
  uint64_t max_remaining() const override {
    return finished_ ? 0 : static_cast<uint64_t>(zs_.avail_in) * kMaxDeflateRatio + 1024;
  }
  bool compressed() const override { return true; }

 private:
  const std::string& name_;
  z_stream zs_;
  bool finished_ = false;
};

uint32_t be32(const uint8_t* p) {
  return (static_cast<uint32_t>(p[0]) << 24) | (static_cast<uint32_t>(p[1]) << 16) |
         (static_cast<uint32_t>(p[2]) << 8) | static_cast<uint32_t>(p[3]);
}

std::string expected_magic_text(int expected_ndim) {
  if (expected_ndim == 3) return hex32(kIdxImagesMagic) + " (IDX uint8 images [N, H, W])";
  if (expected_ndim == 1) return hex32(kIdxLabelsMagic) + " (IDX uint8 labels [N])";
  if (expected_ndim > 0) return hex32(0x800u | static_cast<uint32_t>(expected_ndim));
  return "0x000008NN (IDX uint8, NN dimensions in [1, 8])";
}

}  // namespace

torch::Tensor idx_parse(const std::string& bytes, const std::string& name, int expected_ndim) {
  TORCH_INTERNAL_ASSERT(expected_ndim >= 0 && expected_ndim <= kMaxNdim);
  const bool gz = is_gzip(bytes);
  std::unique_ptr<Source> src;
  if (gz) {
    src = std::make_unique<GzipSource>(bytes, name);
  } else {
    src = std::make_unique<RawSource>(bytes);
  }
  const char* what = gz ? " bytes of decompressed data" : " bytes";

  uint8_t magic[4];
  const size_t got_magic = src->read(magic, 4);
  GRADLENS_CHECK(got_magic == 4, name, ": truncated: expected at least 4", what,
                 " (the IDX magic number) got ", got_magic, "; the file is empty or cut short");
  const uint32_t m = be32(magic);
  const int ndim = magic[3];
  const bool ok_magic = magic[0] == 0 && magic[1] == 0 && magic[2] == kTypeUint8 && ndim >= 1 &&
                        ndim <= kMaxNdim && (expected_ndim == 0 || ndim == expected_ndim);
  if (!ok_magic) {
    std::string hint;
    if (magic[0] == 0 && magic[1] == 0 && magic[2] == kTypeUint8 && expected_ndim == 3 && ndim == 1)
      hint = "; this looks like a labels file where an images file was expected";
    else if (magic[0] == 0 && magic[1] == 0 && magic[2] == kTypeUint8 && expected_ndim == 1 &&
             ndim == 3)
      hint = "; this looks like an images file where a labels file was expected";
    else if (magic[0] == 0 && magic[1] == 0 && magic[2] != kTypeUint8)
      hint = "; only the unsigned-byte element type 0x08 is supported";
    else
      hint = "; this is not an IDX file (or it is compressed with something other than gzip)";
    GRADLENS_CHECK(false, name, ": wrong magic number ", hex32(m), ", expected ",
                   expected_magic_text(expected_ndim), hint);
  }

  uint8_t dims_raw[4 * kMaxNdim];
  const size_t dims_bytes = static_cast<size_t>(4 * ndim);
  const size_t got_dims = src->read(dims_raw, dims_bytes);
  GRADLENS_CHECK(got_dims == dims_bytes, name, ": truncated: expected ", 4 + dims_bytes, what,
                 " of header got ", 4 + got_dims, "; the file is cut short");
  std::vector<int64_t> sizes(static_cast<size_t>(ndim));
  uint64_t numel = 1;
  bool overflow = false;
  for (int d = 0; d < ndim; ++d) {
    const uint32_t s = be32(dims_raw + 4 * d);
    sizes[static_cast<size_t>(d)] = s;
    if (s != 0 && numel > (uint64_t{1} << 62) / s) overflow = true;
    numel *= s;
  }
  // A zero size makes the product 0 even if an earlier partial product
  // overflowed; that tensor is empty and valid.
  if (numel == 0) overflow = false;
  GRADLENS_CHECK(!overflow, name, ": the header declares sizes ", c10::IntArrayRef(sizes),
                 " whose product overflows; the file is corrupt");
  const uint64_t header = 4 + dims_bytes;

  if (!src->compressed()) {
    const uint64_t total = bytes.size();
    GRADLENS_CHECK(total >= header + numel, name, ": truncated: expected ", header + numel,
                   " bytes got ", total, " (header declares sizes ", c10::IntArrayRef(sizes),
                   "); the file is cut short, download or copy it again");
    GRADLENS_CHECK(total == header + numel, name, ": ", total - header - numel,
                   " trailing bytes after the ", header + numel,
                   " bytes declared by the header (sizes ", c10::IntArrayRef(sizes),
                   "); the file is corrupt or not an IDX file");
  } else {
    GRADLENS_CHECK(numel <= src->max_remaining(), name, ": truncated: expected ", header + numel,
                   " bytes of decompressed data (header declares sizes ", c10::IntArrayRef(sizes),
                   ") but ", bytes.size(), " compressed bytes cannot hold that many; the file is "
                   "cut short, download it again");
  }

  auto out = torch::empty(sizes, torch::TensorOptions().dtype(torch::kUInt8));
  const size_t got = numel > 0 ? src->read(out.data_ptr<uint8_t>(), static_cast<size_t>(numel)) : 0;
  GRADLENS_CHECK(got == numel, name, ": truncated: expected ", header + numel, what, " got ",
                 header + got, " (header declares sizes ", c10::IntArrayRef(sizes),
                 "); the file is cut short, download or copy it again");
  if (src->compressed()) {
    uint8_t extra[4096];
    uint64_t trailing = 0;
    for (size_t r; trailing < (1u << 20) && (r = src->read(extra, sizeof(extra))) > 0;) trailing += r;
    GRADLENS_CHECK(trailing == 0, name, ": ", trailing >= (1u << 20) ? "at least " : "", trailing,
                   " trailing bytes after the ", header + numel,
                   " bytes declared by the header (sizes ", c10::IntArrayRef(sizes),
                   "); the file is corrupt or not an IDX file");
  }
  return out;
}

torch::Tensor read_idx(const std::string& path, int expected_ndim) {
  return idx_parse(core::read_file(path), path, expected_ndim);
}

torch::Tensor read_idx_images(const std::string& path) { return read_idx(path, 3); }

torch::Tensor read_idx_labels(const std::string& path) {
  return read_idx(path, 1).to(torch::kInt64);
}

}  // namespace gradlens::data
