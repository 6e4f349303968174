#include "gradlens/saliency/distribution_metrics.h"

#include "gradlens/core/check.h"
#include "gradlens/saliency/map_checks.h"

namespace gradlens::saliency {
namespace {

/// One chunk of images as [n, H*W] float64 rows, checked for NaN/Inf.
struct Rows {
  torch::Tensor p, g;          // [n, P] float64
  torch::Tensor p_constant;    // [n] bool
  torch::Tensor g_constant;    // [n] bool
};

/// Validates the pair and calls `score(rows, first_image)` chunk by chunk;
/// `score` returns the chunk's [n] float64 values.
template <typename Score>
MetricResult for_each_chunk(const torch::Tensor& prediction, const torch::Tensor& target,
                            const char* fn, Score score) {
  const torch::Tensor p_all = detail::as_batch(prediction, fn, "prediction");
  const torch::Tensor g_all = detail::as_batch(target, fn, "target");
  detail::check_same_shape(prediction, "prediction", target, "target", fn);

  const int64_t n = p_all.size(0);
  std::vector<torch::Tensor> values, degenerate;
  for (int64_t start = 0; start < n; start += detail::kChunkImages) {
    const int64_t len = std::min(detail::kChunkImages, n - start);
    Rows rows;
    rows.p = p_all.narrow(0, start, len).to(torch::kFloat64).reshape({len, -1});
    rows.g = g_all.narrow(0, start, len).to(torch::kFloat64).reshape({len, -1});
    detail::check_finite(rows.p, start, fn, "prediction");
    detail::check_finite(rows.g, start, fn, "target");
    rows.p_constant = rows.p.amax(1) == rows.p.amin(1);
    rows.g_constant = rows.g.amax(1) == rows.g.amin(1);
    values.push_back(score(rows, start));
    degenerate.push_back(torch::logical_or(rows.p_constant, rows.g_constant));
  }
  MetricResult result;
  const auto opts = torch::TensorOptions().device(prediction.device());
  result.values = n == 0 ? torch::empty({0}, opts.dtype(torch::kFloat64)) : torch::cat(values);
  result.degenerate = n == 0 ? torch::empty({0}, opts.dtype(torch::kBool)) : torch::cat(degenerate);
  result.num_degenerate = result.degenerate.sum().item<int64_t>();
  return result;
}

/// similarity.m's normalisation: all-zero rows stay zero, other rows are
/// min-max normalised (constant non-zero rows become uniform) and divided by
/// their sum.
torch::Tensor sim_normalise(const torch::Tensor& m, const torch::Tensor& constant) {
  const torch::Tensor lo = m.amin(1, /*keepdim=*/true);
  const torch::Tensor hi = m.amax(1, /*keepdim=*/true);
  const torch::Tensor any_nonzero = (m != 0).any(1, /*keepdim=*/true);
  const torch::Tensor scaled =
      torch::where(constant.unsqueeze(1), any_nonzero.to(torch::kFloat64).expand_as(m),
                   (m - lo) / (hi - lo));
  const torch::Tensor sum = scaled.sum(1, /*keepdim=*/true);
  return torch::where(sum > 0, scaled / sum, scaled);
}

}  // namespace

MetricResult cc(const torch::Tensor& prediction, const torch::Tensor& target) {
  return for_each_chunk(prediction, target, "cc", [](const Rows& r, int64_t) {
    const torch::Tensor a = r.p - r.p.mean(1, /*keepdim=*/true);
    const torch::Tensor b = r.g - r.g.mean(1, /*keepdim=*/true);
    const torch::Tensor value = (a * b).sum(1) / torch::sqrt((a * a).sum(1) * (b * b).sum(1));
    const torch::Tensor constant = torch::logical_or(r.p_constant, r.g_constant);
    return torch::where(constant, torch::zeros_like(value), value);
  });
}

MetricResult kld(const torch::Tensor& prediction, const torch::Tensor& target,
                 const KldOptions& options) {
  GRADLENS_CHECK(std::isfinite(options.eps) && options.eps > 0,
                 "saliency::kld: KldOptions::eps must be finite and > 0, got ", options.eps);
  const double eps = options.eps;
  return for_each_chunk(prediction, target, "kld", [eps](const Rows& r, int64_t first) {
    detail::check_non_negative(r.p, first, "kld", "prediction");
    detail::check_non_negative(r.g, first, "kld", "target");
    const torch::Tensor p_sum = r.p.sum(1, /*keepdim=*/true);
    const torch::Tensor g_sum = r.g.sum(1, /*keepdim=*/true);
    const torch::Tensor p = torch::where(p_sum > 0, r.p / p_sum, r.p);
    const torch::Tensor g = torch::where(g_sum > 0, r.g / g_sum, r.g);
    return (g * torch::log(eps + g / (p + eps))).sum(1);
  });
}

MetricResult sim(const torch::Tensor& prediction, const torch::Tensor& target) {
  return for_each_chunk(prediction, target, "sim", [](const Rows& r, int64_t) {
    return torch::minimum(sim_normalise(r.p, r.p_constant), sim_normalise(r.g, r.g_constant))
        .sum(1);
  });
}

}  // namespace gradlens::saliency
