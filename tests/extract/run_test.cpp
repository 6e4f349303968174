// run_extract (the run directory) and the validity audit.
#include "gradlens/extract/run.h"

#include <torch/torch.h>

#include <cmath>
#include <limits>
#include <regex>

#include <nlohmann/json.hpp>

#include "extract/extract_test_util.h"
#include "gradlens/core/fs.h"
#include "gradlens/core/npy.h"
#include "gradlens/core/runtime.h"
#include "gradlens/data/dataset.h"
#include "support/support.h"

namespace gradlens::extract {
namespace {

using testing::rel_diff;
namespace fs = std::filesystem;

class RunExtractTest : public test::SeededTest {
 protected:
  void SetUp() override {
    SeededTest::SetUp();
    model = testing::tiny_resnet(kClasses);
    ds = testing::tiny_dataset(23, kClasses);
  }
  static constexpr int64_t kClasses = 4;
  std::unique_ptr<models::ResNet> model;
  data::Dataset ds;
  test::TempDir dir;
};

TEST_F(RunExtractTest, KeepsTheOutputsInMemoryEqualToTheFilesAndTheManifestRoundTrips) {
  ExtractConfig cfg;
  cfg.out = dir / "run";
  cfg.batch_size = 7;
  cfg.options.gradcam_targets = {"pred", "loss"};
  cfg.keep_in_memory = true;
  cfg.model_spec = "resnet18";
  const auto res = run_extract(*model, ds, cfg);
  const ExtractRun& run = res.run;
  EXPECT_EQ(run.dir, fs::absolute(cfg.out).lexically_normal());
  EXPECT_EQ(run.size(), 23);
  ASSERT_EQ(run.values.size(), res.outputs.size());
  for (const auto& o : res.outputs) {
    const auto file = core::read_npy(cfg.out / (o.name + ".npy"));
    EXPECT_TRUE(torch::equal(run.values.at(o.name), file)) << o.name;  // bit for bit
    EXPECT_TRUE(torch::equal(run.load(o.name), file)) << o.name;
  }
  EXPECT_TRUE(torch::equal(run.labels, core::read_npy(cfg.out / "labels.npy")));
  EXPECT_TRUE(torch::equal(run.preds, core::read_npy(cfg.out / "preds.npy")));
  GRADLENS_EXPECT_THROWS_WITH(run.load("nope"), "no output 'nope'");

  // The manifest file is the struct's JSON, and reads back to the same JSON.
  const auto j = nlohmann::json::parse(core::read_file(cfg.out / "manifest.json"));
  EXPECT_EQ(j, nlohmann::json(run.manifest));
  EXPECT_EQ(nlohmann::json(j.get<RunManifest>()), j);
  EXPECT_EQ(run.manifest.n, 23);
  EXPECT_EQ(run.manifest.layer, "layer4");
  EXPECT_EQ(run.manifest.map_size.size(), 2u);
  ASSERT_NE(run.manifest.find("gradcam-weights.loss"), nullptr);
  EXPECT_TRUE(run.manifest.find("gradcam-weights.loss")->uses_true_labels);
  EXPECT_EQ(run.manifest.audits.size(), res.outputs.size());
  EXPECT_EQ(run.manifest.float_entries().size(), res.outputs.size());

  // A run read from its directory loads the same values from the files.
  ExtractRun stored;
  stored.dir = run.dir;
  stored.manifest = run.manifest;
  stored.labels = run.labels;
  EXPECT_TRUE(torch::equal(stored.load("probs"), run.values.at("probs")));
  stored.check_outputs({"probs", "gradcam-weights.loss"});
  core::write_npy(cfg.out / "probs.npy", torch::zeros({22, 4}));
  GRADLENS_EXPECT_THROWS_WITH(stored.check_outputs({"probs"}), "22 rows but ");
}

TEST(RunManifestJson, OlderManifestsReadWithDefaultsAndOtherFilesAreRefused) {
  const auto j = nlohmann::json::parse(R"({"format": "gradlens-extract", "n": 3,
      "representations": [{"name": "features"}, {"file": "nameless.npy"}, {"name": "labels", "dtype": "int64"}],
      "audit": {"features": {"rank": 2, "identity_rel_diff": null}}})");
  const auto m = j.get<RunManifest>();
  EXPECT_EQ(m.n, 3);
  ASSERT_EQ(m.representations.size(), 2u);  // the nameless entry is skipped
  EXPECT_EQ(m.representations[0].file, "features.npy");
  EXPECT_EQ(m.float_entries().size(), 1u);  // int64 labels are not a representation
  EXPECT_EQ(m.labels_file, "labels.npy");
  EXPECT_FALSE(m.checkpoint_crc32.has_value());
  EXPECT_EQ(m.audits.at("features").rank, 2);
  EXPECT_TRUE(std::isnan(m.audits.at("features").identity_rel_diff));
  GRADLENS_EXPECT_THROWS_WITH(nlohmann::json::parse(R"({"format": "other"})").get<RunManifest>(),
                              "not a gradlens-extract manifest");
}

TEST_F(RunExtractTest, StreamsEveryRepresentationToAFinishedRunDirectory) {
  ExtractConfig cfg;
  cfg.out = dir / "run";
  cfg.batch_size = 5;  // 23 = 4 full batches + 3
  cfg.options.gradcam_targets = {"pred", "true", "loss"};
  cfg.options.grad_labels = {"pred", "true"};
  cfg.model_spec = "resnet18";
  cfg.indices = torch::arange(100, 123, torch::kLong);
  std::vector<int64_t> progress;
  auto res = run_extract(*model, ds, cfg, [&](const core::ProgressEvent& e) {
    if (e.stage == "extract") progress.push_back(e.done);
  });
  EXPECT_EQ(progress, (std::vector<int64_t>{5, 10, 15, 20, 23}));
  EXPECT_EQ(res.batches, 5);
  EXPECT_EQ(res.backward_passes_per_batch, 4);
  ASSERT_EQ(res.outputs.size(), 11u);

  // Same values as one big batch.
  const auto x = data::to_float(ds, ds.images);
  const auto ref = extract_batch(*model, x, ds.labels, cfg.options);
  for (size_t j = 0; j < res.outputs.size(); ++j) {
    const auto& name = res.outputs[j].name;
    const auto got = core::read_npy(cfg.out / (name + ".npy"));
    EXPECT_EQ(got.scalar_type(), torch::kFloat) << name;
    EXPECT_EQ(got.size(0), 23) << name;
    EXPECT_EQ(res.shapes[j], (std::vector<int64_t>{23, got.size(1)}));
    EXPECT_LT(rel_diff(got, ref.get(name)), 1e-5) << name;
  }
  EXPECT_TRUE(torch::equal(core::read_npy(cfg.out / "labels.npy"), ds.labels));
  EXPECT_TRUE(torch::equal(core::read_npy(cfg.out / "preds.npy"), ref.preds));

  const auto m = nlohmann::json::parse(core::read_file(cfg.out / "manifest.json"));
  EXPECT_EQ(m["n"], 23);
  EXPECT_EQ(m["layer"], "layer4");
  EXPECT_EQ(m["dataset"], "tiny");
  EXPECT_EQ(m["indices"][0], 100);
  EXPECT_EQ(m["passes_per_batch"]["backward"], 4);
  EXPECT_EQ(m["representations"].size(), 11u);
  EXPECT_EQ(m["representations"][1]["file"], "gradcam-weights.true.npy");
  EXPECT_EQ(m["representations"][1]["shape"][1], 32);  // layer4 channels at width 4
  EXPECT_TRUE(m["checkpoint_crc32"].is_null());
  // The LibTorch it ran on, as "major.minor.patch" (1.13.0 or 2.x).
  EXPECT_EQ(m["libtorch_version"], core::torch_version());
  EXPECT_TRUE(std::regex_match(m["libtorch_version"].get<std::string>(), std::regex(R"([12]\.[0-9]+\.[0-9]+)")));
  EXPECT_TRUE(m["seconds"].contains("backward.ce-true"));
  // Audit: Grad-CAM at layer4 is the head identity for every target.
  for (const char* name : {"gradcam-weights", "gradcam-weights.true", "gradcam-weights.loss"}) {
    EXPECT_TRUE(m["audit"][name]["equals_head_identity"]) << name;
    EXPECT_LT(m["audit"][name]["identity_rel_diff"].get<double>(), 1e-5) << name;
    EXPECT_TRUE(m["audit"][name]["degenerate"]) << name;
  }
  EXPECT_LE(m["audit"]["gradcam-weights.true"]["distinct_rows"].get<int64_t>(), kClasses);
  EXPECT_TRUE(m["audit"]["gradcam-weights.true"]["label_informed"]);
  EXPECT_FALSE(m["audit"]["gradcam-weights"]["label_informed"]);
  EXPECT_TRUE(m["audit"]["input-grad.true"]["label_informed"]);
  EXPECT_FALSE(m["audit"]["input-grad"]["degenerate"]);
  EXPECT_EQ(m["audit"]["input-grad"]["distinct_rows"], 23);
  EXPECT_LE(m["audit"]["logits"]["rank"].get<int64_t>(), kClasses);
  EXPECT_FALSE(m["audit"]["features"].contains("nonexistent"));
  EXPECT_FALSE(res.warnings.empty());
  // Nothing else is left next to the run.
  int entries = 0;
  for (const auto& e : fs::directory_iterator(dir.path())) {
    (void)e;
    ++entries;
  }
  EXPECT_EQ(entries, 1);
}

TEST_F(RunExtractTest, RecordsTheCheckpointCrcOfAModelFile) {
  const auto ckpt = dir / "model.bin";
  core::write_text_atomically(ckpt, "123456789");
  ExtractConfig cfg;
  cfg.out = dir / "run";
  cfg.options.representations = {"features"};
  cfg.model_spec = ckpt.string();
  cfg.audit = false;
  run_extract(*model, ds, cfg);
  const auto m = nlohmann::json::parse(core::read_file(cfg.out / "manifest.json"));
  EXPECT_EQ(m["checkpoint_crc32"], "cbf43926");  // CRC-32 check value
  EXPECT_TRUE(m["audit"].empty());
}

TEST_F(RunExtractTest, InterruptedRunLeavesNoRunDirectory) {
  ExtractConfig cfg;
  cfg.out = dir / "run";
  cfg.batch_size = 4;
  EXPECT_THROW(run_extract(*model, ds, cfg,
                           [](const core::ProgressEvent& e) {
                             if (e.stage == "extract" && e.done >= 8) throw std::runtime_error("stop");
                           }),
               std::runtime_error);
  EXPECT_TRUE(fs::is_empty(dir.path()));
}

TEST_F(RunExtractTest, BadInputErrors) {
  ExtractConfig cfg;
  cfg.out = dir / "run";
  cfg.options.representations = {"features"};
  // NaN cannot come from uint8 images, but from a bad normalisation: std 0 is
  // rejected by to_float; an Inf mean gives NaN everywhere.
  auto bad = ds;
  bad.mean = {std::numeric_limits<double>::infinity()};
  EXPECT_THROW(run_extract(*model, bad, cfg), c10::Error);
  EXPECT_FALSE(fs::exists(cfg.out));
  // Labels count differs from N.
  auto short_labels = ds;
  short_labels.labels = ds.labels.slice(0, 0, 5);
  GRADLENS_EXPECT_THROWS_WITH(run_extract(*model, short_labels, cfg), "5 labels for 23 images");
  // Unknown representation and layer.
  cfg.options.representations = {"gradients"};
  GRADLENS_EXPECT_THROWS_WITH(run_extract(*model, ds, cfg), "unknown value 'gradients'");
  cfg.options.representations = {"activations"};
  cfg.options.layer = "fc";
  GRADLENS_EXPECT_THROWS_WITH(run_extract(*model, ds, cfg), "unknown layer 'fc'");
  EXPECT_TRUE(fs::is_empty(dir.path()));
  cfg.options.layer = "";
  // Unwritable output directory.
  cfg.out = "/proc/gradlens-nope/run";
  GRADLENS_EXPECT_THROWS_WITH(run_extract(*model, ds, cfg), "--out");
  // An existing directory is refused unless it is a previous run and --overwrite.
  cfg.out = dir / "other";
  fs::create_directories(cfg.out);
  GRADLENS_EXPECT_THROWS_WITH(run_extract(*model, ds, cfg), "already exists");
  cfg.overwrite = true;
  GRADLENS_EXPECT_THROWS_WITH(run_extract(*model, ds, cfg), "not a gradlens run directory");
  cfg.out = dir / "run";
  cfg.overwrite = false;
  run_extract(*model, ds, cfg);
  cfg.overwrite = true;
  cfg.options.pool = extract::ActivationPool::kAvg;
  auto res = run_extract(*model, ds, cfg);
  EXPECT_EQ(res.shapes[0][1], 32);
  EXPECT_EQ(core::read_npy(cfg.out / "activations.npy").size(1), 32);
}

// ---------------------------------------------------------------------------
// Audit

TEST(Audit, CountsDistinctRowsRankAndZeroRowsExactly) {
  // Rows: a, b, a, 2a, 0, b + 1e-7 (distinct from b by one bit pattern).
  auto a = torch::tensor({1.0f, 2.0f, 3.0f});
  auto b = torch::tensor({0.0f, 1.0f, -1.0f});
  auto x = torch::stack({a, b, a, 2 * a, torch::zeros({3}), b + torch::tensor({0.0f, 0.0f, 1e-7f})});
  auto r = audit_representation(x, torch::Tensor(), 0, {"m", false, {}});
  EXPECT_EQ(r.rows, 6);
  EXPECT_EQ(r.distinct_rows, 5);
  EXPECT_EQ(r.zero_rows, 1);
  EXPECT_EQ(r.rank, 2);  // the 6e-8 perturbation is below the tolerance 6 * s_max * eps
  EXPECT_FALSE(r.identity_checked);
  EXPECT_TRUE(std::isnan(r.ncm_accuracy));
}

TEST(Audit, RankFollowsNumpyMatrixRankTolerance) {
  torch::manual_seed(3);
  auto u = torch::randn({40, 3}, torch::kDouble);
  auto v = torch::randn({3, 10}, torch::kDouble);
  auto x = torch::matmul(u, v).to(torch::kFloat);  // rank 3 up to float rounding
  auto r = audit_representation(x, torch::Tensor(), 0, {"low", false, {}});
  EXPECT_EQ(r.rank, 3);
  EXPECT_NEAR(r.rank_tol, r.top_singular_value * 40 * 1.1920928955078125e-07, 1e-12);
  // Wide matrices go through the Gram route and agree.
  auto wide = torch::matmul(torch::randn({6, 2}), torch::randn({2, 50}));
  EXPECT_EQ(audit_representation(wide, torch::Tensor(), 0, {"wide", false, {}}).rank, 2);
  EXPECT_EQ(audit_representation(torch::randn({5, 30}), torch::Tensor(), 0, {"full", false, {}}).rank, 5);
  EXPECT_EQ(audit_representation(torch::zeros({4, 3}), torch::Tensor(), 0, {"z", false, {}}).rank, 0);
}

TEST(Audit, NearestClassMeanAccuracyByHand) {
  // Row-normalised: class 0 points along +x, class 1 along +y, except the
  // last class-1 row, which points along +x and is misclassified.
  auto x = torch::tensor({{2.0f, 0.0f}, {5.0f, 0.1f}, {0.0f, 3.0f}, {0.1f, 1.0f}, {4.0f, 0.0f}});
  auto y = torch::tensor({0, 0, 1, 1, 1}, torch::kLong);
  auto r = audit_representation(x, y, 2, {"ncm", true, {}});
  EXPECT_DOUBLE_EQ(r.ncm_accuracy, 0.8);
  EXPECT_DOUBLE_EQ(r.majority_accuracy, 0.6);
  EXPECT_TRUE(r.label_informed);
  EXPECT_FALSE(r.degenerate);
  ASSERT_FALSE(r.warnings.empty());
  EXPECT_NE(r.warnings[0].find("ncm: label-informed"), std::string::npos);
  nlohmann::json j = r;
  EXPECT_EQ(j["distinct_rows"], 5);
  EXPECT_TRUE(j["identity_max_abs_diff"].is_null());
  EXPECT_DOUBLE_EQ(j["ncm_accuracy"].get<double>(), 0.8);
}

TEST(Audit, NearestClassMeanAccuracyEqualsNormalisingEveryRow) {
  // The audit never forms the normalised rows; here they are formed, with
  // zero rows and a class without rows, and each row goes to its nearest
  // class mean by an explicit loop.
  torch::manual_seed(5);
  const int64_t n = 300, d = 40, k = 6;  // no row of class 5
  const auto y = torch::randint(0, 5, {n}, torch::kLong);
  auto xd = torch::randn({k, d}, torch::kDouble).index_select(0, y) + 1.5 * torch::randn({n, d}, torch::kDouble);
  xd.index_put_({torch::arange(0, n, 37)}, 0.0);
  const auto x = xd.to(torch::kFloat);
  const auto xr = x.to(torch::kDouble);
  const auto nr = xr.norm(2, 1, true);
  const auto xn = torch::where(nr > 0, xr / nr, torch::zeros_like(xr));
  std::vector<torch::Tensor> means;
  for (int64_t c = 0; c < 5; ++c) means.push_back(xn.index({y == c}).mean(0));
  int64_t correct = 0;
  for (int64_t i = 0; i < n; ++i) {
    int64_t best = 0;
    double best_d = std::numeric_limits<double>::infinity();
    for (int64_t c = 0; c < 5; ++c) {
      const double dist = (xn[i] - means[c]).pow(2).sum().item<double>();
      if (dist < best_d) best_d = dist, best = c;
    }
    correct += best == y[i].item<int64_t>();
  }
  const auto r = audit_representation(x, y, k, {"blobs", false, {}});
  EXPECT_DOUBLE_EQ(r.ncm_accuracy, static_cast<double>(correct) / n);
  EXPECT_GT(r.ncm_accuracy, 0.5);
  EXPECT_LT(r.ncm_accuracy, 1.0);
  EXPECT_EQ(r.zero_rows, 9);
}

TEST(Audit, HeadIdentityAndErrors) {
  auto w = torch::tensor({{1.0f, 2.0f}, {-1.0f, 0.5f}, {0.0f, 4.0f}});
  auto c = torch::tensor({2, 0, 2, 1}, torch::kLong);
  auto e = gradcam_head_identity(w, torch::one_hot(c, 3).to(torch::kDouble), 4);
  EXPECT_DOUBLE_EQ(e[0][1].item<double>(), 1.0);
  EXPECT_DOUBLE_EQ(e[3][0].item<double>(), -0.25);
  auto x = e.to(torch::kFloat);
  auto r = audit_representation(x, c, 3, {"g", false, e});
  EXPECT_TRUE(r.equals_head_identity);
  EXPECT_EQ(r.identity_max_abs_diff, 0.0);
  EXPECT_EQ(r.distinct_rows, 3);
  EXPECT_TRUE(r.degenerate);
  x[1][0] += 0.01f;
  EXPECT_FALSE(audit_representation(x, c, 3, {"g", false, e}).equals_head_identity);
  auto nan = x.clone();
  nan[2][1] = std::numeric_limits<float>::quiet_NaN();
  GRADLENS_EXPECT_THROWS_WITH(audit_representation(nan, c, 3, {"rep", false, {}}),
                              "representation 'rep' holds NaN or Inf (first in row 2)");
  GRADLENS_EXPECT_THROWS_WITH(audit_representation(x, c.slice(0, 0, 2), 3, {"rep", false, {}}),
                              "has 4 rows but 2 labels");
}

}  // namespace
}  // namespace gradlens::extract
