// gradlens train --noisy-labels --record-dynamics --save-every-epoch, then
// label-errors and attribute on the record, end to end on a small
// Fashion-MNIST subset.
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <fstream>

#include "gradlens/analysis/label_noise.h"
#include "gradlens/core/fs.h"
#include "gradlens/core/npy.h"
#include "gradlens/core/numpy_random.h"
#include "gradlens/influence/tracin.h"
#include "gradlens/io/train_record.h"
#include "gradlens/models/checkpoint.h"
#include "gradlens/pipeline/attribute.h"
#include "gradlens/pipeline/data_source.h"
#include "gradlens/pipeline/label_errors.h"
#include "gradlens/pipeline/train.h"
#include "support/support.h"

namespace gradlens::pipeline {
namespace {

namespace fs = std::filesystem;
using test::TempDir;

class InfluenceTest : public ::testing::Test {
 protected:
  static DataConfig data() {
    DataConfig d;
    d.train_per_class = 12;
    d.test_per_class = 4;
    return d;
  }
  /// A width-4 ResNet18, `epochs` epochs on data() with 25% of the labels
  /// flipped (seed 5) and the dynamics recorded, written to dir_/out.
  static TrainConfig record_config(const std::string& out, int64_t epochs) {
    TrainConfig tc = default_train_config();
    tc.data = data();
    tc.width = 4;
    tc.train.epochs = epochs;
    tc.train.batch_size = 20;
    tc.train.time_budget_s = 0.0;
    tc.noisy_labels = 0.25;
    tc.record_dynamics = true;
    tc.out = (dir_->path() / out).string();
    return tc;
  }
  // The context of every training run here.
  static RunContext record_context() {
    RunContext c;
    c.seed = 5;
    return c;
  }
  static void SetUpTestSuite() {
    if (test::fashion_mnist_dir().empty()) return;
    dir_ = new TempDir();
    TrainConfig tc = record_config("run", 3);
    tc.save_every_epoch = true;
    summary_ = new TrainSummary(run_train(tc, record_context()));
  }
  static void TearDownTestSuite() {
    delete summary_;
    delete dir_;
    summary_ = nullptr;
    dir_ = nullptr;
  }
  void SetUp() override {
    if (!dir_) GTEST_SKIP() << "Fashion-MNIST (dataset-fashion-mnist) is not installed";
  }
  static InfluenceConfig input() {
    InfluenceConfig in;
    in.data = data();
    in.run = (dir_->path() / "run").string();
    in.batch_size = 32;
    return in;
  }
  static TempDir* dir_;
  static TrainSummary* summary_;
};
TempDir* InfluenceTest::dir_ = nullptr;
TrainSummary* InfluenceTest::summary_ = nullptr;

TEST_F(InfluenceTest, TrainWritesARecordOfFlipsDynamicsAndCheckpoints) {
  ASSERT_EQ(summary_->record, (dir_->path() / "run").string());
  const auto r = io::read_train_record(summary_->record);
  EXPECT_EQ(r.images, 120);
  EXPECT_EQ(r.flipped.sum().item<int64_t>(), 30);  // round(0.25 * 120)
  const auto clean = load_split(data(), 5, true).labels;
  EXPECT_TRUE(torch::equal(clean.ne(r.labels).to(torch::kUInt8), r.flipped));
  EXPECT_EQ(r.dynamics.epochs(), 3);
  EXPECT_EQ(r.dynamics.size(), 120);
  ASSERT_EQ(r.checkpoints.size(), 3u);
  for (size_t t = 0; t < 3; ++t) {
    EXPECT_EQ(r.checkpoints[t].epoch, static_cast<int64_t>(t + 1));
    EXPECT_DOUBLE_EQ(r.checkpoints[t].lr_mean, summary_->result.epochs[t].lr_mean);
    EXPECT_GT(r.checkpoints[t].lr_mean, 0.0);
  }
  // The last epoch checkpoint holds the final weights.
  auto last = models::load_checkpoint(r.checkpoints.back().path, torch::kCPU);
  auto final_model = models::load_checkpoint(summary_->checkpoint, torch::kCPU);
  const auto a = last.model->named_parameters(), b = final_model.model->named_parameters();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i].second, b[i].second)) << a[i].first;
  // Training accuracy of each epoch is the mean of the recorded correctness.
  for (int64_t e = 0; e < 3; ++e)
    EXPECT_NEAR(r.dynamics.correct[e].to(torch::kFloat64).mean().item<double>(), summary_->result.epochs[e].train_acc,
                1e-9);
}

