// The seed's within-class gradient-alignment loss L_grad.
#pragma once

#include <torch/types.h>

#include <string>

namespace gradlens::train {

enum class GradForm {
  /// Σ_c Σ_{(i<j) ∈ S_c} ||g_i − g_j||²
  kEuclidean,
  /// Σ_c Σ_{(i<j) ∈ S_c} (1 − cos(g_i, g_j))
  kCosine,
};
enum class GradReduction {
  kSum,   ///< the seed's sum over pairs (depends on the batch size)
  kMean,  ///< mean over same-class pairs (default: λ then does not depend on B)
};

/// "euclidean" | "cosine"; "sum" | "mean". Throw c10::Error naming the flag.
GradForm parse_grad_form(const std::string& s);
GradReduction parse_grad_reduction(const std::string& s);
/// The names parse_grad_form() / parse_grad_reduction() take.
std::string grad_form_name(GradForm f);
std::string grad_reduction_name(GradReduction r);

/// Result of grad_alignment_loss(): the loss (differentiable) and the number
/// of same-class pairs it covers.
struct GradAlignment {
  torch::Tensor loss;  ///< scalar
  int64_t pairs = 0;
};

/// L_grad over all same-class pairs (i < j) of the rows of `g` ([B, P], any
/// float dtype; keep its graph to backpropagate, i.e. compute it with
/// create_graph=true) with `labels` ([B] int64).
///
/// Computed per class from sums, without forming pairs:
///   Σ_{i<j} ||g_i − g_j||² = n Σ_i ||g_i||² − ||Σ_i g_i||²
///   Σ_{i<j} ĝ_i·ĝ_j       = (||Σ_i ĝ_i||² − Σ_i ||ĝ_i||²) / 2,  ĝ = g/||g||
/// (O(B·P) instead of the O(B²·P) Gram matrix). In the cosine form a zero
/// gradient row has ĝ = 0 (cosine 0 with everything). With no same-class
/// pair the loss is 0. Throws c10::Error on shape mismatches.
GradAlignment grad_alignment_loss(const torch::Tensor& g, const torch::Tensor& labels, GradForm form,
                                  GradReduction reduction);

/// Per-sample input gradients ∂CE_i/∂x_i with the graph kept (double
/// backprop): `x` must require grad and `logits` come from it. Returns
/// [B, prod(x.shape[1:])]. In training mode BatchNorm couples the samples of
/// a batch, so row i is ∂(Σ_j CE_j)/∂x_i.
torch::Tensor input_gradients(const torch::Tensor& logits, const torch::Tensor& labels,
                              const torch::Tensor& x);

}  // namespace gradlens::train
