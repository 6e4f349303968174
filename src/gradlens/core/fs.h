// File-system helpers: atomic writes, output directories, the cache, hashes.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

namespace gradlens::core {

namespace fs = std::filesystem;

/// Writes `path` atomically: `write` receives a temporary path in the same
/// directory, and on success it is renamed over `path`. On any exception the
/// temporary file is removed and the exception propagates, so a reader never
/// sees a partial file under the final name. Throws c10::Error naming the path
/// when the directory is not writable.
void write_atomically(const fs::path& path, const std::function<void(const fs::path& tmp)>& write);

/// write_atomically() for a string payload.
void write_text_atomically(const fs::path& path, const std::string& text);

/// Creates `dir` (and parents) and checks that a file can be created in it.
/// Throws c10::Error naming `flag` and the directory otherwise.
void ensure_writable_dir(const fs::path& dir, const std::string& flag);

/// Reads a whole file; throws c10::Error naming the path if unreadable.
std::string read_file(const fs::path& path);

/// CRC-32 (zlib) of a file's bytes, as 8 hex digits; used to tie outputs to the
/// exact checkpoint they came from.
std::string file_crc32(const fs::path& path);

/// Where gradlens caches trained default models: $GRADLENS_CACHE if set, else
/// $XDG_CACHE_HOME/gradlens, else ~/.cache/gradlens.
fs::path cache_dir();

}  // namespace gradlens::core
