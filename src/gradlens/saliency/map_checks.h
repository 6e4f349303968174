// Input checks and per-image float64 access shared by the saliency metrics
// (internal to the area).
#pragma once

#include "gradlens/saliency/metric_result.h"

#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <vector>

namespace gradlens::saliency::detail {

/// Checks that `map` (argument `name` of function `fn`) is defined, real,
/// [N, H, W] or [H, W] with H * W >= 1, and returns it as [N, H, W] (a view).
/// Throws c10::Error otherwise.
torch::Tensor as_batch(const torch::Tensor& map, const char* fn, const char* name);

/// Throws c10::Error naming both shapes when `a` and `b` differ in shape, and
/// naming both devices when they live on different devices.
void check_same_shape(const torch::Tensor& a, const char* a_name, const torch::Tensor& b,
                      const char* b_name, const char* fn);

/// One image of a map as float64 values, with its range.
struct MapView {
  const double* v = nullptr;
  int64_t size = 0;
  double lo = 0, hi = 0;
  bool constant() const { return hi == lo; }
  /// The reference's min-max normalisation of one value (non-constant maps).
  double norm(int64_t i) const { return (v[i] - lo) / (hi - lo); }
};

/// Scans one image: throws c10::Error naming `name`, the image and `fn` when
/// a value is NaN or infinite; returns the view with its min and max.
MapView scan_map(const double* values, int64_t size, int64_t image, const char* fn,
                 const char* name);

/// Calls `per_image(i, a_i, b_i)` for every image i of the [N, H, W] batches
/// `a` and `b` (same shape), with float64 CPU contiguous copies of H * W
/// values, converted a few images at a time.
void for_each_image(const torch::Tensor& a, const torch::Tensor& b,
                    const std::function<void(int64_t, const double*, const double*)>& per_image);

/// A MetricResult from per-image values and flags, on `device`.
MetricResult make_result(const std::vector<double>& values, const std::vector<uint8_t>& degenerate,
                         const torch::Device& device);

}  // namespace gradlens::saliency::detail
