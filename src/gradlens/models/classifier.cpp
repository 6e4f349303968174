#include "gradlens/models/classifier.h"

namespace gradlens::models {

std::vector<torch::Tensor> Classifier::parameters() {
  std::vector<torch::Tensor> out;
  for (auto& [name, p] : named_parameters()) out.push_back(p);
  return out;
}

int64_t count_parameters(Classifier& c) {
  int64_t n = 0;
  for (auto& [name, p] : c.named_parameters()) n += p.numel();
  return n;
}

}  // namespace gradlens::models
