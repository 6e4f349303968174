#include "gradlens/metrics/contingency.h"
#include <torch/types.h>

#include "gradlens/core/check.h"

namespace gradlens::metrics {

namespace {

void check_label_vector(const torch::Tensor& labels, const char* name) {
  GRADLENS_CHECK(labels.defined(), name, ": the label tensor is undefined");
  GRADLENS_CHECK(labels.dim() == 1, name, ": expected a 1-D label vector, got shape ", labels.sizes());
  GRADLENS_CHECK(!at::isFloatingType(labels.scalar_type()) && !at::isComplexType(labels.scalar_type()) &&
                     labels.scalar_type() != torch::kBool,
                 name, ": labels must be an integer tensor (int64), got ", labels.scalar_type());
  GRADLENS_CHECK(labels.numel() > 0, name, ": the label vector is empty; a metric needs at least one sample");
}

// Dense codes 0..k-1 (by sorted label value) on the CPU, and k.
std::pair<torch::Tensor, int64_t> encode(const torch::Tensor& labels) {
  torch::Tensor uniq, inverse;
  std::tie(uniq, inverse, std::ignore) =
      at::_unique2(labels.to(torch::kCPU, torch::kInt64), /*sorted=*/true, /*return_inverse=*/true);
  return {inverse.contiguous(), uniq.size(0)};
}

void check_pair(const torch::Tensor& labels_true, const torch::Tensor& labels_pred) {
  check_label_vector(labels_true, "labels_true");
  check_label_vector(labels_pred, "labels_pred");
  GRADLENS_CHECK(labels_true.numel() == labels_pred.numel(), "labels_true has ", labels_true.numel(),
                 " entries but labels_pred has ", labels_pred.numel(), "; pass one label of each per sample");
}

}  // namespace

namespace detail {

std::vector<int64_t> label_counts(const torch::Tensor& labels, const char* name) {
  check_label_vector(labels, name);
  auto [codes, k] = encode(labels);
  const torch::Tensor counts = torch::bincount(codes, {}, k).to(torch::kInt64).contiguous();
  return {counts.data_ptr<int64_t>(), counts.data_ptr<int64_t>() + k};
}

SparseContingency sparse_contingency(const torch::Tensor& labels_true, const torch::Tensor& labels_pred) {
  check_pair(labels_true, labels_pred);
  auto [ct, nc] = encode(labels_true);
  auto [ck, nk] = encode(labels_pred);
  torch::Tensor keys, counts;
  std::tie(keys, std::ignore, counts) =
      at::_unique2(ct * nk + ck, /*sorted=*/true, /*return_inverse=*/false, /*return_counts=*/true);
  SparseContingency s;
  s.n = labels_true.numel();
  s.row_sums.assign(nc, 0);
  s.col_sums.assign(nk, 0);
  const int64_t nnz = keys.numel();
  const int64_t* kp = keys.data_ptr<int64_t>();
  const int64_t* cp = counts.data_ptr<int64_t>();
  s.rows.resize(nnz);
  s.cols.resize(nnz);
  s.values.resize(nnz);
  for (int64_t i = 0; i < nnz; ++i) {
    s.rows[i] = kp[i] / nk;
    s.cols[i] = kp[i] % nk;
    s.values[i] = cp[i];
    s.row_sums[s.rows[i]] += cp[i];
    s.col_sums[s.cols[i]] += cp[i];
  }
  return s;
}

}  // namespace detail

torch::Tensor contingency_matrix(const torch::Tensor& labels_true, const torch::Tensor& labels_pred) {
  const auto s = detail::sparse_contingency(labels_true, labels_pred);
  const int64_t nk = static_cast<int64_t>(s.col_sums.size());
  torch::Tensor m = torch::zeros({static_cast<int64_t>(s.row_sums.size()), nk}, torch::kInt64);
  int64_t* p = m.data_ptr<int64_t>();
  for (size_t i = 0; i < s.values.size(); ++i) p[s.rows[i] * nk + s.cols[i]] = s.values[i];
  return m;
}

namespace {

struct PairCounts {
  __int128 tn, fp, fn, tp;
};

PairCounts pair_counts(const detail::SparseContingency& s) {
  __int128 sum_squares = 0, dot_k = 0, dot_c = 0;
  for (size_t i = 0; i < s.values.size(); ++i) {
    const __int128 v = s.values[i];
    sum_squares += v * v;
    dot_k += v * s.col_sums[s.cols[i]];
    dot_c += v * s.row_sums[s.rows[i]];
  }
  const __int128 n = s.n;
  PairCounts c{};
  c.tp = sum_squares - n;
  c.fp = dot_k - sum_squares;
  c.fn = dot_c - sum_squares;
  c.tn = n * n - c.fp - c.fn - sum_squares;
  return c;
}

}  // namespace

torch::Tensor pair_confusion_matrix(const torch::Tensor& labels_true, const torch::Tensor& labels_pred) {
  const PairCounts c = pair_counts(detail::sparse_contingency(labels_true, labels_pred));
  return torch::tensor({static_cast<int64_t>(c.tn), static_cast<int64_t>(c.fp), static_cast<int64_t>(c.fn),
                        static_cast<int64_t>(c.tp)},
                       torch::kInt64)
      .view({2, 2});
}

double adjusted_rand_score(const torch::Tensor& labels_true, const torch::Tensor& labels_pred) {
  const PairCounts c = pair_counts(detail::sparse_contingency(labels_true, labels_pred));
  if (c.fn == 0 && c.fp == 0) return 1.0;
  const __int128 num = c.tp * c.tn - c.fn * c.fp;
  const __int128 den = (c.tp + c.fn) * (c.fn + c.tn) + (c.tp + c.fp) * (c.fp + c.tn);
  return 2.0 * static_cast<double>(num) / static_cast<double>(den);
}

}  // namespace gradlens::metrics
