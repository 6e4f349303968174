#include "gradlens/saliency/map_checks.h"

#include "gradlens/core/check.h"

namespace gradlens::saliency::detail {

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

void check_finite(const torch::Tensor& batch, int64_t first_image, const char* fn,
                  const char* name) {
  const torch::Tensor ok = torch::isfinite(batch).flatten(1).all(1);
  if (ok.all().item<bool>()) return;
  const int64_t bad = first_image + torch::logical_not(ok).nonzero()[0][0].item<int64_t>();
  GRADLENS_CHECK(false, "saliency::", fn, ": ", name, " of image ", bad,
                 " contains NaN or infinite values; clean the map before scoring it");
}

void check_non_negative(const torch::Tensor& batch, int64_t first_image, const char* fn,
                        const char* name) {
  const torch::Tensor mins = std::get<0>(batch.flatten(1).min(1));
  const torch::Tensor neg = mins < 0;
  if (!neg.any().item<bool>()) return;
  const int64_t row = neg.nonzero()[0][0].item<int64_t>();
  GRADLENS_CHECK(false, "saliency::", fn, ": ", name, " of image ", first_image + row,
                 " has a negative value (minimum ", mins[row].item<double>(),
                 "); it must be non-negative (shift or clamp it first)");
}

}  // namespace gradlens::saliency::detail
