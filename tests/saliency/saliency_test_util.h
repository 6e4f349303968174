// A small smooth classifier for the attribution tests: conv 3x3 (C_in -> C,
// padding 1) + tanh is the layer "conv"; the head is the spatial mean and a
// linear layer. Being smooth (no ReLU kinks), path integrals along it are
// integrated to O(1/m^2) by the trapezoid rule.
#pragma once

#include <torch/torch.h>

#include <string>
#include <utility>
#include <vector>

#include "gradlens/core/check.h"
#include "gradlens/models/classifier.h"

namespace gradlens::saliency::testing {

class SmoothNet final : public models::Classifier {
 public:
  SmoothNet(int64_t in_channels, int64_t channels, int64_t classes)
      : in_(in_channels), k_(classes) {
    conv_w_ = torch::randn({channels, in_channels, 3, 3}) * 0.5;
    conv_b_ = torch::randn({channels}) * 0.1;
    fc_w_ = torch::randn({classes, channels});
    fc_b_ = torch::randn({classes}) * 0.1;
  }
  torch::Tensor forward(const torch::Tensor& x) override { return head(body(x, "conv"), "conv"); }
  torch::Tensor body(const torch::Tensor& x, const std::string& layer) override {
    GRADLENS_CHECK(layer == "conv", "--layer: unknown layer '", layer, "'; use one of conv");
    return torch::tanh(torch::conv2d(x, conv_w_, conv_b_, 1, 1));
  }
  torch::Tensor features(const torch::Tensor& maps, const std::string&) override {
    return maps.mean({2, 3});
  }
  torch::Tensor classify(const torch::Tensor& f) override { return torch::linear(f, fc_w_, fc_b_); }
  std::vector<std::string> layers() const override { return {"conv"}; }
  int64_t num_classes() const override { return k_; }
  int64_t in_channels() const override { return in_; }
  std::vector<std::pair<std::string, torch::Tensor>> named_parameters() override {
    return {{"conv.weight", conv_w_}, {"conv.bias", conv_b_}, {"fc.weight", fc_w_}, {"fc.bias", fc_b_}};
  }
  std::vector<std::pair<std::string, torch::Tensor>> named_buffers() override { return {}; }
  torch::Tensor fc_weight() override { return fc_w_; }
  torch::Tensor fc_bias() override { return fc_b_; }
  void train(bool on) override { training_ = on; }
  bool is_training() const override { return training_; }
  void to(torch::Device) override {}
  torch::Device device() const override { return torch::kCPU; }
  std::string describe() const override { return "smooth test net"; }

  const torch::Tensor& conv_weight() const { return conv_w_; }
  const torch::Tensor& conv_bias() const { return conv_b_; }

 private:
  int64_t in_, k_;
  bool training_ = false;
  torch::Tensor conv_w_, conv_b_, fc_w_, fc_b_;
};

}  // namespace gradlens::saliency::testing
