// gradlens saliency as a library: run_saliency() in memory and the output
// directory written by write_saliency_outputs().
#include "gradlens/pipeline/saliency.h"

#include <torch/types.h>

#include <nlohmann/json.hpp>
#include <stb_image.h>

#include <fstream>
#include <sstream>

#include "extract/extract_test_util.h"
#include "gradlens/core/fs.h"
#include "gradlens/core/npy.h"
#include "support/support.h"

namespace gradlens::pipeline {
namespace {

using extract::testing::tiny_dataset;
using extract::testing::tiny_resnet;

std::vector<std::string> saliency_test_lines(const test::fs::path& p) {
  std::ifstream in(p);
  std::vector<std::string> lines;
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  return lines;
}

TEST(SaliencyPipeline, MapsEqualTheBatchedAttributionAndComparisonsFollowTheConfig) {
  torch::manual_seed(0);
  auto a = tiny_resnet(4);
  auto b = tiny_resnet(4);
  const auto ds = tiny_dataset(12, 4);
  SaliencyConfig cfg;
  cfg.batch_size = 5;  // batches of 5, 5, 2
  cfg.compare = saliency::ComparisonKind::kModels;
  const auto run = run_saliency({{"a", a.get(), "a.ckpt"}, {"b", b.get(), "b.ckpt"}}, ds, cfg);
  ASSERT_EQ(run.models.size(), 2u);
  EXPECT_EQ(run.method, "gradcam");
  EXPECT_EQ(run.n, 12);
  // The maps are those of one call on the whole set.
  const auto x = data::to_float(ds, ds.images);
  const auto whole = saliency::compute_attribution(*a, x, ds.labels, cfg.attribution);
  EXPECT_LT(test::max_abs_diff(run.models[0].maps, whole.maps), 1e-5);
  EXPECT_TRUE(torch::equal(run.models[0].preds, whole.preds));
  EXPECT_EQ(run.models[0].layer, "layer4");
  EXPECT_EQ(run.models[0].raw_height, 2);
  EXPECT_EQ(run.models[0].forward_passes, 3);  // one per batch
  const double acc = whole.preds.eq(ds.labels).to(torch::kDouble).mean().item<double>();
  EXPECT_DOUBLE_EQ(run.models[0].accuracy, acc);
  // compare models: a against b.
  ASSERT_EQ(run.comparisons.size(), 1u);
  EXPECT_EQ(run.comparisons[0].name, "a vs b");
  EXPECT_EQ(run.comparisons[0].reference, "b");
  const auto direct = saliency::compare_models(run.models[0].maps, run.models[1].maps, cfg.compare_options);
  EXPECT_TRUE(torch::equal(run.comparisons[0].result.get("CC").result.values, direct.get("CC").result.values));

  // class-mean: one comparison per model.
  cfg.compare = saliency::ComparisonKind::kClassMean;
  const auto cm = run_saliency({{"a", a.get(), ""}, {"b", b.get(), ""}}, ds, cfg);
  ASSERT_EQ(cm.comparisons.size(), 2u);
  EXPECT_EQ(cm.comparisons[1].reference, "class-mean");
  const auto direct_cm = saliency::compare_to_class_mean(cm.models[1].maps, ds.labels, 4, cfg.compare_options);
  EXPECT_NEAR(cm.comparisons[1].result.get("SIM").summary.mean, direct_cm.get("SIM").summary.mean, 1e-12);
}

// The data-randomisation test: the first model's maps against the second
// model's, Spearman and SSIM per image as saliency/sanity.h computes them;
// a model compared with itself scores 1.
TEST(SaliencyPipeline, DataRandomisationComparesTheFirstModelsMapsWithTheRandomisedModels) {
  torch::manual_seed(0);
  auto a = tiny_resnet(4);
  auto b = tiny_resnet(4);
  const auto ds = tiny_dataset(10, 4);
  SaliencyConfig cfg;
  cfg.attribution.method = saliency::AttributionMethod::kGradient;  // input-size maps, never constant here
  cfg.batch_size = 4;
  const NamedClassifier same{"a2", a.get(), "a.ckpt"};
  const auto self = run_saliency({{"a", a.get(), "a.ckpt"}}, ds, cfg, {}, &same);
  const auto& ds_self = self.data_randomisation;
  ASSERT_TRUE(ds_self.spearman.defined());
  EXPECT_EQ(ds_self.name, "a2");
  EXPECT_LT((ds_self.spearman - 1).abs().max().item<double>(), 1e-9);
  EXPECT_LT((ds_self.ssim - 1).abs().max().item<double>(), 1e-9);
  const NamedClassifier other{"b", b.get(), "b.ckpt"};
  const auto run = run_saliency({{"a", a.get(), "a.ckpt"}}, ds, cfg, {}, &other);
  const auto& dr = run.data_randomisation;
  const auto x = data::to_float(ds, ds.images);
  const auto mb = saliency::compute_attribution(*b, x, ds.labels, cfg.attribution).maps;
  EXPECT_TRUE(torch::allclose(dr.spearman, saliency::spearman_rank_correlation(run.models[0].maps, mb), 1e-6, 1e-9));
  EXPECT_TRUE(torch::allclose(dr.ssim, saliency::ssim(run.models[0].maps, mb), 1e-6, 1e-9));
  EXPECT_LT(dr.spearman.mean().item<double>(), 0.99);
  EXPECT_DOUBLE_EQ(dr.accuracy, saliency::compute_attribution(*b, x, ds.labels, cfg.attribution)
                                    .preds.eq(ds.labels).to(torch::kDouble).mean().item<double>());
  auto small = tiny_resnet(3);
  const NamedClassifier few{"s", small.get(), "s.ckpt"};
  GRADLENS_EXPECT_THROWS_WITH(run_saliency({{"a", a.get(), ""}}, ds, cfg, {}, &few),
                              "--data-randomisation s.ckpt has 3 classes but the data has 4");
}

TEST(SaliencyPipeline, BadConfigurationsNameTheFlag) {
  torch::manual_seed(0);
  auto a = tiny_resnet(4);
  const auto ds = tiny_dataset(8, 4);
  SaliencyConfig cfg;
  cfg.compare = saliency::ComparisonKind::kModels;
  GRADLENS_EXPECT_THROWS_WITH(run_saliency({{"a", a.get(), ""}}, ds, cfg), "--compare models needs at least two");
  cfg.compare = saliency::ComparisonKind::kMask;
  GRADLENS_EXPECT_THROWS_WITH(run_saliency({{"a", a.get(), ""}}, ds, cfg), "has no object masks");
  // The comparison is typed; its name is checked where it is parsed.
  GRADLENS_EXPECT_THROWS_WITH(saliency::parse_comparison_kind("pixels"), "--compare: unknown");
  cfg.compare = saliency::ComparisonKind::kClassMean;
  GRADLENS_EXPECT_THROWS_WITH(run_saliency({{"a", a.get(), ""}, {"a", a.get(), ""}}, ds, cfg), "used twice");
  GRADLENS_EXPECT_THROWS_WITH(run_saliency({{"a/b", a.get(), ""}}, ds, cfg), "cannot be a file name");
  auto small = tiny_resnet(3);
  GRADLENS_EXPECT_THROWS_WITH(run_saliency({{"s", small.get(), "s.ckpt"}}, ds, cfg),
                              "--models s.ckpt has 3 classes but the data has 4");
  cfg.attribution.layer = "layer7";
  GRADLENS_EXPECT_THROWS_WITH(run_saliency({{"a", a.get(), ""}}, ds, cfg), "--layer: unknown layer 'layer7'");
}

TEST(SaliencyPipeline, MasksOverlaySampleAndModelNames) {
  torch::manual_seed(0);
  auto a = tiny_resnet(4);
  auto ds = tiny_dataset(8, 4);
  ds.masks = torch::zeros({8, 1, 12, 12}, torch::kByte);
  ds.masks.slice(2, 3, 9).slice(3, 3, 9).fill_(255);
  SaliencyConfig cfg;
  cfg.compare = saliency::ComparisonKind::kMask;
  cfg.attribution.method = saliency::AttributionMethod::kGradient;
  const auto run = run_saliency({{"a", a.get(), ""}}, ds, cfg);
  ASSERT_EQ(run.comparisons.size(), 1u);
  EXPECT_EQ(run.comparisons[0].reference, "mask");
  EXPECT_EQ(run.models[0].layer, "");
  const auto direct = saliency::compare_to_masks(run.models[0].maps, ds.masks);
  EXPECT_NEAR(run.comparisons[0].result.get("NSS").summary.mean, direct.get("NSS").summary.mean, 1e-12);
  const auto grid = saliency_overlay_grid(run, ds, torch::tensor({0, 5}, torch::kLong), cfg);
  ASSERT_EQ(grid.columns.size(), 2u);  // the model and the object mask
  EXPECT_EQ(grid.columns[1].title, "object mask");
  EXPECT_EQ(grid.images.size(0), 2);
  EXPECT_EQ(grid.image_captions[1], "true: c1\nindex 5");

  // Overlay sample: per class, correct ones first, then misclassified ones.
  const auto labels = torch::tensor({0, 0, 0, 1, 1, 2}, torch::kLong);
  const auto preds = torch::tensor({0, 1, 0, 1, 1, 0}, torch::kLong);
  EXPECT_TRUE(torch::equal(overlay_sample(labels, preds, 3, 1), torch::tensor({0, 1, 3, 5}, torch::kLong)));
  EXPECT_TRUE(torch::equal(overlay_sample(labels, preds, 3, 2), torch::tensor({0, 2, 1, 3, 4, 5}, torch::kLong)));

  EXPECT_EQ(saliency_model_names({"default", "runs/a/model.ckpt", "runs/b/model.ckpt", "x y.pt"}),
            (std::vector<std::string>{"default", "a-model", "b-model", "x_y"}));
  EXPECT_EQ(saliency_model_names({"m.ckpt", "m.ckpt"}), (std::vector<std::string>{"m", "m-2"}));
}

TEST(SaliencyPipeline, WritesACompleteOutputDirectory) {
  torch::manual_seed(0);
  auto a = tiny_resnet(4);
  auto b = tiny_resnet(4);
  const auto ds = tiny_dataset(12, 4);
  SaliencyConfig cfg;
  cfg.compare = saliency::ComparisonKind::kClassMean;
  cfg.overlay_per_class = 1;
  const auto run = run_saliency({{"a", a.get(), "a.ckpt"}, {"b", b.get(), "b.ckpt"}}, ds, cfg);
  test::TempDir dir;
  const auto out = dir / "sal";
  const auto indices = torch::arange(100, 112, torch::kLong);
  write_saliency_outputs(run, ds, cfg, out, false, indices, "tiny:test");
  for (const char* f : {"per_image.csv", "summary.md", "summary.json", "maps/a.npy", "maps/b.npy", "overlay.png"})
    EXPECT_TRUE(test::fs::exists(out / f)) << f;
  int entries = 0;
  for (const auto& e : test::fs::directory_iterator(dir.path())) {
    ++entries;
    EXPECT_EQ(e.path().filename(), "sal") << "no temporary directory may be left";
  }
  EXPECT_EQ(entries, 1);

  // maps/<model>.npy: float32 [N, H, W], the run's maps.
  const auto ma = core::read_npy(out / "maps" / "a.npy");
  EXPECT_EQ(ma.scalar_type(), torch::kFloat);
  EXPECT_TRUE(torch::equal(ma, run.models[0].maps));

  // summary.json: the comparisons' means and counts.
  const auto j = nlohmann::json::parse(core::read_file(out / "summary.json"));
  EXPECT_EQ(j["format"], "gradlens-saliency");
  EXPECT_EQ(j["n"], 12);
  EXPECT_EQ(j["method"], "gradcam");
  EXPECT_EQ(j["layer"], "layer4");
  EXPECT_EQ(j["dataset"], "tiny:test");
  EXPECT_EQ(j["indices"][0], 100);
  ASSERT_EQ(j["comparisons"].size(), 2u);
  const auto& cj = j["comparisons"][1];
  EXPECT_EQ(cj["model"], "b");
  const auto& col = run.comparisons[1].result.get("AUC-Judd");
  EXPECT_DOUBLE_EQ(cj["metrics"]["AUC-Judd"]["mean"].get<double>(), col.summary.mean);
  EXPECT_DOUBLE_EQ(cj["metrics"]["AUC-Judd"]["std"].get<double>(), col.summary.std);
  EXPECT_EQ(cj["constant_maps"], run.comparisons[1].result.num_map_constant);
  EXPECT_EQ(j["models"][0]["constant_maps"], run.models[0].num_constant);
  EXPECT_EQ(j["overlay"]["file"], "overlay.png");

  // per_image.csv: a header and one line per (image, comparison).
  const auto lines = saliency_test_lines(out / "per_image.csv");
  ASSERT_EQ(lines.size(), 1u + 2 * 12);
  EXPECT_EQ(lines[0].rfind("row,dataset_index,label,true_class,comparison,model,reference,pred", 0), 0u) << lines[0];
  EXPECT_NE(lines[0].find("CC,KLD,SIM,NSS,AUC-Judd,AUC-Borji"), std::string::npos);
  EXPECT_EQ(lines[1].rfind("0,100,0,c0,a,a,class-mean,", 0), 0u) << lines[1];
  // summary.md: a mean ± std table.
  const auto md = core::read_file(out / "summary.md");
  EXPECT_NE(md.find("| a | class-mean |"), std::string::npos) << md;
  EXPECT_NE(md.find("±"), std::string::npos);
  // overlay.png decodes; one row per sampled image.
  int w = 0, h = 0, c = 0;
  unsigned char* px = stbi_load((out / "overlay.png").c_str(), &w, &h, &c, 3);
  ASSERT_NE(px, nullptr);
  stbi_image_free(px);
  EXPECT_GT(w, 3 * 112);
  EXPECT_GT(h, 112);

  // An existing directory: refused without --overwrite, replaced with it.
  GRADLENS_EXPECT_THROWS_WITH(write_saliency_outputs(run, ds, cfg, out, false), "already exists");
  write_saliency_outputs(run, ds, cfg, out, true);
  EXPECT_EQ(nlohmann::json::parse(core::read_file(out / "summary.json"))["indices"], nullptr);
  test::fs::create_directories(dir / "other");
  GRADLENS_EXPECT_THROWS_WITH(write_saliency_outputs(run, ds, cfg, dir / "other", true),
                              "not a gradlens saliency directory");
}

}  // namespace
}  // namespace gradlens::pipeline
