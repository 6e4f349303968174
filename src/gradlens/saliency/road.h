// ROAD: RemOve And Debias (Rong et al. 2022, "A consistent and efficient
// evaluation strategy for attribution methods"). Pixels are removed in the
// order a map gives and filled by noisy linear imputation, which leaks less
// of the removed shape to the model than a constant baseline; the model's
// probability of the target class is watched at several removal fractions,
// most relevant first (MoRF: a faithful map makes it fall) and least
// relevant first (LeRF: it should stay).
//
// Contract as saliency/faithfulness.h: `model` maps model inputs to logits
// (called without gradients), images [N, C, H, W] are model inputs, maps
// [N, H, W] higher = more relevant, targets int64 [N], probabilities are
// softmax(logits)[target] in float64.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <vector>

#include "gradlens/saliency/faithfulness.h"

namespace gradlens::saliency {

/// Linear imputation of the removed pixels of each image: every removed
/// pixel becomes the weighted mean of its in-image 8-neighbours (weight 1/6
/// for the 4 direct, 1/12 for the 4 diagonal neighbours, renormalised over
/// the neighbours inside the image), removed neighbours included as unknowns
/// — one sparse linear system per image, shared by the channels, solved
/// exactly (sparse Cholesky). Kept pixels are returned unchanged. images
/// float [N, C, H, W] (CPU), removed bool [N, H, W]. Throws gradlens::Error
/// on mismatched shapes or an image with every pixel removed (nothing to
/// impute from).
torch::Tensor linear_imputation(const torch::Tensor& images, const torch::Tensor& removed);

struct RoadOptions {
  /// Fractions of the H * W pixels removed: round(f * H * W) pixels, in
  /// decreasing order of the map for MoRF and increasing order for LeRF, ties
  /// in row-major order (as deletion_curve). Each in (0, 1).
  std::vector<double> fractions = {0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9};
  /// Standard deviation of the Gaussian noise added to every imputed value,
  /// in model-input units (ROAD's default 0.01); 0 for none.
  double noise = 0.01;
  uint64_t seed = 0;
  /// Imputed images per forward pass.
  int64_t batch_size = 256;
};

struct RoadResult {
  torch::Tensor fractions;  ///< float64 [F]
  /// The target's probability with the fraction removed, float64 [N, F].
  torch::Tensor morf, lerf;
  /// Means over the fractions [N] (pytorch-grad-cam's ROAD...Average) and
  /// (lerf_mean - morf_mean) / 2 (its ROADCombined; higher is better).
  torch::Tensor morf_mean, lerf_mean, combined;
};

/// ROAD for each image. The noise is drawn image by image (MoRF fractions,
/// then LeRF) from one generator seeded with opts.seed, so the result does
/// not depend on batch_size. Throws gradlens::Error as the faithfulness
/// metrics, and on a fraction outside (0, 1), noise < 0, batch_size < 1.
RoadResult road(const LogitsFn& model, const torch::Tensor& images, const torch::Tensor& maps,
                const torch::Tensor& targets, const RoadOptions& opts = {});

}  // namespace gradlens::saliency
