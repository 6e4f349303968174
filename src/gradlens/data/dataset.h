// The in-memory image dataset shared by all of gradlens, and small pure
// helpers over it (size, normalisation to float, selection of samples).
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace gradlens::data {

/// A labelled image dataset held in memory.
///
/// Invariants (checked by validate()):
///  - `images` is uint8 [N, C, H, W] with C = 1 or 3 (raw 0..255 pixels);
///  - `labels` is int64 [N] with values in [0, class_names.size());
///  - `paths` is empty (IDX data) or holds N source paths;
///  - `mean`/`std` hold C per-channel normalisation constants in the units of
///    x * pixel_scale (by default x/255: the mean and standard deviation of
///    x/255 over the training set); the model's input is
///    (x * pixel_scale - mean[c]) / std[c];
///  - `masks` is undefined, or uint8 [N, 1, H, W] object masks (255 inside the
///    object, 0 outside), as loaded from `<image>.mask.png` files.
struct Dataset {
  torch::Tensor images;  ///< uint8 [N, C, H, W]
  torch::Tensor labels;  ///< int64 [N]
  std::vector<std::string> class_names;
  std::vector<std::string> paths;  ///< per-sample source path, or empty for IDX data
  std::vector<double> mean;        ///< per-channel mean of x * pixel_scale
  std::vector<double> std;         ///< per-channel std of x * pixel_scale
  double pixel_scale = 1.0 / 255;  ///< 1/255: inputs in [0, 1]; 1: in [0, 255]
  /// Where mean/std come from, for manifests and reports ("training-split
  /// statistics", "Fashion-MNIST constants", "--mean/--std", ...).
  std::string normalization;
  std::string name;                ///< e.g. "fashion-mnist-train", or the folder name
  torch::Tensor masks;             ///< optional uint8 [N, 1, H, W]; undefined if none

  /// Number of samples N (0 for a default-constructed dataset).
  int64_t size() const;
  /// Number of classes (class_names.size()).
  int64_t num_classes() const { return static_cast<int64_t>(class_names.size()); }
  /// Channels C of `images`.
  int64_t channels() const;
  /// True when `masks` is defined.
  bool has_masks() const { return masks.defined(); }
};

/// Checks the invariants listed on Dataset; throws c10::Error naming the
/// dataset and the violated field.
void validate(const Dataset& ds);

/// Normalises a uint8 batch to float32: (x * pixel_scale - mean[c]) / std[c].
/// `uint8_batch`: uint8 [B, C, H, W] or [C, H, W]. `mean`/`std`: C values
/// (or 1 value, broadcast to every channel). Returns float32 of the same shape
/// on the same device. Throws c10::Error when the dtype is not uint8, the rank
/// is not 3 or 4, the channel counts disagree, or a std value is not > 0 or
/// a mean/std value is not finite.
torch::Tensor to_float(const torch::Tensor& uint8_batch, const std::vector<double>& mean,
                       const std::vector<double>& std, double pixel_scale = 1.0 / 255);

/// to_float() with the dataset's own mean, std and pixel scale.
torch::Tensor to_float(const Dataset& ds, const torch::Tensor& uint8_batch);

/// The model input the dataset gives, for logs and reports, e.g.
/// "28x28, (x/255 - [0.286]) / [0.353] (Fashion-MNIST training-set constants)".
std::string describe_input(const Dataset& ds);

/// "0-1" when pixel_scale is 1/255, "0-255" when it is 1.
std::string input_range_name(const Dataset& ds);

/// The samples `indices` (int64 [K], any order, repeats allowed) of `ds`, in
/// that order: images, labels, paths and masks are all selected; class names,
/// mean/std and name are kept. Throws c10::Error when an index is outside
/// [0, N) or `indices` is not a 1-D integer tensor.
Dataset select(const Dataset& ds, const torch::Tensor& indices);

/// Number of samples of each class: int64 [num_classes].
torch::Tensor class_counts(const Dataset& ds);

}  // namespace gradlens::data
