#include "gradlens/metrics/matching.h"
#include <torch/types.h>

#include "gradlens/core/check.h"
#include "gradlens/metrics/contingency.h"

#include <limits>
#include <vector>

namespace gradlens::metrics {

namespace {

// Shortest augmenting path Hungarian algorithm for an n x m cost matrix,
// n <= m (row-major `a`). Returns, for each row, its column.
std::vector<int64_t> hungarian(const std::vector<double>& a, int64_t n, int64_t m) {
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<double> u(n + 1, 0.0), v(m + 1, 0.0), minv(m + 1);
  std::vector<int64_t> p(m + 1, 0), way(m + 1, 0);  // p[j]: row (1-based) matched to column j
  std::vector<char> used(m + 1);
  for (int64_t i = 1; i <= n; ++i) {
    p[0] = i;
    int64_t j0 = 0;
    std::fill(minv.begin(), minv.end(), inf);
    std::fill(used.begin(), used.end(), 0);
    do {
      used[j0] = 1;
      const int64_t i0 = p[j0];
      double delta = inf;
      int64_t j1 = 0;
      for (int64_t j = 1; j <= m; ++j) {
        if (used[j]) continue;
        const double cur = a[(i0 - 1) * m + (j - 1)] - u[i0] - v[j];
        if (cur < minv[j]) {
          minv[j] = cur;
          way[j] = j0;
        }
        if (minv[j] < delta) {
          delta = minv[j];
          j1 = j;
        }
      }
      TORCH_INTERNAL_ASSERT(j1 != 0, "hungarian: no augmenting column");
      for (int64_t j = 0; j <= m; ++j) {
        if (used[j]) {
          u[p[j]] += delta;
          v[j] -= delta;
        } else {
          minv[j] -= delta;
        }
      }
      j0 = j1;
    } while (p[j0] != 0);
    do {
      const int64_t j1 = way[j0];
      p[j0] = p[j1];
      j0 = j1;
    } while (j0 != 0);
  }
  std::vector<int64_t> row_to_col(n, -1);
  for (int64_t j = 1; j <= m; ++j) {
    if (p[j] != 0) row_to_col[p[j] - 1] = j - 1;
  }
  return row_to_col;
}

}  // namespace

Assignment linear_sum_assignment(const torch::Tensor& cost, bool maximize) {
  GRADLENS_CHECK(cost.defined() && cost.dim() == 2, "linear_sum_assignment: cost must be a 2-D matrix, got ",
                 cost.defined() ? cost.sizes() : c10::IntArrayRef{});
  GRADLENS_CHECK(!at::isComplexType(cost.scalar_type()) && cost.scalar_type() != torch::kBool,
                 "linear_sum_assignment: cost must be real, got ", cost.scalar_type());
  const torch::Tensor c64 = cost.to(torch::kCPU, torch::kFloat64).contiguous();
  GRADLENS_CHECK(torch::isfinite(c64).all().item<bool>(),
                 "linear_sum_assignment: cost contains NaN or Inf; all entries must be finite");
  const int64_t r = c64.size(0);
  const int64_t c = c64.size(1);
  Assignment out;
  if (r == 0 || c == 0) {
    out.rows = torch::zeros({0}, torch::kInt64);
    out.cols = torch::zeros({0}, torch::kInt64);
    return out;
  }
  const bool transpose = r > c;
  const torch::Tensor work = (transpose ? c64.t() : c64).contiguous() * (maximize ? -1.0 : 1.0);
  const int64_t n = work.size(0);
  const int64_t m = work.size(1);
  const std::vector<double> a(work.data_ptr<double>(), work.data_ptr<double>() + n * m);
  const std::vector<int64_t> match = hungarian(a, n, m);
  std::vector<int64_t> rows, cols;
  if (!transpose) {
    for (int64_t i = 0; i < n; ++i) {
      rows.push_back(i);
      cols.push_back(match[i]);
    }
  } else {
    std::vector<int64_t> col_of_row(r, -1);
    for (int64_t i = 0; i < n; ++i) col_of_row[match[i]] = i;
    for (int64_t i = 0; i < r; ++i) {
      if (col_of_row[i] < 0) continue;
      rows.push_back(i);
      cols.push_back(col_of_row[i]);
    }
  }
  const double* cp = c64.data_ptr<double>();
  for (size_t i = 0; i < rows.size(); ++i) out.total += cp[rows[i] * c + cols[i]];
  out.rows = torch::tensor(rows, torch::kInt64);
  out.cols = torch::tensor(cols, torch::kInt64);
  return out;
}

ClusterAccuracy cluster_accuracy(const torch::Tensor& labels_true, const torch::Tensor& labels_pred) {
  const torch::Tensor table = contingency_matrix(labels_true, labels_pred);  // validates
  const Assignment a = linear_sum_assignment(table, /*maximize=*/true);
  torch::Tensor classes, clusters;
  std::tie(classes, std::ignore, std::ignore) = at::_unique2(labels_true.to(torch::kCPU, torch::kInt64), true);
  std::tie(clusters, std::ignore, std::ignore) = at::_unique2(labels_pred.to(torch::kCPU, torch::kInt64), true);
  ClusterAccuracy r;
  r.correct = static_cast<int64_t>(std::llround(a.total));
  r.accuracy = static_cast<double>(r.correct) / static_cast<double>(labels_true.numel());
  r.matched_classes = classes.index_select(0, a.rows);
  r.matched_clusters = clusters.index_select(0, a.cols);
  return r;
}

}  // namespace gradlens::metrics
