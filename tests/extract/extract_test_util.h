// Tiny models and data shared by the extraction tests.
#pragma once

#include <torch/torch.h>

#include <memory>

#include "gradlens/data/dataset.h"
#include "gradlens/models/resnet.h"

namespace gradlens::extract::testing {

/// ResNet18, small stem, width 4, 1 input channel, `classes` classes, with
/// BatchNorm running statistics moved away from (0, 1) by a few train-mode
/// forward passes, so eval-mode BN is not the identity.
inline std::unique_ptr<models::ResNet> tiny_resnet(int64_t classes = 5, const std::string& arch = "resnet18") {
  models::ResNetConfig cfg;
  cfg.arch = arch;
  cfg.num_classes = classes;
  cfg.in_channels = 1;
  cfg.stem = models::Stem::kSmall;
  cfg.width = 4;
  auto m = std::make_unique<models::ResNet>(cfg);
  {
    torch::NoGradGuard no_grad;
    m->train(true);
    for (int i = 0; i < 3; ++i) m->forward(torch::randn({8, 1, 12, 12}) * 2 + 0.5);
    // Make the head's bias non-zero and the weights larger, so that logits differ.
    m->fc_bias().copy_(torch::randn({classes}));
    m->fc_weight().mul_(3);
  }
  m->train(false);
  return m;
}

/// A synthetic uint8 dataset: n images 1x12x12, labels cycling 0..classes-1.
inline data::Dataset tiny_dataset(int64_t n, int64_t classes) {
  data::Dataset ds;
  ds.images = torch::randint(0, 256, {n, 1, 12, 12}, torch::kLong).to(torch::kByte);
  ds.labels = torch::arange(n, torch::kLong).remainder(classes);
  for (int64_t c = 0; c < classes; ++c) ds.class_names.push_back("c" + std::to_string(c));
  ds.mean = {0.5};
  ds.std = {0.25};
  ds.name = "tiny";
  return ds;
}

/// max|a - b| / max|b| (0 when both are zero).
inline double rel_diff(const torch::Tensor& a, const torch::Tensor& b) {
  const double scale = b.abs().max().item<double>();
  const double d = (a.to(torch::kDouble) - b.to(torch::kDouble)).abs().max().item<double>();
  return scale > 0 ? d / scale : d;
}

}  // namespace gradlens::extract::testing
