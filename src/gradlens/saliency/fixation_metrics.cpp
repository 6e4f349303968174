#include "gradlens/saliency/fixation_metrics.h"
#include <torch/torch.h>

#include "gradlens/core/check.h"
#include "gradlens/saliency/map_checks.h"

#include <algorithm>
#include <random>

namespace gradlens::saliency {
namespace {

using detail::MapView;

/// Flat indices of the pixels > 0 of one binary map; checks its values.
std::vector<int64_t> positive_pixels(const double* f, int64_t size, int64_t image, const char* fn,
                                     const char* name) {
  std::vector<int64_t> idx;
  for (int64_t i = 0; i < size; ++i) {
    GRADLENS_CHECK(std::isfinite(f[i]) && f[i] >= 0, "saliency::", fn, ": ", name, " of image ",
                   image, " has the value ", f[i], " at pixel ", i,
                   "; a fixation map must be finite and non-negative (> 0 marks a fixation)");
    if (f[i] > 0) idx.push_back(i);
  }
  return idx;
}

void check_has_fixations(const std::vector<int64_t>& fixated, int64_t image, const char* fn) {
  GRADLENS_CHECK(!fixated.empty(), "saliency::", fn, ": fixations of image ", image,
                 " has no fixated pixel (no value > 0); the metric is undefined for it, drop ",
                 "the image or give it at least one fixation");
}

/// Trapezoid rule over the points (x[i], y[i]), as numpy.trapz / MATLAB trapz.
double trapezoid(const std::vector<double>& x, const std::vector<double>& y) {
  double area = 0;
  for (size_t i = 1; i < x.size(); ++i) area += (x[i] - x[i - 1]) * (y[i] + y[i - 1]) / 2.0;
  return area;
}

/// MATLAB's a:d:b for a = 0, d > 0, b >= 0, built as MATLAB's colon operator
/// does (C. Moler, "colonop"): the count with a 2*eps*|b| tolerance and the
/// values symmetric about the midpoint, the upper half counted down from b.
std::vector<double> matlab_colon_from_zero(double d, double b) {
  const double tol = 2.0 * std::numeric_limits<double>::epsilon() * std::abs(b);
  double n = 0;
  if (d == std::floor(d)) {
    n = std::floor(b / d);
  } else {
    n = std::round(b / d);
    if (n * d - b > tol) n -= 1;
  }
  double c = n * d;
  if (c - b > -tol) c = b;
  const auto count = static_cast<int64_t>(n) + 1;
  std::vector<double> v(static_cast<size_t>(count));
  const int64_t half = static_cast<int64_t>(n) / 2;
  for (int64_t k = 0; k <= half; ++k) v[k] = static_cast<double>(k) * d;
  for (int64_t k = 0; k <= half; ++k) v[count - 1 - k] = c - static_cast<double>(k) * d;
  if (static_cast<int64_t>(n) % 2 == 0) v[half] = c / 2.0;
  return v;
}

/// AUC of one split of AUC_Borji.m / AUC_shuffled.m. `positives` sorted
/// ascending (normalised saliency at the fixations); `negatives` the split's
/// normalised values. The ROC needs only #{negatives >= t} at the few
/// thresholds 0:step:top, so each negative is binned by the number of
/// thresholds at or below it (no sort; the counts are the reference's).
double split_auc(const std::vector<double>& positives, const std::vector<double>& negatives,
                 double step, std::vector<int64_t>& bins) {
  const double top = std::max(positives.back(), *std::max_element(negatives.begin(), negatives.end()));
  const std::vector<double> thresholds = matlab_colon_from_zero(step, top);
  const auto n_thr = static_cast<int64_t>(thresholds.size());
  bins.assign(static_cast<size_t>(n_thr) + 1, 0);
  for (double v : negatives) {
    // #{thresholds <= v}: the thresholds are j * step up to rounding, so
    // start from floor(v / step) + 1 and step to the exact count.
    // (clamped as a double first, so a huge v / step cannot overflow).
    int64_t c = static_cast<int64_t>(std::clamp(v / step + 1.0, 0.0, static_cast<double>(n_thr)));
    while (c < n_thr && thresholds[c] <= v) ++c;
    while (c > 0 && thresholds[c - 1] > v) --c;
    bins[c]++;
  }
  // bins[c] = #{v : exactly c thresholds <= v}; suffix sums give
  // at_least[j] = #{v >= thresholds[j]} = sum over c > j of bins[c].
  for (int64_t c = n_thr - 1; c >= 0; --c) bins[c] += bins[c + 1];
  const auto n_pos = static_cast<double>(positives.size());
  const auto n_neg = static_cast<double>(negatives.size());
  std::vector<double> tp{0.0}, fp{0.0};
  for (int64_t j = n_thr - 1; j >= 0; --j) {
    const auto pos_at_least = positives.end() - std::lower_bound(positives.begin(), positives.end(), thresholds[j]);
    tp.push_back(static_cast<double>(pos_at_least) / n_pos);
    fp.push_back(static_cast<double>(bins[j + 1]) / n_neg);
  }
  tp.push_back(1.0);
  fp.push_back(1.0);
  return trapezoid(fp, tp);
}

void check_sampled_options(const SampledAucOptions& o, const char* fn) {
  GRADLENS_CHECK(o.n_splits >= 1, "saliency::", fn, ": SampledAucOptions::n_splits must be >= 1, got ",
                 o.n_splits);
  GRADLENS_CHECK(std::isfinite(o.step_size) && o.step_size > 0, "saliency::", fn,
                 ": SampledAucOptions::step_size must be finite and > 0, got ", o.step_size);
}

/// Mean AUC over the splits; `negatives` holds n_splits rows of k indices.
double mean_split_auc(const MapView& map, const std::vector<int64_t>& fixated,
                      const std::vector<int64_t>& negatives, int64_t n_splits, double step) {
  std::vector<double> positives(fixated.size());
  for (size_t j = 0; j < fixated.size(); ++j) positives[j] = map.norm(fixated[j]);
  std::sort(positives.begin(), positives.end());
  const size_t k = negatives.size() / static_cast<size_t>(n_splits);
  // Splits in parallel, summed in order afterwards (the same value for any
  // thread count).
  std::vector<double> per_split(static_cast<size_t>(n_splits));
  at::parallel_for(0, n_splits, 8, [&](int64_t s0, int64_t s1) {
    std::vector<double> values(k);
    std::vector<int64_t> bins;
    for (int64_t s = s0; s < s1; ++s) {
      for (size_t j = 0; j < k; ++j) values[j] = map.norm(negatives[s * k + j]);
      per_split[s] = split_auc(positives, values, step, bins);
    }
  });
  double sum = 0;
  for (double v : per_split) sum += v;
  return sum / static_cast<double>(n_splits);
}

torch::Tensor negatives_tensor(const std::vector<int64_t>& negatives, int64_t n_splits) {
  return torch::tensor(negatives, torch::kInt64)
      .reshape({n_splits, static_cast<int64_t>(negatives.size()) / n_splits});
}

// Per-image results of a sampled AUC (Borji or shuffled): the value (0.5 for
// a constant map), the degenerate flag and, on request, the negatives.
struct SampledAucCollector {
  const SampledAucOptions& options;
  std::vector<double> values;
  std::vector<uint8_t> degenerate;
  std::vector<torch::Tensor> kept;

