// gradlens analyze, in-process through run_cli(): exit codes 0 / 1 / 2 and
// what is printed.
#include "apps/cli_run.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <limits>
#include <sstream>

#include "gradlens/core/fs.h"
#include "pipeline/analyze_test_util.h"
#include "support/support.h"

namespace gradlens::cli {
namespace {

TEST(AnalyzeCli, AnalysesARunDirectoryAndPrintsATable) {
  test::TempDir dir;
  test::analyze::write_run(dir.path());
  auto r = cli_run({"--threads", "1", "--quiet", "--seed", "4", "analyze", dir.path().string(),
                        "--kmeans-n-init", "3", "--gmm-covariance", "diag"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("30 samples, 3 classes, k = 3"), std::string::npos) << r.out;
  // blobs: every score 1.
  EXPECT_NE(r.out.find("kmeans  pca6       1.0000  1.0000  1.0000"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("label-informed"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("analysis.json"), std::string::npos) << r.out;
  // The warning goes to stderr, one line.
  EXPECT_EQ(r.err.rfind("warning: informed.true: label-informed", 0), 0u) << r.err;
  const auto j = nlohmann::json::parse(core::read_file(dir / "analysis.json"));
  EXPECT_EQ(j["protocol"]["seed"], 4);
  EXPECT_EQ(j["protocol"]["kmeans"]["n_init"], 3);
  EXPECT_EQ(j["protocol"]["gmm"]["covariance"], "diag");

  auto sel = cli_run({"--quiet", "analyze", dir.path().string(), "--representations", "blobs",
                          "--pca-dims", "2", "--normalize", "l2", "--k", "2", "--no-audit",
                          "--silhouette-sample", "20"});
  ASSERT_EQ(sel.code, 0) << sel.err;
  EXPECT_NE(sel.out.find("l2+pca2"), std::string::npos) << sel.out;
  EXPECT_EQ(sel.err, "");
  const auto j2 = nlohmann::json::parse(core::read_file(dir / "analysis.json"));
  EXPECT_EQ(j2.size(), 2u);
  EXPECT_EQ(j2["blobs"]["k"], 2);
  EXPECT_TRUE(j2["blobs"]["audit"].is_null());
}

TEST(AnalyzeCli, UsageErrorsExitTwo) {
  test::TempDir dir;
  test::analyze::write_run(dir.path());
  const auto d = dir.path().string();
  auto h = cli_run({"--help"});
  EXPECT_NE(h.out.find("analyze"), std::string::npos);
  EXPECT_EQ(cli_run({"analyze"}).code, 2);  // RUN_DIR is required
  auto norm = cli_run({"analyze", d, "--normalize", "l3"});
  EXPECT_EQ(norm.code, 2);
  EXPECT_NE(norm.err.find("--normalize"), std::string::npos) << norm.err;
  EXPECT_EQ(cli_run({"analyze", d, "--gmm-covariance", "round"}).code, 2);
  EXPECT_EQ(cli_run({"analyze", d, "--pca-dims", "-1"}).code, 2);
  auto unknown = cli_run({"analyze", d, "--representations", "nope"});
  EXPECT_EQ(unknown.code, 2);
  EXPECT_NE(unknown.err.find("available: blobs, informed.true"), std::string::npos) << unknown.err;
  auto k = cli_run({"analyze", d, "--k", "100"});
  EXPECT_EQ(k.code, 2);
  EXPECT_NE(k.err.find("--k 100"), std::string::npos) << k.err;
  EXPECT_FALSE(test::fs::exists(dir / "analysis.json"));
}

TEST(AnalyzeCli, RuntimeErrorsExitOneWithAOneLineMessage) {
  test::TempDir dir;
  auto missing = cli_run({"analyze", (dir / "none").string()});
  EXPECT_EQ(missing.code, 1);
  EXPECT_NE(missing.err.find("none"), std::string::npos) << missing.err;
  EXPECT_EQ(std::count(missing.err.begin(), missing.err.end(), '\n'), 1) << missing.err;
  test::analyze::write_run(dir.path());
  auto x = test::analyze::blobs();
  x[5][0] = std::numeric_limits<float>::quiet_NaN();
  core::write_npy(dir / "blobs.npy", x);
  auto nan = cli_run({"analyze", dir.path().string()});
  EXPECT_EQ(nan.code, 1);
  EXPECT_NE(nan.err.find("representation 'blobs'"), std::string::npos) << nan.err;
  EXPECT_NE(nan.err.find("row 5 "), std::string::npos) << nan.err;
  EXPECT_EQ(std::count(nan.err.begin(), nan.err.end(), '\n'), 1) << nan.err;
  EXPECT_FALSE(test::fs::exists(dir / "analysis.json"));
}

}  // namespace
}  // namespace gradlens::cli
