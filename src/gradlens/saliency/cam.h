// Attribution maps of a classifier for a batch of images: Grad-CAM,
// Grad-CAM++ (at any layer), plain input-gradient saliency, SmoothGrad and
// Integrated Gradients, each for a per-image target t_i:
//
//   target  t_i                                   (same meaning as extraction,
//   pred    logit of the predicted class z_i[argmax z_i]     see extract/
//   true    logit of the true class z_i[y_i]                 representations.h)
//   loss    cross-entropy CE(z_i, y_i) with the true label
//
// Every gradient is the vector-Jacobian product of the logits with the
// per-sample seed dt_i/dz_i (onehot(c_i), or softmax(z_i) - onehot(y_i) for
// the loss), summed over the batch; in eval mode (BatchNorm uses its running
// statistics) the gradient of sum_i t_i with respect to image i is image i's
// own gradient, so one backward pass serves the whole batch. The classes of
// `pred` are fixed by the clean input: SmoothGrad's noisy copies and IG's path
// points are scored for that same class.
//
// Display maps. Every method produces a raw map per image (`raw`, documented
// per method below) and a display map `maps` [B, H, W] at the input's size
// with values in [0, 1]:
//   maps_i = (u_i - min u_i) / (max u_i - min u_i),  u_i = upsample(raw_i)
// where upsample is bilinear interpolation with align_corners = false (torch's
// interpolate; the identity when raw is already at the input size). This is
// what pytorch-grad-cam returns for one target layer: it min-max normalises
// the ReLU'd CAM, resizes it with cv2.resize (INTER_LINEAR, the same
// half-pixel geometry as align_corners = false; OpenCV rounds its float
// interpolation weights differently, a difference at float rounding level),
// and min-max normalises again at the input size, which cancels the first
// normalisation. pytorch-grad-cam divides by (1e-7 + max) instead of the
// range; we divide by the exact range. A map whose raw values are all equal
// (for Grad-CAM usually all zero: no positive evidence at the layer) has no
// range: its display map is all zeros and it is flagged in `constant` and
// counted in `num_constant`, never NaN.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "gradlens/extract/logit_seed.h"

namespace gradlens::models {
class Classifier;
}

namespace gradlens::saliency {

/// The attribution methods, by CLI name.
enum class AttributionMethod {
  kGradCam,             ///< "gradcam"
  kGradCamPlusPlus,     ///< "gradcam++"
  kGradient,            ///< "gradient"
  kSmoothGrad,          ///< "smoothgrad"
  kIntegratedGradients  ///< "ig"
};

/// "gradcam", "gradcam++", "gradient", "smoothgrad", "ig".
const std::vector<std::string>& attribution_method_names();
/// Parses a CLI name; throws c10::Error naming --method and listing the names.
AttributionMethod parse_attribution_method(const std::string& name);
std::string attribution_method_name(AttributionMethod m);
/// True for Grad-CAM and Grad-CAM++ (the methods that use a layer).
bool is_cam_method(AttributionMethod m);

/// Integrated Gradients' quadrature (AttributionOptions::ig_steps).
enum class IgRule { kTrapezoid, kRiemann };
/// "trapezoid" or "riemann".
std::string ig_rule_name(IgRule rule);
/// ig_rule_name()'s inverse. Throws gradlens::Error (usage) naming `flag`.
IgRule parse_ig_rule(const std::string& name, const std::string& flag = "--ig-rule");

struct AttributionOptions {
  AttributionMethod method = AttributionMethod::kGradCam;
  /// Layer of Grad-CAM / Grad-CAM++; "" = the classifier's default_layer()
  /// (layer4 for ResNets). Checked against model.layers() whenever it is
  /// non-empty (also for the input-space methods, which do not use it).
  std::string layer;
  /// The logit of the prediction (default, as pytorch-grad-cam), of the true
  /// class, or the cross-entropy with the true label.
  extract::GradientTarget target = extract::GradientTarget::kPred;

  /// SmoothGrad (Smilkov et al. 2017): number of noisy copies n >= 1 and the
  /// noise level sigma >= 0 as a fraction of each image's input range
  /// (max x_i - min x_i over its pixels and channels): the noise is
  /// N(0, (sigma * range_i)^2) per input value. The paper recommends 0.10-0.20.
  int64_t smoothgrad_samples = 25;
  double smoothgrad_sigma = 0.15;
  /// Seed of SmoothGrad's noise. Image `first_index + i` draws its noise from
  /// its own CPU generator seeded from (seed, first_index + i), so a map does
  /// not depend on the batch an image lands in.
  uint64_t seed = 0;

  /// Integrated Gradients (Sundararajan et al. 2017): number of steps m >= 1
  /// along the straight path x' + a (x - x'), a in [0, 1], and the quadrature:
  ///   kTrapezoid (default): a_k = k/m, k = 0..m (m + 1 gradient evaluations),
  ///                         weights 1/(2m) at both ends and 1/m inside;
  ///   kRiemann:   right Riemann sum of the paper's eq. (3): a_k = k/m,
  ///                         k = 1..m (m evaluations), weights 1/m.
  /// Attribution_i = (x - x') * sum_k w_k dt/dx(x' + a_k (x - x')).
  int64_t ig_steps = 64;
  IgRule ig_rule = IgRule::kTrapezoid;
  /// Baseline x': undefined = zeros of the model input (in normalised input
  /// space, i.e. the training mean colour); else float [C, H, W] (shared by
  /// every image) or [B, C, H, W].
  torch::Tensor ig_baseline;
};

/// The maps of one batch.
struct Attribution {
  std::string method;  ///< attribution_method_name()
  std::string target;  ///< "pred", "true" or "loss"
  std::string layer;   ///< the resolved layer (CAM methods), "" otherwise

