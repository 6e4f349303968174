#include "gradlens/core/fs.h"

#include <unistd.h>
#include <zlib.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>

#include "gradlens/core/check.h"

namespace gradlens::core {

namespace {

fs::path temp_sibling(const fs::path& path) {
  std::random_device rd;
  std::ostringstream name;
  name << "." << path.filename().string() << ".tmp-" << ::getpid() << "-" << std::hex << rd();
  return path.parent_path() / name.str();
}

}  // namespace

void write_atomically(const fs::path& path, const std::function<void(const fs::path& tmp)>& write) {
  const fs::path parent = path.has_parent_path() ? path.parent_path() : fs::path(".");
  std::error_code ec;
  fs::create_directories(parent, ec);
  GRADLENS_CHECK(!ec && fs::is_directory(parent), "cannot create directory ", parent.string(),
                 " for ", path.string(), ": ", ec.message(),
                 "; choose an output location you can write to");
  const fs::path tmp = temp_sibling(path.has_parent_path() ? path : fs::path(".") / path);
  try {
    write(tmp);
    GRADLENS_CHECK(fs::exists(tmp), "internal: writer produced no file for ", path.string());
    fs::rename(tmp, path, ec);
    GRADLENS_CHECK(!ec, "cannot move ", tmp.string(), " to ", path.string(), ": ", ec.message());
  } catch (...) {
    fs::remove(tmp, ec);
    throw;
  }
}

void write_text_atomically(const fs::path& path, const std::string& text) {
  write_atomically(path, [&](const fs::path& tmp) {
    std::ofstream out(tmp, std::ios::binary);
    GRADLENS_CHECK(out.good(), "cannot write ", path.string(),
                   ": permission denied or no such directory; choose a writable location");
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    out.close();
    GRADLENS_CHECK(out.good(), "write to ", path.string(), " failed (disk full?)");
  });
}

void ensure_writable_dir(const fs::path& dir, const std::string& flag) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  GRADLENS_CHECK(!ec && fs::is_directory(dir), flag, " ", dir.string(),
                 ": cannot create the directory (", ec ? ec.message() : "not a directory",
                 "); choose a writable location");
  GRADLENS_CHECK(::access(dir.c_str(), W_OK) == 0, flag, " ", dir.string(),
                 ": the directory is not writable; choose a writable location");
}

StagedDirectory::StagedDirectory(fs::path target, const std::string& flag)
    : target_(fs::absolute(target).lexically_normal()), flag_(flag) {
  const fs::path parent = target_.has_parent_path() ? target_.parent_path() : fs::path(".");
  ensure_writable_dir(parent, flag_);
  staging_ = parent / ("." + target_.filename().string() + ".partial-" + std::to_string(::getpid()));
  std::error_code ec;
  fs::remove_all(staging_, ec);
  fs::create_directories(staging_, ec);
  GRADLENS_CHECK(!ec, flag_, ": cannot create ", staging_.string(), ": ", ec.message(),
                 "; choose a writable location");
}

StagedDirectory::~StagedDirectory() {
  if (committed_) return;
  std::error_code ec;
  fs::remove_all(staging_, ec);
}

void StagedDirectory::commit() {
  std::error_code ec;
  if (fs::exists(target_)) {
    fs::remove_all(target_, ec);
    GRADLENS_CHECK(!ec, flag_, ": cannot replace ", target_.string(), ": ", ec.message());
  }
  fs::rename(staging_, target_, ec);
  GRADLENS_CHECK(!ec, flag_, ": cannot move ", staging_.string(), " to ", target_.string(), ": ",
                 ec.message());
  committed_ = true;
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  GRADLENS_CHECK(in.good(), "cannot open ", path.string(), ": no such file or not readable");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string file_crc32(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  GRADLENS_CHECK(in.good(), "cannot open ", path.string(), " to hash it");
  uLong crc = crc32(0L, Z_NULL, 0);
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    const auto got = in.gcount();
    if (got > 0) crc = crc32(crc, reinterpret_cast<const Bytef*>(buf.data()), static_cast<uInt>(got));
  }
  char hex[9];
  std::snprintf(hex, sizeof(hex), "%08lx", static_cast<unsigned long>(crc));
  return hex;
}

fs::path cache_dir() {
  if (const char* p = std::getenv("GRADLENS_CACHE"); p != nullptr && *p != '\0') return p;
  if (const char* p = std::getenv("XDG_CACHE_HOME"); p != nullptr && *p != '\0')
    return fs::path(p) / "gradlens";
  if (const char* p = std::getenv("HOME"); p != nullptr && *p != '\0')
    return fs::path(p) / ".cache" / "gradlens";
  return fs::path(".gradlens-cache");
}

}  // namespace gradlens::core
