#include "gradlens/models/torchscript.h"
#include <torch/torch.h>

#include <torch/script.h>

#include <map>
#include <regex>
#include <set>

#include "gradlens/core/check.h"

namespace gradlens::models {

namespace {

const std::vector<std::string> kResNetChildren = {"conv1",  "bn1",    "relu",   "maxpool", "layer1",
                                                  "layer2", "layer3", "layer4", "avgpool", "fc"};

torch::Tensor call(torch::jit::Module& m, const std::string& child, const torch::Tensor& x) {
  auto sub = m.attr(child).toModule();
  return sub.forward({x}).toTensor();
}


}  // namespace

TorchScriptClassifier::TorchScriptClassifier(const std::string& path, torch::Device device,
                                             ProbeShape probe)
    : path_(path), device_(device) {
  try {
    module_ = std::make_unique<torch::jit::Module>(torch::jit::load(path, device));
  } catch (const std::exception& e) {
    GRADLENS_CHECK(false, "cannot load TorchScript model ", path, ": ", error_message(e),
                   "; save it with torch.jit.save(torch.jit.script(model), path)");
  }
  GRADLENS_CHECK(module_->find_method("forward").has_value(), path,
                 " is not a classifier: the TorchScript module has no forward() method "
                 "(a gradlens checkpoint? pass it as --checkpoint)");
  resnet_style_ = true;
  for (const auto& c : kResNetChildren) resnet_style_ = resnet_style_ && module_->hasattr(c);

  std::map<std::string, torch::Tensor> params;
  for (const auto& p : module_->named_parameters(true)) params[p.name] = p.value;
  if (probe.in_channels > 0) {
    in_channels_ = probe.in_channels;
  } else if (params.count("conv1.weight") != 0 && params["conv1.weight"].dim() == 4) {
    in_channels_ = params["conv1.weight"].size(1);
  } else {
    GRADLENS_CHECK(false, "cannot tell the input channels of ", path,
                   " (no conv1.weight); give them with --channels");
  }
  module_->eval();
  torch::Tensor out;
  try {
    torch::NoGradGuard ng;
    auto r = module_->forward({torch::zeros({2, in_channels_, probe.size, probe.size},
                                            torch::TensorOptions().device(device))});
    GRADLENS_CHECK(r.isTensor(), path, " is not a classifier: forward() returned a ",
                   r.tagKind(), ", expected a logits tensor [N, classes]");
    out = r.toTensor();
  } catch (const c10::Error& e) {
    const std::string msg = error_message(e);
    if (msg.find("is not a classifier") != std::string::npos) throw;
    GRADLENS_CHECK(false, path, " is not a classifier for [N, ", in_channels_, ", ", probe.size,
                   ", ", probe.size, "] images: forward() failed: ", msg);
  }
  GRADLENS_CHECK(out.dim() == 2 && out.size(0) == 2 && out.is_floating_point(), path,
                 " is not a classifier: forward() returned shape ", out.sizes(),
                 ", expected logits [N, classes]");
  num_classes_ = out.size(1);
}

TorchScriptClassifier::~TorchScriptClassifier() = default;

torch::jit::Module& TorchScriptClassifier::module() { return *module_; }

void TorchScriptClassifier::require_resnet_style(const char* what) const {
  GRADLENS_CHECK(resnet_style_, path_, ": ", what,
                 " needs torchvision's ResNet submodules (conv1 bn1 relu maxpool layer1..layer4 "
                 "avgpool fc); this TorchScript model only supports forward()");
}

torch::Tensor TorchScriptClassifier::forward(const torch::Tensor& x) {
  return module_->forward({x}).toTensor();
}

torch::Tensor TorchScriptClassifier::body(const torch::Tensor& x, const std::string& layer) {
  require_resnet_style("activation maps");
  const int64_t last = resnet_stage_index(layer);
  GRADLENS_CHECK(x.dim() == 4 && x.size(1) == in_channels_, "input batch of shape ", x.sizes(),
                 " does not fit ", path_, " with ", in_channels_, " input channel(s)");
  auto y = call(*module_, "conv1", x);
  y = call(*module_, "bn1", y);
  y = call(*module_, "relu", y);
  y = call(*module_, "maxpool", y);
  for (int64_t s = 0; s <= last; ++s) y = call(*module_, resnet_stage_names()[s], y);
  return y;
}

torch::Tensor TorchScriptClassifier::features(const torch::Tensor& maps, const std::string& layer) {
  require_resnet_style("features");
  auto y = maps;
  for (int64_t s = resnet_stage_index(layer) + 1; s < 4; ++s) y = call(*module_, resnet_stage_names()[s], y);
  y = call(*module_, "avgpool", y);
  return y.flatten(1);
}

torch::Tensor TorchScriptClassifier::classify(const torch::Tensor& f) {
  require_resnet_style("the final linear layer");
  return call(*module_, "fc", f);
}

std::vector<std::string> TorchScriptClassifier::layers() const {
  if (!resnet_style_) return {};
  return resnet_stage_names();
}

std::vector<std::pair<std::string, torch::Tensor>> TorchScriptClassifier::named_parameters() {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& p : module_->named_parameters(true)) out.emplace_back(p.name, p.value);
  return out;
}

