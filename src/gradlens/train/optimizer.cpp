#include "gradlens/train/optimizer.h"
#include <torch/torch.h>

#include "gradlens/core/check.h"

namespace gradlens::train {

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const std::vector<torch::Tensor>& params,
                                                        const OptimizerOptions& o) {
  GRADLENS_CHECK(o.lr > 0 && std::isfinite(o.lr), "--lr must be a positive number, got ", o.lr);
  GRADLENS_CHECK(o.weight_decay >= 0, "--weight-decay must be >= 0, got ", o.weight_decay);
  if (o.name == "sgd") {
    GRADLENS_CHECK(o.momentum >= 0 && o.momentum < 1, "--momentum must be in [0, 1), got ",
                   o.momentum);
    GRADLENS_CHECK(!o.nesterov || o.momentum > 0, "--nesterov needs --momentum > 0");
    return std::make_unique<torch::optim::SGD>(params, torch::optim::SGDOptions(o.lr)
                                                           .momentum(o.momentum)
                                                           .nesterov(o.nesterov)
                                                           .weight_decay(o.weight_decay));
  }
  if (o.name == "adam") {
    return std::make_unique<torch::optim::Adam>(
        params, torch::optim::AdamOptions(o.lr).betas({o.beta1, o.beta2}).eps(o.eps).weight_decay(
                    o.weight_decay));
  }
  if (o.name == "adamw") {
    return std::make_unique<torch::optim::AdamW>(
        params, torch::optim::AdamWOptions(o.lr).betas({o.beta1, o.beta2}).eps(o.eps).weight_decay(
                    o.weight_decay));
  }
  GRADLENS_CHECK_OPTION(false, "--optimizer: unknown optimizer '", o.name, "'; use sgd, adam or adamw");
  return nullptr;
}

void set_lr(torch::optim::Optimizer& opt, double lr) {
  for (auto& group : opt.param_groups()) group.options().set_lr(lr);
}

}  // namespace gradlens::train
