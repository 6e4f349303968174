#include "gradlens/saliency/distribution_metrics.h"
#include <torch/torch.h>

#include "gradlens/core/check.h"
#include "gradlens/saliency/map_checks.h"

namespace gradlens::saliency {
namespace {

using detail::MapView;

/// Validates the pair and calls `score(p, g, image)` for every image; `score`
/// returns the image's value, degenerate or not.
template <typename Score>
MetricResult score_pairs(const torch::Tensor& prediction, const torch::Tensor& target,
                         const char* fn, Score score) {
  const torch::Tensor p_all = detail::as_batch(prediction, fn, "prediction");
  const torch::Tensor g_all = detail::as_batch(target, fn, "target");
  detail::check_same_shape(prediction, "prediction", target, "target", fn);
  const int64_t pixels = p_all.size(1) * p_all.size(2);
  std::vector<double> values;
  std::vector<uint8_t> degenerate;
  detail::for_each_image(p_all, g_all, [&](int64_t image, const double* p, const double* g) {
    const MapView pm = detail::scan_map(p, pixels, image, fn, "prediction");
    const MapView gm = detail::scan_map(g, pixels, image, fn, "target");
    degenerate.push_back(pm.constant() || gm.constant() ? 1 : 0);
    values.push_back(score(pm, gm, image));
  });
  return detail::make_result(values, degenerate, prediction.device());
}

double mean(const MapView& m) {
  double sum = 0;
  for (int64_t i = 0; i < m.size; ++i) sum += m.v[i];
  return sum / static_cast<double>(m.size);
}

double sum(const MapView& m) {
  double s = 0;
  for (int64_t i = 0; i < m.size; ++i) s += m.v[i];
  return s;
}

void check_non_negative(const MapView& m, int64_t image, const char* name) {
  GRADLENS_CHECK(m.lo >= 0, "saliency::kld: ", name, " of image ", image,
                 " has a negative value (minimum ", m.lo,
                 "); it must be non-negative (shift or clamp it first)");
}

/// similarity.m's normalisation, value by value: an all-zero map stays zero,
/// a constant non-zero map becomes uniform, any other map is min-max
/// normalised; the caller divides by the sum of these values.
struct SimScale {
  const MapView& m;
  bool zero;
  double operator()(int64_t i) const {
    if (zero) return 0.0;
    if (m.constant()) return 1.0;
    return m.norm(i);
  }
};

}  // namespace

MetricResult cc(const torch::Tensor& prediction, const torch::Tensor& target) {
  return score_pairs(prediction, target, "cc", [](const MapView& p, const MapView& g, int64_t) {
    if (p.constant() || g.constant()) return 0.0;
    const double mp = mean(p), mg = mean(g);
    double ab = 0, aa = 0, bb = 0;
    for (int64_t i = 0; i < p.size; ++i) {
      const double a = p.v[i] - mp, b = g.v[i] - mg;
      ab += a * b;
      aa += a * a;
      bb += b * b;
    }
    return ab / std::sqrt(aa * bb);
  });
}

MetricResult kld(const torch::Tensor& prediction, const torch::Tensor& target,
                 const KldOptions& options) {
  GRADLENS_CHECK(std::isfinite(options.eps) && options.eps > 0,
                 "saliency::kld: KldOptions::eps must be finite and > 0, got ", options.eps);
  const double eps = options.eps;
  return score_pairs(prediction, target, "kld",
                     [eps](const MapView& p, const MapView& g, int64_t image) {
                       check_non_negative(p, image, "prediction");
                       check_non_negative(g, image, "target");
                       // Non-negative maps: "any non-zero" is "sum > 0".
                       const double sp = sum(p), sg = sum(g);
                       double value = 0;
                       for (int64_t i = 0; i < p.size; ++i) {
                         const double pn = sp > 0 ? p.v[i] / sp : p.v[i];
                         const double gn = sg > 0 ? g.v[i] / sg : g.v[i];
                         value += gn * std::log(eps + gn / (pn + eps));
                       }
                       return value;
                     });
}

MetricResult sim(const torch::Tensor& prediction, const torch::Tensor& target) {
  return score_pairs(prediction, target, "sim", [](const MapView& p, const MapView& g, int64_t) {
    const SimScale sp{p, p.lo == 0 && p.hi == 0};
    const SimScale sg{g, g.lo == 0 && g.hi == 0};
    double sum_p = 0, sum_g = 0;
    for (int64_t i = 0; i < p.size; ++i) {
      sum_p += sp(i);
      sum_g += sg(i);
    }
    // Maps that are zero after scaling (all-zero maps) stay zero.
    const double dp = sum_p > 0 ? sum_p : 1.0, dg = sum_g > 0 ? sum_g : 1.0;
    double value = 0;
    for (int64_t i = 0; i < p.size; ++i) value += std::min(sp(i) / dp, sg(i) / dg);
    return value;
  });
}

}  // namespace gradlens::saliency
