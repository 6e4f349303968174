// A user's TorchScript module (torch.jit.script / torch.jit.trace) served
// through the Classifier interface.
#pragma once

#include <torch/types.h>

#include <memory>
#include <string>

#include "gradlens/models/classifier.h"
#include "gradlens/models/resnet.h"

namespace torch::jit {
struct Module;
}

namespace gradlens::models {

/// What a TorchScript model is probed with when it is loaded: a zero batch
/// [2, in_channels, size, size] must give 2-D logits.
struct ProbeShape {
  int64_t in_channels = 0;  ///< 0: take it from the module's conv1 weight.
  int64_t size = 28;
};

/// Wraps a torch::jit::Module. forward() works for any classifier; body(),
/// features() and classify() need torchvision's ResNet submodule names
/// (conv1 bn1 relu maxpool layer1..layer4 avgpool fc), which scripted and
/// traced torchvision ResNets keep.
class TorchScriptClassifier final : public Classifier {
 public:
  /// Loads and validates `path`. Throws c10::Error naming the file when it
  /// cannot be read as TorchScript or its forward() does not return logits
  /// [N, classes] for the probe batch.
  TorchScriptClassifier(const std::string& path, torch::Device device, ProbeShape probe = {});
  ~TorchScriptClassifier() override;

  torch::Tensor forward(const torch::Tensor& x) override;
  torch::Tensor body(const torch::Tensor& x, const std::string& layer) override;
  torch::Tensor features(const torch::Tensor& maps, const std::string& layer) override;
  torch::Tensor classify(const torch::Tensor& features) override;
  std::vector<std::string> layers() const override;
  int64_t num_classes() const override { return num_classes_; }
  int64_t in_channels() const override { return in_channels_; }
  std::vector<std::pair<std::string, torch::Tensor>> named_parameters() override;
  std::vector<std::pair<std::string, torch::Tensor>> named_buffers() override;
  torch::Tensor fc_weight() override;
  torch::Tensor fc_bias() override;
  void train(bool on) override;
  bool is_training() const override;
  void to(torch::Device device) override;
  torch::Device device() const override { return device_; }
  std::string describe() const override;

  /// True if the module has torchvision's ResNet submodules.
  bool resnet_style() const { return resnet_style_; }
  torch::jit::Module& module();

 private:
  void require_resnet_style(const char* what) const;
  std::string path_;
  std::unique_ptr<torch::jit::Module> module_;
  torch::Device device_{torch::kCPU};
  bool resnet_style_ = false;
  int64_t num_classes_ = 0;
  int64_t in_channels_ = 0;
};

/// Result of copying weights by name into a native ResNet.
struct ImportReport {
  int64_t copied = 0;
  std::vector<std::string> missing;      ///< in the ResNet, absent in the source
  std::vector<std::string> unexpected;   ///< in the source, absent in the ResNet
  std::vector<std::string> mismatched;   ///< same name, different shape
  bool complete() const { return missing.empty() && mismatched.empty(); }
};

/// Infers the torchvision ResNet configuration (depth, stem, width, channels,
/// classes) from a module's parameter names and shapes. Throws c10::Error if
/// the names do not look like a torchvision ResNet.
ResNetConfig infer_resnet_config(const std::vector<std::pair<std::string, torch::Tensor>>& params);

/// Copies parameters and buffers by name from `source` into `target`.
ImportReport import_weights(Classifier& source, ResNet& target);

}  // namespace gradlens::models
