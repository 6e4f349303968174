#include "gradlens/analysis/label_noise.h"
#include <torch/types.h>

#include <cmath>
#include <random>
#include <vector>

#include "gradlens/analysis/misclassification.h"
#include "gradlens/core/check.h"

namespace gradlens::analysis {

namespace {

torch::Tensor checked_history(const torch::Tensor& t, const char* what) {
  GRADLENS_CHECK(t.defined() && t.dim() == 2 && t.size(0) >= 1 && t.size(1) >= 1, what,
                 ": an [epochs, images] matrix expected, got ", t.defined() ? t.sizes() : c10::IntArrayRef{});
  auto d = t.to(torch::kFloat64).cpu();
  GRADLENS_CHECK(torch::isfinite(d).all().item<bool>(), what, " holds NaN or Inf");
  return d;
}

torch::Tensor checked_scores(const torch::Tensor& scores, const torch::Tensor& is_error) {
  GRADLENS_CHECK(scores.dim() == 1 && is_error.dim() == 1 && scores.size(0) == is_error.size(0) &&
                     scores.size(0) >= 1,
                 "scores and flags of the same length N >= 1 expected, got ", scores.sizes(), " and ",
                 is_error.sizes());
  return scores.to(torch::kFloat64).cpu();
}

}  // namespace

torch::Tensor aum_score(const torch::Tensor& margin) { return -checked_history(margin, "margin").mean(0); }

torch::Tensor threshold_samples(int64_t n, int64_t num_classes, uint64_t seed) {
  GRADLENS_CHECK(n >= 1 && num_classes >= 2, "threshold samples need >= 1 image and >= 2 classes");
  const int64_t m = n / (num_classes + 1);
  GRADLENS_CHECK(m >= 1, "--aum-threshold-samples: ", n, " training images of ", num_classes,
                 " classes leave no threshold sample (floor(N / (K + 1)) = 0)");
  std::mt19937_64 rng(seed ^ 0x7A11D0C5ULL);
  auto mask = torch::zeros({n}, torch::kUInt8);
  auto* a = mask.data_ptr<uint8_t>();
  for (const int64_t i : sample_without_replacement(n, m, rng)) a[i] = 1;
  return mask;
}

double aum_threshold(const torch::Tensor& aum_scores, const torch::Tensor& threshold, double percentile) {
  GRADLENS_CHECK(aum_scores.dim() == 1 && threshold.dim() == 1 && aum_scores.size(0) == threshold.size(0),
                 "AUM threshold: scores and mask of the same length expected");
  GRADLENS_CHECK(percentile >= 0 && percentile <= 100, "AUM threshold: the percentile must be in [0, 100]");
  const auto aum = aum_scores.to(torch::kFloat64).cpu().neg().masked_select(threshold.to(torch::kBool).cpu());
  GRADLENS_CHECK(aum.numel() >= 1, "AUM threshold: no threshold sample");
  // numpy's default (linear) percentile.
  const auto sorted = std::get<0>(aum.sort());
  const double pos = percentile / 100.0 * static_cast<double>(aum.numel() - 1);
  const auto lo = static_cast<int64_t>(std::floor(pos));
  const int64_t hi = std::min<int64_t>(lo + 1, aum.numel() - 1);
  const double a = sorted[lo].item<double>(), b = sorted[hi].item<double>();
  return a + (b - a) * (pos - static_cast<double>(lo));
}

torch::Tensor forgetting_score(const torch::Tensor& correct) {
  const auto c = checked_history(correct, "correct").gt(0.5);
  const int64_t e = c.size(0);
  auto events = torch::zeros({c.size(1)}, torch::kFloat64);
  if (e >= 2) events = (c.slice(0, 0, e - 1) & c.slice(0, 1, e).logical_not()).sum(0).to(torch::kFloat64);
  const auto never = c.any(0).logical_not();
  return events.masked_fill(never, static_cast<double>(e));
}

torch::Tensor low_confidence_score(const torch::Tensor& p_label) {
  return 1.0 - checked_history(p_label, "p_label").mean(0);
}

torch::Tensor variability_score(const torch::Tensor& p_label) {
  const auto p = checked_history(p_label, "p_label");
  return (p - p.mean(0, true)).pow(2).mean(0).sqrt();
}

torch::Tensor el2n_score(const torch::Tensor& el2n, int64_t epoch) {
  const auto d = checked_history(el2n, "el2n");
  GRADLENS_CHECK_OPTION(epoch >= 1 && epoch <= d.size(0), "--el2n-epoch ", epoch, " is not one of the ",
                        d.size(0), " recorded epochs; give a value in [1, ", d.size(0), "]");
  return d[epoch - 1].clone();
}

torch::Tensor ranking_order(const torch::Tensor& scores) {
  GRADLENS_CHECK(scores.dim() == 1, "scores [N] expected, got ", scores.sizes());
  const auto s = scores.to(torch::kFloat64).cpu();
  GRADLENS_CHECK(!torch::isnan(s).any().item<bool>(), "the scores hold NaN");
  // Stable sort of -s: largest first, ties keep the lower index first.
  return std::get<1>(s.neg().sort(/*stable=*/true, 0, false));
}

double found_at_fraction(const torch::Tensor& scores, const torch::Tensor& is_error, double fraction) {
  const auto s = checked_scores(scores, is_error);
  GRADLENS_CHECK(fraction > 0.0 && fraction <= 1.0, "the fraction inspected must be in (0, 1], got ", fraction);
  const auto pos = is_error.to(torch::kBool).cpu();
  const int64_t positives = pos.sum().item<int64_t>();
  GRADLENS_CHECK(positives > 0, "no flipped label to find");
  const int64_t n = s.size(0);
  const int64_t k = std::min<int64_t>(n, static_cast<int64_t>(std::ceil(fraction * static_cast<double>(n) - 1e-9)));
  const auto top = ranking_order(s).slice(0, 0, k);
  return static_cast<double>(pos.index_select(0, top).sum().item<int64_t>()) / static_cast<double>(positives);
}

torch::Tensor found_curve(const torch::Tensor& scores, const torch::Tensor& is_error, int64_t points) {
  const auto s = checked_scores(scores, is_error);
  GRADLENS_CHECK(points >= 1, "a curve needs >= 1 point");
  const auto pos = is_error.to(torch::kBool).cpu();
  const int64_t positives = pos.sum().item<int64_t>();
  GRADLENS_CHECK(positives > 0, "no flipped label to find");
  const int64_t n = s.size(0);
  const auto cum = pos.index_select(0, ranking_order(s)).to(torch::kFloat64).cumsum(0);
  auto out = torch::empty({points}, torch::kFloat64);
  for (int64_t i = 0; i < points; ++i) {
    const double f = static_cast<double>(i + 1) / static_cast<double>(points);
    const int64_t k = std::max<int64_t>(
        1, std::min<int64_t>(n, static_cast<int64_t>(std::ceil(f * static_cast<double>(n) - 1e-9))));
    out[i] = cum[k - 1].item<double>() / static_cast<double>(positives);
  }
  return out;
}

}  // namespace gradlens::analysis
