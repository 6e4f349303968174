#include "gradlens/extract/logit_seed.h"

#include "gradlens/core/check.h"

namespace gradlens::extract {

bool parse_gradient_target(const std::string& name, GradientTarget& out) {
  if (name == "pred") out = GradientTarget::kPred;
  else if (name == "true") out = GradientTarget::kTrue;
  else if (name == "loss") out = GradientTarget::kLoss;
  else return false;
  return true;
}

SeedKind seed_kind(GradientTarget target) {
  return target == GradientTarget::kLoss ? SeedKind::kCrossEntropy : SeedKind::kLogit;
}

torch::Tensor logit_seed(SeedKind kind, const torch::Tensor& classes, int64_t k, const torch::Tensor& probs) {
  GRADLENS_CHECK(classes.defined() && classes.dim() == 1, "logit_seed: classes must be int64 [B]");
  GRADLENS_CHECK(kind == SeedKind::kLogit || probs.defined(), "logit_seed: the cross-entropy seed needs softmax(z)");
  if (probs.defined())
    GRADLENS_CHECK(probs.dim() == 2 && probs.size(0) == classes.size(0) && probs.size(1) == k,
                   "logit_seed: probs must be [", classes.size(0), ", ", k, "], got ", probs.sizes());
  const auto onehot = torch::one_hot(classes.to(torch::kLong), k)
                          .to(probs.defined() ? probs.scalar_type() : torch::kDouble);
  const auto g = probs.defined() ? onehot.to(probs.device()) : onehot;
  return kind == SeedKind::kLogit ? g : probs - g;
}

}  // namespace gradlens::extract