TEST_F(InfluenceTest, LabelErrorsScoresEqualTheirDefinitionsAndAreWritten) {
  LabelErrorsConfig c;
  c.input = input();
  c.neighbors = 5;
  c.show = 12;
  const auto r = run_label_errors(c);
  EXPECT_FALSE(r.store_reused);
  ASSERT_EQ(r.scores.size(), label_error_score_names().size());
  const auto rec = io::read_train_record(c.input.run);
  // Self-influence: the hand-written sum over the checkpoints.
  auto ds = load_split(data(), 5, true);
  std::vector<influence::GradientFactors> g;
  auto expected = torch::zeros({120}, torch::kFloat64);
  for (const auto& ck : rec.checkpoints) {
    auto m = models::load_checkpoint(ck.path, torch::kCPU);
    const auto h = influence::dataset_gradient_factors(*m.model, ds, rec.labels, 50);
    expected += ck.lr_mean * influence::gradient_norm(h).pow(2);
  }
  EXPECT_TRUE(torch::allclose(r.score("self_influence"), expected, 1e-5, 1e-9));
  EXPECT_TRUE(torch::allclose(r.score("aum"), analysis::aum_score(rec.dynamics.margin)));
  EXPECT_TRUE(torch::allclose(r.score("el2n"), rec.dynamics.el2n[1].to(torch::kFloat64)));
  // Quality rows: sorted by found@10%, values in range and consistent with the scores.
  ASSERT_EQ(r.quality.size(), r.scores.size());
  for (size_t i = 1; i < r.quality.size(); ++i) EXPECT_GE(r.quality[i - 1].found_at_10, r.quality[i].found_at_10);
  for (const auto& q : r.quality) {
    EXPECT_DOUBLE_EQ(q.found_at_20, analysis::found_at_fraction(r.score(q.score), rec.flipped, 0.2)) << q.score;
    EXPECT_LE(q.found_at_10, q.found_at_20);
  }
  const auto out = dir_->path() / "label-errors";
  write_label_errors(r, c, out);
  for (const auto* f : {"scores.csv", "quality.csv", "found.csv", "found.png", "suspicious.png", "summary.json",
                        "summary.md", "report.html"})
    EXPECT_TRUE(fs::exists(out / f)) << f;
  std::ifstream in(out / "scores.csv");
  std::string header, first;
  std::getline(in, header);
  std::getline(in, first);
  EXPECT_EQ(header.rfind("rank,index,label,label_name,original_label,flipped,predicted,predicted_name,self_influence", 0), 0u)
      << header;
  const int64_t top = analysis::ranking_order(r.score("self_influence"))[0].item<int64_t>();
  EXPECT_EQ(first.rfind("1," + std::to_string(top) + ",", 0), 0u) << first;
  // A second run reuses the store and gives the same scores.
  const auto again = run_label_errors(c);
  EXPECT_TRUE(again.store_reused);
  EXPECT_TRUE(torch::equal(again.score("self_influence"), r.score("self_influence")));
  GRADLENS_EXPECT_THROWS_WITH(write_label_errors(r, c, out), "--overwrite");
}

TEST_F(InfluenceTest, AttributeListsTheTopOfTheTracInScoresOfEachQuery) {
  AttributeConfig c;
  c.input = input();
  c.queries = "0,5,9";
  c.tracin.top_k = 4;
  c.write_scores = true;
  const auto r = run_attribute(c);
  ASSERT_EQ(r.queries.size(0), 3);
  ASSERT_TRUE(r.tracin.scores.defined());
  // Hand-written TracIn of query 5 against every training image.
  const auto rec = io::read_train_record(c.input.run);
  auto train = load_split(data(), 5, true);
  auto test = load_split(data(), 5, false);
  auto expected = torch::zeros({120}, torch::kFloat64);
  for (const auto& ck : rec.checkpoints) {
    auto m = models::load_checkpoint(ck.path, torch::kCPU);
    const auto tr = influence::dataset_gradient_factors(*m.model, train, rec.labels, 50);
    const auto te = influence::dataset_gradient_factors(*m.model, test, test.labels, 50);
    expected += ck.lr_mean * influence::gradient_inner(te.rows(torch::tensor({5}, torch::kInt64)), tr)[0];
  }
  // Float32 sums in another order (batch shapes, LibTorch versions): relative
  // to the scores' scale, not element by element (some scores cancel to ~0).
  const double scale = expected.abs().max().item<double>();
  const double diff = (r.tracin.scores[1] - expected).abs().max().item<double>();
  EXPECT_LT(diff, 1e-5 * scale) << "max |difference| " << diff << " at score scale " << scale;
  EXPECT_EQ(r.tracin.proponents[1][0].item<int64_t>(), expected.argmax().item<int64_t>());
  EXPECT_EQ(r.tracin.opponents[1][0].item<int64_t>(), expected.argmin().item<int64_t>());
  const auto out = dir_->path() / "attribution";
  write_attribute(r, c, out);
  for (const auto* f : {"proponents.csv", "opponents.csv", "queries.csv", "scores.npy", "attribution.png",
                        "summary.json", "summary.md", "report.html"})
    EXPECT_TRUE(fs::exists(out / f)) << f;
  EXPECT_EQ(core::read_npy(out / "scores.npy").sizes(), (std::vector<int64_t>{3, 120}));
}