std::vector<std::pair<std::string, torch::Tensor>> TorchScriptClassifier::named_buffers() {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& p : module_->named_buffers(true)) out.emplace_back(p.name, p.value);
  return out;
}

torch::Tensor TorchScriptClassifier::fc_weight() {
  require_resnet_style("the final linear layer");
  return module_->attr("fc").toModule().attr("weight").toTensor();
}

torch::Tensor TorchScriptClassifier::fc_bias() {
  require_resnet_style("the final linear layer");
  return module_->attr("fc").toModule().attr("bias").toTensor();
}

void TorchScriptClassifier::train(bool on) { module_->train(on); }
bool TorchScriptClassifier::is_training() const { return module_->is_training(); }

void TorchScriptClassifier::to(torch::Device device) {
  module_->to(device);
  device_ = device;
}

std::string TorchScriptClassifier::describe() const {
  return "TorchScript " + path_ + " (" + std::to_string(in_channels_) + " input channel(s), " +
         std::to_string(num_classes_) + " classes" + (resnet_style_ ? ", ResNet-style)" : ")");
}

ResNetConfig infer_resnet_config(const std::vector<std::pair<std::string, torch::Tensor>>& params) {
  std::map<std::string, torch::Tensor> p(params.begin(), params.end());
  GRADLENS_CHECK(p.count("conv1.weight") && p.count("fc.weight"),
                 "not a torchvision-style ResNet: missing conv1.weight or fc.weight");
  ResNetConfig cfg;
  const auto& c1 = p["conv1.weight"];
  cfg.width = c1.size(0);
  cfg.in_channels = c1.size(1);
  cfg.stem = c1.size(2) == 7 ? Stem::kImageNet : Stem::kSmall;
  cfg.num_classes = p["fc.weight"].size(0);
  std::vector<int64_t> blocks(4, 0);
  bool bottleneck = false;
  const std::regex re(R"(^layer([1-4])\.([0-9]+)\.(conv3)?)");
  for (const auto& [name, t] : p) {
    std::smatch m;
    if (std::regex_search(name, m, re)) {
      const int s = std::stoi(m[1]) - 1;
      blocks[s] = std::max<int64_t>(blocks[s], std::stoll(m[2]) + 1);
      if (m[3].matched) bottleneck = true;
    }
  }
  for (const auto& name : resnet_names()) {
    const auto spec = resnet_spec(name);
    if (spec.blocks == blocks && spec.bottleneck == bottleneck) {
      cfg.arch = name;
      return cfg;
    }
  }
  GRADLENS_CHECK(false, "not a torchvision ResNet depth: blocks per stage ", blocks[0], "/",
                 blocks[1], "/", blocks[2], "/", blocks[3], bottleneck ? " (bottleneck)" : "");
  return cfg;
}

ImportReport import_weights(Classifier& source, ResNet& target) {
  ImportReport rep;
  std::map<std::string, torch::Tensor> src;
  for (auto& [n, t] : source.named_parameters()) src[n] = t;
  for (auto& [n, t] : source.named_buffers()) src[n] = t;
  std::set<std::string> used;
  torch::NoGradGuard ng;
  auto copy_all = [&](std::vector<std::pair<std::string, torch::Tensor>> dst) {
    for (auto& [n, t] : dst) {
      auto it = src.find(n);
      if (it == src.end()) {
        rep.missing.push_back(n);
        continue;
      }
      used.insert(n);
      if (it->second.sizes() != t.sizes()) {
        rep.mismatched.push_back(n);
        continue;
      }
      t.copy_(it->second.to(t.device(), t.scalar_type()));
      ++rep.copied;
    }
  };
  copy_all(target.named_parameters());
  copy_all(target.named_buffers());
  for (auto& [n, t] : src)
    if (used.count(n) == 0) rep.unexpected.push_back(n);
  return rep;
}

}  // namespace gradlens::models
