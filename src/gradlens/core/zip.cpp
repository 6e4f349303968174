#include "gradlens/core/zip.h"

#include <fcntl.h>
#include <libdeflate.h>
#include <sys/mman.h>
#include <unistd.h>
#include <omp.h>
#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <exception>
#include <fstream>
#include <new>
#include <thread>

#include "gradlens/core/check.h"

namespace gradlens::core {

namespace {

constexpr uint32_t kLocalSig = 0x04034b50, kCentralSig = 0x02014b50, kEndSig = 0x06054b50;
constexpr uint32_t kEnd64Sig = 0x06064b50, kLocator64Sig = 0x07064b50;

uint64_t le(const char* p, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

std::string damaged(const std::filesystem::path& path, const std::string& what) {
  return path.string() + " is not a readable zip archive (" + what +
         "); it is truncated, damaged or not a PyTorch file: export or save it again";
}

/// Reads `n` bytes at `offset`; false when the file is shorter.
bool read_at(std::ifstream& in, uint64_t offset, char* out, uint64_t n) {
  in.clear();
  in.seekg(static_cast<std::streamoff>(offset));
  in.read(out, static_cast<std::streamsize>(n));
  return static_cast<uint64_t>(in.gcount()) == n;
}

std::ifstream open(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  GRADLENS_CHECK(in.good(), path.string(), ": cannot open the file; check that it exists and is readable");
  return in;
}

/// Offset of the entry's data: past its local header, name and extra field.
/// The offset of e's data, given the 30 bytes at e.header_offset (null when
/// the file ends before them).
uint64_t data_offset(const char* h, const std::filesystem::path& path, const ZipEntry& e, uint64_t file_size) {
  GRADLENS_CHECK(h != nullptr && le(h, 4) == kLocalSig, damaged(path, "entry '" + e.name + "' has no local header"));
  const uint64_t off = e.header_offset + 30 + le(h + 26, 2) + le(h + 28, 2);
  GRADLENS_CHECK(off <= file_size && e.size <= file_size - off,
                 damaged(path, "entry '" + e.name + "' runs past the end of the file"));
  return off;
}

uint64_t data_offset(std::ifstream& in, const std::filesystem::path& path, const ZipEntry& e,
                     uint64_t file_size) {
  char h[30];
  return data_offset(read_at(in, e.header_offset, h, 30) ? h : nullptr, path, e, file_size);
}

/// A read-only mapping of a whole file, unmapped when it goes.
class Mapping {
 public:
  explicit Mapping(const std::filesystem::path& path) {
    const int fd = ::open(path.c_str(), O_RDONLY);
    GRADLENS_CHECK(fd >= 0, path.string(), ": cannot open the file; check that it exists and is readable");
    const off_t end = ::lseek(fd, 0, SEEK_END);
    size_ = end > 0 ? static_cast<uint64_t>(end) : 0;
    void* map = size_ > 0 ? ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0) : nullptr;
    ::close(fd);
    GRADLENS_CHECK(map != MAP_FAILED, path.string(), ": cannot map the file to verify it");
    base_ = static_cast<const unsigned char*>(map);
  }
  ~Mapping() {
    if (base_ != nullptr) ::munmap(const_cast<unsigned char*>(base_), size_);
  }
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  const unsigned char* data() const { return base_; }
  uint64_t size() const { return size_; }

 private:
  const unsigned char* base_ = nullptr;
  uint64_t size_ = 0;
};

}  // namespace

bool is_zip_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  char sig[4];
  return in.read(sig, 4) && le(sig, 4) == kLocalSig;
}

