// Is an attribution map faithful to the model? Metrics that perturb the input
// in the order a map gives and watch the model's confidence, batched: every
// perturbed image of a chunk of images goes through the model in one batch of
// up to `batch_size`.
//
// Common contract:
//  - `model` maps model inputs [B, C, H, W] to logits [B, K] (the classifier's
//    forward(), or any function); it is called in no-grad mode.
//  - `images` [N, C, H, W] are model inputs (after the model's
//    normalisation); `maps` [N, H, W] the attributions (higher = more
//    relevant; display maps in [0, 1] for the confidence metrics);
//    `targets` int64 [N] the class whose probability is watched (usually the
//    predicted class of the clean image, the class the map explains).
//  - Probabilities are softmax(logits)[target], in float64.
//  - Throws gradlens::Error on shapes that do not match, a target out of
//    range, NaN or infinite maps.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace gradlens::saliency {

using LogitsFn = std::function<torch::Tensor(const torch::Tensor&)>;

/// What a removed pixel becomes (deletion), or what an image starts from
/// (insertion).
enum class Baseline {
  kZero,  ///< 0 in model-input units (the data mean after mean/std normalisation)
  kMean,  ///< each image's per-channel mean
  /// The image blurred by a Gaussian of `blur_sigma` px (RISE's choice for
  /// insertion): separable, radius min(ceil(3 sigma), min(H, W) - 1),
  /// reflected borders.
  kBlur,
};

/// "zero", "mean", "blur".
const std::vector<std::string>& baseline_names();
Baseline parse_baseline(const std::string& name, const std::string& flag);
std::string baseline_name(Baseline b);

struct PerturbationOptions {
  /// Steps of the curve: after step s (s = 0..steps), round(s * U / steps)
  /// units are perturbed (all channels together), U = H * W / patch_size^2.
  int64_t steps = 20;
  /// The unit perturbed at once: patch_size x patch_size squares of a grid
  /// from the top-left corner, ordered by the sum of the map over each
  /// (region perturbation, Samek et al. 2017; Quantus' RegionPerturbation
  /// with non-overlapping patches). 1: single pixels. Must divide H and W.
  int64_t patch_size = 1;
  Baseline baseline = Baseline::kZero;
  double blur_sigma = 5.0;
  /// Perturbed images per forward pass.
  int64_t batch_size = 256;
};

struct CurveResult {
  /// fractions[s] = pixels perturbed after step s / (H * W), [steps + 1].
  torch::Tensor fractions;
  /// probs[i, s]: the target's probability after step s, float64 [N, steps + 1].
  torch::Tensor probs;
  /// Area under each curve over fractions in [0, 1] (trapezoid rule), [N].
  torch::Tensor auc;
};

/// Deletion (Petsiuk et al. 2018, RISE): pixels (or patches) are replaced by
/// the baseline in decreasing order of the map (ties in row-major order), most
/// relevant first; a faithful map makes the probability fall fast: lower AUC
/// is better.
CurveResult deletion_curve(const LogitsFn& model, const torch::Tensor& images, const torch::Tensor& maps,
                           const torch::Tensor& targets, const PerturbationOptions& opts = {});

/// Insertion (Petsiuk et al. 2018): the image starts as the baseline and its
/// pixels are put back in the same order; higher AUC is better.
CurveResult insertion_curve(const LogitsFn& model, const torch::Tensor& images, const torch::Tensor& maps,
                            const torch::Tensor& targets, const PerturbationOptions& opts = {});

/// The baseline images of `images` [N, C, H, W] for `opts`.
torch::Tensor baseline_images(const torch::Tensor& images, const PerturbationOptions& opts);

struct ConfidenceChange {
  /// Average drop (Chattopadhyay et al. 2018, Grad-CAM++), per image:
  /// max(0, Y - O) / Y with Y the target's probability on the image and O on
  /// the image multiplied by its map (x * map, the map in [0, 1] broadcast
  /// over channels, as pytorch-grad-cam's CamMultImageConfidenceChange);
  /// the paper's score is 100 x the mean. Lower is better.
  torch::Tensor drop;
  /// Increase in confidence: 1 where O > Y, else 0; the paper's score is
  /// 100 x the mean. Higher is better.
  torch::Tensor increase;
  torch::Tensor original, explanation;  ///< Y and O, float64 [N]
};

ConfidenceChange confidence_change(const LogitsFn& model, const torch::Tensor& images, const torch::Tensor& maps,
                                   const torch::Tensor& targets, int64_t batch_size = 256);

namespace detail {

/// The common contract's checks (shapes, finite maps); throws gradlens::Error.
void check_faithfulness_inputs(const torch::Tensor& images, const torch::Tensor& maps, const torch::Tensor& targets);
/// softmax(model(inputs))[targets] in float64 [M], in batches of batch_size
/// without gradients; targets int64 [M], checked against the classes.
torch::Tensor target_probs(const LogitsFn& model, const torch::Tensor& inputs, const torch::Tensor& targets,
                           int64_t batch_size);

}  // namespace detail

}  // namespace gradlens::saliency
