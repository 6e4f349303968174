// Training labels that look wrong: scores of every training image from its
// training dynamics (train/dynamics.h) and the measures of how well a score
// finds flipped labels (the benchmark of docs/label-noise.md). Every score
// is "larger = more suspicious", float64 [N].
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace gradlens::analysis {

/// Negated area under the margin (Pleiss et al. 2020): -(1/E) sum_e margin[e].
/// margin: float [E, N], the assigned logit minus the largest other logit.
torch::Tensor aum_score(const torch::Tensor& margin);

/// The name of the extra class of AUM's threshold samples.
inline constexpr const char* kThresholdClassName = "(threshold samples)";

/// AUM's threshold samples (Pleiss et al. 2020): a uint8 [n] mask of
/// floor(n / (num_classes + 1)) images drawn without replacement by a
/// generator seeded with `seed`, to be relabelled as an extra class.
torch::Tensor threshold_samples(int64_t n, int64_t num_classes, uint64_t seed);

/// The AUM threshold: the `percentile` (in [0, 100], Pleiss et al.: 99) of
/// the threshold samples' AUM, i.e. of -aum_score over `threshold` (a uint8
/// or bool [N] mask, with at least one sample). An image whose AUM is at or
/// below it (aum_score >= -threshold) is flagged as mislabelled.
double aum_threshold(const torch::Tensor& aum_scores, const torch::Tensor& threshold, double percentile = 99.0);

/// Forgetting events (Toneva et al. 2019): the number of epochs e >= 2 where
/// the image was classified correctly at e-1 and wrongly at e; an image never
/// classified correctly counts E (more than any learned image can reach, as
/// the paper ranks never-learned images above all). correct: uint8/bool [E, N].
torch::Tensor forgetting_score(const torch::Tensor& correct);

/// 1 - confidence, with confidence the mean over epochs of p(given label)
/// (data maps, Swayamdipta et al. 2020). p_label: float [E, N].
torch::Tensor low_confidence_score(const torch::Tensor& p_label);

/// Variability: the population standard deviation over epochs of p(given
/// label) (data maps). p_label: float [E, N], E >= 1.
torch::Tensor variability_score(const torch::Tensor& p_label);

/// EL2N (Paul et al. 2021) at one epoch: el2n[epoch - 1], the error norm
/// ||softmax - onehot||_2 (1-based epoch in [1, E]). Throws gradlens::Error
/// naming --el2n-epoch otherwise.
torch::Tensor el2n_score(const torch::Tensor& el2n, int64_t epoch);

/// Share of the positives (is_error true) found among the first
/// ceil(fraction * N) images of the ranking by `scores` (largest first, ties
/// to the lower index): recall at a fraction inspected. fraction in (0, 1].
/// Throws gradlens::Error when there is no positive or the fraction is out
/// of range.
double found_at_fraction(const torch::Tensor& scores, const torch::Tensor& is_error, double fraction);

/// The whole curve: found[i] = found_at_fraction(scores, is_error, (i+1)/points),
/// float64 [points].
torch::Tensor found_curve(const torch::Tensor& scores, const torch::Tensor& is_error, int64_t points = 100);

/// The order that ranks `scores` largest first, ties to the lower index
/// (int64 [N]).
torch::Tensor ranking_order(const torch::Tensor& scores);

}  // namespace gradlens::analysis
