// Loaders for MNIST and Fashion-MNIST in their IDX distribution format.
#pragma once

#include <string>
#include <vector>

#include "gradlens/data/dataset.h"

namespace gradlens::data {

enum class Split { kTrain, kTest };

/// "train" or "test".
std::string split_name(Split split);
/// split_name()'s inverse. Throws gradlens::Error (usage) naming `flag`.
Split parse_split(const std::string& name, const std::string& flag = "--split");

/// Where Debian's dataset-fashion-mnist package installs the data.
inline constexpr const char* kDefaultFashionMnistDir = "/usr/share/datasets/fashion-mnist";

/// The directory of Debian's dataset package `name` ("fashion-mnist" or
/// "mnist"): $GRADLENS_DATASETS/<name> when that environment variable is set
/// (a copy of the files on a machine without the package), else
/// /usr/share/datasets/<name>.
std::string default_idx_dir(const std::string& name);

/// Per-channel normalisation of Fashion-MNIST: mean and std of x/255 over the
/// 60000 training images (0.28604 and 0.35302; recomputed by a test to 1e-3).
inline constexpr double kFashionMnistMean = 0.2860;
inline constexpr double kFashionMnistStd = 0.3530;
/// The same for MNIST (the usual 0.1307 / 0.3081).
inline constexpr double kMnistMean = 0.1307;
inline constexpr double kMnistStd = 0.3081;

/// Fashion-MNIST's ten class names, in label order: T-shirt/top, Trouser,
/// Pullover, Dress, Coat, Sandal, Shirt, Sneaker, Bag, Ankle boot.
const std::vector<std::string>& fashion_mnist_classes();

/// The IDX file of `split` in `dir`: "<prefix>-<kind>-idx<D>-ubyte" with
/// prefix "train" or "t10k" and kind "images" (D = 3) or "labels" (D = 1),
/// with or without ".gz" and with '.' or '-' before "idx" (both spellings
/// circulate). Throws c10::Error listing the names tried when none exists.
std::string find_idx_file(const std::string& dir, Split split, bool images);

/// Loads Fashion-MNIST's `split` from `dir` (the directory holding the four
/// IDX files, gzip-compressed or not).
///
/// Returns images uint8 [N, 1, 28, 28] (N = 60000 train, 10000 test), labels
/// int64 [N] in [0, 10), the ten class names, empty paths, mean/std
/// {kFashionMnistMean}/{kFashionMnistStd}, name "fashion-mnist-<split>".
///
/// Throws c10::Error when: `dir` does not exist (naming it, the --data flag
/// and `apt-get install dataset-fashion-mnist`); a file is missing; a file is
/// not valid IDX (see idx_parse()); the image and label counts differ; or a
/// label is outside [0, 10).
Dataset load_fashion_mnist(const std::string& dir = kDefaultFashionMnistDir,
                           Split split = Split::kTrain);

/// Loads MNIST's `split` from `dir`, as load_fashion_mnist() but with class
/// names "0".."9", mean/std {kMnistMean}/{kMnistStd} and name
/// "mnist-<split>".
Dataset load_mnist(const std::string& dir, Split split = Split::kTrain);

}  // namespace gradlens::data
