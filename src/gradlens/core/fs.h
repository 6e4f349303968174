// File-system helpers: atomic writes, output directories, the cache, hashes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

namespace gradlens::core {

namespace fs = std::filesystem;

/// A fresh name next to `target` for a temporary file or directory:
/// ".<target name>.<kind>-<pid>@<host>-<random>". Hidden, so that nothing
/// unfinished looks like an output; remove_stale_temporaries() finds it once
/// its owner is dead.
fs::path temporary_sibling(const fs::path& target, const std::string& kind);

/// Removes the temporaries (names as temporary_sibling() makes them, kinds
/// "partial" and "tmp") in `dir` whose owner process, on this host, no
/// longer runs: what a killed run left behind. Returns how many it removed;
/// never throws.
int remove_stale_temporaries(const fs::path& dir);

/// Writes `path` atomically: `write` receives a temporary path in the same
/// directory, and on success it is renamed over `path`. On any exception the
/// temporary file is removed and the exception propagates, so a reader never
/// sees a partial file under the final name. Throws c10::Error naming the path
/// when the directory is not writable.
void write_atomically(const fs::path& path, const std::function<void(const fs::path& tmp)>& write);

/// write_atomically() for a string payload.
void write_text_atomically(const fs::path& path, const std::string& text);

/// An output directory built under a temporary name and published whole.
///
/// The constructor refuses nothing; it removes what killed runs left in the
/// parent (remove_stale_temporaries), then creates an empty staging directory
/// next to `target` named by temporary_sibling(target, "partial") (hidden, so
/// that an interrupted run never leaves anything that looks like a finished
/// output), after checking that the parent is writable (errors name `flag`). Write
/// into path(); commit() replaces `target` (whatever it was: the caller
/// decides beforehand whether it may be replaced) by renaming it to a
/// temporary sibling, renaming the staging directory to it and removing the
/// old one, so that `target` never holds a partly removed output. Without commit() the destructor removes the staging
/// directory, so an exception leaves `target` as it was.
class StagedDirectory {
 public:
  StagedDirectory(fs::path target, const std::string& flag);
  ~StagedDirectory();
  StagedDirectory(const StagedDirectory&) = delete;
  StagedDirectory& operator=(const StagedDirectory&) = delete;

  const fs::path& path() const { return staging_; }
  const fs::path& target() const { return target_; }
  /// Publishes: removes `target` if it exists, then renames path() to it.
  /// Throws c10::Error naming `flag` and the paths when either step fails.
  void commit();

 private:
  fs::path target_, staging_;
  std::string flag_;
  bool committed_ = false;
};

/// Creates `dir` (and parents) and checks that a file can be created in it.
/// Throws c10::Error naming `flag` and the directory otherwise.
void ensure_writable_dir(const fs::path& dir, const std::string& flag);

/// Reads a whole file; throws c10::Error naming the path if unreadable.
std::string read_file(const fs::path& path);

/// CRC-32 (zlib) of a file's bytes, as 8 hex digits; used to tie outputs to the
/// exact checkpoint they came from.
std::string file_crc32(const fs::path& path);

/// CRC-32 of `size` bytes at `data`, as file_crc32 writes it.
std::string bytes_crc32(const void* data, size_t size);

/// Compares file_crc32(path) with `expected` (as file_crc32 wrote it) and
/// throws gradlens::Error "PATH is corrupt: ... that <recorder> recorded ...;
/// <fix>" when they differ.
void verify_file_crc32(const fs::path& path, const std::string& expected, const std::string& recorder,
                       const std::string& fix);

/// Where gradlens caches trained default models: $GRADLENS_CACHE if set, else
/// $XDG_CACHE_HOME/gradlens, else ~/.cache/gradlens.
fs::path cache_dir();

}  // namespace gradlens::core
