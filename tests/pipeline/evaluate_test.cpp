// gradlens evaluate end to end on a tiny model trained once for the suite:
// the report's numbers are recomputed here from the files it leaves behind.
#include "gradlens/pipeline/evaluate.h"

#include <torch/types.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <stb_image.h>

#include <cstdlib>
#include <fstream>

#include "gradlens/analysis/cosine.h"
#include "gradlens/analysis/misclassification.h"
#include "gradlens/core/fs.h"
#include "gradlens/core/npy.h"
#include "gradlens/data/dataset.h"
#include "gradlens/data/subset.h"
#include "gradlens/models/classifier.h"
#include "gradlens/pipeline/data_source.h"
#include "gradlens/pipeline/extract.h"
#include "gradlens/saliency/cam.h"
#include "gradlens/saliency/compare.h"
#include "support/support.h"

namespace gradlens::pipeline {
namespace {

namespace fs = std::filesystem;
using test::TempDir;

class EvaluateTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (test::fashion_mnist_dir().empty()) return;
    dir_ = new TempDir();
    setenv("GRADLENS_CACHE", (dir_->path() / "cache").c_str(), 1);
    TrainConfig tc = default_train_config();
    tc.width = 8;
    tc.data.train_per_class = 60;
    tc.data.test_per_class = 20;
    tc.train.epochs = 1;
    tc.train.time_budget_s = 0.0;
    tc.out = (dir_->path() / "model").string();
    ckpt_ = run_train(tc).checkpoint;
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
    unsetenv("GRADLENS_CACHE");
  }
  void SetUp() override {
    if (!dir_) GTEST_SKIP() << "Fashion-MNIST (dataset-fashion-mnist) is not installed";
  }
  EvaluateConfig config(const std::string& out) const {
    EvaluateConfig c;
    c.models = {ckpt_};
    c.per_class = 12;
    c.out = dir_->path() / out;
    c.analyze.kmeans_n_init = 2;
    c.analyze.pca_dims = 10;
    c.neighbors = 5;
    c.flip_fraction = 0.1;
    c.batch_size = 50;
    return c;
  }
  static TempDir* dir_;
  static std::string ckpt_;
};

TempDir* EvaluateTest::dir_ = nullptr;
std::string EvaluateTest::ckpt_;

