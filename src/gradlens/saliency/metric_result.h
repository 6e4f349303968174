// Per-image results of the saliency map metrics and their summary.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <vector>

namespace gradlens::saliency {

/// Per-image values of one saliency metric over a batch of N maps (N = 1 for
/// a single [H, W] map).
///
/// `values` is never NaN: where the MIT reference code would return NaN (a
/// constant map) the metric's documented value is stored instead and the
/// image is flagged in `degenerate`, so that callers can count or exclude it.
struct MetricResult {
  /// [N] float64, on the device of the (first) input map.
  torch::Tensor values;
  /// [N] bool, same device: true where an input continuous map of that image
  /// is constant (max == min, which includes all-zero maps).
  torch::Tensor degenerate;
  /// Number of true entries in `degenerate`.
  int64_t num_degenerate = 0;
};

/// Result of the sampled AUC metrics (AUC-Borji, shuffled AUC): the values
/// plus, when requested through the options, the negative pixels drawn.
struct SampledAucResult : MetricResult {
  /// Empty unless the options asked to keep them; then one CPU int64 tensor
  /// per image, shape [n_splits, k]: row s holds the flat (row-major, y * W +
  /// x) pixel indices used as negatives in split s. k is the number of
  /// fixations (AUC-Borji) or min(#fixations, #other fixations) (shuffled AUC).
  std::vector<torch::Tensor> negatives;
};

/// Options of `summarize`.
struct SummaryOptions {
  /// Leave degenerate images out of mean/std (they are still counted in
  /// `num_degenerate`). Default: include them with their documented value.
  bool exclude_degenerate = false;
};

/// Mean ± standard deviation of per-image metric values.
struct MetricSummary {
  double mean = 0.0;
  /// Population standard deviation (ddof = 0, as numpy's np.std).
  double std = 0.0;
  /// Number of values that went into mean/std.
  int64_t count = 0;
  /// Number of images in the result.
  int64_t num_images = 0;
  /// Number of degenerate images (constant or all-zero maps).
  int64_t num_degenerate = 0;
};

/// Summarises per-image values.
/// values: [N] floating, degenerate: [N] bool (any device).
/// Throws c10::Error when the shapes differ, when a value is NaN or infinite,
/// or when no value is left to summarise (N == 0, or every image is
/// degenerate and `exclude_degenerate` is set): a mean is never made up.
MetricSummary summarize(const torch::Tensor& values, const torch::Tensor& degenerate,
                        const SummaryOptions& options = {});

/// Same, from a metric's result.
MetricSummary summarize(const MetricResult& result, const SummaryOptions& options = {});

}  // namespace gradlens::saliency
