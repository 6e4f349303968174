// The trainer's data-parallel hooks, without any communication: which rows
// a rank trains on, the gradient weights and statistics it hands to the
// hooks, when buffers are synchronised, the batch-size checks, and that a
// non-writing rank leaves no checkpoint. (2-rank runs: tests/dist.)
#include "gradlens/train/trainer.h"

#include <torch/torch.h>

#include "support/support.h"

namespace gradlens::train {
namespace {

// n one-channel 8x8 images of 2 classes.
data::Dataset dph_data(int64_t n) {
  torch::manual_seed(7);
  data::Dataset ds;
  ds.images = (torch::rand({n, 1, 8, 8}) * 255).to(torch::kUInt8);
  ds.labels = torch::arange(n, torch::kInt64) % 2;
  ds.class_names = {"a", "b"};
  ds.mean = {0.5};
  ds.std = {0.3};
  ds.name = "dph";
  return ds;
}

models::ResNetConfig dph_model() {
  models::ResNetConfig c;
  c.stem = models::Stem::kSmall;
  c.width = 4;
  c.in_channels = 1;
  c.num_classes = 2;
  return c;
}

struct DphLog {
  std::vector<double> weights, rows;
  int broadcasts = 0;
  size_t buffers = 0, grads = 0;
};

TrainOptions dph_options(int rank, int world, DphLog& log) {
  TrainOptions o;
  o.epochs = 2;
  o.batch_size = 15;
  o.augment = false;
  o.data_parallel.rank = rank;
  o.data_parallel.world_size = world;
  o.data_parallel.sync_gradients = [&log](std::vector<torch::Tensor>& g, double w) {
    log.weights.push_back(w);
    log.grads = g.size();
  };
  o.data_parallel.sum_stats = [&log](torch::Tensor& s) {
    if (s.size(0) >= 3) log.rows.push_back(s[2].item<double>());
  };
  o.data_parallel.broadcast_buffers = [&log](std::vector<torch::Tensor>& b) {
    ++log.broadcasts;
    log.buffers = b.size();
  };
  return o;
}

TEST(TrainerDataParallel, EachRankTrainsOnItsBlockWithLocalOverGlobalWeights) {
  const auto ds = dph_data(40);  // batches of 15, 15, 10 per epoch
  for (int rank = 0; rank < 2; ++rank) {
    SCOPED_TRACE("rank " + std::to_string(rank));
    DphLog log;
    torch::manual_seed(0);
    models::ResNet m(dph_model());
    const auto r = train_model(m, ds, nullptr, dph_options(rank, 2, log));
    // Rank 0 gets 8, 8, 5 rows, rank 1 7, 7, 5 (the first B % 2 ranks one more).
    const std::vector<double> rows = rank == 0 ? std::vector<double>{8, 8, 5, 8, 8, 5}
                                               : std::vector<double>{7, 7, 5, 7, 7, 5};
    ASSERT_EQ(log.weights.size(), 6u);
    for (size_t i = 0; i < rows.size(); ++i) {
      EXPECT_DOUBLE_EQ(log.weights[i], rows[i] / (i % 3 == 2 ? 10.0 : 15.0));
      // Training statistics (its loss-step sums) go through sum_stats; with
      // no other rank summed in, they are this rank's rows.
      EXPECT_EQ(log.rows[i], rows[i]);
    }
    EXPECT_EQ(log.grads, m.parameters().size());
    EXPECT_EQ(log.broadcasts, 2);  // once per epoch
    EXPECT_EQ(log.buffers, m.named_buffers().size());
    EXPECT_GT(log.buffers, 0u);
    EXPECT_EQ(r.step_losses.size(), 6u);
  }
}

TEST(TrainerDataParallel, BatchesWithoutRowsForEveryRankAreAClearError) {
  DphLog log;
  models::ResNet m(dph_model());
  auto o = dph_options(0, 2, log);
  o.batch_size = 1;
  GRADLENS_EXPECT_THROWS_WITH(train_model(m, dph_data(40), nullptr, o), "--batch-size");
  o.batch_size = 13;  // 40 = 3 x 13 + 1: the last batch has 1 image for 2 ranks
  GRADLENS_EXPECT_THROWS_WITH(train_model(m, dph_data(40), nullptr, o), "leave 1 in the smallest batch");
  o = dph_options(0, 2, log);
  o.data_parallel.sum_stats = nullptr;
  GRADLENS_EXPECT_THROWS_WITH(train_model(m, dph_data(40), nullptr, o), "sum_stats");
}

TEST(TrainerDataParallel, ARankThatDoesNotWriteLeavesNoCheckpoint) {
  test::TempDir dir;
  DphLog log;
  torch::manual_seed(0);
  models::ResNet m(dph_model());
  auto o = dph_options(1, 2, log);
  o.epochs = 1;
  o.checkpoint_path = (dir / "m.ckpt").string();
  o.write_checkpoint = false;
  train_model(m, dph_data(40), nullptr, o);
  EXPECT_FALSE(test::fs::exists(dir / "m.ckpt"));
  o.write_checkpoint = true;
  train_model(m, dph_data(40), nullptr, o);
  EXPECT_TRUE(test::fs::exists(dir / "m.ckpt"));
}

}  // namespace
}  // namespace gradlens::train