TEST_F(EvaluateTest, ReportHoldsTheSeedTablesAndTheirNumbersAreReproducible) {
  const auto cfg = config("report");
  const auto res = run_evaluate(cfg);
  ASSERT_EQ(res.models.size(), 1u);
  const auto& m = res.models[0];
  EXPECT_EQ(res.n, 120);
  for (const auto* f : {"report.json", "report.md", "report.html", "table1-similarity-saliency.md",
                        "table1-similarity-saliency.csv", "table2-kmeans.md", "table3-gmm.csv", "samples.csv",
                        "label-error-ranking.csv", "per-class-accuracy.md"})
    EXPECT_TRUE(fs::exists(cfg.out / f)) << f;
  const fs::path fig = cfg.out / "figures" / (m.slug + "-pca.png");
  EXPECT_GT(fs::file_size(fig), 10000u);
  EXPECT_TRUE(fs::exists(cfg.out / "figures" / (m.slug + "-pca.gp")));
  EXPECT_TRUE(fs::exists(cfg.out / "figures" / (m.slug + "-confusion.png")));
  // No partial directory is left beside the report.
  for (const auto& e : fs::directory_iterator(dir_->path()))
    EXPECT_EQ(e.path().filename().string().find(".partial-"), std::string::npos) << e.path();

  const auto j = nlohmann::json::parse(core::read_file(cfg.out / "report.json"));
  const auto& jm = j["models"][0];
  const auto labels = core::read_npy((m.run_dir / "labels.npy").string());
  const auto preds = core::read_npy((m.run_dir / "preds.npy").string());

  // Table 1: Cos_Sim_P and Cos_Sim_FM recomputed from the extracted matrices.
  const auto probs = core::read_npy((m.run_dir / "probs.npy").string());
  const auto acts = core::read_npy((m.run_dir / "activations.npy").string());
  EXPECT_NEAR(jm["representations"]["probs"]["cos_sim"].get<double>(),
              analysis::class_cosine_similarity(probs, labels).cos_sim, 1e-12);
  EXPECT_NEAR(jm["representations"]["activations"]["cos_sim"].get<double>(),
              analysis::class_cosine_similarity(acts, labels).cos_sim, 1e-12);
  // Grad-CAM columns: the saved maps against their class means.
  const auto maps = core::read_npy((cfg.out / "figures" / (m.slug + "-gradcam-maps.npy")).string());
  EXPECT_EQ(maps.sizes(), torch::IntArrayRef({120, 28, 28}));
  // They come from the extracted Grad-CAM weights and activations, without a
  // second network pass, and equal what a Grad-CAM pass computes.
  {
    const data::Dataset full = load_split(data_for_models(cfg.data, cfg.models).data, RunContext{}.seed, false);
    const data::Dataset ds = data::select(full, res.indices);
    auto model = open_model_for(ckpt_, torch::Device(torch::kCPU), ds.channels(), ds.images.size(3),
                                /*channels_last=*/true, models::ModelOptions{models::ConvAlgorithm::kDirect, {}});
    const auto ref = saliency::compute_attribution(*model, data::to_float(ds, ds.images), ds.labels, {});
    EXPECT_LT((ref.maps - maps).abs().max().item<float>(), 1e-5);
  }
  // The analysis stays in memory: nothing is written into the cached run.
  EXPECT_FALSE(fs::exists(m.run_dir / "analysis.json"));
  EXPECT_FALSE(fs::exists(m.run_dir / "clusters"));
  const auto cmp = saliency::compare_to_class_mean(maps, labels, 10);
  EXPECT_NEAR(jm["grad_cam"]["metrics"]["CC"]["mean"].get<double>(), cmp.get("CC").summary.mean, 1e-9);
  EXPECT_NEAR(jm["grad_cam"]["metrics"]["KLD"]["mean"].get<double>(), cmp.get("KLD").summary.mean, 1e-9);
  // The markdown table prints the same number (4 decimals).
  const std::string t1 = core::read_file(cfg.out / "table1-similarity-saliency.md");
  EXPECT_NE(t1.find(fmt::format("{:.4f}", cmp.get("CC").summary.mean)), std::string::npos) << t1;
  EXPECT_NE(t1.find("Cos_Sim_GW"), std::string::npos);

  // Misclassification: confusion and accuracy from the predictions.
  const auto conf = analysis::confusion_matrix(labels, preds, 10);
  EXPECT_EQ(jm["misclassification"]["confusion"][3][3].get<int64_t>(), conf[3][3].item<int64_t>());
  EXPECT_NEAR(jm["accuracy"].get<double>(), preds.eq(labels).to(torch::kFloat64).mean().item<double>(), 1e-12);
  // The label-error ranking: the same seeded flips reproduce its AUROC.
  const auto flip = analysis::flip_labels(labels, 10, cfg.flip_fraction, RunContext{}.seed);
  const auto scores = analysis::label_error_scores(probs, flip.labels);
  for (const auto& q : jm["misclassification"]["label_error_ranking"]) {
    if (q["score"] != "self_confidence") continue;
    EXPECT_NEAR(q["auroc"].get<double>(), analysis::auroc(scores.self_confidence, flip.flipped), 1e-12);
  }
  EXPECT_EQ(jm["misclassification"]["flipped"].get<int64_t>(), 12);

  // Table 2: the KMeans row of the Grad-CAM weights carries the audit flag
  // (at layer4 of a GAP + linear head they equal the head weights / (H W)).
  const std::string t2 = core::read_file(cfg.out / "table2-kmeans.md");
  EXPECT_NE(t2.find("| Gradient Weights |"), std::string::npos) << t2;
  EXPECT_NE(t2.find("degenerate"), std::string::npos) << t2;
  EXPECT_TRUE(jm["representations"]["gradcam-weights"]["degenerate"].get<bool>());
  // samples.csv: a header and one line per image.
  const std::string samples = core::read_file(cfg.out / "samples.csv");
  EXPECT_EQ(std::count(samples.begin(), samples.end(), '\n'), 121);
  // report.html is self-contained: images inline, no external references.
  const std::string html = core::read_file(cfg.out / "report.html");
  EXPECT_NE(html.find("data:image/png;base64,"), std::string::npos);
  EXPECT_EQ(html.find("http://"), std::string::npos);
  EXPECT_EQ(html.find("https://"), std::string::npos);
}

// report.html in a real browser (Debian's chromium, installed by
// scripts/setup.sh): the screenshot must show the report, not a blank page.
TEST_F(EvaluateTest, ReportRendersInHeadlessChromium) {
  ASSERT_EQ(test::run_command("command -v chromium").exit_code, 0)
      << "chromium is not installed; scripts/setup.sh installs it (apt-get install chromium)";
  const auto cfg = config("browser");
  run_evaluate(cfg);
  const fs::path shot = dir_->path() / "shot.png";
  const std::string cmd = "timeout 120 chromium --headless --no-sandbox --disable-gpu --hide-scrollbars "
                          "--window-size=1200,1600 --user-data-dir=" +
                          (dir_->path() / "chromium-profile").string() + " --screenshot=" + shot.string() +
                          " file://" + fs::absolute(cfg.out / "report.html").string() + " 2>&1";
  const auto r = test::run_command(cmd);
  ASSERT_TRUE(fs::exists(shot)) << r.output;
  int w = 0, h = 0, c = 0;
  unsigned char* px = stbi_load(shot.c_str(), &w, &h, &c, 3);
  ASSERT_NE(px, nullptr);
  EXPECT_EQ(w, 1200);
  EXPECT_EQ(h, 1600);
  // Non-blank: text, table borders and the embedded figures put many
  // non-white pixels on the page, and the figures' colours among them.
  int64_t dark = 0, blue = 0;
  for (int64_t i = 0; i < static_cast<int64_t>(w) * h; ++i) {
    const int r0 = px[3 * i], g0 = px[3 * i + 1], b0 = px[3 * i + 2];
    if (r0 + g0 + b0 < 300) ++dark;
    if (b0 > 150 && r0 < 90) ++blue;  // tab10 blue points, the heading rule
  }
  stbi_image_free(px);
  EXPECT_GT(dark, 5000);
  EXPECT_GT(blue, 500);
}

