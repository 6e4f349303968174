// Information-theoretic comparison of two labelings (natural logarithms), as
// scikit-learn 1.2: entropy, mutual information, NMI, AMI, homogeneity,
// completeness and V-measure. Label conventions and errors: see
// gradlens/metrics/contingency.h.
#pragma once

#include <torch/types.h>

namespace gradlens::metrics {

/// Normaliser of NMI/AMI: a generalised mean of H(true) and H(pred).
enum class AverageMethod { kArithmetic, kGeometric, kMin, kMax };

/// Shannon entropy (nats) of a labeling; 0 for a single class.
/// Throws c10::Error if `labels` is not a non-empty 1-D integer tensor.
double entropy(const torch::Tensor& labels);

/// Mutual information I(true; pred) in nats, >= 0.
double mutual_info_score(const torch::Tensor& labels_true, const torch::Tensor& labels_pred);

/// Expected mutual information of two random labelings with the marginals of
/// the given ones (hypergeometric model; Vinh, Epps & Bailey 2010), as
/// sklearn's expected_mutual_information. 0 if either has a single class.
/// Cost O(n_classes * n_clusters * max overlap).
double expected_mutual_information(const torch::Tensor& labels_true, const torch::Tensor& labels_pred);

/// MI / mean(H(true), H(pred)). 1 when both have exactly one class, 0 when
/// MI == 0.
double normalized_mutual_info_score(const torch::Tensor& labels_true, const torch::Tensor& labels_pred,
                                    AverageMethod average = AverageMethod::kArithmetic);

/// (MI - E[MI]) / (mean(H(true), H(pred)) - E[MI]); 1 for identical
/// partitions, about 0 for independent ones, may be negative. The denominator
/// is kept at least float64 epsilon in magnitude, as sklearn.
double adjusted_mutual_info_score(const torch::Tensor& labels_true, const torch::Tensor& labels_pred,
                                  AverageMethod average = AverageMethod::kArithmetic);

struct HomogeneityCompleteness {
  double homogeneity = 1.0;   ///< MI / H(true), 1 if H(true) == 0
  double completeness = 1.0;  ///< MI / H(pred), 1 if H(pred) == 0
  double v_measure = 1.0;     ///< (1+beta) h c / (beta h + c), 0 if h + c == 0
};

/// Homogeneity, completeness and V-measure (beta weights homogeneity; 1 is
/// the harmonic mean). Throws c10::Error also for beta < 0.
HomogeneityCompleteness homogeneity_completeness_v_measure(const torch::Tensor& labels_true,
                                                           const torch::Tensor& labels_pred,
                                                           double beta = 1.0);

}  // namespace gradlens::metrics
