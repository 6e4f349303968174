// Inputs shared by the benchmarks: the ResNet18 they run, Fashion-MNIST or
// make-shapes images rendered in memory, and what the Python peers read.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <utility>
#include <vector>

#include "gradlens/core/npy.h"
#include "gradlens/data/dataset.h"
#include "gradlens/data/mnist.h"
#include "gradlens/data/shapes.h"
#include "gradlens/models/resnet.h"
#include "gradlens/saliency/cam.h"

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

/// The model inputs of the first n Fashion-MNIST test images, or of n
/// make-shapes images at 224 px (masks set).
inline ShapesBatch bench_images(int64_t n, bool shapes) {
  if (shapes) return shapes_batch(n, 224);
  const auto test = data::load_fashion_mnist(data::kDefaultFashionMnistDir, data::Split::kTest);
  return {data::to_float(test, test.images.slice(0, 0, n)), torch::Tensor()};
}

/// Grad-CAM display maps [N, H, W] at layer4 for the predicted class, and the
/// predictions [N], in batches of 100: the maps the metric benchmarks score.
inline std::pair<torch::Tensor, torch::Tensor> gradcam_maps(models::ResNet& model, const torch::Tensor& x) {
  std::vector<torch::Tensor> maps, preds;
  for (int64_t s = 0; s < x.size(0); s += 100) {
    const auto a = saliency::compute_attribution(model, x.slice(0, s, std::min(x.size(0), s + 100)), {}, {}, s);
    maps.push_back(a.maps);
    preds.push_back(a.preds);
  }
  return {torch::cat(maps), torch::cat(preds)};
}

/// Writes what bench_resnet.load_bench_model(dir) reads: the weights as
/// dir/params/<name>.npy (torchvision's names), dir/x.npy and, for
/// make-shapes, dir/arch.txt ("torchvision-resnet18 8").
inline void write_peer_model(models::ResNet& model, const torch::Tensor& x, bool shapes,
                             const std::filesystem::path& dir) {
  std::filesystem::create_directories(dir / "params");
  for (auto& [name, p] : model.named_parameters()) core::write_npy(dir / "params" / (name + ".npy"), p.detach());
  for (auto& [name, b] : model.named_buffers()) core::write_npy(dir / "params" / (name + ".npy"), b.detach());
  core::write_npy(dir / "x.npy", x);
  if (shapes) std::ofstream(dir / "arch.txt") << "torchvision-resnet18 8\n";
}

}  // namespace gradlens::bench
