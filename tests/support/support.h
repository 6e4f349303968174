// Shared test helpers (mirrors pytorch/test/cpp/api/support.h in spirit).
#pragma once

#include <gtest/gtest.h>
#include <torch/types.h>

#include <filesystem>
#include <string>
#include <type_traits>

namespace gradlens::test {

namespace fs = std::filesystem;

/// Seeds LibTorch before every test so random inputs are reproducible.
class SeededTest : public ::testing::Test {
 protected:
  void SetUp() override;
};

/// A fresh, empty temporary directory removed at destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }
  fs::path operator/(const std::string& name) const { return path_ / name; }

 private:
  fs::path path_;
};

/// Result of running a shell command.
struct CommandResult {
  int exit_code = -1;
  std::string output;  ///< stdout, then stderr: for messages and failure logs
  std::string out;     ///< stdout alone: what a peer script's result is parsed from
};

/// Runs `cmd` through /bin/sh, capturing stdout and stderr apart (a warning
/// on stderr never reaches a parser of stdout).
CommandResult run_command(const std::string& cmd);

/// Debian's interpreter, which has python3-torch, -torchvision, -sklearn.
inline const char* kPython = "/usr/bin/python3";

/// Path of a file in the source tree.
fs::path source_path(const std::string& rel);

/// Path of a file in the build tree (e.g. the gradlens binary).
fs::path binary_path(const std::string& rel);

/// True if `/usr/bin/python3 -c "import <module>"` succeeds.
bool python_has(const std::string& module);

/// Fashion-MNIST directory from Debian's dataset-fashion-mnist, or "" if absent.
fs::path fashion_mnist_dir();

/// Largest absolute difference between two tensors (as double).
double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b);

/// max |a - ref| / max |ref|; infinity when ref is all zero (a reference of
/// zeros would prove nothing).
double rel_to_reference(const torch::Tensor& a, const torch::Tensor& ref);

/// " " + Ref::kArgs when Ref has them, else "".
template <class Ref, class = void>
struct ReferenceArgs {
  static std::string get() { return ""; }
};
template <class Ref>
struct ReferenceArgs<Ref, std::void_t<decltype(Ref::kArgs)>> {
  static std::string get() { return std::string(" ") + Ref::kArgs; }
};

/// A test suite whose reference values come from one Python script, run
/// once per suite as `/usr/bin/python3 <Ref::kScript> <dir> [Ref::kArgs]`
/// into a fresh temporary directory (dir()). Tests are skipped when
/// `Ref::kModule` does not import, and fail with the script's output when it
/// failed.
template <class Ref>
class PythonReferenceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    if (!python_has(Ref::kModule)) return;
    const auto r = run_command(std::string(kPython) + " " + source_path(Ref::kScript).string() + " " +
                               dir_->path().string() + ReferenceArgs<Ref>::get());
    ok_ = r.exit_code == 0;
    log_ = r.output;
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  void SetUp() override {
    if (!python_has(Ref::kModule)) GTEST_SKIP() << "python3-" << Ref::kModule << " not installed";
    ASSERT_TRUE(ok_) << log_;
  }
  static const fs::path& dir() { return dir_->path(); }

 private:
  static inline TempDir* dir_ = nullptr;
  static inline bool ok_ = false;
  static inline std::string log_;
};

}  // namespace gradlens::test

/// Asserts that `statement` throws an exception whose message contains
/// `substring` (case-sensitive).
#define GRADLENS_EXPECT_THROWS_WITH(statement, substring)                              \
  do {                                                                                 \
    bool gradlens_threw_ = false;                                                      \
    try {                                                                              \
      (void)(statement);                                                               \
    } catch (const std::exception& e) {                                                \
      gradlens_threw_ = true;                                                          \
      EXPECT_NE(std::string(e.what()).find(substring), std::string::npos)              \
          << "message was: " << e.what();                                              \
    }                                                                                  \
    EXPECT_TRUE(gradlens_threw_) << "expected an exception containing: " << substring; \
  } while (0)
