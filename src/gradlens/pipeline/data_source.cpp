#include "gradlens/pipeline/data_source.h"
#include <torch/types.h>

#include <filesystem>

#include "gradlens/core/check.h"
#include "gradlens/data/image_folder.h"
#include "gradlens/data/mnist.h"
#include "gradlens/data/subset.h"

namespace gradlens::pipeline {

namespace {

bool ds_is_idx(const DataConfig& cfg) { return cfg.data == "fashion-mnist" || cfg.data == "mnist"; }

data::Dataset ds_load_idx(const DataConfig& cfg, data::Split split) {
  const bool fashion = cfg.data == "fashion-mnist";
  const std::string dir =
      !cfg.idx_dir.empty() ? cfg.idx_dir : (fashion ? data::kDefaultFashionMnistDir : "/usr/share/datasets/mnist");
  return fashion ? data::load_fashion_mnist(dir, split) : data::load_mnist(dir, split);
}

// The per-class limits of --train-per-class / --test-per-class.
data::Dataset ds_limit(data::Dataset ds, int64_t per_class, data::SubsetMode mode, uint64_t seed) {
  if (per_class <= 0) return ds;
  return data::balanced_subset(ds, per_class, mode, seed);
}

}  // namespace

Splits load_splits(const DataConfig& cfg, uint64_t seed) {
  Splits s;
  if (ds_is_idx(cfg)) {
    s.train = ds_load_idx(cfg, data::Split::kTrain);
    s.test = ds_load_idx(cfg, data::Split::kTest);
  } else {
    GRADLENS_CHECK(std::filesystem::is_directory(cfg.data), "--data ", cfg.data,
                   ": not 'fashion-mnist', 'mnist' or an existing ImageFolder directory "
                   "(root/<class>/<image>)");
    data::ImageFolderOptions o;
    o.channels = cfg.channels == 0 ? 3 : static_cast<int>(cfg.channels);
    o.size = cfg.image_size == 0 ? (o.channels == 1 ? 28 : 224) : cfg.image_size;
    o.skip_bad_images = cfg.skip_bad_images;
    auto all = data::load_image_folder(cfg.data, o).dataset;
    auto [tr, te] = data::train_test_split(all, cfg.test_fraction, seed);
    s.train = std::move(tr);
    s.test = std::move(te);
    // Normalise with the training split's statistics only (no test leakage).
    auto x = s.train.images.to(torch::kFloat64) / 255.0;
    auto mean = x.mean({0, 2, 3});
    auto std = x.std({0, 2, 3}, /*unbiased=*/false).clamp_min(1e-6);
    s.train.mean.assign(mean.data_ptr<double>(), mean.data_ptr<double>() + mean.numel());
    s.train.std.assign(std.data_ptr<double>(), std.data_ptr<double>() + std.numel());
    s.test.mean = s.train.mean;
    s.test.std = s.train.std;
  }
  const auto mode = data::parse_subset_mode(cfg.subset, "--subset");  // checked even without a limit
  s.train = ds_limit(std::move(s.train), cfg.train_per_class, mode, seed);
  s.test = ds_limit(std::move(s.test), cfg.test_per_class, mode, seed + 1);
  return s;
}

data::Dataset load_split(const DataConfig& cfg, uint64_t seed, bool train) {
  if (ds_is_idx(cfg)) {
    // Each IDX split is its own pair of files with fixed normalisation
    // constants, so only the split asked for is read.
    const auto mode = data::parse_subset_mode(cfg.subset, "--subset");
    return train ? ds_limit(ds_load_idx(cfg, data::Split::kTrain), cfg.train_per_class, mode, seed)
                 : ds_limit(ds_load_idx(cfg, data::Split::kTest), cfg.test_per_class, mode, seed + 1);
  }
  Splits s = load_splits(cfg, seed);  // an ImageFolder's test split needs the training statistics
  return train ? std::move(s.train) : std::move(s.test);
}

}  // namespace gradlens::pipeline
