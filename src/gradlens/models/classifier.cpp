#include "gradlens/models/classifier.h"
#include <torch/torch.h>

#include <algorithm>

#include "gradlens/core/check.h"
#include "gradlens/core/strings.h"

namespace gradlens::models {

std::vector<torch::Tensor> Classifier::parameters() {
  std::vector<torch::Tensor> out;
  for (auto& [name, p] : named_parameters()) out.push_back(p);
  return out;
}

Capture Classifier::capture(const torch::Tensor& x, const std::string& layer, bool maps_leaf) {
  Capture c;
  if (maps_leaf && !x.requires_grad()) {
    {
      torch::NoGradGuard no_grad;
      c.maps = body(x, layer);
    }
    c.maps = c.maps.detach().requires_grad_(torch::GradMode::is_enabled());
  } else {
    c.maps = body(x, layer);
  }
  c.features = features(c.maps, layer);
  c.logits = classify(c.features);
  return c;
}

ConvCapture Classifier::capture_conv(const torch::Tensor& x, const std::string& layer, const std::string& conv) {
  (void)x;
  (void)layer;
  GRADLENS_CHECK_OPTION(false, "convolution '", conv, "': ", describe(),
                 " offers no convolution whose per-sample gradients gradlens can capture");
  return {};
}

const std::vector<std::string>& conv_algorithm_names() {
  static const std::vector<std::string> names = {"auto", "winograd", "direct"};
  return names;
}

ConvAlgorithm parse_conv_algorithm(const std::string& name) {
  const auto& names = conv_algorithm_names();
  for (size_t i = 0; i < names.size(); ++i)
    if (names[i] == name) return static_cast<ConvAlgorithm>(i);
  GRADLENS_CHECK_OPTION(false, "--conv-algorithm: unknown algorithm '", name, "'; use one of ", core::join(names, ", "));
  return ConvAlgorithm::kAuto;
}

std::string conv_algorithm_name(ConvAlgorithm a) { return conv_algorithm_names().at(static_cast<size_t>(a)); }

void Classifier::check_layer(const std::string& layer, const char* flag) const {
  const auto names = layers();
  if (std::find(names.begin(), names.end(), layer) != names.end()) return;
  GRADLENS_CHECK(false, flag, ": unknown layer '", layer, "' for ", describe(), "; nearest: ",
                 core::join(core::nearest(names, layer, 5), ", "),
                 names.size() > 5 ? " ('gradlens layers --model FILE' lists all)" : "");
}

const std::vector<std::string>& resnet_stage_names() {
  static const std::vector<std::string> names = {"layer1", "layer2", "layer3", "layer4"};
  return names;
}

int64_t resnet_stage_index(const std::string& layer) {
  const auto& names = resnet_stage_names();
  for (size_t i = 0; i < names.size(); ++i)
    if (names[i] == layer) return static_cast<int64_t>(i);
  GRADLENS_CHECK(false, "unknown layer '", layer,
                 "' for a ResNet; use one of layer1, layer2, layer3, layer4 (--layer)");
  return -1;
}

int64_t count_parameters(Classifier& c) {
  int64_t n = 0;
  for (auto& [name, p] : c.named_parameters()) n += p.numel();
  return n;
}

}  // namespace gradlens::models
