#include "gradlens/data/mnist.h"
#include <torch/types.h>

#include <cstdlib>
#include <filesystem>

#include "gradlens/core/check.h"
#include "gradlens/core/choice.h"
#include "gradlens/data/idx.h"

namespace gradlens::data {

namespace fs = std::filesystem;

std::string default_idx_dir(const std::string& name) {
  const char* root = std::getenv("GRADLENS_DATASETS");
  return (root && *root ? fs::path(root) : fs::path("/usr/share/datasets")) / name;
}

namespace {

Dataset load_idx_dataset(const std::string& dir, Split split, const std::string& what,
                         std::vector<std::string> class_names, double mean, double std) {
  std::error_code ec;
  GRADLENS_CHECK(fs::is_directory(dir, ec), what, " directory '", dir,
                 "' does not exist or is not a directory; install Debian's "
                 "dataset-fashion-mnist (`apt-get install dataset-fashion-mnist`, which provides ",
                 kDefaultFashionMnistDir, "), set GRADLENS_DATASETS to a folder holding fashion-mnist/, "
                 "or pass the directory holding the IDX files with --data-dir");
  const std::string images_path = find_idx_file(dir, split, /*images=*/true);
  const std::string labels_path = find_idx_file(dir, split, /*images=*/false);
  torch::Tensor images = read_idx_images(images_path);
  torch::Tensor labels = read_idx_labels(labels_path);
  GRADLENS_CHECK(images.size(0) == labels.size(0), what, " ", split_name(split), " split: ",
                 images_path, " holds ", images.size(0), " images but ", labels_path, " holds ",
                 labels.size(0), " labels; the two files come from different versions or one is "
                 "corrupt, download both again");
  const auto k = static_cast<int64_t>(class_names.size());
  if (labels.numel() > 0) {
    const int64_t hi = labels.max().item<int64_t>();
    GRADLENS_CHECK(hi < k, labels_path, ": label ", hi, " is outside [0, ", k, ") for ", what,
                   "; is this the right data set?");
  }
  Dataset ds;
  ds.images = images.unsqueeze(1);
  ds.labels = std::move(labels);
  ds.class_names = std::move(class_names);
  ds.mean = {mean};
  ds.std = {std};
  return ds;
}

}  // namespace

constexpr core::Choice<Split> kSplits[] = {{"train", Split::kTrain}, {"test", Split::kTest}};

std::string split_name(Split split) { return core::choice_name(kSplits, split); }

Split parse_split(const std::string& name, const std::string& flag) {
  return core::parse_choice(kSplits, name, flag, "split");
}

const std::vector<std::string>& fashion_mnist_classes() {
  static const std::vector<std::string> kNames = {"T-shirt/top", "Trouser", "Pullover", "Dress",
                                                  "Coat",        "Sandal",  "Shirt",    "Sneaker",
                                                  "Bag",         "Ankle boot"};
  return kNames;
}

std::string find_idx_file(const std::string& dir, Split split, bool images) {
  const std::string prefix = split == Split::kTrain ? "train" : "t10k";
  const std::string kind = images ? "images" : "labels";
  const std::string idx = images ? "idx3-ubyte" : "idx1-ubyte";
  std::vector<std::string> tried;
  for (const char* sep : {"-", "."}) {
    for (const char* ext : {".gz", ""}) {
      const std::string name = prefix + "-" + kind + sep + idx + ext;
      const fs::path p = fs::path(dir) / name;
      std::error_code ec;
      if (fs::is_regular_file(p, ec)) return p.string();
      tried.push_back(name);
    }
  }
  std::string list;
  for (const auto& t : tried) list += (list.empty() ? "" : ", ") + t;
  GRADLENS_CHECK(false, "no ", split_name(split), " ", kind, " file in '", dir, "' (looked for ",
                 list, "); pass the directory that holds the IDX files with --data");
  return {};
}

Dataset load_fashion_mnist(const std::string& dir, Split split) {
  Dataset ds = load_idx_dataset(dir, split, "Fashion-MNIST", fashion_mnist_classes(),
                                kFashionMnistMean, kFashionMnistStd);
  ds.name = "fashion-mnist-" + split_name(split);
  return ds;
}

Dataset load_mnist(const std::string& dir, Split split) {
  std::vector<std::string> names;
  for (int i = 0; i < 10; ++i) names.push_back(std::to_string(i));
  Dataset ds = load_idx_dataset(dir, split, "MNIST", std::move(names), kMnistMean, kMnistStd);
  ds.name = "mnist-" + split_name(split);
  return ds;
}

}  // namespace gradlens::data
