// Sanity checks of attribution methods (Adebayo et al. 2018, "Sanity checks
// for saliency maps"): a method whose maps barely change when the model's
// weights are randomised explains the image, not the model.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "gradlens/saliency/cam.h"

namespace gradlens::models {
class Classifier;
}

namespace gradlens::saliency {

/// Spearman rank correlation of each pair of maps a[i], b[i] ([N, H, W]) over
/// their pixels, ties given their average rank (scipy.stats.spearmanr), float64
/// [N]; NaN where a map is constant.
torch::Tensor spearman_rank_correlation(const torch::Tensor& a, const torch::Tensor& b);

/// Structural similarity (Wang et al. 2004) of each pair of maps ([N, H, W],
/// values in [0, data_range]) as scikit-image's structural_similarity with its
/// defaults: 7 x 7 uniform windows, K1 = 0.01, K2 = 0.03, sample covariances,
/// reflected borders, the mean over the pixels at least 3 px from the border.
/// float64 [N]. Needs H, W >= 7.
torch::Tensor ssim(const torch::Tensor& a, const torch::Tensor& b, double data_range = 1.0);

/// The parameter groups randomised one at a time, head first: a parameter
/// belongs to the block of a sequence it lies in — its path up to the first
/// component after the first that is a number or ends in _<number>
/// ("layer4.1", "features.18", "encoder.layers.encoder_layer_11") — else to
/// its module ("fc", "conv1", "heads.head", "encoder.ln"). Groups are listed
/// in the reverse of the model's parameter order.
std::vector<std::string> parameter_groups(models::Classifier& model);

struct RandomisationOptions {
  /// Cascading (Adebayo et al.'s main test): group g is randomised together
  /// with every group before it (from the head down); independent: group g
  /// alone, the others as trained.
  bool cascading = true;
  /// At most this many groups from the head (0: all).
  int64_t max_groups = 0;
  /// Each randomised parameter tensor p is replaced by draws from
  /// N(0, std(p)^2) (std 0.01 for a constant tensor), seeded.
  uint64_t seed = 0;
  int64_t batch_size = 64;
  /// Images (rows of `images`) whose maps each step keeps, for figures.
  std::vector<int64_t> keep_rows;
};

struct RandomisationStep {
  std::string group;           ///< the group randomised at this step (with those before it when cascading)
  torch::Tensor spearman;      ///< float64 [N]: vs the trained model's maps
  torch::Tensor ssim;          ///< float64 [N]
  torch::Tensor maps;          ///< float32 [keep_rows.size(), H, W] CPU: the kept images' maps; undefined if none
};

/// The model-parameter randomisation test: the maps of `images` (model
/// inputs) for `labels` by `attribution`, on the trained model and after each
/// randomisation step, compared image by image. The model's parameters are
/// restored before returning (also when an exception is thrown).
std::vector<RandomisationStep> model_randomisation_test(models::Classifier& model, const torch::Tensor& images,
                                                        const torch::Tensor& labels,
                                                        const AttributionOptions& attribution,
                                                        const RandomisationOptions& opts = {});

struct RandomLogitOptions {
  /// Seed of the other classes: image i's is drawn uniformly from the K - 1
  /// classes other than classes[i] (torch's CPU generator).
  uint64_t seed = 0;
  int64_t batch_size = 64;
};

struct RandomLogitResult {
  torch::Tensor classes;        ///< int64 [N]: the class explained
  torch::Tensor other_classes;  ///< int64 [N]: the random other class, never classes[i]
  torch::Tensor spearman;       ///< float64 [N]: map of classes[i] vs map of other_classes[i]
  torch::Tensor ssim;           ///< float64 [N]
};

/// The random-logit test (Sixt et al. 2020; Quantus's RandomLogit): each
/// image's map for `classes` [N] compared with its map for a random other
/// class. A method that explains the class gives low similarity; one whose
/// maps do not depend on the class gives 1. Both maps come from
/// `attribution` with its target set to the class given ("true"). Throws
/// c10::Error when the model has fewer than 2 classes or `classes` is not
/// int64 [N] in [0, K).
RandomLogitResult random_logit_test(models::Classifier& model, const torch::Tensor& images, const torch::Tensor& classes,
                                    const AttributionOptions& attribution, const RandomLogitOptions& opts = {});

/// The display maps of `attribution` for every image, in batches.
torch::Tensor attribution_maps(models::Classifier& model, const torch::Tensor& images, const torch::Tensor& labels,
                               const AttributionOptions& attribution, int64_t batch_size);

}  // namespace gradlens::saliency
