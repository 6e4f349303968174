// Cosine similarity of representations within and between classes (the seed's
// Cos_Sim statistic and the class x class mean cosine matrix).
#pragma once

#include <torch/types.h>

#include <cstdint>

namespace gradlens::analysis {

struct CosineOptions {
  /// Rows converted to float64 and normalised at a time; memory is
  /// O(chunk_rows * d + C * d). Must be >= 1.
  int64_t chunk_rows = 8192;
};

/// Cosine statistics of `u` grouped by `labels`. Conventions:
/// - cos(a, b) = a.b / (|a| |b|); cos with a zero vector (|a| == 0) is defined
///   as 0 (such rows count in `zero_vectors`, and still count as samples).
/// - within[c] = mean over pairs i < j of class c of cos(u_i, u_j); classes
///   with fewer than 2 samples have no pair: within[c] = NaN, they are skipped
///   and counted in `classes_skipped`.
/// - cos_sim = mean of within[c] over the classes that have pairs (the seed's
///   Cos_Sim).
/// - class_matrix[a][b] (a != b) = mean over i in a, j in b of cos(u_i, u_j);
///   class_matrix[c][c] = within[c].
/// Computation: with v_i = u_i / |u_i| (0 for zero rows) and s_c = sum of v_i
/// over class c, sum_{i in a, j in b} cos = s_a . s_b, and the pairs i < j of
/// class c sum to (|s_c|^2 - nonzero_c) / 2. So no N x N matrix is ever formed:
/// rows are processed in blocks of `chunk_rows` (float64 accumulation) and the
/// cost is O(N d + C^2 d).
struct CosineResult {
  double cos_sim = 0.0;
  torch::Tensor classes;       ///< [C] int64, sorted distinct labels
  torch::Tensor class_counts;  ///< [C] int64, samples per class
  torch::Tensor within;        ///< [C] float64, NaN where a class has < 2 samples
  torch::Tensor class_matrix;  ///< [C, C] float64, symmetric
  int64_t classes_used = 0;     ///< classes with >= 2 samples (averaged in cos_sim)
  int64_t classes_skipped = 0;  ///< classes with < 2 samples
  int64_t zero_vectors = 0;     ///< rows with norm exactly 0
};

/// u: [N, d] float32/float64, labels: [N] integer (any values). Outputs are
/// float64/int64 on u's device.
/// Throws c10::Error if u is not a finite non-empty 2-D float matrix (the
/// message names the first non-finite row), if labels is not 1-D integer with
/// N entries, if chunk_rows < 1, or if no class has 2 samples (cos_sim would be
/// undefined).
CosineResult class_cosine_similarity(const torch::Tensor& u, const torch::Tensor& labels,
                               const CosineOptions& opts = {});

/// Pairwise cosine similarities: a [n, d], b [m, d] -> [n, m] float64, with
/// cos = 0 against zero rows. Materialises n x m: for small inputs and tests.
/// Throws c10::Error on non-finite or mis-shaped inputs.
torch::Tensor pairwise_cosine(const torch::Tensor& a, const torch::Tensor& b);

}  // namespace gradlens::analysis
