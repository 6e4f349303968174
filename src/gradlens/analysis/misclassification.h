// Learning from misclassifications: the confusion matrix, nearest neighbours
// in a representation space, and scores that rank likely label errors, with
// the measures (AUROC, precision@k) used to validate them on flipped labels.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace gradlens::analysis {

/// counts[t][p] = number of samples with true label t predicted as p.
/// labels, preds: 1-D integer [N] in [0, num_classes). Returns int64 [K, K].
/// Throws c10::Error on mismatched lengths or labels out of range.
torch::Tensor confusion_matrix(const torch::Tensor& labels, const torch::Tensor& preds,
                               int64_t num_classes);

/// Per-class accuracy (recall) from a confusion matrix: diag / row sums,
/// float64 [K], NaN for a class without samples.
torch::Tensor per_class_accuracy(const torch::Tensor& confusion);

/// The k nearest neighbours of each query row among all rows of `x`, by
/// cosine similarity (largest first; ties to the lower index; a row is never
/// its own neighbour; cos with a zero row is 0). Chunked matrix products in
/// float64: memory O(chunk_rows * N).
struct Neighbors {
  torch::Tensor indices;       ///< int64 [M, k]
  torch::Tensor similarities;  ///< float64 [M, k]
};

/// x: [N, D] float; queries: int64 [M] row indices of x (undefined = all
/// rows). Throws c10::Error if x is not a finite 2-D float matrix (names the
/// first bad row), k < 1 or k >= N, or a query is out of range.
Neighbors cosine_neighbors(const torch::Tensor& x, int64_t k, const torch::Tensor& queries = {},
                           int64_t chunk_rows = 2048);

/// Scores of how likely each given label is wrong; larger = more suspicious.
struct LabelErrorScores {
  /// 1 - p[y]: cleanlab's self-confidence, negated.
  torch::Tensor self_confidence;
  /// -(p[y] - max_{k != y} p[k]): cleanlab's normalised margin, negated.
  torch::Tensor normalized_margin;
  /// Fraction of the k nearest neighbours (cosine, in a label-free embedding)
  /// whose given label differs from the sample's, each neighbour weighted by
  /// its similarity clipped at 0 (plain fraction when all weights are 0).
  /// Undefined when no embedding was given.
  torch::Tensor neighbor_disagreement;
  /// The names above, in this order, for the defined scores.
  std::vector<std::string> names() const;
  const torch::Tensor& get(const std::string& name) const;
};

/// probs: [N, K] rows summing to 1 (softmax outputs); labels: int64 [N] the
/// given (possibly noisy) labels; embedding: optional [N, D] label-free
/// representation (e.g. param-grad with predicted labels); k_neighbors >= 1.
/// All scores are float64 [N]. Throws c10::Error on non-finite or mis-shaped
/// inputs, rows of probs that do not sum to 1 (1e-3), or K < 2.
LabelErrorScores label_error_scores(const torch::Tensor& probs, const torch::Tensor& labels,
                                    const torch::Tensor& embedding = {}, int64_t k_neighbors = 10);

/// Area under the ROC curve of `scores` at separating positives (is_error
/// true) from negatives: the Mann-Whitney statistic, ties counting 1/2.
/// Throws c10::Error if there are no positives or no negatives.
double auroc(const torch::Tensor& scores, const torch::Tensor& is_error);

/// Fraction of positives among the k highest scores (ties broken by the
/// lower index). Throws c10::Error if k < 1 or k > N.
double precision_at_k(const torch::Tensor& scores, const torch::Tensor& is_error, int64_t k);

/// The first m entries of a partial Fisher-Yates shuffle of [0, n) drawn from
/// `rng` (std::uniform_int_distribution): m distinct indices, a uniform
/// sample without replacement, in draw order. 0 <= m <= n.
std::vector<int64_t> sample_without_replacement(int64_t n, int64_t m, std::mt19937_64& rng);

/// Flips round(fraction * N) labels, chosen without replacement by a seeded
/// generator, each to a different class drawn uniformly from the other K-1.
struct FlippedLabels {
  torch::Tensor labels;   ///< int64 [N], the noisy labels
  torch::Tensor flipped;  ///< bool [N], true where the label was changed
};
FlippedLabels flip_labels(const torch::Tensor& labels, int64_t num_classes, double fraction,
                          uint64_t seed);

}  // namespace gradlens::analysis
