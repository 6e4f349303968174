// Optimal one-to-one matching (Hungarian / Kuhn-Munkres) and clustering
// accuracy under the best cluster -> class matching.
#pragma once

#include <torch/types.h>

#include <cstdint>

namespace gradlens::metrics {

/// A matching of min(r, c) rows to distinct columns.
struct Assignment {
  torch::Tensor rows;  ///< [m] int64, increasing
  torch::Tensor cols;  ///< [m] int64, cols[i] is matched to rows[i]
  double total = 0.0;  ///< sum of cost[rows[i], cols[i]]
};

/// Minimum-cost (or maximum with maximize = true) assignment of a
/// rectangular [r, c] cost matrix, as scipy.optimize.linear_sum_assignment:
/// min(r, c) pairs, each row and column used at most once. O(m^2 M) with
/// m = min(r, c), M = max(r, c) (shortest augmenting paths with potentials).
/// Throws c10::Error if cost is not a 2-D finite floating/integer matrix.
/// An empty matrix gives an empty assignment.
Assignment linear_sum_assignment(const torch::Tensor& cost, bool maximize = false);

struct ClusterAccuracy {
  double accuracy = 0.0;         ///< correct / N
  int64_t correct = 0;           ///< samples whose cluster is matched to their class
  torch::Tensor matched_clusters;  ///< [m] int64 cluster label values
  torch::Tensor matched_classes;   ///< [m] int64 class label values (same order)
};

/// Accuracy of a clustering under the optimal one-to-one cluster -> class
/// matching (maximum total contingency). With more clusters than classes the
/// unmatched clusters count as wrong (and vice versa). Labels: see
/// gradlens/metrics/contingency.h (throws the same errors).
ClusterAccuracy cluster_accuracy(const torch::Tensor& labels_true, const torch::Tensor& labels_pred);

}  // namespace gradlens::metrics
