#include "gradlens/metrics/information.h"
#include <torch/types.h>

#include "gradlens/core/check.h"
#include "gradlens/metrics/contingency.h"

#include <cmath>
#include <limits>

namespace gradlens::metrics {

namespace {

constexpr double kEps = std::numeric_limits<double>::epsilon();

double entropy_of_counts(const std::vector<int64_t>& counts) {
  int64_t total = 0;
  int64_t nonzero = 0;
  for (int64_t c : counts) {
    total += c;
    nonzero += c > 0;
  }
  if (nonzero <= 1) return 0.0;
  const double log_total = std::log(static_cast<double>(total));
  double h = 0.0;
  for (int64_t c : counts) {
    if (c == 0) continue;
    const double p = static_cast<double>(c);
    h += (p / static_cast<double>(total)) * (std::log(p) - log_total);
  }
  return -h;
}

double mutual_info(const detail::SparseContingency& s) {
  if (s.row_sums.size() == 1 || s.col_sums.size() == 1) return 0.0;
  const double n = static_cast<double>(s.n);
  const double log_n = std::log(n);
  double mi = 0.0;
  for (size_t k = 0; k < s.values.size(); ++k) {
    const double v = static_cast<double>(s.values[k]);
    const double nm = v / n;
    const int64_t outer = s.row_sums[s.rows[k]] * s.col_sums[s.cols[k]];
    const double log_outer = -std::log(static_cast<double>(outer)) + log_n + log_n;
    const double term = nm * (std::log(v) - log_n) + nm * log_outer;
    if (std::abs(term) >= kEps) mi += term;
  }
  return std::max(mi, 0.0);
}

double emi(const detail::SparseContingency& s) {
  const auto& a = s.row_sums;
  const auto& b = s.col_sums;
  if (a.size() == 1 || b.size() == 1) return 0.0;
  const double n = static_cast<double>(s.n);
  int64_t max_ab = 0;
  for (int64_t v : a) max_ab = std::max(max_ab, v);
  for (int64_t v : b) max_ab = std::max(max_ab, v);
  std::vector<double> term1(max_ab + 1), log_nnij(max_ab + 1), gln_nij(max_ab + 1);
  for (int64_t k = 0; k <= max_ab; ++k) {
    const double nij = k == 0 ? 1.0 : static_cast<double>(k);
    term1[k] = nij / n;
    log_nnij[k] = std::log(n) + std::log(nij);
    gln_nij[k] = std::lgamma(nij + 1);
  }
  const double gln_n = std::lgamma(n + 1);
  double total = 0.0;
  for (int64_t ai : a) {
    const double da = static_cast<double>(ai);
    const double log_a = std::log(da);
    const double gln_a = std::lgamma(da + 1);
    const double gln_na = std::lgamma(n - da + 1);
    for (int64_t bj : b) {
      const double db = static_cast<double>(bj);
      const double log_b = std::log(db);
      const double head = gln_a + std::lgamma(db + 1) + gln_na + std::lgamma(n - db + 1) - gln_n;
      const int64_t start = std::max<int64_t>(ai - s.n + bj, 1);
      const int64_t end = std::min(ai, bj) + 1;
      for (int64_t nij = start; nij < end; ++nij) {
        const double term2 = log_nnij[nij] - log_a - log_b;
        const double gln = head - gln_nij[nij] - std::lgamma(static_cast<double>(ai - nij + 1)) -
                           std::lgamma(static_cast<double>(bj - nij + 1)) -
                           std::lgamma(n - da - db + static_cast<double>(nij) + 1);
        total += term1[nij] * term2 * std::exp(gln);
      }
    }
  }
  return total;
}

double generalized_average(double u, double v, AverageMethod m) {
  switch (m) {
    case AverageMethod::kMin:
      return std::min(u, v);
    case AverageMethod::kGeometric:
      return std::sqrt(u * v);
    case AverageMethod::kArithmetic:
      return (u + v) / 2.0;
    case AverageMethod::kMax:
      return std::max(u, v);
  }
  TORCH_INTERNAL_ASSERT(false, "unknown AverageMethod");
  return 0.0;
}

}  // namespace

double entropy(const torch::Tensor& labels) { return entropy_of_counts(detail::label_counts(labels, "labels")); }

double mutual_info_score(const torch::Tensor& labels_true, const torch::Tensor& labels_pred) {
  return mutual_info(detail::sparse_contingency(labels_true, labels_pred));
}

double expected_mutual_information(const torch::Tensor& labels_true, const torch::Tensor& labels_pred) {
  return emi(detail::sparse_contingency(labels_true, labels_pred));
}

double normalized_mutual_info_score(const torch::Tensor& labels_true, const torch::Tensor& labels_pred,
                                    AverageMethod average) {
  const auto s = detail::sparse_contingency(labels_true, labels_pred);
  if (s.row_sums.size() == 1 && s.col_sums.size() == 1) return 1.0;
  const double mi = mutual_info(s);
  if (mi == 0.0) return 0.0;
  return mi / generalized_average(entropy_of_counts(s.row_sums), entropy_of_counts(s.col_sums), average);
}

double adjusted_mutual_info_score(const torch::Tensor& labels_true, const torch::Tensor& labels_pred,
                                  AverageMethod average) {
  const auto s = detail::sparse_contingency(labels_true, labels_pred);
  if (s.row_sums.size() == 1 && s.col_sums.size() == 1) return 1.0;
  const double mi = mutual_info(s);
  const double e = emi(s);
  const double normalizer =
      generalized_average(entropy_of_counts(s.row_sums), entropy_of_counts(s.col_sums), average);
  double denominator = normalizer - e;
  denominator = denominator < 0 ? std::min(denominator, -kEps) : std::max(denominator, kEps);
  return (mi - e) / denominator;
}

HomogeneityCompleteness homogeneity_completeness_v_measure(const torch::Tensor& labels_true,
                                                           const torch::Tensor& labels_pred, double beta) {
  GRADLENS_CHECK(beta >= 0 && std::isfinite(beta), "homogeneity_completeness_v_measure: beta must be a finite ",
                 "value >= 0, got ", beta);
  const auto s = detail::sparse_contingency(labels_true, labels_pred);
  const double h_c = entropy_of_counts(s.row_sums);
  const double h_k = entropy_of_counts(s.col_sums);
  const double mi = mutual_info(s);
  HomogeneityCompleteness r;
  r.homogeneity = h_c != 0.0 ? mi / h_c : 1.0;
  r.completeness = h_k != 0.0 ? mi / h_k : 1.0;
  r.v_measure = r.homogeneity + r.completeness == 0.0
                    ? 0.0
                    : (1 + beta) * r.homogeneity * r.completeness / (beta * r.homogeneity + r.completeness);
  return r;
}

}  // namespace gradlens::metrics
