// Shared by the fuzz targets whose readers take a path: each input is
// written to one file per process (in /dev/shm when it exists) and read back.
#pragma once

#include <c10/util/Exception.h>
#include <c10/util/Logging.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <string>

namespace gradlens::fuzz {

/// The file that holds the current input; `suffix` gives it an extension.
inline std::string write_input(const uint8_t* data, size_t size, const char* suffix) {
  static const std::string dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
  const std::string path = dir + "/gradlens-fuzz-" + std::to_string(getpid()) + suffix;
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) __builtin_trap();
  if (size > 0 && std::fwrite(data, 1, size, f) != size) __builtin_trap();
  std::fclose(f);
  return path;
}

/// c10::Error captures and symbolises a C++ backtrace on every throw (tens
/// of milliseconds); the harnesses throw on most inputs, so they turn it off.
inline void quiet_errors() {
  c10::SetStackTraceFetcher([] { return std::string(); });
}

}  // namespace gradlens::fuzz
