#include "gradlens/core/fs.h"

#include <signal.h>
#include <unistd.h>
#include <libdeflate.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>

#include "gradlens/core/check.h"

namespace gradlens::core {

namespace {

std::string host_name() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof(buf) - 1) != 0) return "localhost";
  std::string h(buf);
  for (char& c : h)
    if (c == '/' || c == '-' || c == '@' || c == '.') c = '_';
  return h;
}

/// The pid and host a temporary's name records after ".<kind>-" (host empty
/// in names from before hosts were recorded); pid 0 if it is not one.
std::pair<long, std::string> temporary_owner(const std::string& name) {
  for (const char* kind : {".partial-", ".tmp-"}) {
    const auto at = name.rfind(kind);
    if (name.empty() || name[0] != '.' || at == std::string::npos) continue;
    size_t p = at + std::strlen(kind);
    long pid = 0;
    size_t digits = 0;
    while (p < name.size() && std::isdigit(static_cast<unsigned char>(name[p]))) {
      pid = pid * 10 + (name[p++] - '0');
      if (++digits > 9) return {0, {}};
    }
    if (digits == 0) continue;
    std::string host;
    if (p < name.size() && name[p] == '@') {
      const auto end = name.find('-', p + 1);
      host = name.substr(p + 1, end == std::string::npos ? std::string::npos : end - p - 1);
    }
    return {pid, host};
  }
  return {0, {}};
}

}  // namespace

fs::path temporary_sibling(const fs::path& target, const std::string& kind) {
  std::random_device rd;
  std::ostringstream name;
  name << "." << target.filename().string() << "." << kind << "-" << ::getpid() << "@" << host_name() << "-"
       << std::hex << rd();
  return (target.has_parent_path() ? target.parent_path() : fs::path(".")) / name.str();
}

int remove_stale_temporaries(const fs::path& dir) {
  std::error_code ec;
  int removed = 0;
  const std::string host = host_name();
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const auto [pid, owner_host] = temporary_owner(it->path().filename().string());
    if (pid <= 0 || pid == ::getpid() || (!owner_host.empty() && owner_host != host)) continue;
    if (::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH) continue;  // alive, or not ours to judge
    std::error_code rm;
    fs::remove_all(it->path(), rm);
    if (!rm) ++removed;
  }
  return removed;
}

void write_atomically(const fs::path& path, const std::function<void(const fs::path& tmp)>& write) {
  const fs::path parent = path.has_parent_path() ? path.parent_path() : fs::path(".");
  std::error_code ec;
  fs::create_directories(parent, ec);
  GRADLENS_CHECK(!ec && fs::is_directory(parent), "cannot create directory ", parent.string(),
                 " for ", path.string(), ": ", ec.message(),
                 "; choose an output location you can write to");
  remove_stale_temporaries(parent);
  const fs::path tmp = temporary_sibling(path.has_parent_path() ? path : fs::path(".") / path, "tmp");
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
  remove_stale_temporaries(parent);
  staging_ = temporary_sibling(target_, "partial");
  std::error_code ec;
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
  // The previous output leaves the name whole (one rename, to a temporary
  // that a later run removes if this process dies), then the new one takes
  // it: a kill at any moment leaves the old output, the new one, or nothing.
  std::error_code ec;
  fs::path old;
  if (fs::exists(target_)) {
    old = temporary_sibling(target_, "partial");
    fs::rename(target_, old, ec);
    GRADLENS_CHECK(!ec, flag_, ": cannot replace ", target_.string(), ": ", ec.message());
  }
  fs::rename(staging_, target_, ec);
  if (ec && !old.empty()) {
    std::error_code back;
    fs::rename(old, target_, back);
  }
  GRADLENS_CHECK(!ec, flag_, ": cannot move ", staging_.string(), " to ", target_.string(), ": ",
                 ec.message());
  committed_ = true;
  if (!old.empty()) fs::remove_all(old, ec);
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  GRADLENS_CHECK(in.good(), "cannot open ", path.string(), ": no such file or not readable");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

namespace {
std::string crc32_hex(uint32_t crc) {
  char hex[9];
  std::snprintf(hex, sizeof(hex), "%08lx", static_cast<unsigned long>(crc));
  return hex;
}
}  // namespace

std::string file_crc32(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  GRADLENS_CHECK(in.good(), "cannot open ", path.string(), " to hash it");
  uint32_t crc = 0;
  std::vector<char> buf(size_t{4} << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    const auto got = in.gcount();
    if (got > 0) crc = libdeflate_crc32(crc, buf.data(), static_cast<size_t>(got));
  }
  return crc32_hex(crc);
}

std::string bytes_crc32(const void* data, size_t size) { return crc32_hex(libdeflate_crc32(0, data, size)); }

void verify_file_crc32(const fs::path& path, const std::string& expected, const std::string& recorder,
                       const std::string& fix) {
  const std::string got = file_crc32(path);
  GRADLENS_CHECK(got == expected, path.string(), " is corrupt: its CRC-32 (", got, ") differs from the ",
                 expected, " that ", recorder, " recorded when it was written (the file was damaged or changed "
                 "since); ", fix);
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
