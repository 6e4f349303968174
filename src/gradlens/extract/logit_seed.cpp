#include "gradlens/extract/logit_seed.h"

#include "gradlens/core/check.h"
#include "gradlens/core/choice.h"

namespace gradlens::extract {

namespace {

constexpr core::Choice<GradientTarget> kGradientTargets[] = {
    {"pred", GradientTarget::kPred}, {"true", GradientTarget::kTrue}, {"loss", GradientTarget::kLoss}};

}  // namespace

bool parse_gradient_target(const std::string& name, GradientTarget& out) {
  for (const auto& c : kGradientTargets)
    if (name == c.name) {
      out = c.value;
      return true;
    }
  return false;
}

GradientTarget parse_gradient_target(const std::string& name, const std::string& flag) {
  return core::parse_choice(kGradientTargets, name, flag, "target");
}

std::string gradient_target_name(GradientTarget target) { return core::choice_name(kGradientTargets, target); }

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
