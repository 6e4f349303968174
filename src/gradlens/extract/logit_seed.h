// The one rule that turns a gradient target into the seed of a backward pass
// through the logits. Used by extraction, the attribution methods and the
// audit's Grad-CAM head identity.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <string>

namespace gradlens::extract {

/// The per-sample scalar t_i whose gradient is taken.
enum class SeedKind {
  kLogit,        ///< t_i = z_i[c_i]
  kCrossEntropy  ///< t_i = CE(z_i, c_i) = logsumexp(z_i) - z_i[c_i]
};

/// Attribution / Grad-CAM targets: the logit of the predicted class (pred),
/// of the true class (true), or the cross-entropy with the true label (loss).
enum class GradientTarget { kPred, kTrue, kLoss };

/// Parses "pred", "true" or "loss"; false for anything else.
bool parse_gradient_target(const std::string& name, GradientTarget& out);
/// The same, throwing gradlens::Error (usage) naming `flag` for anything else.
GradientTarget parse_gradient_target(const std::string& name, const std::string& flag);
/// "pred", "true" or "loss".
std::string gradient_target_name(GradientTarget target);
/// kLogit for pred and true, kCrossEntropy for loss.
SeedKind seed_kind(GradientTarget target);

/// The seed g_i = dt_i/dz_i, [B, K]:
///   kLogit          onehot(c_i)
///   kCrossEntropy   softmax(z_i) - onehot(c_i)   (exactly dCE/dz)
/// `classes`: int64 [B] in [0, k). `probs`: softmax(z) [B, k], needed by
/// kCrossEntropy. The result has probs' dtype and device when probs is
/// given, else float64 on classes' device.
torch::Tensor logit_seed(SeedKind kind, const torch::Tensor& classes, int64_t k, const torch::Tensor& probs = {});

}  // namespace gradlens::extract