TEST_F(InfluenceTest, BadInputIsAClearErrorNamingTheFlag) {
  AttributeConfig c;
  c.input = input();
  c.queries = "0,40";
  GRADLENS_EXPECT_THROWS_WITH(run_attribute(c), "--queries: position 40 is outside the test split [0, 40)");
  c.queries = "3,x";
  GRADLENS_EXPECT_THROWS_WITH(run_attribute(c), "'x' is not a test position");
  c.queries = "1,1";
  GRADLENS_EXPECT_THROWS_WITH(run_attribute(c), "given twice");
  c.queries = "0";
  c.input.data.train_per_class = 11;
  GRADLENS_EXPECT_THROWS_WITH(run_attribute(c), "--data: the training split has 110 images");
  // Without data flags the record's own are used (and equal the ones given).
  c.input.data = DataConfig{};
  c.input.data_from_record = true;
  const auto from_record = run_attribute(c);
  c.input = input();
  const auto given = run_attribute(c);
  EXPECT_TRUE(torch::equal(from_record.tracin.proponents, given.tracin.proponents));
  EXPECT_TRUE(torch::equal(from_record.query_images, given.query_images));
  EXPECT_EQ(data_flags_from_json(io::read_train_record(c.input.run).data_flags, "x").train_per_class, 12);
  c.input = input();
  c.input.run = dir_->path().string();
  GRADLENS_EXPECT_THROWS_WITH(run_attribute(c), "has no record.json");
  // A store from other checkpoints.
  c.input = input();
  c.input.store = (dir_->path() / "foreign-store").string();
  io::StoreKey key;
  key.images = 120;
  key.labels_crc32 = "00000000";
  key.checkpoint_crc32 = {"1", "2", "3"};
  std::vector<influence::GradientFactors> f(3);
  for (auto& g : f) g.delta = torch::zeros({120, 10}), g.features = torch::zeros({120, 4});
  io::write_influence_store(c.input.store, key, f);
  GRADLENS_EXPECT_THROWS_WITH(run_attribute(c), "was computed from other checkpoints");
  LabelErrorsConfig l;
  l.input = input();
  l.scores = {"aum", "nonsense"};
  GRADLENS_EXPECT_THROWS_WITH(run_label_errors(l), "--scores: unknown score 'nonsense'");
  l.scores = {"grand"};
  l.el2n_epoch = 4;
  GRADLENS_EXPECT_THROWS_WITH(run_label_errors(l), "--el2n-epoch 4");
}

TEST_F(InfluenceTest, ProjectedLayersAddTheirGradientsAndKeyTheStore) {
  LabelErrorsConfig c;
  c.input = input();
  c.input.store = (dir_->path() / "projected-store").string();
  c.input.projection.layers = {"layer4.1.conv2"};
  c.input.projection.dim = 64;
  c.scores = {"self_influence"};
  c.show = 0;
  const auto with = run_label_errors(c);
  EXPECT_FALSE(with.store_reused);
  auto head = c;
  head.input.store = "";
  head.input.projection.layers.clear();
  const auto without = run_label_errors(head);
  // A projected squared norm is >= 0, and the layer's gradients are not zero.
  const auto diff = with.score("self_influence") - without.score("self_influence");
  EXPECT_GE(diff.min().item<double>(), -1e-6);
  EXPECT_GT(diff.max().item<double>(), 0.0);
  c.input.projection.seed = 9;
  GRADLENS_EXPECT_THROWS_WITH(run_label_errors(c), "holds gradients projected as");
}

