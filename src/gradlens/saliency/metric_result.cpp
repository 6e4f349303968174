#include "gradlens/saliency/metric_result.h"
#include <torch/torch.h>

#include "gradlens/core/check.h"

namespace gradlens::saliency {

MetricSummary summarize(const torch::Tensor& values, const torch::Tensor& degenerate,
                        const SummaryOptions& options) {
  GRADLENS_CHECK(values.defined() && degenerate.defined(),
                 "saliency::summarize: values and degenerate must be defined tensors");
  GRADLENS_CHECK(values.dim() == 1 && values.sizes() == degenerate.sizes(),
                 "saliency::summarize: values has shape ", values.sizes(),
                 " and degenerate has shape ", degenerate.sizes(),
                 "; both must be [N] (one entry per image)");
  const torch::Tensor v = values.to(torch::kCPU, torch::kFloat64);
  const torch::Tensor d = degenerate.to(torch::kCPU, torch::kBool);
  GRADLENS_CHECK(torch::isfinite(v).all().item<bool>(),
                 "saliency::summarize: values contain NaN or infinite entries; every metric ",
                 "value must be finite (degenerate images carry their documented value)");

  MetricSummary s;
  s.num_images = v.size(0);
  s.num_degenerate = d.sum().item<int64_t>();
  const torch::Tensor kept = options.exclude_degenerate ? v.masked_select(d.logical_not()) : v;
  s.count = kept.size(0);
  GRADLENS_CHECK(s.count > 0, "saliency::summarize: no value to summarise (", s.num_images,
                 " images, ", s.num_degenerate, " degenerate",
                 options.exclude_degenerate ? ", excluded by exclude_degenerate" : "", ")");
  s.mean = kept.mean().item<double>();
  s.std = kept.std(/*unbiased=*/false).item<double>();
  return s;
}

MetricSummary summarize(const MetricResult& result, const SummaryOptions& options) {
  return summarize(result.values, result.degenerate, options);
}

}  // namespace gradlens::saliency
