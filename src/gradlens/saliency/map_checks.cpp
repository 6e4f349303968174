#include "gradlens/saliency/map_checks.h"
#include <torch/torch.h>

#include "gradlens/core/check.h"

namespace gradlens::saliency::detail {
namespace {

/// Images converted to float64 at once: small enough that the copies stay
/// in cache and are reused by the allocator.
constexpr int64_t kChunkImages = 8;

}  // namespace

torch::Tensor as_batch(const torch::Tensor& map, const char* fn, const char* name) {
  GRADLENS_CHECK(map.defined(), "saliency::", fn, ": ", name, " is an undefined tensor");
  GRADLENS_CHECK(!map.is_complex(), "saliency::", fn, ": ", name,
                 " must be real, got dtype ", map.scalar_type());
  GRADLENS_CHECK(map.dim() == 2 || map.dim() == 3, "saliency::", fn, ": ", name,
                 " must be [N, H, W] or [H, W], got shape ", map.sizes());
  const torch::Tensor batch = map.dim() == 2 ? map.unsqueeze(0) : map;
  GRADLENS_CHECK(batch.size(1) >= 1 && batch.size(2) >= 1, "saliency::", fn, ": ", name,
                 " has an empty image (shape ", map.sizes(), "); H and W must be >= 1");
  return batch;
}

void check_same_shape(const torch::Tensor& a, const char* a_name, const torch::Tensor& b,
                      const char* b_name, const char* fn) {
  GRADLENS_CHECK(a.sizes() == b.sizes(), "saliency::", fn, ": ", a_name, " has shape ",
                 a.sizes(), " but ", b_name, " has shape ", b.sizes(),
                 "; both must have the same shape (resize the saliency map to the ",
                 "ground truth's resolution first)");
  GRADLENS_CHECK(a.device() == b.device(), "saliency::", fn, ": ", a_name, " is on ",
                 a.device(), " but ", b_name, " is on ", b.device(),
                 "; move both to the same device");
}

MapView scan_map(const double* values, int64_t size, int64_t image, const char* fn,
                 const char* name) {
  MapView m{values, size, values[0], values[0]};
  for (int64_t i = 0; i < size; ++i) {
    GRADLENS_CHECK(std::isfinite(values[i]), "saliency::", fn, ": ", name, " of image ", image,
                   " contains NaN or infinite values; clean the map before scoring it");
    m.lo = std::min(m.lo, values[i]);
    m.hi = std::max(m.hi, values[i]);
  }
  return m;
}

void for_each_image(const torch::Tensor& a, const torch::Tensor& b,
                    const std::function<void(int64_t, const double*, const double*)>& per_image) {
  TORCH_INTERNAL_ASSERT(a.dim() == 3 && a.sizes() == b.sizes());
  const int64_t n = a.size(0);
  const int64_t pixels = a.size(1) * a.size(2);
  for (int64_t start = 0; start < n; start += kChunkImages) {
    const int64_t len = std::min(kChunkImages, n - start);
    const torch::Tensor ca = a.narrow(0, start, len).to(torch::kCPU, torch::kFloat64).contiguous();
    const torch::Tensor cb = b.narrow(0, start, len).to(torch::kCPU, torch::kFloat64).contiguous();
    for (int64_t j = 0; j < len; ++j) {
      per_image(start + j, ca.data_ptr<double>() + j * pixels, cb.data_ptr<double>() + j * pixels);
    }
  }
}

MetricResult make_result(const std::vector<double>& values, const std::vector<uint8_t>& degenerate,
                         const torch::Device& device) {
  TORCH_INTERNAL_ASSERT(values.size() == degenerate.size());
  const auto n = static_cast<int64_t>(values.size());
  MetricResult r;
  r.values = torch::tensor(values, torch::kFloat64).reshape({n}).to(device);
  std::vector<int64_t> flags(degenerate.begin(), degenerate.end());
  r.degenerate = torch::tensor(flags, torch::kInt64).reshape({n}).to(device, torch::kBool);
  r.num_degenerate = 0;
  for (uint8_t d : degenerate) r.num_degenerate += d;
  return r;
}

}  // namespace gradlens::saliency::detail
