#include "support/support.h"

#include <torch/types.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <limits>
#include <map>
#include <mutex>
#include <random>

namespace gradlens::test {

void SeededTest::SetUp() { torch::manual_seed(0); }

TempDir::TempDir() {
  std::random_device rd;
  for (int attempt = 0; attempt < 100; ++attempt) {
    auto p = fs::temp_directory_path() /
             ("gradlens-test-" + std::to_string(rd()) + "-" + std::to_string(attempt));
    if (fs::create_directory(p)) {
      path_ = p;
      return;
    }
  }
  throw std::runtime_error("TempDir: cannot create a temporary directory");
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

CommandResult run_command(const std::string& cmd) {
  CommandResult r;
  TempDir tmp;
  const fs::path err = tmp / "stderr";
  const std::string full = "( " + cmd + " ) 2>'" + err.string() + "'";
  FILE* pipe = popen(full.c_str(), "r");
  if (pipe == nullptr) return r;
  std::array<char, 4096> buf{};
  size_t n = 0;
  while ((n = fread(buf.data(), 1, buf.size(), pipe)) > 0) r.out.append(buf.data(), n);
  const int status = pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  std::ifstream f(err, std::ios::binary);
  r.output = r.out + std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  return r;
}

fs::path source_path(const std::string& rel) { return fs::path(GRADLENS_SOURCE_DIR) / rel; }
fs::path binary_path(const std::string& rel) { return fs::path(GRADLENS_BINARY_DIR) / rel; }

bool python_has(const std::string& module) {
  // Importing torchvision takes seconds: ask once per module and process.
  static std::mutex mu;
  static std::map<std::string, bool> known;
  std::lock_guard<std::mutex> lock(mu);
  auto it = known.find(module);
  if (it != known.end()) return it->second;
  const bool ok = run_command(std::string(kPython) + " -c 'import " + module + "'").exit_code == 0;
  known[module] = ok;
  return ok;
}

fs::path fashion_mnist_dir() {
  // As data::default_idx_dir (support links the core area only).
  const char* root = std::getenv("GRADLENS_DATASETS");
  const fs::path p = (root && *root ? fs::path(root) : fs::path("/usr/share/datasets")) / "fashion-mnist";
  return fs::exists(p / "t10k-labels-idx1-ubyte.gz") ? p : fs::path();
}

double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs().max().item<double>();
}

double rel_to_reference(const torch::Tensor& a, const torch::Tensor& ref) {
  const double scale = ref.abs().max().item<double>();
  if (!(scale > 0)) return std::numeric_limits<double>::infinity();
  return max_abs_diff(a, ref) / scale;
}

}  // namespace gradlens::test
