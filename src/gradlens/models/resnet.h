// The torchvision ResNet family (resnet18/34/50/101/152) as a Classifier,
// parameter for parameter (same submodule names: conv1 bn1 layer1..layer4 fc,
// layerK.N.downsample.{0,1}), with a small-image stem and a width option.
#pragma once

#include <torch/types.h>

#include <memory>
#include <string>
#include <vector>

#include "gradlens/models/classifier.h"

namespace torch::nn {
class Module;
}

namespace gradlens::models {

enum class Stem {
  /// torchvision's: 7x7 conv stride 2 + 3x3 max-pool stride 2 (for >= 64 px).
  kImageNet,
  /// 3x3 conv stride 1, no max-pool: for 28-32 px images, so layer4 keeps a
  /// 4x4 map on 28 px inputs.
  kSmall,
};

/// "imagenet" | "small"; throws c10::Error naming --stem otherwise.
Stem parse_stem(const std::string& s);
std::string stem_name(Stem s);

struct ResNetConfig {
  /// resnet18 | resnet34 | resnet50 | resnet101 | resnet152
  std::string arch = "resnet18";
  int64_t num_classes = 1000;
  int64_t in_channels = 3;
  Stem stem = Stem::kImageNet;
  /// Channels of the stem and layer1 (torchvision: 64). layer k has
  /// width * 2^(k-1) planes (times 4 for Bottleneck outputs).
  int64_t width = 64;
  /// Zero-initialise the last BN of each residual branch (torchvision option).
  bool zero_init_residual = false;
};

/// Names of the architectures make_resnet() accepts.
std::vector<std::string> resnet_names();

/// Blocks per stage and whether the architecture uses Bottleneck blocks.
/// Throws c10::Error naming the model and listing the valid names.
struct ResNetSpec {
  std::vector<int64_t> blocks;
  bool bottleneck = false;
};
ResNetSpec resnet_spec(const std::string& arch);

/// A native ResNet. Weights are initialised as torchvision does
/// (kaiming-normal fan_out for convs, BN weight 1 / bias 0, default Linear),
/// from LibTorch's global generator (seed it with torch::manual_seed).
class ResNet final : public Classifier {
 public:
  explicit ResNet(const ResNetConfig& cfg);
  ~ResNet() override;

  torch::Tensor forward(const torch::Tensor& x) override;
  torch::Tensor body(const torch::Tensor& x, const std::string& layer) override;
  torch::Tensor features(const torch::Tensor& maps, const std::string& layer) override;
  torch::Tensor classify(const torch::Tensor& features) override;
  std::vector<std::string> layers() const override;
  int64_t num_classes() const override { return cfg_.num_classes; }
  int64_t in_channels() const override { return cfg_.in_channels; }
  std::vector<std::pair<std::string, torch::Tensor>> named_parameters() override;
  std::vector<std::pair<std::string, torch::Tensor>> named_buffers() override;
  torch::Tensor fc_weight() override;
  torch::Tensor fc_bias() override;
  void train(bool on) override;
  bool is_training() const override;
  void to(torch::Device device) override;
  torch::Device device() const override;
  std::string describe() const override;

  const ResNetConfig& config() const { return cfg_; }
  /// The underlying torch::nn::Module (for optimizers and serialization).
  std::shared_ptr<torch::nn::Module> module();

  /// Converts conv weights and buffers to channels-last memory format
  /// (faster convolutions with oneDNN on CPU). Inputs should match.
  void to_channels_last() override;

  /// In eval mode, run each BatchNorm folded into the convolution before it
  /// (one convolution with scaled weights and a bias; on by default). The
  /// outputs and every gradient are those of the unfolded network up to
  /// float rounding (about 1e-6 relative; tested), with one pass less over
  /// each activation forward and backward. Training mode never folds (BN then
  /// normalises with batch statistics).
  void set_fold_batchnorm(bool on);
  bool folds_batchnorm() const;

  /// With BatchNorm folded (above), run each 3x3 stride-1 convolution whose
  /// channel counts are multiples of 16 on channels-last float32 CPU maps by
  /// Winograd's F(4x4, 3x3) on AVX-512F CPUs (models/winograd.h; on by
  /// default): forward 1.6-2.6x and input gradient 1.1-2.2x faster than
  /// oneDNN's direct convolution per layer at one thread here (width-16
  /// ResNet18; bench/winograd_bench.cpp), equal up to float rounding (within
  /// 1e-5 of the largest output against 5e-7 for the direct one), with the
  /// folded kernels transformed once and kept
  /// until a parameter or buffer changes. Off: LibTorch's convolution, as
  /// Python torch computes it.
  void set_winograd(bool on);
  bool uses_winograd() const;
  /// kDirect: set_winograd(false); otherwise set_winograd(true).
  void set_conv_algorithm(ConvAlgorithm algorithm) override;
  /// Convolutions run by Winograd so far (a count that grows with each
  /// forward pass that used it; extraction records whether it did).
  int64_t winograd_convolutions() const override;

  /// Every Conv2d, named as torchvision's named_modules().
  std::vector<std::string> conv_layer_names() override;
  /// The forward pass with the named convolution (and its BatchNorm) run
  /// unfolded, keeping its input and output; every other convolution runs as
  /// usual (folded, Winograd where it applies).
  ConvCapture capture_conv(const torch::Tensor& x, const std::string& layer, const std::string& conv) override;

  void save(torch::serialize::OutputArchive& archive);
  void load(torch::serialize::InputArchive& archive);

 private:
  struct Impl;
  ResNetConfig cfg_;
  std::shared_ptr<Impl> impl_;
};

}  // namespace gradlens::models
