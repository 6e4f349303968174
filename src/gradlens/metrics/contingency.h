// Comparing two labelings by counting: the contingency matrix, the pair
// confusion matrix and the adjusted Rand index (as scikit-learn 1.2).
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <vector>

namespace gradlens::metrics {

/// Labels in all of gradlens::metrics are 1-D integer tensors (any values,
/// not necessarily 0..k-1, any device); class i is the i-th smallest value.
/// Every function taking (labels_true, labels_pred) throws c10::Error if
/// either is not a 1-D integer tensor, if their lengths differ, or if they
/// are empty.

/// [n_classes, n_clusters] int64 counts: entry (i, j) is the number of
/// samples with the i-th smallest true label and the j-th smallest predicted
/// label (sklearn.metrics.cluster.contingency_matrix, dense). Memory is
/// n_classes * n_clusters; the metrics below use a sparse form internally.
torch::Tensor contingency_matrix(const torch::Tensor& labels_true, const torch::Tensor& labels_pred);

/// [[tn, fp], [fn, tp]] int64 counts over ordered sample pairs
/// (sklearn.metrics.cluster.pair_confusion_matrix).
torch::Tensor pair_confusion_matrix(const torch::Tensor& labels_true, const torch::Tensor& labels_pred);

/// Adjusted Rand index in [-0.5, 1]; 1 for identical partitions (also when
/// fn == fp == 0), invariant to label renaming. Exact integer arithmetic
/// (128-bit) as sklearn's Python integers.
double adjusted_rand_score(const torch::Tensor& labels_true, const torch::Tensor& labels_pred);

namespace detail {

/// Sparse contingency table used by the metrics: the non-zero cells in
/// row-major order, with the row (class) and column (cluster) sums.
struct SparseContingency {
  int64_t n = 0;
  std::vector<int64_t> row_sums, col_sums;
  std::vector<int64_t> rows, cols, values;
};

/// Validates the pair of labelings (throws as documented above) and counts.
SparseContingency sparse_contingency(const torch::Tensor& labels_true, const torch::Tensor& labels_pred);

/// Validates one labeling and returns its class counts (sorted by label).
std::vector<int64_t> label_counts(const torch::Tensor& labels, const char* name);

}  // namespace detail

}  // namespace gradlens::metrics