  void add(const MapView& map, const std::vector<int64_t>& fixated,
           const std::vector<int64_t>& negatives) {
    if (options.keep_negatives) kept.push_back(negatives_tensor(negatives, options.n_splits));
    degenerate.push_back(map.constant() ? 1 : 0);
    values.push_back(map.constant() ? 0.5
                                    : mean_split_auc(map, fixated, negatives, options.n_splits,
                                                     options.step_size));
  }

  SampledAucResult finish(const torch::Device& device) {
    SampledAucResult r;
    static_cast<MetricResult&>(r) = detail::make_result(values, degenerate, device);
    r.negatives = std::move(kept);
    return r;
  }
};

}  // namespace

MetricResult nss(const torch::Tensor& saliency, const torch::Tensor& fixations) {
  const torch::Tensor s_all = detail::as_batch(saliency, "nss", "saliency");
  const torch::Tensor f_all = detail::as_batch(fixations, "nss", "fixations");
  detail::check_same_shape(saliency, "saliency", fixations, "fixations", "nss");
  const int64_t pixels = s_all.size(1) * s_all.size(2);
  std::vector<double> values;
  std::vector<uint8_t> degenerate;
  detail::for_each_image(s_all, f_all, [&](int64_t image, const double* s, const double* f) {
    const MapView map = detail::scan_map(s, pixels, image, "nss", "saliency");
    const std::vector<int64_t> fixated = positive_pixels(f, pixels, image, "nss", "fixations");
    check_has_fixations(fixated, image, "nss");
    degenerate.push_back(map.constant() ? 1 : 0);
    if (map.constant()) {
      values.push_back(0.0);
      return;
    }
    double mean = 0;
    for (int64_t i = 0; i < pixels; ++i) mean += s[i];
    mean /= static_cast<double>(pixels);
    double ss = 0;
    for (int64_t i = 0; i < pixels; ++i) ss += (s[i] - mean) * (s[i] - mean);
    const double sd = std::sqrt(ss / static_cast<double>(pixels - 1));  // ddof = 1
    double total = 0;
    for (int64_t i : fixated) total += (s[i] - mean) / sd;
    values.push_back(total / static_cast<double>(fixated.size()));
  });
  return detail::make_result(values, degenerate, saliency.device());
}

MetricResult auc_judd(const torch::Tensor& saliency, const torch::Tensor& fixations,
                      const AucJuddOptions& options) {
  const torch::Tensor s_all = detail::as_batch(saliency, "auc_judd", "saliency");
  const torch::Tensor f_all = detail::as_batch(fixations, "auc_judd", "fixations");
  detail::check_same_shape(saliency, "saliency", fixations, "fixations", "auc_judd");
  const int64_t pixels = s_all.size(1) * s_all.size(2);

  std::mt19937_64 rng(options.seed);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::vector<double> values;
  std::vector<uint8_t> degenerate;
  std::vector<double> map(static_cast<size_t>(pixels));
  detail::for_each_image(s_all, f_all, [&](int64_t image, const double* s, const double* f) {
    const MapView raw = detail::scan_map(s, pixels, image, "auc_judd", "saliency");
    const std::vector<int64_t> fixated = positive_pixels(f, pixels, image, "auc_judd", "fixations");
    check_has_fixations(fixated, image, "auc_judd");
    const auto n_fix = static_cast<int64_t>(fixated.size());
    GRADLENS_CHECK(n_fix < pixels, "saliency::auc_judd: every pixel of image ", image,
                   " is fixated, so there is no negative pixel and the ROC is undefined; ",
                   "use a sparser fixation map");
    std::copy(s, s + pixels, map.begin());
    if (options.jitter) {
      for (double& v : map) v = v + unit(rng) / 10000000.0;
    }
    const MapView jittered = detail::scan_map(map.data(), pixels, image, "auc_judd", "saliency");
    degenerate.push_back(raw.constant() ? 1 : 0);
    if (jittered.constant()) {
      values.push_back(0.5);
      return;
    }
    for (double& v : map) v = (v - jittered.lo) / (jittered.hi - jittered.lo);

    // Thresholds (the fixated values) ascending; count[c] = number of pixels
    // above exactly c thresholds; then #{s >= t_j} is a suffix sum.
    std::vector<double> thresholds(static_cast<size_t>(n_fix));
    for (int64_t j = 0; j < n_fix; ++j) thresholds[j] = map[fixated[j]];
    std::sort(thresholds.begin(), thresholds.end());
    std::vector<int64_t> above(static_cast<size_t>(n_fix) + 2, 0);
    for (double v : map) {
      above[std::upper_bound(thresholds.begin(), thresholds.end(), v) - thresholds.begin()]++;
    }
    for (int64_t c = n_fix - 1; c >= 0; --c) above[c] += above[c + 1];
    // above[j + 1] = #{pixels >= thresholds[j]} (0-based ascending j).
    std::vector<double> tp{0.0}, fp{0.0};
    for (int64_t i = 1; i <= n_fix; ++i) {
      const int64_t above_th = above[n_fix - i + 1];
      tp.push_back(static_cast<double>(i) / static_cast<double>(n_fix));
      fp.push_back(static_cast<double>(above_th - i) / static_cast<double>(pixels - n_fix));
    }
    tp.push_back(1.0);
    fp.push_back(1.0);
    values.push_back(trapezoid(fp, tp));
  });
  return detail::make_result(values, degenerate, saliency.device());
}

SampledAucResult auc_borji(const torch::Tensor& saliency, const torch::Tensor& fixations,
                           const SampledAucOptions& options) {
  check_sampled_options(options, "auc_borji");
  const torch::Tensor s_all = detail::as_batch(saliency, "auc_borji", "saliency");
  const torch::Tensor f_all = detail::as_batch(fixations, "auc_borji", "fixations");
  detail::check_same_shape(saliency, "saliency", fixations, "fixations", "auc_borji");
  const int64_t pixels = s_all.size(1) * s_all.size(2);

  std::mt19937_64 rng(options.seed);
  std::uniform_int_distribution<int64_t> pick(0, pixels - 1);
  SampledAucCollector out{options, {}, {}, {}};
  detail::for_each_image(s_all, f_all, [&](int64_t image, const double* s, const double* f) {
    const MapView map = detail::scan_map(s, pixels, image, "auc_borji", "saliency");
    const std::vector<int64_t> fixated =
        positive_pixels(f, pixels, image, "auc_borji", "fixations");
    check_has_fixations(fixated, image, "auc_borji");
    std::vector<int64_t> negatives(fixated.size() * static_cast<size_t>(options.n_splits));
    for (int64_t& idx : negatives) idx = pick(rng);
    out.add(map, fixated, negatives);
  });
  return out.finish(saliency.device());
}

SampledAucResult auc_shuffled(const torch::Tensor& saliency, const torch::Tensor& fixations,
                              const torch::Tensor& other_fixations,
                              const SampledAucOptions& options) {
  check_sampled_options(options, "auc_shuffled");
  const torch::Tensor s_all = detail::as_batch(saliency, "auc_shuffled", "saliency");
  const torch::Tensor f_all = detail::as_batch(fixations, "auc_shuffled", "fixations");
  detail::check_same_shape(saliency, "saliency", fixations, "fixations", "auc_shuffled");
  const torch::Tensor o_all = detail::as_batch(other_fixations, "auc_shuffled", "other_fixations");
  const bool shared = other_fixations.dim() == 2;
  GRADLENS_CHECK(shared ? o_all.sizes().slice(1) == s_all.sizes().slice(1)
                        : other_fixations.sizes() == s_all.sizes(),
                 "saliency::auc_shuffled: saliency has shape ", saliency.sizes(),
                 " but other_fixations has shape ", other_fixations.sizes(),
                 "; other_fixations must be [N, H, W] like the saliency batch or [H, W] (shared)");
  GRADLENS_CHECK(other_fixations.device() == saliency.device(),
                 "saliency::auc_shuffled: saliency is on ", saliency.device(),
                 " but other_fixations is on ", other_fixations.device(),
                 "; move both to the same device");
  const int64_t pixels = s_all.size(1) * s_all.size(2);
  const torch::Tensor others = o_all.to(torch::kCPU, torch::kFloat64).contiguous();

  std::vector<int64_t> shared_pool;
  if (shared) {
    shared_pool = positive_pixels(others.data_ptr<double>(), pixels, 0, "auc_shuffled",
                                  "other_fixations");
  }
  std::mt19937_64 rng(options.seed);
  SampledAucCollector out{options, {}, {}, {}};
  std::vector<int64_t> pool;
  detail::for_each_image(s_all, f_all, [&](int64_t image, const double* s, const double* f) {
    const MapView map = detail::scan_map(s, pixels, image, "auc_shuffled", "saliency");
    const std::vector<int64_t> fixated =
        positive_pixels(f, pixels, image, "auc_shuffled", "fixations");
    check_has_fixations(fixated, image, "auc_shuffled");
    pool = shared ? shared_pool
                  : positive_pixels(others.data_ptr<double>() + image * pixels, pixels, image,
                                    "auc_shuffled", "other_fixations");
    GRADLENS_CHECK(!pool.empty(), "saliency::auc_shuffled: other_fixations ",
                   shared ? std::string("(the shared [H, W] map)")
                          : "of image " + std::to_string(image),
                   " has no pixel > 0, so no negative can be drawn; pass the union of the ",
                   "fixations of other images");
    const auto pool_size = static_cast<int64_t>(pool.size());
    const int64_t k = std::min(static_cast<int64_t>(fixated.size()), pool_size);
    std::vector<int64_t> negatives(static_cast<size_t>(k * options.n_splits));
    for (int64_t split = 0; split < options.n_splits; ++split) {
      // The first k entries of a uniform random permutation of the pool
      // (partial Fisher-Yates), as randperm(O)(1:k) in the reference.
      for (int64_t j = 0; j < k; ++j) {
        std::uniform_int_distribution<int64_t> pick(j, pool_size - 1);
        std::swap(pool[j], pool[pick(rng)]);
        negatives[split * k + j] = pool[j];
      }
    }
    out.add(map, fixated, negatives);
  });
  return out.finish(saliency.device());
}

}  // namespace gradlens::saliency
