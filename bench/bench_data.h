// Inputs shared by the benchmarks: make-shapes images rendered in memory.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "gradlens/data/shapes.h"
#include "gradlens/models/resnet.h"

namespace gradlens::bench {

struct ShapesBatch {
  torch::Tensor images;  ///< float32 [N, 3, S, S], normalised with ImageNet's mean and std
  torch::Tensor masks;   ///< float32 [N, S, S], 1 on the object
};

/// The benchmarks' ResNet18: Fashion-MNIST's small stem, width 16, 1 channel,
/// 10 classes; or, for make-shapes, torchvision's (ImageNet stem, width 64),
/// 3 channels, 8 classes.
inline models::ResNetConfig resnet18_config(bool shapes) {
  models::ResNetConfig cfg;
  cfg.arch = "resnet18";
  cfg.num_classes = shapes ? 8 : 10;
  cfg.in_channels = shapes ? 3 : 1;
  cfg.stem = shapes ? models::Stem::kImageNet : models::Stem::kSmall;
  cfg.width = shapes ? 64 : 16;
  return cfg;
}

/// N make-shapes images of side S (classes 0..7 in turn, seed 0), as
/// make-shapes writes them.
inline ShapesBatch shapes_batch(int64_t n, int64_t size) {
  std::vector<torch::Tensor> imgs, masks;
  for (int64_t i = 0; i < n; ++i) {
    const auto s = data::render_shape(static_cast<int>(i % 8), size, 0, i);
    imgs.push_back(s.image.permute({2, 0, 1}));
    masks.push_back(s.mask.select(2, 0) > 0);
  }
  const auto mean = torch::tensor({0.485, 0.456, 0.406}, torch::kFloat).view({1, 3, 1, 1});
  const auto std = torch::tensor({0.229, 0.224, 0.225}, torch::kFloat).view({1, 3, 1, 1});
  return {((torch::stack(imgs).to(torch::kFloat) / 255.0 - mean) / std).contiguous(),
          torch::stack(masks).to(torch::kFloat)};
}

}  // namespace gradlens::bench
