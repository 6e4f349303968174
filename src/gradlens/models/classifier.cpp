#include "gradlens/models/classifier.h"
#include <torch/torch.h>

#include "gradlens/core/check.h"

namespace gradlens::models {

std::vector<torch::Tensor> Classifier::parameters() {
  std::vector<torch::Tensor> out;
  for (auto& [name, p] : named_parameters()) out.push_back(p);
  return out;
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
