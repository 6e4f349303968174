#include "gradlens/train/trainer.h"

#include <torch/torch.h>

#include <cmath>

#include "gradlens/core/fs.h"
#include "gradlens/models/checkpoint.h"

#include <limits>
#include "support/support.h"

namespace gradlens::train {
namespace {

// Four classes of 12x12 one-channel images: a bright square in one quadrant.
data::Dataset quadrant_data(int64_t per_class, uint64_t seed) {
  torch::manual_seed(seed);
  const int64_t n = 4 * per_class;
  auto images = (torch::rand({n, 1, 12, 12}) * 60).to(torch::kUInt8);
  auto labels = torch::arange(n, torch::kInt64) % 4;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t q = labels[i].item<int64_t>();
    images[i].slice(1, (q / 2) * 6, (q / 2) * 6 + 6).slice(2, (q % 2) * 6, (q % 2) * 6 + 6) += 150;
  }
  data::Dataset ds;
  ds.images = images;
  ds.labels = labels;
  ds.class_names = {"tl", "tr", "bl", "br"};
  ds.mean = {0.3};
  ds.std = {0.3};
  ds.name = "quadrants";
  return ds;
}

models::ResNetConfig tiny() {
  models::ResNetConfig c;
  c.stem = models::Stem::kSmall;
  c.width = 4;
  c.in_channels = 1;
  c.num_classes = 4;
  return c;
}

TrainOptions tiny_opts() {
  TrainOptions o;
  o.epochs = 2;
  o.batch_size = 16;
  o.schedule.lr = 0.05;
  o.optimizer.lr = 0.05;
  o.augment_opts.padding = 1;
  o.seed = 3;
  return o;
}

TEST(Trainer, LearnsAnEasyTaskAndEvaluates) {
  auto train = quadrant_data(32, 1);
  auto test = quadrant_data(16, 2);
  torch::manual_seed(0);
  models::ResNet m(tiny());
  auto o = tiny_opts();
  o.epochs = 4;
  o.augment = false;
  const auto r = train_model(m, train, &test, o);
  ASSERT_EQ(r.epochs.size(), 4u);
  EXPECT_GT(r.final_test_acc(), 0.9);
  EXPECT_LT(r.epochs.back().train_loss, r.epochs.front().train_loss);
  const auto ev = evaluate(m, test);
  EXPECT_NEAR(ev.accuracy, r.final_test_acc(), 1e-12);
  EXPECT_EQ(ev.predictions.size(0), test.size());
}

// Regression: Debian's LibTorch 1.13 crashed (double free) in the
// channels-last backward of a 3-channel small-stem ResNet at 64 px, the
// README's make-shapes example. The trainer keeps such data contiguous.
TEST(Trainer, ThreeChannel64PixelImagesTrainWithoutCrashing) {
  torch::manual_seed(5);
  data::Dataset ds;
  ds.images = (torch::rand({32, 3, 64, 64}) * 255).to(torch::kUInt8);
  ds.labels = torch::arange(32, torch::kInt64) % 4;
  ds.class_names = {"a", "b", "c", "d"};
  ds.mean = {0.5, 0.5, 0.5};
  ds.std = {0.3, 0.3, 0.3};
  ds.name = "rgb64";
  auto cfg = tiny();
  cfg.in_channels = 3;
  cfg.width = 8;
  models::ResNet m(cfg);
  auto o = tiny_opts();
  o.epochs = 3;
  const auto r = train_model(m, ds, nullptr, o);
  ASSERT_EQ(r.epochs.size(), 3u);
  EXPECT_TRUE(std::isfinite(r.epochs.back().train_loss));
}

TEST(Trainer, SameSeedSameLossSequence) {
  auto train = quadrant_data(16, 1);
  std::vector<double> a, b;
  for (auto* out : {&a, &b}) {
    torch::manual_seed(0);
    models::ResNet m(tiny());
    const auto r = train_model(m, train, nullptr, tiny_opts());
    for (const auto& e : r.epochs) out->push_back(e.train_loss);
  }
  ASSERT_EQ(a.size(), 2u);
  EXPECT_EQ(a, b);
}

TEST(Trainer, ResumeContinuesTheExactRun) {
  test::TempDir dir;
  auto train = quadrant_data(16, 1);
  auto x = data::to_float(train, train.images.slice(0, 0, 8));
  // Straight: 2 epochs.
  torch::manual_seed(0);
  models::ResNet straight(tiny());
  auto o = tiny_opts();
  o.checkpoint_path = (dir / "a.ckpt").string();
  const auto r1 = train_model(straight, train, nullptr, o);
  // Interrupted after epoch 1 (a 1-epoch run with the same 2-epoch schedule
  // cannot be expressed directly, so stop via a progress callback).
  torch::manual_seed(0);
  models::ResNet first(tiny());
  auto o2 = tiny_opts();
  o2.checkpoint_path = (dir / "b.ckpt").string();
  struct Stop {};
  try {
    train_model(first, train, nullptr, o2, [](const core::ProgressEvent& ev) {
      if (ev.stage_end && ev.stage.rfind("epoch 1/", 0) == 0) throw Stop{};
    });
    FAIL() << "expected the run to be interrupted";
  } catch (const Stop&) {
  }
  torch::manual_seed(123);  // resuming must not depend on the global seed
  models::ResNet resumed(tiny());
  o2.resume = true;
  const auto r2 = train_model(resumed, train, nullptr, o2);
  ASSERT_EQ(r2.epochs.size(), 2u);
  EXPECT_EQ(r2.epochs[0].train_loss, r1.epochs[0].train_loss);
  EXPECT_EQ(r2.epochs[1].train_loss, r1.epochs[1].train_loss);
  straight.train(false);
  resumed.train(false);
  EXPECT_EQ(test::max_abs_diff(straight.forward(x), resumed.forward(x)), 0.0);
}

TEST(Trainer, ResumeWithAnotherModelIsRejected) {
  test::TempDir dir;
  auto train = quadrant_data(8, 1);
  models::ResNet m(tiny());
  auto o = tiny_opts();
  o.epochs = 1;
  o.checkpoint_path = (dir / "c.ckpt").string();
  train_model(m, train, nullptr, o);
  auto cfg = tiny();
  cfg.width = 8;
  models::ResNet other(cfg);
  o.resume = true;
  GRADLENS_EXPECT_THROWS_WITH(train_model(other, train, nullptr, o), "another model");
}

TEST(Trainer, DivergenceStopsWithAClearErrorAndKeepsTheLastCheckpoint) {
  test::TempDir dir;
  auto train = quadrant_data(8, 1);
  models::ResNet m(tiny());
  auto o = tiny_opts();
  o.epochs = 1;
  o.checkpoint_path = (dir / "d.ckpt").string();
  train_model(m, train, nullptr, o);
  const auto before = core::file_crc32(o.checkpoint_path);
  o.resume = true;
  o.epochs = 2;
  o.extra_loss = [](models::Classifier&, const torch::Tensor& x, const torch::Tensor&,
                    const torch::Tensor&) {
    return std::vector<std::pair<std::string, torch::Tensor>>{
        {"L_bad", x.sum() * std::numeric_limits<double>::quiet_NaN()}};
  };
  GRADLENS_EXPECT_THROWS_WITH(train_model(m, train, nullptr, o), "L_bad");
  EXPECT_EQ(core::file_crc32(o.checkpoint_path), before);
}

TEST(Trainer, ChannelMismatchIsAClearError) {
  auto train = quadrant_data(4, 1);
  auto cfg = tiny();
  cfg.in_channels = 3;
  models::ResNet m(cfg);
  GRADLENS_EXPECT_THROWS_WITH(train_model(m, train, nullptr, tiny_opts()), "--channels 1");
}

}  // namespace
}  // namespace gradlens::train
