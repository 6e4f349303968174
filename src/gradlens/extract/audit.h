// Validity audit of an extracted representation: is it degenerate (a fixed
// function of the class, e.g. Grad-CAM weights of a GAP + linear head), and
// does it carry the true label by construction?
//
// Background: for a head z = W mean_hw(A) + b, d z_c / d A_k(i,j) = W[c,k]/(H W)
// for every pixel, so Grad-CAM weights at the last layer with target c are
// exactly W[c] / (H W): at most K distinct rows, and clustering them only
// returns the target labels. With target "loss" they are (p - onehot(y)) W /
// (H W), a linear image of the K-dim logit gradient. Representations computed
// with the true label (targets true/loss, label true) point along the label:
// row-normalised, they separate by label by construction.
#pragma once

#include <torch/types.h>

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace gradlens::extract {

struct AuditOptions {
  /// The head identity holds when max|R - E| <= identity_rtol * max|E|
  /// (float32 rounding of the same quantity gives ~1e-7 relative).
  double identity_rtol = 1e-5;
  /// Rank tolerance eps: tol = s_max * max(rows, cols) * eps, as
  /// numpy.linalg.matrix_rank; 0 = float32 machine epsilon (1.19e-7), since
  /// representations are stored as float32.
  double rank_eps = 0.0;
  /// The rank is computed (in float64) from the first min(N, rank_rows) rows.
  int64_t rank_rows = 5000;
  /// Warn about label leakage when a label-informed representation's
  /// nearest-class-mean accuracy reaches this value.
  double leakage_accuracy = 0.95;
};

/// What the audit knows about how a representation was made.
struct AuditInput {
  std::string name;               ///< e.g. "gradcam-weights.true"
  bool uses_true_labels = false;  ///< target true/loss or label true
  /// Optional expected matrix [N, D] of the head identity (see
  /// gradcam_head_identity()); undefined = not applicable.
  torch::Tensor head_identity;
};

struct AuditResult {
  std::string name;
  int64_t rows = 0, cols = 0;
  /// Bitwise-distinct rows (exact: hashed, then compared byte for byte).
  int64_t distinct_rows = 0;
  int64_t zero_rows = 0;  ///< rows that are all zero (cosine undefined)
  int64_t rank = 0;       ///< numerical rank of the first rank_rows rows
  int64_t rank_rows = 0;  ///< rows the rank was computed from
  double rank_tol = 0.0;
  double top_singular_value = 0.0;
  bool identity_checked = false;
  double identity_max_abs_diff = std::numeric_limits<double>::quiet_NaN();
  double identity_rel_diff = std::numeric_limits<double>::quiet_NaN();  ///< / max|E|
  bool equals_head_identity = false;
  bool uses_true_labels = false;
  /// Leakage check: accuracy of the nearest class mean (Euclidean, on
  /// row-normalised vectors, class means from all rows) against the labels,
  /// and the majority-class rate for reference. NaN without labels.
  double ncm_accuracy = std::numeric_limits<double>::quiet_NaN();
  double majority_accuracy = std::numeric_limits<double>::quiet_NaN();
  /// equals_head_identity, or at most num_classes distinct rows (N > K), or
  /// rank 0.
  bool degenerate = false;
  /// Computed with the true labels (uses_true_labels).
  bool label_informed = false;
  std::vector<std::string> warnings;  ///< one line each, naming the representation
};

/// The head identity of Grad-CAM weights: logit_grad [N, K] @ fc_weight
/// [K, D] / map_hw, i.e. W[c] / (H W) for a one-hot seed on class c.
torch::Tensor gradcam_head_identity(const torch::Tensor& fc_weight, const torch::Tensor& logit_grad,
                                    int64_t map_hw);

/// Audits `x` [N, D] (float; any device; moved to CPU). `labels`: int64 [N]
/// in [0, num_classes), or undefined to skip the leakage check.
/// Throws c10::Error naming the representation when x is not 2-D float,
/// holds NaN/Inf (naming the first bad row), the label count differs from N,
/// or head_identity has a different shape.
AuditResult audit_representation(const torch::Tensor& x, const torch::Tensor& labels,
                                 int64_t num_classes, const AuditInput& input,
                                 const AuditOptions& opts = {});

/// JSON object with every field of AuditResult (NaN written as null).
void to_json(nlohmann::json& j, const AuditResult& r);
/// Reads what to_json writes; missing fields keep their defaults, nulls read
/// as NaN, "label_informed" defaults to "uses_true_labels".
void from_json(const nlohmann::json& j, AuditResult& r);

}  // namespace gradlens::extract
