// Batched training augmentation: random crop with zero padding and random
// horizontal flip (torchvision's RandomCrop(S, padding=p) followed by
// RandomHorizontalFlip(0.5)), reproducible from a caller-owned generator.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <random>
#include <vector>

namespace gradlens::data {

struct AugmentOptions {
  /// Zero padding p on every side before the crop; 0 disables the crop.
  int64_t padding = 4;
  /// Probability of a horizontal flip per image; 0 disables flipping.
  double flip_prob = 0.5;
};

/// What happens to one image: the crop window's top-left corner in the padded
/// image, (dy, dx) in [0, 2p]^2 ((p, p) is the identity), and the flip.
struct AugmentParams {
  int64_t dy = 0;
  int64_t dx = 0;
  bool flip = false;
};

/// Draws the parameters of `n` images from `gen`, image by image: dy, then dx
/// (each uniform in [0, 2p], when p > 0), then the flip (when flip_prob > 0,
/// flip if a uniform [0, 1) draw is < flip_prob). Throws c10::Error when
/// padding < 0 or flip_prob is outside [0, 1].
std::vector<AugmentParams> sample_augment(int64_t n, const AugmentOptions& opts,
                                          std::mt19937_64& gen);

/// Applies `params` (one per image) to `batch` [B, C, H, W] of any dtype
/// (uint8 or float): out[b, c, y, x] = padded[b, c, y + dy, x' + dx] with
/// x' = W - 1 - x when flipped, where padded is the batch with `padding`
/// zeros on every side. Returns a new tensor of the same shape, dtype and
/// device (two gathers, no per-image loop). Throws c10::Error on a rank other
/// than 4, a params count other than B, or an offset outside [0, 2p].
torch::Tensor apply_augment(const torch::Tensor& batch, const std::vector<AugmentParams>& params,
                            int64_t padding);

/// sample_augment() then apply_augment(): the usual training augmentation.
torch::Tensor random_crop_flip(const torch::Tensor& batch, const AugmentOptions& opts,
                               std::mt19937_64& gen);

/// Mirrors [..., W] along the last dimension.
torch::Tensor hflip(const torch::Tensor& batch);

}  // namespace gradlens::data
