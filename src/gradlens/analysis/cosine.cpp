#include "gradlens/analysis/cosine.h"
#include <torch/types.h>

#include "gradlens/core/check.h"
#include "gradlens/core/tensor_checks.h"

#include <limits>

namespace gradlens::analysis {

namespace {

// Rows scaled to unit norm in float64; zero rows stay zero.
torch::Tensor normalize_rows(const torch::Tensor& x) {
  const torch::Tensor x64 = x.to(torch::kFloat64);
  const torch::Tensor norm = x64.norm(2, 1, /*keepdim=*/true);
  return x64 / torch::where(norm > 0, norm, torch::ones_like(norm));
}

}  // namespace

CosineResult class_cosine_similarity(const torch::Tensor& u, const torch::Tensor& labels,
                               const CosineOptions& opts) {
  core::check_matrix(u, "class_cosine_similarity: u");
  core::check_labels(labels, u.size(0), "class_cosine_similarity: labels");
  GRADLENS_CHECK(opts.chunk_rows >= 1, "class_cosine_similarity: chunk_rows must be >= 1, got ", opts.chunk_rows);

  const auto dev = u.device();
  torch::Tensor classes, inverse;
  std::tie(classes, inverse, std::ignore) =
      at::_unique2(labels.to(dev, torch::kInt64), /*sorted=*/true, /*return_inverse=*/true);
  const int64_t n = u.size(0);
  const int64_t d = u.size(1);
  const int64_t c = classes.size(0);
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64).device(dev);

  torch::Tensor sums = torch::zeros({c, d}, f64);
  torch::Tensor nonzero = torch::zeros({c}, f64);
  int64_t zero_vectors = 0;
  for (int64_t start = 0; start < n; start += opts.chunk_rows) {
    const int64_t stop = std::min(n, start + opts.chunk_rows);
    const torch::Tensor v = normalize_rows(u.slice(0, start, stop));
    const torch::Tensor idx = inverse.slice(0, start, stop);
    const torch::Tensor is_nonzero = (v.abs().sum(1) > 0).to(torch::kFloat64);
    zero_vectors += (stop - start) - static_cast<int64_t>(is_nonzero.sum().item<double>());
    sums.index_add_(0, idx, v);
    nonzero.index_add_(0, idx, is_nonzero);
  }

  CosineResult r;
  r.classes = classes;
  r.class_counts = torch::bincount(inverse, {}, c).to(torch::kInt64);
  r.zero_vectors = zero_vectors;
  const torch::Tensor counts = r.class_counts.to(torch::kFloat64);
  const torch::Tensor gram = torch::matmul(sums, sums.t());  // [C, C] sums of cos over class pairs
  torch::Tensor mean = gram / torch::outer(counts, counts);
  const torch::Tensor has_pairs = r.class_counts >= 2;
  const torch::Tensor pairs = counts * (counts - 1);
  const torch::Tensor within = torch::where(
      has_pairs, (gram.diagonal() - nonzero) / torch::where(has_pairs, pairs, torch::ones_like(pairs)),
      torch::full_like(counts, std::numeric_limits<double>::quiet_NaN()));
  mean.diagonal().copy_(within);
  r.within = within;
  r.class_matrix = mean;
  r.classes_used = has_pairs.sum().item<int64_t>();
  r.classes_skipped = c - r.classes_used;
  GRADLENS_CHECK(r.classes_used > 0, "class_cosine_similarity: no class has 2 or more samples (", c,
                 " classes, ", n, " rows), so there is no same-class pair; pass more samples per class");
  r.cos_sim = within.masked_select(has_pairs).mean().item<double>();
  return r;
}

torch::Tensor pairwise_cosine(const torch::Tensor& a, const torch::Tensor& b) {
  core::check_matrix(a, "pairwise_cosine: a");
  core::check_matrix(b, "pairwise_cosine: b");
  GRADLENS_CHECK(a.size(1) == b.size(1), "pairwise_cosine: a has ", a.size(1), " columns but b has ",
                 b.size(1), "; both need the same feature dimension");
  return torch::matmul(normalize_rows(a), normalize_rows(b).t());
}

}  // namespace gradlens::analysis
