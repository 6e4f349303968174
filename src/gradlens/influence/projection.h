// Random projections of per-sample convolution gradients that never form
// the gradient (LoGra, Choe et al. 2024): the weight gradient of a Conv2d for
// one image is G = sum_p delta_p a_p^T over output positions p, with delta_p
// the gradient at the layer's output (Cout numbers) and a_p the unfolded
// input patch (Cin*kh*kw numbers). Its projection
//
//   vec(P_out G P_in^T) = sum_p (P_out delta_p) (P_in a_p)^T,
//
// with P_out [k_out, Cout] and P_in [k_in, Cin*kh*kw] of i.i.d. entries of
// variance 1/k (Gaussian or Rademacher, seeded), costs k_out*Cout + k_in*Cin*kh*kw
// multiplications per position and keeps k_out*k_in numbers. Since
// E[P^T P] = I for both factors, inner products of projected gradients are
// unbiased estimates of the exact ones (Johnson-Lindenstrauss), and their
// error shrinks as the dimension grows.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace gradlens::models {
class Classifier;
}

namespace gradlens::influence {

enum class ProjectionKind { kGaussian, kRademacher };
/// "gaussian" / "rademacher"; throws gradlens::Error naming --projection otherwise.
ProjectionKind parse_projection_kind(const std::string& name);
std::string projection_kind_name(ProjectionKind kind);

struct ProjectionOptions {
  /// Convolutions whose weight gradients are projected, named as
  /// Classifier::conv_layer_names() names them (e.g. "layer4.1.conv2");
  /// empty: none (the head alone, exactly).
  std::vector<std::string> layers;
  /// Numbers kept per layer: k_out * k_in with k_out = min(Cout,
  /// round(sqrt(dim))) and k_in = dim / k_out (at most Cin*kh*kw). A side
  /// kept whole is not projected (its factor is the identity), so dim =
  /// Cout*Cin*kh*kw gives the exact gradient.
  int64_t dim = 1024;
  uint64_t seed = 0;
  ProjectionKind kind = ProjectionKind::kGaussian;
  /// A one-line description that changes with any field (for store manifests).
  std::string describe() const;
};

/// One layer's projection factors.
struct LayerProjection {
  std::string layer;
  torch::Tensor p_out;  ///< float32 [k_out, Cout]
  torch::Tensor p_in;   ///< float32 [k_in, Cin * kh * kw]
  std::vector<int64_t> kernel, stride, padding, dilation;
  int64_t gradient_size = 0;  ///< Cout * Cin * kh * kw: the unprojected size
  int64_t dim() const { return p_out.size(0) * p_in.size(0); }
};

/// The projections of options.layers for `model`, their shapes read from
/// one forward pass of `probe` (a [1, C, H, W] model input). Layer l's
/// factors come from a generator seeded by (options.seed, l). Throws
/// gradlens::Error naming --param-layers for an unknown layer (listing the
/// model's convolutions) or a model without them, and --proj-dim when it is
/// < 1 or larger than a layer's gradient.
std::vector<LayerProjection> make_projections(models::Classifier& model, const torch::Tensor& probe,
                                              const ProjectionOptions& options);

/// Projected per-sample weight gradients [B, k_out * k_in] of one layer from
/// its input [B, Cin, H, W] and the gradient at its output [B, Cout, H', W'].
torch::Tensor project_conv_gradient(const torch::Tensor& input, const torch::Tensor& grad_output,
                                    const LayerProjection& projection);

}  // namespace gradlens::influence
