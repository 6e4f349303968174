// The zip container that PyTorch's archives use (torch.jit.save, torch.save,
// LibTorch's OutputArchive): its directory, and a check of every entry's
// CRC-32 against the bytes on disk.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace gradlens::core {

/// One file in a zip archive, from its central directory.
struct ZipEntry {
  std::string name;
  uint16_t method = 0;       ///< 0 stored, 8 deflated
  uint32_t crc32 = 0;        ///< as recorded when the archive was written
  uint64_t size = 0;         ///< bytes as stored (compressed size)
  uint64_t uncompressed_size = 0;
  uint64_t header_offset = 0;
};

/// True if the file starts with a zip local-file header ("PK\3\4").
bool is_zip_file(const std::filesystem::path& path);

/// The entries of the zip archive at `path` (zip64 included). Throws
/// gradlens::Error naming the file when it is not a zip archive or its
/// directory is truncated or damaged.
std::vector<ZipEntry> zip_entries(const std::filesystem::path& path);

/// What verify_zip() checked.
struct ZipCheck {
  int64_t entries = 0;         ///< entries in the archive
  int64_t verified = 0;        ///< entries whose CRC-32 was compared
  uint64_t bytes_verified = 0;  ///< uncompressed bytes of the verified entries
};

/// Which entries verify_zip() checks.
enum class ZipPart {
  kAll,
  kStructure,  ///< every entry but the tensor storages (pickles, code, version, extra files)
  kStorage,    ///< the tensor storages only (is_tensor_storage)
};

/// True for an entry that holds a tensor's raw bytes: a file with a decimal
/// name in a `data/` or `constants/` folder, as torch.save, torch.jit.save
/// and LibTorch's OutputArchive write them. A loader copies these bytes into
/// tensors without interpreting them, so damage there cannot mislead it.
bool is_tensor_storage(const ZipEntry& entry);

/// Compares the CRC-32 of every entry of `part` (stored, or deflated as PyTorch writes
/// its code) with the one its directory records; entries written without a
/// CRC (0 for non-empty data) or with another compression method are counted
/// as not verified. Hashes on `threads` OpenMP threads (0: the calling thread's
/// default). Throws gradlens::Error naming
/// the file and the first damaged entry ("... is corrupt ...").
ZipCheck verify_zip(const std::filesystem::path& path, const std::vector<ZipEntry>& entries,
                    ZipPart part = ZipPart::kAll, int threads = 0);

/// Runs `load` (which reads the archive at `path`) with every entry verified
/// as verify_zip() does: the structure before `load` starts, the tensor storages
/// on another thread while it runs (on a machine with one hardware thread:
/// before it). Throws verify_zip()'s error when an entry is corrupt, in
/// preference to an error of `load`, which it otherwise rethrows; the
/// caller discards what `load` produced whenever this throws.
ZipCheck load_verified(const std::filesystem::path& path, const std::vector<ZipEntry>& entries,
                       const std::function<void()>& load);

/// The bytes of one stored entry (small entries: pickles, JSON). Throws
/// gradlens::Error naming the file when the entry is compressed or
/// out of bounds.
std::string read_zip_entry(const std::filesystem::path& path, const ZipEntry& entry);

}  // namespace gradlens::core
