#include "gradlens/train/grad_loss.h"
#include <torch/torch.h>

#include "gradlens/core/check.h"

namespace gradlens::train {

GradForm parse_grad_form(const std::string& s) {
  if (s == "euclidean") return GradForm::kEuclidean;
  if (s == "cosine") return GradForm::kCosine;
  GRADLENS_CHECK_OPTION(false, "--grad-form: unknown form '", s, "'; use euclidean or cosine");
  return GradForm::kCosine;
}

GradReduction parse_grad_reduction(const std::string& s) {
  if (s == "sum") return GradReduction::kSum;
  if (s == "mean") return GradReduction::kMean;
  GRADLENS_CHECK_OPTION(false, "--grad-reduction: unknown reduction '", s, "'; use sum or mean");
  return GradReduction::kMean;
}

std::string grad_form_name(GradForm f) { return f == GradForm::kCosine ? "cosine" : "euclidean"; }
std::string grad_reduction_name(GradReduction r) { return r == GradReduction::kMean ? "mean" : "sum"; }

GradAlignment grad_alignment_loss(const torch::Tensor& g, const torch::Tensor& labels, GradForm form,
                                  GradReduction reduction) {
  GRADLENS_CHECK(g.dim() == 2, "gradients must be [B, P], got ", g.sizes());
  GRADLENS_CHECK(labels.dim() == 1 && labels.size(0) == g.size(0), "labels must be [", g.size(0),
                 "], got ", labels.sizes());
  torch::Tensor rows = g;
  if (form == GradForm::kCosine) {
    auto norm = g.norm(2, 1, true);
    rows = g / norm.clamp_min(1e-12) * (norm > 0).to(g.scalar_type());
  }
  // One-hot class membership [K, B] turns per-class sums into a matmul.
  auto lab = labels.to(g.device());
  GRADLENS_CHECK(lab.numel() == 0 || lab.min().item<int64_t>() >= 0, "labels must be >= 0");
  const int64_t k = lab.numel() == 0 ? 0 : lab.max().item<int64_t>() + 1;
  auto classes = torch::arange(k, lab.options());
  auto onehot = lab.unsqueeze(0).eq(classes.unsqueeze(1)).to(g.scalar_type());
  auto counts = onehot.sum(1);                            // [K]
  auto sums = onehot.matmul(rows);                        // [K, P]
  auto sq = onehot.matmul(rows.pow(2).sum(1));            // [K] Σ ||row||²
  auto pairs_per_class = counts * (counts - 1) / 2;
  GradAlignment out;
  out.pairs = static_cast<int64_t>(pairs_per_class.sum().item<double>());
  torch::Tensor total;
  if (form == GradForm::kEuclidean) {
    total = (counts * sq - sums.pow(2).sum(1)).sum();
  } else {
    auto dots = (sums.pow(2).sum(1) - sq) / 2;  // Σ_{i<j} ĝ_i·ĝ_j per class
    total = (pairs_per_class - dots).sum();
  }
  if (out.pairs == 0) {
    out.loss = (g * 0).sum();
    return out;
  }
  out.loss = reduction == GradReduction::kMean ? total / static_cast<double>(out.pairs) : total;
  return out;
}

torch::Tensor input_gradients(const torch::Tensor& logits, const torch::Tensor& labels,
                              const torch::Tensor& x) {
  GRADLENS_CHECK(x.requires_grad(), "input_gradients: x must require grad");
  auto ce = torch::nn::functional::cross_entropy(
      logits, labels, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum));
  auto g = torch::autograd::grad({ce}, {x}, {}, /*retain_graph=*/true, /*create_graph=*/true)[0];
  return g.flatten(1);
}

}  // namespace gradlens::train
