// gradlens saliency, in-process through run_cli(): outputs, exit codes and
// messages.
#include "apps/cli_run.h"

#include <torch/types.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <sstream>

#include "gradlens/core/fs.h"
#include "gradlens/models/checkpoint.h"
#include "gradlens/models/resnet.h"
#include "support/support.h"

namespace gradlens::cli {
namespace {

/// An untrained ResNet18 (small stem, width 4) saved as a gradlens checkpoint.
void saliency_cli_checkpoint(const test::fs::path& path, int64_t channels, int64_t classes, uint64_t seed) {
  torch::manual_seed(seed);
  models::ResNetConfig cfg;
  cfg.num_classes = classes;
  cfg.in_channels = channels;
  cfg.stem = models::Stem::kSmall;
  cfg.width = 4;
  models::ResNet m(cfg);
  models::save_checkpoint(path, m, "{}");
}

TEST(SaliencyCli, TwoModelsOnFashionMnistComparedWithEachOther) {
  if (test::fashion_mnist_dir().empty()) GTEST_SKIP() << "dataset-fashion-mnist not installed";
  test::TempDir dir;
  saliency_cli_checkpoint(dir / "a.ckpt", 1, 10, 1);
  saliency_cli_checkpoint(dir / "b.ckpt", 1, 10, 2);
  const auto out = dir / "sal";
  auto r = cli_run({"--threads", "1", "--quiet", "saliency", "--models",
                         (dir / "a.ckpt").string() + "," + (dir / "b.ckpt").string(), "--per-class", "2",
                         "--method", "gradcam++", "--compare", "models", "--layer", "layer3", "--colormap",
                         "turbo", "--out", out.string()});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("gradcam++ on 20 images (pred target, compare models)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("a vs b: CC "), std::string::npos) << r.out;
  const auto j = nlohmann::json::parse(core::read_file(out / "summary.json"));
  EXPECT_EQ(j["method"], "gradcam++");
  EXPECT_EQ(j["layer"], "layer3");
  EXPECT_EQ(j["n"], 20);
  EXPECT_EQ(j["comparisons"][0]["name"], "a vs b");
  EXPECT_EQ(j["overlay"]["colormap"], "turbo");
  EXPECT_TRUE(test::fs::exists(out / "maps" / "b.npy"));
  EXPECT_TRUE(test::fs::exists(out / "overlay.png"));

  // Usage and runtime errors: exit 2 / 1, the flag named, nothing written.
  auto bad = cli_run({"saliency", "--method", "lime", "--models", (dir / "a.ckpt").string(), "--out",
                           (dir / "x").string()});
  EXPECT_EQ(bad.code, 2);
  EXPECT_NE(bad.err.find("--method"), std::string::npos) << bad.err;
  EXPECT_NE(bad.err.find("lime"), std::string::npos) << bad.err;
  auto one = cli_run({"--quiet", "saliency", "--models", (dir / "a.ckpt").string(), "--compare", "models",
                           "--per-class", "1", "--out", (dir / "y").string()});
  EXPECT_EQ(one.code, 1);
  EXPECT_NE(one.err.find("--compare models needs at least two --models"), std::string::npos) << one.err;
  auto again = cli_run({"--quiet", "saliency", "--models", (dir / "a.ckpt").string(), "--per-class", "1",
                             "--out", out.string()});
  EXPECT_EQ(again.code, 1);
  EXPECT_NE(again.err.find("already exists"), std::string::npos) << again.err;
  auto noout = cli_run({"saliency", "--models", (dir / "a.ckpt").string()});
  EXPECT_EQ(noout.code, 2);
  EXPECT_FALSE(test::fs::exists(dir / "x"));
  EXPECT_FALSE(test::fs::exists(dir / "y"));
}

/// dir/shapes: 3 classes x 10 make-shapes images of 32 px with masks;
/// dir/m.ckpt: an untrained 3-class model for them.
void shapes_and_model(const test::TempDir& dir) {
  auto s = cli_run({"--quiet", "--seed", "3", "make-shapes", "--classes", "3", "--per-class", "10", "--size",
                         "32", "--out", (dir / "shapes").string()});
  ASSERT_EQ(s.code, 0) << s.err;
  saliency_cli_checkpoint(dir / "m.ckpt", 3, 3, 5);
}

TEST(SaliencyCli, ShapesWithMasksAndIntegratedGradients) {
  test::TempDir dir;
  ASSERT_NO_FATAL_FAILURE(shapes_and_model(dir));
  const auto out = dir / "sal";
  auto r = cli_run({"--threads", "1", "--quiet", "saliency", "--data", (dir / "shapes").string(),
                         "--image-size", "32", "--models", (dir / "m.ckpt").string(), "--per-class", "2",
                         "--method", "ig", "--ig-steps", "8", "--ig-baseline", "black", "--compare", "mask",
                         "--out", out.string()});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(core::read_file(out / "summary.json"));
  EXPECT_EQ(j["compare"], "mask");
  EXPECT_EQ(j["comparisons"][0]["reference"], "mask");
  EXPECT_EQ(j["options"]["ig_baseline"], "black");
  EXPECT_EQ(j["n"], 6);
  EXPECT_EQ(j["models"][0]["passes"]["backward"], 9);  // one batch, 8 trapezoid steps + 1
}

// --data-randomisation: the first model's maps against another model's, in
// summary.json and summary.md; a model against itself scores 1.
TEST(SaliencyCli, DataRandomisationComparesWithTheGivenModel) {
  test::TempDir dir;
  ASSERT_NO_FATAL_FAILURE(shapes_and_model(dir));
  saliency_cli_checkpoint(dir / "r.ckpt", 3, 3, 6);
  for (const std::string other : {"r", "m"}) {
    const auto out = dir / ("sal-" + other);
    auto r = cli_run({"--threads", "1", "--quiet", "saliency", "--data", (dir / "shapes").string(), "--image-size",
                      "32", "--models", (dir / "m.ckpt").string(), "--per-class", "2", "--method", "gradient",
                      "--data-randomisation", (dir / (other + ".ckpt")).string(), "--out", out.string()});
    ASSERT_EQ(r.code, 0) << r.err;
    const auto j = nlohmann::json::parse(core::read_file(out / "summary.json"));
    const auto& d = j["data_randomisation"];
    EXPECT_EQ(d["spearman"]["n"], 6) << other;
    EXPECT_EQ(d["ssim"]["n"], 6) << other;
    const double rho = d["spearman"]["mean"].get<double>();
    if (other == "m") {
      EXPECT_NEAR(rho, 1.0, 1e-9);
      EXPECT_NEAR(d["ssim"]["mean"].get<double>(), 1.0, 1e-9);
    } else {
      EXPECT_TRUE(rho > -1 && rho < 0.99) << rho;
      EXPECT_EQ(d["model"], "r");
    }
    EXPECT_NE(core::read_file(out / "summary.md").find("## Sanity check: data randomisation"), std::string::npos);
  }
  auto bad = cli_run({"--quiet", "saliency", "--data", (dir / "shapes").string(), "--image-size", "32", "--models",
                      (dir / "m.ckpt").string(), "--per-class", "2", "--data-randomisation",
                      (dir / "missing.ckpt").string(), "--out",
                      (dir / "sal-bad").string()});
  EXPECT_NE(bad.code, 0);
  EXPECT_NE(bad.err.find("missing.ckpt"), std::string::npos) << bad.err;
  EXPECT_FALSE(test::fs::exists(dir / "sal-bad"));
}

TEST(SaliencyCli, FaithfulnessAndLocalisationScores) {
  test::TempDir dir;
  ASSERT_NO_FATAL_FAILURE(shapes_and_model(dir));
  const auto out = dir / "sal";
  const std::vector<std::string> base = {"--threads", "1", "--quiet", "saliency", "--data", (dir / "shapes").string(),
                                         "--image-size", "32", "--models", (dir / "m.ckpt").string(),
                                         "--per-class", "2"};
  auto args = base;
  for (const char* a : {"--metrics", "deletion,insertion,confidence,road,pointing,energy,rank,random-logit", "--steps", "8",
                        "--patch-size", "4", "--road-fractions", "0.25,0.75",
                        "--perturbation-baseline", "blur", "--blur-sigma", "2", "--pointing-tolerance", "3",
                        "--randomisation", "independent", "--randomisation-groups", "3", "--out"})
    args.push_back(a);
  args.push_back(out.string());
  auto r = cli_run(args);
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(core::read_file(out / "summary.json"));
  EXPECT_EQ(j["options"]["perturbation_baseline"], "blur");
  EXPECT_EQ(j["options"]["steps"], 8);
  EXPECT_EQ(j["options"]["patch_size"], 4);
  const auto& f = j["models"][0]["faithfulness"];
  EXPECT_EQ(f["deletion_curve"].size(), 9u);
  EXPECT_EQ(f["curve_fractions"][0], 0.0);
  EXPECT_EQ(f["curve_fractions"][8], 1.0);
  for (const char* m : {"deletion_auc", "insertion_auc", "average_drop", "increase_in_confidence", "pointing_game",
                        "energy_pointing_game", "relevance_rank_accuracy"}) {
    EXPECT_EQ(f[m]["n"], 6) << m;
    const double v = f[m]["mean"].get<double>();
    EXPECT_TRUE(v >= 0 && v <= 1) << m << " " << v;
  }
  for (const char* m : {"road_morf", "road_lerf"}) {
    EXPECT_EQ(f[m]["n"], 6) << m;
    const double v = f[m]["mean"].get<double>();
    EXPECT_TRUE(v >= 0 && v <= 1) << m << " " << v;
  }
  EXPECT_NEAR(f["road_combined"]["mean"].get<double>(),
              (f["road_lerf"]["mean"].get<double>() - f["road_morf"]["mean"].get<double>()) / 2, 1e-12);
  EXPECT_EQ(f["road_fractions"], nlohmann::json({0.25, 0.75}));
  EXPECT_EQ(f["road_morf_curve"].size(), 2u);
  EXPECT_EQ(f["random_logit_ssim"]["n"], 6);
  EXPECT_LE(std::abs(f["random_logit_ssim"]["mean"].get<double>()), 1.0);
  EXPECT_TRUE(f.contains("random_logit_spearman"));
  const auto& rnd = j["models"][0]["randomisation"];
  EXPECT_EQ(rnd["test"], "independent");
  ASSERT_EQ(rnd["steps"].size(), 3u);
  EXPECT_EQ(rnd["steps"][0]["group"], "fc");
  EXPECT_EQ(rnd["steps"][1]["group"], "layer4.1");
  for (const auto& st : rnd["steps"]) EXPECT_LE(st["spearman"].get<double>(), 1.0);
  const auto rcsv = core::read_file(out / "randomisation.csv");
  EXPECT_EQ(std::count(rcsv.begin(), rcsv.end(), '\n'), 4);
  // faithfulness.csv: one row per image, the same means as summary.json.
  const auto csv = core::read_file(out / "faithfulness.csv");
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 7);
  EXPECT_NE(csv.find("deletion_auc,insertion_auc,average_drop"), std::string::npos) << csv;
  EXPECT_NE(csv.find("increase_in_confidence,road_morf,road_lerf,road_combined,pointing_game"), std::string::npos)
      << csv;
  EXPECT_NE(csv.find("relevance_rank_accuracy,random_logit_spearman,random_logit_ssim"), std::string::npos) << csv;

  // Mask metrics on data without masks, an unknown metric.
  auto bad = base;
  bad.insert(bad.end(), {"--metrics", "accuracy", "--out", (dir / "x").string()});
  auto u = cli_run(bad);
  EXPECT_EQ(u.code, 2);
  EXPECT_NE(u.err.find("--metrics: unknown metric 'accuracy'"), std::string::npos) << u.err;
}

}  // namespace
}  // namespace gradlens::cli
