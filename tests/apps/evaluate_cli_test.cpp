// gradlens evaluate through run_cli(): the exit codes and one-line messages
// of bad input (the full protocol is tested in tests/pipeline/evaluate_test.cpp).
#include "gradlens/cli.h"

#include <sstream>

#include "gradlens/core/fs.h"
#include "support/support.h"

namespace gradlens::cli {
namespace {

struct EvaluateCliRun {
  int code;
  std::string out, err;
};

EvaluateCliRun evaluate_cli(const std::vector<std::string>& args) {
  std::ostringstream out, err;
  const int code = run_cli(args, out, err);
  return {code, out.str(), err.str()};
}

TEST(EvaluateCli, BadInputExitsWithOneLineNamingTheFlag) {
  if (test::fashion_mnist_dir().empty()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  test::TempDir dir;
  auto missing = evaluate_cli({"--quiet", "evaluate", "--models", (dir / "nope.ckpt").string(), "--out",
                               (dir / "r").string()});
  EXPECT_EQ(missing.code, 1);
  EXPECT_NE(missing.err.find("--models: '" + (dir / "nope.ckpt").string() + "' is neither"), std::string::npos)
      << missing.err;
  EXPECT_EQ(std::count(missing.err.begin(), missing.err.end(), '\n'), 1) << missing.err;
  EXPECT_FALSE(std::filesystem::exists(dir / "r"));

  core::write_text_atomically(dir / "file.txt", "x");
  auto not_report = evaluate_cli({"--quiet", "evaluate", "--out", (dir / "file.txt").string()});
  EXPECT_EQ(not_report.code, 1);
  EXPECT_NE(not_report.err.find("is not a gradlens report"), std::string::npos) << not_report.err;

  auto bad_target = evaluate_cli({"--quiet", "evaluate", "--target", "max", "--out", (dir / "r").string()});
  EXPECT_EQ(bad_target.code, 1);
  EXPECT_NE(bad_target.err.find("--target: unknown 'max'"), std::string::npos) << bad_target.err;

  auto zero = evaluate_cli({"--quiet", "evaluate", "--per-class", "0"});
  EXPECT_EQ(zero.code, 2);
  EXPECT_NE(zero.err.find("--per-class"), std::string::npos) << zero.err;

  auto help = evaluate_cli({"evaluate", "--help"});
  EXPECT_EQ(help.code, 0);
  EXPECT_NE(help.out.find("--label-error-embedding"), std::string::npos);
}

}  // namespace
}  // namespace gradlens::cli
