#include "gradlens/saliency/localisation.h"

#include <torch/torch.h>

#include <cmath>
#include <limits>

#include "gradlens/core/check.h"

namespace gradlens::saliency {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

/// The maps and masks as CPU float64 [N, H*W] and bool [N, H*W], checked.
std::pair<torch::Tensor, torch::Tensor> flat(const torch::Tensor& maps, const torch::Tensor& masks) {
  GRADLENS_CHECK(maps.dim() == 3 && maps.numel() > 0, "attribution maps must be a non-empty [N, H, W] tensor, got ",
                 maps.sizes());
  GRADLENS_CHECK(masks.sizes() == maps.sizes(), "masks ", masks.sizes(), " and maps ", maps.sizes(),
                 " must have the same shape");
  const auto m = maps.to(torch::kCPU, torch::kDouble).contiguous().reshape({maps.size(0), -1});
  GRADLENS_CHECK(torch::isfinite(m).all().item<bool>(), "attribution maps hold NaN or infinite values");
  GRADLENS_CHECK((m >= 0).all().item<bool>(), "attribution maps must be non-negative (display maps in [0, 1])");
  const auto k = (masks.to(torch::kCPU) > 0).reshape({maps.size(0), -1});
  return {m, k};
}

}  // namespace

torch::Tensor pointing_game(const torch::Tensor& maps, const torch::Tensor& masks, double tolerance) {
  GRADLENS_CHECK_OPTION(std::isfinite(tolerance) && tolerance >= 0, "pointing-game tolerance must be a finite "
                        "number >= 0, got ", tolerance);
  const auto [m, k] = flat(maps, masks);
  const int64_t n = m.size(0), w = maps.size(2);
  const auto peak = m.argmax(1);  // the first maximum in row-major order
  const auto pixel = torch::arange(m.size(1), torch::kLong);
  const auto row = [w](const torch::Tensor& t) { return torch::div(t, w, "floor"); };
  const auto py = row(peak).unsqueeze(1), px = (peak % w).unsqueeze(1);
  const auto dy = row(pixel).unsqueeze(0) - py, dx = (pixel % w).unsqueeze(0) - px;
  const auto near = (dy * dy + dx * dx).to(torch::kDouble) <= tolerance * tolerance;
  auto hit = (near & k).any(1).to(torch::kDouble);
  return torch::where(k.any(1), hit, torch::full({n}, kNaN, torch::kDouble));
}

torch::Tensor energy_pointing_game(const torch::Tensor& maps, const torch::Tensor& masks) {
  const auto [m, k] = flat(maps, masks);
  const auto total = m.sum(1);
  const auto inside = (m * k.to(torch::kDouble)).sum(1);
  const auto nan = torch::full_like(total, kNaN);
  return torch::where(k.any(1) & (total > 0), inside / total, nan);
}

torch::Tensor relevance_rank_accuracy(const torch::Tensor& maps, const torch::Tensor& masks) {
  const auto [m, k] = flat(maps, masks);
  const int64_t n = m.size(0);
  auto out = torch::full({n}, kNaN, torch::kDouble);
  auto acc = out.accessor<double, 1>();
  // Descending order, ties in row-major order (a stable sort of -map).
  const auto order = std::get<1>(torch::sort(-m, /*stable=*/true, /*dim=*/1, /*descending=*/false));
  const auto sizes = k.sum(1);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t kk = sizes[i].item<int64_t>();
    if (kk == 0) continue;
    const auto top = order[i].slice(0, 0, kk);
    acc[i] = k[i].index_select(0, top).sum().item<double>() / static_cast<double>(kk);
  }
  return out;
}

}  // namespace gradlens::saliency
