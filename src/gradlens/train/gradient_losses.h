// The seed's total loss L_cls + λ1·L_grad + λ2·L_MI (+ λ3·curvature) as an
// ExtraLossFn for the trainer.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "gradlens/train/grad_loss.h"
#include "gradlens/train/trainer.h"

namespace gradlens::train {

struct GradientLossOptions {
  /// λ1 for L_grad (0 = off).
  double lambda_grad = 0;
  GradForm form = GradForm::kCosine;
  GradReduction reduction = GradReduction::kMean;
  /// Which gradients are aligned: "input" (∂CE/∂x, the seed's) or "gradcam"
  /// (Grad-CAM weights of the true-class logit at `layer`; costs one more
  /// forward pass per step).
  std::string source = "input";
  std::string layer = "layer4";
  /// λ2 for L_MI = −I(g_i; g_j) over same-class pairs (0 = off).
  double lambda_mi = 0;
  /// "gaussian" | "mine"
  std::string mi_estimator = "gaussian";
  /// Gradients are projected to this many dimensions (seeded random
  /// projection) before the MI estimate.
  int64_t mi_dims = 8;
  double mi_shrinkage = 1e-2;
  /// λ3 for a Hutchinson estimate of tr(∇²_x CE) per sample (0 = off).
  double lambda_curv = 0;
  uint64_t seed = 0;
};

struct GradientLosses {
  ExtraLossFn fn;                        ///< empty when every λ is 0
  std::vector<torch::Tensor> parameters; ///< MINE's statistics network, to optimise jointly
  std::shared_ptr<void> state;           ///< keeps the estimator alive
};

/// Builds the extra loss terms ("L_grad", "L_MI", "L_curv", each already
/// multiplied by its λ; the estimate I enters as L_MI = −λ2·I). Throws c10::Error naming the flag for invalid options.
GradientLosses make_gradient_losses(const GradientLossOptions& opts);

}  // namespace gradlens::train
