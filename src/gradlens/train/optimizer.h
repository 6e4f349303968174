// Optimizer construction from options (SGD with momentum/Nesterov, Adam, AdamW).
#pragma once

#include <torch/types.h>

#include <memory>
#include <string>
#include <vector>

namespace torch::optim {
class Optimizer;
}

namespace gradlens::train {

struct OptimizerOptions {
  /// "sgd" | "adam" | "adamw"
  std::string name = "sgd";
  double lr = 0.1;
  double momentum = 0.9;
  bool nesterov = true;
  double weight_decay = 5e-4;
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
};

/// Builds the optimizer over `params`. Throws c10::Error naming --optimizer
/// for an unknown name and the flag of any out-of-range value.
std::unique_ptr<torch::optim::Optimizer> make_optimizer(const std::vector<torch::Tensor>& params,
                                                        const OptimizerOptions& opts);

/// Sets the learning rate of every parameter group.
void set_lr(torch::optim::Optimizer& opt, double lr);

}  // namespace gradlens::train
