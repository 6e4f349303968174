// Batched extraction of the representations gradlens compares: Grad-CAM
// weights, input gradients, per-sample parameter gradients, penultimate
// features, activation maps, logits and probabilities, all from ONE forward
// pass per batch and one backward pass per distinct gradient seed.
//
// Every gradient here is a vector-Jacobian product of the logits z [B, K]
// with a per-sample seed g [B, K] (the gradient of the per-sample target t_i
// with respect to z_i), summed over the batch. In eval mode (no BatchNorm
// coupling between samples) the gradient of sum_i t_i with respect to sample
// i's maps/input is exactly sample i's own gradient. The four seeds:
//
//   seed          g_i                       used by
//   logit-pred    onehot(pred_i)            gradcam-weights (target pred)
//   logit-true    onehot(y_i)               gradcam-weights (target true)
//   ce-true       softmax(z_i) - onehot(y_i) gradcam-weights (target loss),
//                                            input-grad/param-grad (label true)
//   ce-pred       softmax(z_i) - onehot(pred_i) input-grad/param-grad (label pred)
//
// (softmax - onehot is exactly d CE / d z.) Backward passes per batch = the
// number of distinct seeds that some requested output needs *through the
// network*: the head's param-grad is closed form (no pass), and features,
// activations, logits and probs need none. So the defaults (gradcam pred,
// input-grad pred, param-grad pred) cost 1 forward + 2 backward passes;
// everything with every variant costs 1 forward + 4 backward passes; a
// gradcam-weights.loss + input-grad.true pair shares one pass.
//
// Files and names: an output's name is "<representation>" for the default
// variant (target/label "pred", pool as configured) and
// "<representation>.<variant>" otherwise, e.g. "gradcam-weights.true",
// "input-grad.true" (see docs/formats.md).
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace gradlens::models {
class Classifier;
}

namespace gradlens::extract {

/// The representation names, in output order: gradcam-weights, input-grad,
/// param-grad, features, activations, logits, probs.
const std::vector<std::string>& representation_names();

/// How activation maps [N, C, H, W] become rows.
enum class ActivationPool { kNone, kAvg, kMax };
/// "none", "avg" or "max".
std::string activation_pool_name(ActivationPool pool);
/// activation_pool_name()'s inverse. Throws gradlens::Error (usage) naming `flag`.
ActivationPool parse_activation_pool(const std::string& name, const std::string& flag = "--pool");

struct ExtractOptions {
  /// Representations to compute (names from representation_names()).
  std::vector<std::string> representations = representation_names();
  /// Layer for gradcam-weights and activations; "" = the classifier's
  /// default_layer() (layer4 for ResNets).
  std::string layer;
  /// Grad-CAM targets, any of "pred" (logit of the predicted class; the
  /// default, as pytorch-grad-cam), "true" (logit of the true class), "loss"
  /// (cross-entropy with the true label).
  std::vector<std::string> gradcam_targets = {"pred"};
  /// Labels for input-grad and param-grad: "pred" (CE with the predicted
  /// label; label-free) and/or "true" (CE with the true label).
  std::vector<std::string> grad_labels = {"pred"};
  /// Layer of param-grad: "" or "fc" = the final linear layer (closed form
  /// delta * h^T, weight then bias: [N, K*D + K]); otherwise the dotted name
  /// of a Conv2d of a native ResNet, e.g. "layer4.1.conv2" or "conv1"
  /// ([N, Cout*Cin*kh*kw (+ Cout if it has a bias)], per-sample by the unfold
  /// trick). Conv layers of TorchScript models are not supported.
  std::string param_layer;
  /// Pooling of activations: none ([N, C*H*W], C-order flattening of the
  /// maps), avg or max ([N, C]).
  ActivationPool pool = ActivationPool::kNone;
};

/// One output of an extraction.
struct OutputSpec {
  std::string name;            ///< file stem, e.g. "gradcam-weights.true"
  std::string representation;  ///< e.g. "gradcam-weights"
  std::string variant;         ///< target / label ("pred", "true", "loss"), or "" if none
  bool uses_true_labels = false;  ///< computed with the true labels
  std::string seed;            ///< gradient seed (see the file comment), "" if none
};

/// Validates `opts` and lists the outputs it asks for, in output order.
/// Throws c10::Error naming the flag and the valid values for an unknown
/// representation, target or label, an empty list, or a duplicate.
std::vector<OutputSpec> plan_outputs(const ExtractOptions& opts);

/// The gradient seeds whose backward pass `opts` needs per batch (a subset
/// of logit-pred, logit-true, ce-true, ce-pred, in that order); its size is
/// the number of backward passes per batch.
std::vector<std::string> plan_backward_seeds(const ExtractOptions& opts);

/// The outputs of one batch.
struct ExtractOutputs {
  std::vector<OutputSpec> specs;
  std::vector<torch::Tensor> values;  ///< float32 [B, D_j], one per spec
  torch::Tensor logits;               ///< float32 [B, K]
  torch::Tensor preds;                ///< int64 [B]
  int64_t backward_passes = 0;
  int64_t map_height = 0, map_width = 0;  ///< spatial size of the maps at the layer
  std::string layer;                      ///< the resolved layer
  /// Seconds per stage: "forward", "backward.<seed>", "param-grad".
  std::vector<std::pair<std::string, double>> seconds;