std::vector<ZipEntry> zip_entries(const std::filesystem::path& path) {
  auto in = open(path);
  in.seekg(0, std::ios::end);
  const uint64_t size = static_cast<uint64_t>(in.tellg());
  GRADLENS_CHECK(size >= 22, damaged(path, "shorter than a zip directory"));
  // The end-of-directory record: 22 bytes plus a comment of up to 65535.
  const uint64_t tail_len = std::min<uint64_t>(size, 22 + 65535);
  std::string tail(tail_len, '\0');
  GRADLENS_CHECK(read_at(in, size - tail_len, tail.data(), tail_len), damaged(path, "unreadable"));
  int64_t end = -1;
  for (int64_t i = static_cast<int64_t>(tail_len) - 22; i >= 0; --i)
    if (le(tail.data() + i, 4) == kEndSig) {
      end = i;
      break;
    }
  GRADLENS_CHECK(end >= 0, damaged(path, "no end-of-directory record"));
  const char* eocd = tail.data() + end;
  uint64_t count = le(eocd + 10, 2), dir_size = le(eocd + 12, 4), dir_offset = le(eocd + 16, 4);
  const uint64_t eocd_pos = size - tail_len + static_cast<uint64_t>(end);
  if (count == 0xFFFF || dir_size == 0xFFFFFFFF || dir_offset == 0xFFFFFFFF) {
    char loc[20], rec[56];
    GRADLENS_CHECK(eocd_pos >= 20 && read_at(in, eocd_pos - 20, loc, 20) && le(loc, 4) == kLocator64Sig,
                   damaged(path, "no zip64 locator"));
    GRADLENS_CHECK(read_at(in, le(loc + 8, 8), rec, 56) && le(rec, 4) == kEnd64Sig,
                   damaged(path, "no zip64 end-of-directory record"));
    count = le(rec + 32, 8);
    dir_size = le(rec + 40, 8);
    dir_offset = le(rec + 48, 8);
  }
  GRADLENS_CHECK(dir_offset <= size && dir_size <= size - dir_offset && count <= dir_size / 46,
                 damaged(path, "the directory lies outside the file"));
  std::string dir(dir_size, '\0');
  GRADLENS_CHECK(read_at(in, dir_offset, dir.data(), dir_size), damaged(path, "unreadable directory"));
  std::vector<ZipEntry> out;
  out.reserve(count);
  uint64_t p = 0;
  for (uint64_t k = 0; k < count; ++k) {
    GRADLENS_CHECK(p + 46 <= dir_size && le(dir.data() + p, 4) == kCentralSig,
                   damaged(path, "directory entry " + std::to_string(k) + " is damaged"));
    const char* h = dir.data() + p;
    const uint64_t name_len = le(h + 28, 2), extra_len = le(h + 30, 2), comment_len = le(h + 32, 2);
    GRADLENS_CHECK(p + 46 + name_len + extra_len + comment_len <= dir_size,
                   damaged(path, "directory entry " + std::to_string(k) + " is truncated"));
    ZipEntry e;
    e.method = static_cast<uint16_t>(le(h + 10, 2));
    e.crc32 = static_cast<uint32_t>(le(h + 16, 4));
    e.size = le(h + 20, 4);
    uint64_t usize = le(h + 24, 4);
    e.header_offset = le(h + 42, 4);
    e.name.assign(h + 46, name_len);
    // zip64 extended information: the 8-byte values of the saturated fields,
    // in the order uncompressed size, compressed size, header offset.
    for (uint64_t x = 0; x + 4 <= extra_len;) {
      const char* f = h + 46 + name_len + x;
      const uint64_t id = le(f, 2), len = le(f + 2, 2);
      if (x + 4 + len > extra_len) break;
      if (id == 0x0001) {
        uint64_t q = 4;
        auto take = [&](uint64_t& field) {
          if (field == 0xFFFFFFFF && q + 8 <= 4 + len) {
            field = le(f + q, 8);
            q += 8;
          }
        };
        take(usize);
        take(e.size);
        take(e.header_offset);
      }
      x += 4 + len;
    }
    e.uncompressed_size = usize;
    GRADLENS_CHECK(e.header_offset < size, damaged(path, "entry '" + e.name + "' starts past the end"));
    out.push_back(std::move(e));
    p += 46 + name_len + extra_len + comment_len;
  }
  return out;
}

bool is_tensor_storage(const ZipEntry& entry) {
  const auto slash = entry.name.rfind('/');
  if (slash == std::string::npos || slash + 1 == entry.name.size()) return false;
  for (size_t i = slash + 1; i < entry.name.size(); ++i)
    if (!std::isdigit(static_cast<unsigned char>(entry.name[i]))) return false;
  const auto dir_begin = entry.name.rfind('/', slash - 1);
  const std::string dir = entry.name.substr(dir_begin == std::string::npos ? 0 : dir_begin + 1,
                                            slash - (dir_begin == std::string::npos ? 0 : dir_begin + 1));
  return dir == "data" || dir == "constants";
}