TEST_F(InfluenceTest, AumThresholdSamplesGetAnExtraClassAndSetTheFlag) {
  TrainConfig tc = record_config("run-aum", 2);
  tc.aum_threshold_samples = true;
  run_train(tc, record_context());
  const auto rec = io::read_train_record(tc.out);
  ASSERT_TRUE(rec.threshold.defined());
  EXPECT_EQ(rec.threshold.sum().item<int64_t>(), 10);  // floor(120 / 11)
  EXPECT_EQ(rec.classes, 11);
  EXPECT_TRUE(torch::equal(rec.labels.eq(10), rec.threshold.to(torch::kBool)));
  LabelErrorsConfig c;
  c.input = input();
  c.input.run = tc.out;
  c.show = 4;
  const auto r = run_label_errors(c);
  EXPECT_EQ(r.ranked.size(0), 110);
  EXPECT_EQ(r.record.threshold.index_select(0, r.ranked).sum().item<int64_t>(), 0);
  const double alpha = analysis::aum_threshold(r.score("aum"), rec.threshold);
  EXPECT_DOUBLE_EQ(r.aum_threshold, alpha);
  const auto expected = r.score("aum").ge(-alpha).logical_and(rec.threshold.eq(0));
  EXPECT_TRUE(torch::equal(r.aum_flagged, expected));
  const auto f = rec.flipped.to(torch::kBool).logical_and(rec.threshold.eq(0));
  EXPECT_DOUBLE_EQ(r.aum_flag_recall,
                   expected.logical_and(f).sum().item<double>() / f.sum().item<double>());
  const auto out = dir_->path() / "label-errors-aum";
  write_label_errors(r, c, out);
  std::ifstream in(out / "scores.csv");
  std::string header;
  std::getline(in, header);
  EXPECT_NE(header.find(",aum_flagged,"), std::string::npos) << header;
  int rows = 0;
  for (std::string line; std::getline(in, line);) ++rows;
  EXPECT_EQ(rows, 110);
  tc.record_dynamics = false;
  GRADLENS_EXPECT_THROWS_WITH(run_train(tc, record_context()), "--aum-threshold-samples needs --record-dynamics");
}

// The data-randomisation test's model: the training labels permuted by
// numpy's RandomState(seed), so every class keeps its count.
TEST_F(InfluenceTest, PermuteLabelsTrainsOnTheLabelsPermutedBySeed) {
  TrainConfig tc = record_config("run-permuted", 1);
  tc.noisy_labels = 0;
  tc.permute_labels = true;
  const auto s = run_train(tc, record_context());
  const auto rec = io::read_train_record(tc.out);
  const auto original = load_splits(tc.data, record_context().seed).train.labels;
  const auto perm = core::NumpyRandomState(5).permutation(original.size(0));
  EXPECT_TRUE(torch::equal(rec.labels, original.index_select(0, torch::tensor(perm, torch::kLong))));
  EXPECT_TRUE(torch::equal(torch::bincount(rec.labels), torch::bincount(original)));
  EXPECT_GT(rec.labels.ne(original).sum().item<int64_t>(), 60);  // of 120 in 10 classes
  EXPECT_TRUE(nlohmann::json::parse(core::read_file(s.summary_json_path))["config"]["permute_labels"].get<bool>());
  tc.noisy_labels = 0.1;
  GRADLENS_EXPECT_THROWS_WITH(run_train(tc, record_context()), "--permute-labels and --noisy-labels: give one");
  tc.noisy_labels = 0;
  tc.record_dynamics = false;
  tc.out.clear();
  GRADLENS_EXPECT_THROWS_WITH(run_train(tc, record_context()), "--permute-labels trains a model on random labels: give --out DIR");
}

TEST_F(InfluenceTest, TrainRefusesRecordingWithoutOutOrWithResume) {
  TrainConfig tc = default_train_config();
  tc.data = data();
  tc.record_dynamics = true;
  GRADLENS_EXPECT_THROWS_WITH(run_train(tc, record_context()), "give --out DIR");
  tc.out = (dir_->path() / "other").string();
  tc.train.resume = true;
  GRADLENS_EXPECT_THROWS_WITH(run_train(tc, record_context()), "--resume cannot continue a training record");
}

}  // namespace
}  // namespace gradlens::pipeline