  /// The value named `name`; throws c10::Error listing the names otherwise.
  const torch::Tensor& get(const std::string& name) const;
};

/// Throws c10::Error when `x` holds NaN or Inf, naming the first bad row as
/// `first_index` + its row number ("input image 17 (row 1 of the batch) holds
/// NaN/Inf"). `x`: [B, ...] floating point.
void check_finite_rows(const torch::Tensor& x, int64_t first_index = 0,
                       const std::string& what = "input image");

/// Computes every output of `opts` for one batch.
///
/// `x`: float [B, C, H, W] on the model's device (already normalised).
/// `labels`: int64 [B] true labels in [0, K) (needed only by outputs with
/// uses_true_labels, but always checked for count when defined).
/// The classifier is put in eval mode for the call (restored afterwards);
/// its parameters' .grad are not touched.
///
/// Throws c10::Error: options as plan_outputs(); x not 4-D float or not
/// finite (naming the first bad row); labels not int64 [B] or out of range;
/// an unknown layer (listing model.layers()); a param_layer that is not fc or
/// a Conv2d of a native ResNet (listing the convolution names).
ExtractOutputs extract_batch(models::Classifier& model, const torch::Tensor& x,
                             const torch::Tensor& labels, const ExtractOptions& opts);

/// Per-sample gradient of sum_i CE with respect to the final linear layer in
/// closed form: for delta_i = softmax(z_i) - onehot(label_i) and features
/// h_i, row i is [vec(delta_i h_i^T), delta_i] ([B, K*D + K], weight
/// row-major then bias). `features` [B, D], `logits` [B, K], `labels` int64 [B].
torch::Tensor head_param_grad(const torch::Tensor& features, const torch::Tensor& logits,
                              const torch::Tensor& labels);

/// Per-sample Conv2d weight (and bias) gradients from the layer's input
/// [B, Cin, H, W] and the gradient with respect to its output [B, Cout, H', W']
/// (groups = 1): unfold the input and contract per sample (as Opacus and
/// BackPACK do). Returns [B, Cout*Cin*kh*kw (+ Cout when has_bias)], the
/// weight flattened in its [Cout, Cin, kh, kw] order.
torch::Tensor conv2d_param_grad(const torch::Tensor& input, const torch::Tensor& grad_output,
                                std::vector<int64_t> kernel, std::vector<int64_t> stride,
                                std::vector<int64_t> padding, std::vector<int64_t> dilation,
                                bool has_bias);

/// The Conv2d names accepted as ExtractOptions::param_layer (Classifier::conv_layer_names()),
/// plus "fc"; empty for a model without convolutions.
std::vector<std::string> param_layer_names(models::Classifier& model);

}  // namespace gradlens::extract
