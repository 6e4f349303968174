#include "gradlens/pipeline/data_source.h"
#include <torch/torch.h>

#include <filesystem>

#include "gradlens/core/check.h"
#include "gradlens/data/image_folder.h"
#include "gradlens/data/mnist.h"
#include "gradlens/data/subset.h"

namespace gradlens::pipeline {

Splits load_splits(const DataConfig& cfg, uint64_t seed) {
  Splits s;
  if (cfg.data == "fashion-mnist" || cfg.data == "mnist") {
    const bool fashion = cfg.data == "fashion-mnist";
    const std::string dir =
        !cfg.idx_dir.empty() ? cfg.idx_dir
                             : (fashion ? data::kDefaultFashionMnistDir : "/usr/share/datasets/mnist");
    s.train = fashion ? data::load_fashion_mnist(dir, data::Split::kTrain)
                      : data::load_mnist(dir, data::Split::kTrain);
    s.test = fashion ? data::load_fashion_mnist(dir, data::Split::kTest)
                     : data::load_mnist(dir, data::Split::kTest);
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
  const auto mode = data::parse_subset_mode(cfg.subset, "--subset");
  if (cfg.train_per_class > 0)
    s.train = data::balanced_subset(s.train, cfg.train_per_class, mode, seed);
  if (cfg.test_per_class > 0)
    s.test = data::balanced_subset(s.test, cfg.test_per_class, mode, seed + 1);
  return s;
}

}  // namespace gradlens::pipeline
