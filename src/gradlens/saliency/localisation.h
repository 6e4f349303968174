// Does an attribution map point at the object? Metrics of maps against
// ground-truth object masks (make-shapes writes them; an ImageFolder may
// carry <image>.mask.png).
//
// Common contract:
//  - `maps` is a real tensor [N, H, W] of non-negative attributions (display
//    maps in [0, 1], or any map with values >= 0); `masks` has the same shape,
//    an object pixel where its value is > 0.
//  - Every function returns one value per image, float64 [N] on the CPU. An
//    image whose mask is empty gets NaN (nothing to point at); so does an
//    all-zero map where the metric divides by its sum.
//  - Throws gradlens::Error when the shapes differ, a map is not 3-D or
//    empty, or a value is NaN, infinite or negative.
#pragma once

#include <torch/types.h>

namespace gradlens::saliency {

/// Pointing game (Zhang et al. 2018, "Top-down neural attention by
/// excitation backprop"; TorchRay's benchmark): a hit (1) when the map's
/// maximum (the first in row-major order when tied) lies within `tolerance`
/// pixels (Euclidean) of an object pixel, else a miss (0). TorchRay's default
/// tolerance is 15 px at 224 px.
torch::Tensor pointing_game(const torch::Tensor& maps, const torch::Tensor& masks, double tolerance = 15.0);

/// Energy-based pointing game (Wang et al. 2020, Score-CAM): the share of the
/// map's sum that lies on object pixels, sum(map * mask) / sum(map), in
/// [0, 1]; higher is better.
torch::Tensor energy_pointing_game(const torch::Tensor& maps, const torch::Tensor& masks);

/// Relevance rank accuracy (Arras et al. 2022, "CLEVR-XAI"): with K object
/// pixels, the share of the K highest-ranked pixels of the map that are
/// object pixels, in [0, 1]; ties in the map are ranked in row-major order.
torch::Tensor relevance_rank_accuracy(const torch::Tensor& maps, const torch::Tensor& masks);

}  // namespace gradlens::saliency