TEST_F(EvaluateTest, RerunReusesTheExtractionAndRefusesToClobber) {
  auto cfg = config("cached");
  const auto a = run_evaluate(cfg);
  // The previous report is replaced.
  core::write_text_atomically(cfg.out / "stale.txt", "old");
  const auto b = run_evaluate(cfg);
  EXPECT_FALSE(fs::exists(cfg.out / "stale.txt"));
  EXPECT_TRUE(b.models[0].extraction_cached);
  EXPECT_EQ(a.models[0].run_dir, b.models[0].run_dir);
  EXPECT_DOUBLE_EQ(a.models[0].analysis.representations[0].analysis.kmeans.ari,
                   b.models[0].analysis.representations[0].analysis.kmeans.ari);
  // A directory that is not a report is never replaced.
  fs::create_directories(dir_->path() / "precious");
  core::write_text_atomically(dir_->path() / "precious" / "notes.txt", "keep");
  auto p = config("precious");
  GRADLENS_EXPECT_THROWS_WITH(run_evaluate(p), "is not a gradlens report");
  EXPECT_TRUE(fs::exists(dir_->path() / "precious" / "notes.txt"));
}

TEST_F(EvaluateTest, BadInputFailsCleanlyWithoutAReport) {
  auto cfg = config("bad");
  cfg.models = {ckpt_, dir_->path() / "missing.ckpt"};
  GRADLENS_EXPECT_THROWS_WITH(run_evaluate(cfg), "missing.ckpt' is neither an existing checkpoint");
  EXPECT_FALSE(fs::exists(cfg.out));
  for (const auto& e : fs::directory_iterator(dir_->path()))
    EXPECT_EQ(e.path().filename().string().find("bad.partial-"), std::string::npos) << e.path();
  cfg.models = {ckpt_};
  // The target is typed; its name is checked where it is parsed.
  GRADLENS_EXPECT_THROWS_WITH(extract::parse_gradient_target("biggest", "--target"), "--target: unknown target 'biggest'");
  cfg.flip_fraction = 0.0;
  GRADLENS_EXPECT_THROWS_WITH(run_evaluate(cfg), "--flip-fraction must be in (0, 1)");
  cfg.flip_fraction = 0.1;
  cfg.models = {ckpt_, ckpt_};
  GRADLENS_EXPECT_THROWS_WITH(run_evaluate(cfg), "is given twice");
  EXPECT_FALSE(fs::exists(cfg.out));
}

TEST(EvaluateMethods, AllFiveOnDataWithMasksNoneOtherwiseAndNoneWhenQuick) {
  EvaluateConfig cfg;
  const std::vector<std::string> all = {"gradcam", "gradcam++", "gradient", "smoothgrad", "ig"};
  EXPECT_EQ(evaluate_compare_methods(cfg, /*has_masks=*/true), all);
  EXPECT_TRUE(evaluate_compare_methods(cfg, false).empty());
  cfg.quick = true;
  EXPECT_TRUE(evaluate_compare_methods(cfg, true).empty());
  cfg.compare_methods = {"ig", "gradcam"};
  EXPECT_TRUE(evaluate_compare_methods(cfg, true).empty());
  cfg.quick = false;
  EXPECT_EQ(evaluate_compare_methods(cfg, false), (std::vector<std::string>{"ig", "gradcam"}));
  cfg.compare_methods = {"none"};
  EXPECT_TRUE(evaluate_compare_methods(cfg, true).empty());
  cfg.compare_methods = {"none", "ig"};
  GRADLENS_EXPECT_THROWS_WITH(evaluate_compare_methods(cfg, true), "--compare-methods: 'none' turns the comparison "
                              "off; give it alone");
  cfg.compare_methods = {"lime"};
  GRADLENS_EXPECT_THROWS_WITH(evaluate_compare_methods(cfg, false), "unknown attribution method 'lime'; use any of "
                              "gradcam, gradcam++, gradient, smoothgrad, ig, or none");
}

}  // namespace
}  // namespace gradlens::pipeline
