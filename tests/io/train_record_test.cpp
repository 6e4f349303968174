#include "gradlens/io/train_record.h"

#include <torch/torch.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "gradlens/core/fs.h"
#include "gradlens/core/npy.h"
#include "support/support.h"

namespace gradlens::io {
namespace {

namespace fs = std::filesystem;

TrainRecord small_record(const fs::path& dir) {
  TrainRecord r;
  r.dir = dir;
  r.data = "fashion-mnist";
  r.images = 5;
  r.classes = 3;
  r.class_names = {"a", "b", "c"};
  r.seed = 7;
  r.noise_fraction = 0.4;
  r.labels = torch::tensor({0, 2, 1, 1, 0}, torch::kInt64);
  r.flipped = torch::tensor({0, 1, 0, 1, 0}, torch::kUInt8);
  r.dynamics.margin = torch::randn({2, 5});
  r.dynamics.p_label = torch::rand({2, 5});
  r.dynamics.correct = torch::randint(0, 2, {2, 5}, torch::kUInt8);
  r.dynamics.el2n = torch::rand({2, 5});
  fs::create_directories(dir / "checkpoints");
  for (int e = 1; e <= 2; ++e) {
    const auto p = dir / "checkpoints" / ("epoch-00" + std::to_string(e) + ".ckpt");
    std::ofstream(p) << "weights " << e;
    r.checkpoints.push_back({e, p, 0.1 / e, core::file_crc32(p)});
  }
  return r;
}

TEST(TrainRecord, RoundTripsEveryField) {
  test::TempDir dir;
  const auto w = small_record(dir.path());
  write_train_record(w);
  const auto r = read_train_record(dir.path());
  EXPECT_EQ(r.data, "fashion-mnist");
  EXPECT_EQ(r.images, 5);
  EXPECT_EQ(r.classes, 3);
  EXPECT_EQ(r.class_names, w.class_names);
  EXPECT_EQ(r.seed, 7u);
  EXPECT_DOUBLE_EQ(r.noise_fraction, 0.4);
  EXPECT_TRUE(torch::equal(r.labels, w.labels));
  EXPECT_TRUE(torch::equal(r.flipped, w.flipped));
  for (const auto& name : train::TrainingDynamics::names())
    EXPECT_TRUE(torch::equal(r.dynamics.get(name), w.dynamics.get(name))) << name;
  ASSERT_EQ(r.checkpoints.size(), 2u);
  EXPECT_EQ(r.checkpoints[1].epoch, 2);
  EXPECT_DOUBLE_EQ(r.checkpoints[1].lr_mean, 0.05);
  EXPECT_EQ(r.checkpoints[1].crc32, w.checkpoints[1].crc32);
  EXPECT_TRUE(fs::equivalent(r.checkpoints[0].path, w.checkpoints[0].path));
}

TEST(TrainRecord, MissingOrDamagedFilesAreNamed) {
  test::TempDir dir;
  GRADLENS_EXPECT_THROWS_WITH(read_train_record(dir.path()), "has no record.json");
  write_train_record(small_record(dir.path()));
  // labels.npy replaced by other labels of the right shape: the recorded CRC differs.
  core::write_npy(dir.path() / "labels.npy", torch::tensor({1, 2, 1, 1, 0}, torch::kInt64));
  GRADLENS_EXPECT_THROWS_WITH(read_train_record(dir.path()), "labels.npy is not the file");
  write_train_record(small_record(dir.path()));
  core::write_npy(dir.path() / "dynamics" / "margin.npy", torch::zeros({3, 5}));
  GRADLENS_EXPECT_THROWS_WITH(read_train_record(dir.path()), "margin.npy holds");
  write_train_record(small_record(dir.path()));
  fs::remove(dir.path() / "checkpoints" / "epoch-002.ckpt");
  GRADLENS_EXPECT_THROWS_WITH(read_train_record(dir.path()), "epoch 2");
  std::ofstream(dir.path() / "record.json") << "{\"format\": \"something-else\"}";
  GRADLENS_EXPECT_THROWS_WITH(read_train_record(dir.path()), "not a gradlens-train-record");
}

// The key of a store of `labels.size(0)` images with these labels and checkpoints.
StoreKey store_key(const torch::Tensor& labels, std::vector<std::string> checkpoint_crc32) {
  StoreKey key;
  key.images = labels.size(0);
  key.labels_crc32 = tensor_crc32(labels);
  key.checkpoint_crc32 = std::move(checkpoint_crc32);
  return key;
}

TEST(InfluenceStore, RoundTripsAndRefusesAnotherKey) {
  test::TempDir dir;
  const auto store = dir.path() / "store";
  const auto key = store_key(torch::tensor({0, 1, 0, 1}, torch::kInt64), {"0000abcd", "1234ffff"});
  EXPECT_FALSE(read_influence_store(store, key).has_value());
  std::vector<influence::GradientFactors> f(2);
  for (auto& g : f) {
    g.delta = torch::randn({4, 2});
    g.features = torch::randn({4, 3});
  }
  write_influence_store(store, key, f);
  const auto back = read_influence_store(store, key);
  ASSERT_TRUE(back.has_value());
  ASSERT_EQ(back->size(), 2u);
  EXPECT_TRUE(torch::equal((*back)[1].delta, f[1].delta));
  EXPECT_TRUE(torch::equal((*back)[1].features, f[1].features));
  auto other = key;
  other.checkpoint_crc32[1] = "99999999";
  GRADLENS_EXPECT_THROWS_WITH(read_influence_store(store, other), "other checkpoints");
  other = key;
  other.labels_crc32 = tensor_crc32(torch::tensor({1, 1, 0, 1}, torch::kInt64));
  GRADLENS_EXPECT_THROWS_WITH(read_influence_store(store, other, "--store"), "--store");
}

// Checkpoint by checkpoint: each add() is on disk at once (in the hidden
// staging directory, not under the store's name); the store appears whole at
// commit(), and a writer dropped before it leaves nothing.
TEST(InfluenceStore, TheWriterStreamsCheckpointsAndPublishesOnlyAWholeStore) {
  test::TempDir dir;
  const auto store = dir.path() / "store";
  auto key = store_key(torch::tensor({0, 1, 2}, torch::kInt64), {"00000001", "00000002"});
  key.projection = "layer4.1.conv2 dim 4";
  std::vector<influence::GradientFactors> f(2);
  for (auto& g : f) {
    g.delta = torch::randn({3, 3});
    g.features = torch::randn({3, 5});
    g.projected = torch::randn({3, 4});
  }
  const auto entries = [&] {
    size_t n = 0;
    for (const auto& e : std::filesystem::directory_iterator(dir.path())) n += e.path() != store;
    return n;
  };
  {
    InfluenceStoreWriter w(store, key);
    w.add(f[0]);
    EXPECT_FALSE(std::filesystem::exists(store));
    EXPECT_EQ(entries(), 1u);  // the staging directory, holding checkpoint 1
    GRADLENS_EXPECT_THROWS_WITH(w.commit(), "2 checkpoints, 1 given");
  }
  EXPECT_FALSE(std::filesystem::exists(store));
  EXPECT_EQ(entries(), 0u);
  InfluenceStoreWriter w(store, key);
  for (const auto& g : f) w.add(g);
  GRADLENS_EXPECT_THROWS_WITH(w.add(f[0]), "was given more");
  w.commit();
  const auto back = read_influence_store(store, key);
  ASSERT_TRUE(back.has_value());
  ASSERT_EQ(back->size(), 2u);
  for (size_t t = 0; t < 2; ++t) {
    EXPECT_TRUE(torch::equal((*back)[t].delta, f[t].delta));
    EXPECT_TRUE(torch::equal((*back)[t].features, f[t].features));
    EXPECT_TRUE(torch::equal((*back)[t].projected, f[t].projected));
  }
}

TEST(InfluenceStore, AChangedFileIsCorruptAndAStoreWithoutChecksumsWarns) {
  test::TempDir dir;
  const auto store = dir.path() / "store";
  const auto key = store_key(torch::tensor({0, 1, 0}, torch::kInt64), {"0000abcd"});
  std::vector<influence::GradientFactors> f(1);
  f[0].delta = torch::randn({3, 2});
  f[0].features = torch::randn({3, 4});
  write_influence_store(store, key, f);
  std::string warning;
  ASSERT_TRUE(read_influence_store(store, key, "--store", &warning).has_value());
  EXPECT_TRUE(warning.empty()) << warning;
  // Another array of the same shape in place of the written one.
  core::write_npy(store / "checkpoint-001.features.npy", torch::randn({3, 4}));
  GRADLENS_EXPECT_THROWS_WITH(read_influence_store(store, key), "checkpoint-001.features.npy is corrupt");
  // A store from before checksums: read, with a warning naming it.
  core::write_npy(store / "checkpoint-001.features.npy", f[0].features);
  auto m = nlohmann::json::parse(core::read_file(store / "manifest.json"));
  ASSERT_EQ(m.at("crc32").size(), 2u);
  m.erase("crc32");
  core::write_text_atomically(store / "manifest.json", m.dump());
  const auto back = read_influence_store(store, key, "--store", &warning);
  ASSERT_TRUE(back.has_value());
  EXPECT_TRUE(torch::equal((*back)[0].features, f[0].features));
  EXPECT_NE(warning.find("--store: the store " + store.string() + " was written before gradlens recorded checksums"),
            std::string::npos)
      << warning;
}

}  // namespace
}  // namespace gradlens::io
