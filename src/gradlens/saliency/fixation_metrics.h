// Saliency metrics between a continuous map and a binary fixation map: NSS,
// AUC-Judd, AUC-Borji, shuffled AUC.
//
// Definitions follow the MIT Saliency Benchmark reference code
// (cvzoya/saliency, code_forMetrics/NSS.m, AUC_Judd.m, AUC_Borji.m,
// AUC_shuffled.m). Where that code returns NaN a value is defined here.
//
// Common contract of every function in this file:
//  - `saliency` is a real tensor (floating, integral or bool) of shape
//    [N, H, W] or [H, W] (treated as N = 1), H * W >= 1.
//  - `fixations` has exactly the same shape. It is a binary fixation or mask
//    map: a pixel is fixated where its value is > 0 (bool or numeric; counts
//    are allowed and count as one fixation, as in the reference). Negative
//    values are rejected.
//  - Computation is in float64 on the CPU, image by image (maps on another
//    device are copied a few images at a time); the result's tensors are [N]
//    on the device of `saliency`.
//  - An image is *degenerate* when its saliency map is constant (max == min,
//    including all zero); its value is the documented one, never NaN.
//  - Throws c10::Error when the shapes differ (naming both shapes), when a
//    map is not 2-D or 3-D or is empty, when the devices differ, when a value
//    is NaN, infinite or (fixations) negative, and when an image has no
//    fixated pixel (the reference returns NaN; the message names the image).
#pragma once

#include "gradlens/saliency/metric_result.h"

#include <torch/types.h>

#include <cstdint>

namespace gradlens::saliency {

/// Normalized Scanpath Saliency (NSS.m): the saliency map is standardised,
/// (s - mean) / std with the sample standard deviation (ddof = 1, MATLAB's
/// std; numpy ports using np.std differ by a factor sqrt(n / (n - 1))), and
/// averaged over the fixated pixels.
/// Degenerate: a constant saliency map has NSS 0 (its standardised map is
/// taken as all zero; the reference returns NaN).
MetricResult nss(const torch::Tensor& saliency, const torch::Tensor& fixations);

/// Options of `auc_judd`.
struct AucJuddOptions {
  /// Add uniform noise in [0, 1e-7) to every pixel before normalising, as the
  /// reference does by default (jitter = 1) to break ties. Off by default here
  /// so that the metric is deterministic and exact ties keep the reference's
  /// tie handling; when on, noise is drawn from std::mt19937_64(seed), image
  /// after image in row-major order.
  bool jitter = false;
  uint64_t seed = 0;
};

/// AUC-Judd (AUC_Judd.m). The saliency map is min-max normalised; the
/// thresholds are the saliency values at the F fixated pixels, sorted in
/// descending order; at the i-th threshold t_i (i = 1..F)
///   tp_i = i / F,  fp_i = (#{pixels with s >= t_i} - i) / (P - F),
/// P = H * W (the reference's tie handling: with tied fixation values tp
/// still grows by 1/F per threshold). The curve starts at (0, 0), ends at
/// (1, 1) and is integrated with the trapezoid rule.
/// Degenerate: a constant saliency map has AUC 0.5 (chance; the reference
/// returns NaN without jitter). With jitter on the value is computed from the
/// jittered map but the image is still flagged.
/// Throws c10::Error also when every pixel of an image is fixated (no
/// negatives: P - F = 0).
MetricResult auc_judd(const torch::Tensor& saliency, const torch::Tensor& fixations,
                      const AucJuddOptions& options = {});

/// Options of `auc_borji` and `auc_shuffled`.
struct SampledAucOptions {
  /// Number of random splits (sets of negatives) averaged; >= 1.
  int64_t n_splits = 100;
  /// Threshold step on the min-max normalised map; > 0.
  double step_size = 0.1;
  /// Seed of the one std::mt19937_64 that draws every image's negatives, image
  /// after image, split after split (constant images draw too, so that each
  /// image's draw does not depend on the others' values).
  uint64_t seed = 0;
  /// Return the drawn negatives in SampledAucResult::negatives.
  bool keep_negatives = false;
};

/// AUC-Borji (AUC_Borji.m). The saliency map is min-max normalised. In each
/// split, F negatives (F = number of fixated pixels) are drawn uniformly with
/// replacement from all H * W pixels (fixated ones included). Thresholds are
/// MATLAB's 0:step_size:m, descending, with m the largest normalised value at
/// the fixations and the split's negatives (built as MATLAB's colon operator
/// builds them, so that values such as 0.6 compare as in the reference); at
/// each threshold t: tp = #{fixations >= t} / F, fp = #{negatives >= t} / F.
/// The curve from (0, 0) to (1, 1) is integrated with the trapezoid rule and
/// the AUC is the mean over the splits.
/// Degenerate: a constant saliency map has AUC 0.5 (NaN in the reference).
/// Throws c10::Error also on n_splits < 1 or step_size not finite and > 0.
SampledAucResult auc_borji(const torch::Tensor& saliency, const torch::Tensor& fixations,
                           const SampledAucOptions& options = {});

/// Shuffled AUC (AUC_shuffled.m): as `auc_borji`, but the negatives of each
/// split are k = min(F, O) distinct pixels drawn without replacement (a random
/// permutation, as MATLAB's randperm) from the O pixels where
/// `other_fixations` > 0, usually the union of the fixations of other images;
/// fp = #{negatives >= t} / k.
/// other_fixations: [N, H, W] (one per image) or [H, W] (shared by all
/// images), same H, W as `saliency`, non-negative, same device.
/// Degenerate: a constant saliency map has AUC 0.5.
/// Throws c10::Error also when an image's other-fixation map is empty.
SampledAucResult auc_shuffled(const torch::Tensor& saliency, const torch::Tensor& fixations,
                              const torch::Tensor& other_fixations,
                              const SampledAucOptions& options = {});

}  // namespace gradlens::saliency
