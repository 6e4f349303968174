#include "gradlens/data/augment.h"
#include <torch/types.h>

#include <cmath>

#include "gradlens/core/check.h"
#include "gradlens/data/rng.h"

namespace gradlens::data {

std::vector<AugmentParams> sample_augment(int64_t n, const AugmentOptions& opts,
                                          std::mt19937_64& gen) {
  GRADLENS_CHECK(opts.padding >= 0, "augmentation padding must be >= 0, got ", opts.padding);
  GRADLENS_CHECK(std::isfinite(opts.flip_prob) && opts.flip_prob >= 0.0 && opts.flip_prob <= 1.0,
                 "augmentation flip probability must be in [0, 1], got ", opts.flip_prob);
  GRADLENS_CHECK(n >= 0, "sample_augment: negative batch size ", n);
  std::vector<AugmentParams> out(static_cast<size_t>(n));
  const auto range = static_cast<uint64_t>(2 * opts.padding + 1);
  for (auto& p : out) {
    if (opts.padding > 0) {
      p.dy = static_cast<int64_t>(uniform_below(gen, range));
      p.dx = static_cast<int64_t>(uniform_below(gen, range));
    } else {
      p.dy = p.dx = 0;
    }
    p.flip = opts.flip_prob > 0.0 && uniform_01(gen) < opts.flip_prob;
  }
  return out;
}

torch::Tensor apply_augment(const torch::Tensor& batch, const std::vector<AugmentParams>& params,
                            int64_t padding) {
  GRADLENS_CHECK(batch.defined() && batch.dim() == 4, "augmentation expects a [B, C, H, W] batch, got ",
                 batch.defined() ? batch.sizes() : c10::IntArrayRef{});
  GRADLENS_CHECK(padding >= 0, "augmentation padding must be >= 0, got ", padding);
  const int64_t b = batch.size(0), c = batch.size(1), h = batch.size(2), w = batch.size(3);
  GRADLENS_CHECK(static_cast<int64_t>(params.size()) == b, "augmentation: ", params.size(),
                 " parameter sets for a batch of ", b);
  if (b == 0) return batch.clone();
  std::vector<int64_t> dy(static_cast<size_t>(b)), dx(static_cast<size_t>(b)),
      flip(static_cast<size_t>(b));
  for (int64_t i = 0; i < b; ++i) {
    const auto& p = params[static_cast<size_t>(i)];
    GRADLENS_CHECK(p.dy >= 0 && p.dy <= 2 * padding && p.dx >= 0 && p.dx <= 2 * padding,
                   "augmentation: crop offset (", p.dy, ", ", p.dx, ") of image ", i,
                   " is outside [0, ", 2 * padding, "]");
    dy[static_cast<size_t>(i)] = p.dy;
    dx[static_cast<size_t>(i)] = p.dx;
    flip[static_cast<size_t>(i)] = p.flip ? 1 : 0;
  }
  const auto dev = batch.device();
  const auto iopt = torch::TensorOptions().dtype(torch::kInt64);
  const auto dy_t = torch::tensor(dy, iopt).to(dev).view({b, 1});
  const auto dx_t = torch::tensor(dx, iopt).to(dev).view({b, 1});
  const auto fl_t = torch::tensor(flip, iopt).to(dev).view({b, 1});
  const auto ar_h = torch::arange(h, iopt.device(dev)).view({1, h});
  const auto ar_w = torch::arange(w, iopt.device(dev)).view({1, w});
  // Column in the output x reads column x' = flip ? W-1-x : x of the crop.
  const auto src_x = torch::where(fl_t.to(torch::kBool), (w - 1) - ar_w, ar_w);
  const auto rows = (ar_h + dy_t).view({b, 1, h, 1}).expand({b, c, h, w + 2 * padding});
  const auto cols = (src_x + dx_t).view({b, 1, 1, w}).expand({b, c, h, w});
  const auto padded =
      padding > 0 ? torch::constant_pad_nd(batch, {padding, padding, padding, padding}, 0) : batch;
  return padded.gather(2, rows).gather(3, cols);
}

torch::Tensor random_crop_flip(const torch::Tensor& batch, const AugmentOptions& opts,
                               std::mt19937_64& gen) {
  GRADLENS_CHECK(batch.defined() && batch.dim() == 4, "augmentation expects a [B, C, H, W] batch, got ",
                 batch.defined() ? batch.sizes() : c10::IntArrayRef{});
  return apply_augment(batch, sample_augment(batch.size(0), opts, gen), opts.padding);
}

torch::Tensor hflip(const torch::Tensor& batch) {
  GRADLENS_CHECK(batch.defined() && batch.dim() >= 1, "hflip: expected a tensor with a width dimension");
  return batch.flip({-1});
}

}  // namespace gradlens::data