  /// float32 [B, H, W]: display maps in [0, 1] at the input size (file comment).
  torch::Tensor maps;
  /// float32 [B, h, w], un-normalised and not upsampled:
  ///  gradcam / gradcam++: ReLU(sum_k w_k A_k) at the layer (h, w = the map size);
  ///  gradient:   max over channels of |dt/dx|             (h, w = H, W);
  ///  smoothgrad: mean over the n noisy copies of that map;
  ///  ig:         |sum over channels of the attributions|.
  torch::Tensor raw;
  /// float32 [B, C]: channel weights w_k of gradcam (alpha_k, the spatial mean
  /// of dt/dA_k) and gradcam++ (see grad_cam_plus_plus_weights); undefined
  /// for the other methods.
  torch::Tensor weights;
  /// float32 [B, C_in, H, W]: IG's signed per-input attributions (their sum
  /// over channels is what `raw` shows, in absolute value); undefined otherwise.
  torch::Tensor attributions;
  /// bool [B]: raw map constant (display map set to zeros); and its count.
  torch::Tensor constant;
  int64_t num_constant = 0;

  /// float32 [B, K] logits and int64 [B] predictions on the clean input.
  torch::Tensor logits;
  torch::Tensor preds;
  /// int64 [B]: the class whose logit is the target (pred/true) or the label
  /// of the loss (loss).
  torch::Tensor target_classes;
  /// float64 [B]: t_i at the input.
  torch::Tensor target_values;
  /// IG only, float64 [B]: t_i at the baseline, and the completeness gap
  /// sum(attributions_i) - (t_i(x) - t_i(x')) (Captum's "convergence delta").
  torch::Tensor baseline_values;
  torch::Tensor completeness_gap;

  /// Passes through the network for this batch (each over the whole batch).
  int64_t forward_passes = 0;
  int64_t backward_passes = 0;
};

/// Computes the attribution maps of `opts.method` for the batch `x`.
///
/// `x`: float [B, C, H, W] on the model's device, already normalised, finite.
/// `labels`: int64 [B] true labels in [0, K); required by the targets true
/// and loss, optional (undefined) for pred, checked whenever given.
/// `first_index`: the dataset index of x[0], used in messages ("image 17") and
/// to seed SmoothGrad's noise per image.
/// The classifier is put in eval mode for the call (restored afterwards); its
/// parameters' .grad are not touched. Outputs are on the model's device.
///
/// Throws c10::Error: an unknown layer (naming --layer and listing
/// model.layers()); x not 4-D float, with other channels than the model, or holding NaN/Inf
/// (naming the image); labels missing for true/loss, of the wrong count or
/// type, or a class outside [0, K) (naming the image and K); smoothgrad
/// samples < 1 or sigma < 0 / not finite; ig steps < 1; a baseline that is
/// neither [C, H, W] nor [B, C, H, W] like x or is not finite; a gradient
/// that is not finite (naming the image).
Attribution compute_attribution(models::Classifier& model, const torch::Tensor& x,
                                const torch::Tensor& labels, const AttributionOptions& opts,
                                int64_t first_index = 0);

/// Grad-CAM channel weights: alpha_k = mean over pixels of grads_k.
/// grads: [B, C, h, w]. Returns [B, C].
torch::Tensor grad_cam_weights(const torch::Tensor& grads);

/// Grad-CAM++ channel weights in closed form (Chattopadhyay et al. 2018,
/// eq. 19, as pytorch-grad-cam's GradCAMPlusPlus computes them): with g the
/// gradients and A the activations [B, C, h, w],
///   a_kij = g^2 / (2 g^2 + (sum_ij A_k) g^3 + 1e-6),  set to 0 where g == 0,
///   w_k   = sum_ij a_kij ReLU(g_kij).
/// (The 1e-6 is pytorch-grad-cam's guard against a zero denominator.)
/// Returns [B, C].
torch::Tensor grad_cam_plus_plus_weights(const torch::Tensor& grads, const torch::Tensor& activations);

/// The class activation map ReLU(sum_k w_k A_k): weights [B, C],
/// activations [B, C, h, w] -> [B, h, w].
torch::Tensor class_activation_map(const torch::Tensor& weights, const torch::Tensor& activations);

/// Display maps of raw maps (see the file comment).
struct NormalizedMaps {
  torch::Tensor maps;      ///< float32 [B, height, width], values in [0, 1]
  torch::Tensor constant;  ///< bool [B]
  int64_t num_constant = 0;
};

/// Upsamples raw [B, h, w] (any floating dtype) bilinearly (align_corners =
/// false) to [height, width] and min-max normalises each map; a map whose raw
/// values are all equal becomes all zeros and is flagged. Throws c10::Error
/// when raw is not 3-D floating, holds NaN/Inf, or a size is < 1.
NormalizedMaps upsample_and_normalize(const torch::Tensor& raw, int64_t height, int64_t width);

/// Grad-CAM display maps [B, height, width] from Grad-CAM weights [B, C] and
/// the layer's activations [B, C, h, w] computed earlier (e.g. by
/// extraction): upsample_and_normalize(class_activation_map(weights,
/// activations)), the maps compute_attribution() returns for kGradCam at that
/// layer and target, without a network pass. Throws c10::Error on mismatched
/// shapes or NaN/Inf.
NormalizedMaps cam_maps_from(const torch::Tensor& weights, const torch::Tensor& activations, int64_t height,
                             int64_t width);

}  // namespace gradlens::saliency