ZipCheck verify_zip(const std::filesystem::path& path, const std::vector<ZipEntry>& entries, ZipPart part,
                    int threads) {
  const Mapping file(path);
  const uint64_t file_size = file.size();
  const auto* base = file.data();
  ZipCheck check;
  check.entries = static_cast<int64_t>(entries.size());
  // Every stored entry with a CRC, cut into chunks hashed in parallel from a
  // read-only mapping and combined per entry (zlib's crc32_combine).
  struct Chunk {
    size_t entry;
    uint64_t offset, length;
    uint32_t crc;
  };
  std::vector<Chunk> chunks;
  std::vector<size_t> checked;
  constexpr uint64_t kChunk = uint64_t{1} << 20;
  for (size_t i = 0; i < entries.size(); ++i) {
    const auto& e = entries[i];
    if ((e.method != 0 && e.method != 8) || (e.crc32 == 0 && e.uncompressed_size > 0)) continue;
    if (part != ZipPart::kAll && is_tensor_storage(e) != (part == ZipPart::kStorage)) continue;
    const bool header_in_file = file_size >= 30 && e.header_offset <= file_size - 30;
    const uint64_t off = data_offset(header_in_file ? reinterpret_cast<const char*>(base + e.header_offset) : nullptr,
                                     path, e, file_size);
    checked.push_back(i);
    // DEFLATE expands at most ~1032:1; a directory that claims more is
    // damaged (and would make the check allocate without bound).
    GRADLENS_CHECK(e.method != 8 || e.uncompressed_size <= 1040 * e.size + 1024,
                   damaged(path, "entry '" + e.name + "' claims an impossible uncompressed size"));
    if (e.method == 8) {
      chunks.push_back({i, off, e.size, 0});
      continue;
    }
    for (uint64_t d = 0; d < e.size; d += kChunk) chunks.push_back({i, off + d, std::min(kChunk, e.size - d), 0});
  }
  if (!chunks.empty()) {
    const int64_t n = static_cast<int64_t>(chunks.size());
#pragma omp parallel num_threads(threads > 0 ? threads : omp_get_max_threads())
    {
      libdeflate_decompressor* d = libdeflate_alloc_decompressor();
      std::vector<unsigned char> out;
#pragma omp for schedule(dynamic, 4)
      for (int64_t c = 0; c < n; ++c) {
        const auto& e = entries[chunks[c].entry];
        if (e.method == 0) {
          chunks[c].crc = libdeflate_crc32(0, base + chunks[c].offset, chunks[c].length);
          continue;
        }
        // A deflated entry: its CRC is that of the inflated bytes; a stream
        // that does not inflate to the recorded size gets a CRC that cannot
        // match (the complement of the recorded one).
        try {
          out.resize(e.uncompressed_size);
        } catch (const std::bad_alloc&) {  // no exception may leave the parallel region
          chunks[c].crc = ~e.crc32;
          chunks[c].length = e.uncompressed_size;
          continue;
        }
        size_t got = 0;
        const bool ok = d != nullptr &&
                        libdeflate_deflate_decompress(d, base + chunks[c].offset, chunks[c].length, out.data(),
                                                      out.size(), &got) == LIBDEFLATE_SUCCESS &&
                        got == out.size();
        chunks[c].crc = ok ? libdeflate_crc32(0, out.data(), out.size()) : ~e.crc32;
        chunks[c].length = e.uncompressed_size;
      }
      if (d != nullptr) libdeflate_free_decompressor(d);
    }
  }
  std::vector<uint32_t> crc(entries.size(), 0);
  std::vector<char> started(entries.size(), 0);
  for (const auto& c : chunks) {
    crc[c.entry] = started[c.entry]
                       ? static_cast<uint32_t>(crc32_combine(crc[c.entry], c.crc, static_cast<z_off_t>(c.length)))
                       : c.crc;
    started[c.entry] = 1;
  }
  for (const size_t i : checked) {
    const auto& e = entries[i];
    GRADLENS_CHECK(crc[i] == e.crc32, path.string(), " is corrupt: the CRC-32 of its entry '", e.name,
                   "' does not match the one recorded when it was written (the file was damaged or "
                   "changed since); restore it from a backup, or save or export it again");
    ++check.verified;
    check.bytes_verified += e.uncompressed_size;
  }
  return check;
}

ZipCheck load_verified(const std::filesystem::path& path, const std::vector<ZipEntry>& entries,
                       const std::function<void()>& load) {
  const unsigned cores = std::thread::hardware_concurrency();
  if (cores < 2) {
    const ZipCheck check = verify_zip(path, entries);
    load();
    return check;
  }
  ZipCheck check = verify_zip(path, entries, ZipPart::kStructure);
  ZipCheck storage;
  std::exception_ptr verify_error, load_error;
  std::thread verifier([&] {
    try {
      storage = verify_zip(path, entries, ZipPart::kStorage, static_cast<int>(cores) - 1);
    } catch (...) {
      verify_error = std::current_exception();
    }
  });
  try {
    load();
  } catch (...) {
    load_error = std::current_exception();
  }
  verifier.join();
  if (verify_error) std::rethrow_exception(verify_error);
  if (load_error) std::rethrow_exception(load_error);
  check.verified += storage.verified;
  check.bytes_verified += storage.bytes_verified;
  return check;
}

std::string read_zip_entry(const std::filesystem::path& path, const ZipEntry& entry) {
  GRADLENS_CHECK(entry.method == 0, path.string(), ": entry '", entry.name,
                 "' is compressed; gradlens reads PyTorch's uncompressed archives only");
  auto in = open(path);
  in.seekg(0, std::ios::end);
  const uint64_t file_size = static_cast<uint64_t>(in.tellg());
  const uint64_t off = data_offset(in, path, entry, file_size);
  std::string out(entry.size, '\0');
  GRADLENS_CHECK(read_at(in, off, out.data(), entry.size),
                 damaged(path, "entry '" + entry.name + "' is truncated"));
  return out;
}

}  // namespace gradlens::core
