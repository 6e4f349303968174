// Saliency metrics between two continuous maps (prediction vs ground-truth
// fixation density, or two predictions): CC, KLD, SIM.
//
// Definitions follow the MIT Saliency Benchmark reference code
// (cvzoya/saliency, code_forMetrics/CC.m, KLdiv.m, similarity.m). Where that
// code returns NaN (constant maps) a value is defined here and documented.
//
// Common contract of every function in this file:
//  - `prediction` and `target` are real tensors (floating, integral or bool;
//    values are used as they are, with no /255 scaling) of the same shape,
//    either [N, H, W] (a batch) or [H, W] (one map, treated as N = 1), with
//    H * W >= 1. Both maps must already have the same resolution: upsample
//    the prediction first.
//  - Computation is in float64 on the CPU, image by image (maps on another
//    device are copied a few images at a time); the result's tensors are [N]
//    on the inputs' device (see MetricResult).
//  - An image is *degenerate* when either of its two maps is constant
//    (max == min, which includes all-zero maps); its value is the one
//    documented for the metric, never NaN.
//  - Throws c10::Error when the shapes differ (naming both shapes), when a
//    map is not 2-D or 3-D or is empty, when the devices differ, or when a
//    value is NaN or infinite.
#pragma once

#include "gradlens/saliency/metric_result.h"

#include <torch/types.h>

namespace gradlens::saliency {

/// Pearson's linear correlation coefficient (CC.m): both maps are
/// standardised, (m - mean) / std, and correlated over all pixels.
/// Range [-1, 1]; 1 for identical (non-constant) maps.
/// Degenerate: if either map is constant, CC is defined as 0 (no linear
/// relation can be measured); the reference returns NaN.
MetricResult cc(const torch::Tensor& prediction, const torch::Tensor& target);

/// Options of `kld`.
struct KldOptions {
  /// The regulariser of KLdiv.m (MATLAB's eps, rounded as in its Python ports).
  double eps = 2.2204e-16;
};

/// Kullback-Leibler divergence KL(target || prediction) (KLdiv.m): each map
/// is divided by its sum, unless it is all zero (then it stays all zero), and
///   KLD = sum_i g_i * log(eps + g_i / (p_i + eps)).
/// Range [0, inf); 0 for identical maps. Both maps must be non-negative
/// (throws c10::Error otherwise, naming the image and the minimum).
/// Degenerate (flagged): a constant map; a constant non-zero map is the
/// uniform distribution and gets its ordinary value. An all-zero map keeps the
/// reference's finite value: all-zero target -> 0; all-zero prediction ->
/// sum_i g_i log(eps + g_i / eps) (large, about 36 for a peaked target).
MetricResult kld(const torch::Tensor& prediction, const torch::Tensor& target,
                 const KldOptions& options = {});

/// Similarity, i.e. histogram intersection (similarity.m): each map that is
/// not all zero is min-max normalised to [0, 1] and then divided by its sum;
///   SIM = sum_i min(p_i, g_i).
/// Range [0, 1]; 1 for identical maps, 0 for maps with disjoint supports
/// (above their minima).
/// Degenerate (flagged): an all-zero map stays all zero, as in the reference,
/// so SIM = 0; a constant non-zero map (NaN in the reference) is defined as
/// the uniform distribution 1 / (H * W), so SIM(c, c') = 1 for two constants.
MetricResult sim(const torch::Tensor& prediction, const torch::Tensor& target);

}  // namespace gradlens::saliency
