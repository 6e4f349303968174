// `gradlens launch -n 2 -- analyze RUN` equals `gradlens analyze RUN`: the
// same cluster labels and the same analysis.json up to float64 summation
// order, with KMeans (10 k-means++ runs), GMM, PCA and the silhouette run on
// each rank's rows (a synthetic run directory). `launch -n 2 -- evaluate`
// equals `evaluate` likewise (report.json). Runs the built gradlens binary.
#include <torch/types.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "distributed/dist_test_util.h"
#include "pipeline/analyze_test_util.h"
#include "gradlens/core/fs.h"
#include "gradlens/core/npy.h"

namespace gradlens::distributed {
namespace {

// Four overlapping classes in 8-D (401 rows: the ranks' shares differ), and
// a wide representation (300 columns: PCA's exact solver there needs every
// row, so it runs on each rank).
void dan_write_run(const test::fs::path& dir) {
  test::fs::create_directories(dir);
  auto gen = at::detail::createCPUGenerator(5);
  const int64_t n = 401;
  const auto y = torch::arange(n, torch::kInt64).remainder(4);
  const auto centres = torch::randn({4, 8}, gen, torch::kFloat64) * 1.5;
  const auto narrow = (centres.index_select(0, y) + torch::randn({n, 8}, gen, torch::kFloat64)).to(torch::kFloat32);
  const auto lift = torch::randn({8, 300}, gen, torch::kFloat64);
  const auto wide = (narrow.to(torch::kFloat64).mm(lift) + torch::randn({n, 300}, gen, torch::kFloat64) * 3)
                        .to(torch::kFloat32);
  core::write_npy(dir / "narrow.npy", narrow);
  core::write_npy(dir / "wide.npy", wide);
  core::write_npy(dir / "labels.npy", y);
  core::write_npy(dir / "preds.npy", y);
  namespace an = test::analyze;
  an::write_manifest(dir, an::manifest("synthetic-overlap", n, {"a", "b", "c", "d"},
                                       {an::entry("narrow", 8, false, "float32", n),
                                        an::entry("wide", 300, false, "float32", n)}));
}

nlohmann::json dan_read(const test::fs::path& p) {
  std::ifstream f(p);
  return nlohmann::json::parse(f);
}

// Every number equal to 1e-6 relative, every other value equal; timings skipped.
void dan_expect_close(const nlohmann::json& a, const nlohmann::json& b, const std::string& at) {
  if (a.is_number() && b.is_number()) {
    const double x = a.get<double>(), y = b.get<double>();
    EXPECT_LE(std::abs(x - y), 1e-6 * std::max(1.0, std::abs(x))) << at << ": " << x << " vs " << y;
    return;
  }
  ASSERT_EQ(a.type(), b.type()) << at;
  if (a.is_object()) {
    for (auto it = a.begin(); it != a.end(); ++it) {
      if (it.key().find("seconds") != std::string::npos || it.key() == "run_dir" || it.key() == "extraction_cached")
        continue;
      ASSERT_TRUE(b.contains(it.key())) << at << "/" << it.key();
      dan_expect_close(it.value(), b.at(it.key()), at + "/" + it.key());
    }
    EXPECT_EQ(a.size(), b.size()) << at;
  } else if (a.is_array()) {
    ASSERT_EQ(a.size(), b.size()) << at;
    for (size_t i = 0; i < a.size(); ++i) dan_expect_close(a[i], b[i], at + "/" + std::to_string(i));
  } else {
    EXPECT_EQ(a, b) << at;
  }
}

TEST(DistAnalyze, LaunchTwoRanksEqualsOneProcess) {
  if (!test::fs::exists(test::binary_path("gradlens"))) GTEST_SKIP() << "build the gradlens target first";
  test::TempDir dir;
  dan_write_run(dir / "one");
  dan_write_run(dir / "two");
  const std::string g = test::binary_path("gradlens").string();
  const auto one = test::run_command(g + " --threads 1 --quiet analyze " + (dir / "one").string());
  ASSERT_EQ(one.exit_code, 0) << one.output;
  const auto two = test::run_command(g + " launch -n 2 --timeout 60 -- --threads 1 --quiet analyze " +
                                     (dir / "two").string());
  ASSERT_EQ(two.exit_code, 0) << two.output;
  EXPECT_NE(two.output.find("[rank 1] analysed 2 representation(s) of 401 samples"), std::string::npos)
      << two.output;
  const auto a = dan_read(dir / "one" / "analysis.json"), b = dan_read(dir / "two" / "analysis.json");
  dan_expect_close(a, b, "analysis.json");
  // The scores are not trivial: the classes overlap.
  const double ari = a.at("narrow").at("kmeans").at("ari").get<double>();
  EXPECT_GT(ari, 0.2);
  EXPECT_LT(ari, 0.95);
  for (const char* name : {"narrow", "wide"})
    for (const char* method : {"kmeans", "gmm"}) {
      const std::string file = std::string("clusters/") + name + "." + method + ".npy";
      EXPECT_TRUE(torch::equal(core::read_npy(dir / "one" / file), core::read_npy(dir / "two" / file))) << file;
    }
  EXPECT_LE((core::read_npy(dir / "one" / "pca2" / "narrow.npy") - core::read_npy(dir / "two" / "pca2" / "narrow.npy"))
                .abs()
                .max()
                .item<float>(),
            1e-4f);
  // A silhouette sample of at least N rows is every row: the exact score, sharded.
  const std::string sample = " --threads 1 --quiet analyze --silhouette-sample 1000 ";
  ASSERT_EQ(test::run_command(g + sample + (dir / "one").string()).exit_code, 0);
  const auto launched = test::run_command(g + " launch -n 2 --timeout 60 --" + sample + (dir / "two").string());
  ASSERT_EQ(launched.exit_code, 0) << launched.output;
  const auto sa = dan_read(dir / "one" / "analysis.json"), sb = dan_read(dir / "two" / "analysis.json");
  EXPECT_TRUE(sb.at("narrow").at("kmeans").at("error").is_null()) << sb.at("narrow").at("kmeans").dump();
  dan_expect_close(sa, sb, "analysis.json (--silhouette-sample 1000)");
}

TEST(DistAnalyze, LaunchedEvaluateEqualsOneProcess) {
  if (test::fashion_mnist_dir().empty()) GTEST_SKIP() << "dataset-fashion-mnist not installed";
  if (!test::fs::exists(test::binary_path("gradlens"))) GTEST_SKIP() << "build the gradlens target first";
  test::TempDir dir;
  const std::string g = test::binary_path("gradlens").string();
  const auto t = test::run_command(g + " --threads 1 --quiet train --width 4 --epochs 1 --train-per-class 10 "
                                       "--test-per-class 5 --batch-size 50 --out " + (dir / "m").string());
  ASSERT_EQ(t.exit_code, 0) << t.output;
  // Two models (the same weights under two names), and separate caches: the
  // launched run extracts (sharded) instead of reading the first's.
  test::fs::copy_file(dir / "m" / "model.ckpt", dir / "m" / "again.ckpt");
  const std::string args = " --threads 1 --quiet evaluate --models " + (dir / "m" / "model.ckpt").string() + "," +
                           (dir / "m" / "again.ckpt").string() + " --per-class 12 --batch-size 16 --out ";
  const auto one = test::run_command("GRADLENS_CACHE=" + (dir / "c1").string() + " " + g + args +
                                     (dir / "one").string());
  ASSERT_EQ(one.exit_code, 0) << one.output;
  const auto two = test::run_command("GRADLENS_CACHE=" + (dir / "c2").string() + " " + g +
                                     " launch -n 2 --timeout 120 --" + args + (dir / "two").string());
  ASSERT_EQ(two.exit_code, 0) << two.output;
  EXPECT_NE(two.output.find("[rank 1] analysed 2 model(s) on 120 images; rank 0 writes the report"),
            std::string::npos)
      << two.output;
  auto a = dan_read(dir / "one" / "report.json"), b = dan_read(dir / "two" / "report.json");
  // A degenerate representation (e.g. Grad-CAM weights, a function of the
  // predicted class: duplicate rows split over several clusters) has a
  // silhouette of rounding noise over rounding noise; it is not compared.
  int degenerate = 0;
  for (auto* j : {&a, &b})
    for (auto& model : j->at("models"))
      for (auto& [name, rep] : model.at("representations").items())
        if (rep.at("degenerate").get<bool>()) {
          for (const char* m : {"kmeans", "gmm"}) rep.at(m).erase("silhouette");
          degenerate += j == &a ? 1 : 0;
        }
  EXPECT_LE(degenerate, 4);
  ASSERT_EQ(b.at("models").size(), 2u);
  dan_expect_close(a.at("models"), b.at("models"), "report.json/models");
}

}  // namespace
}  // namespace gradlens::distributed
