// A user's TorchScript module (torch.jit.script / torch.jit.trace) served
// through the Classifier interface.
#pragma once

#include <torch/types.h>

#include <memory>
#include <string>
#include <vector>

#include "gradlens/models/classifier.h"
#include "gradlens/models/model_options.h"
#include "gradlens/models/resnet.h"

namespace torch::jit {
struct Module;
}

namespace gradlens::models {

/// What a TorchScript model is probed with when it is loaded: a zero batch
/// [2, in_channels, size, size] must give 2-D logits.
struct ProbeShape {
  int64_t in_channels = 0;  ///< 0: take it from the first Conv2d's weight.
  int64_t size = 28;
};

/// One submodule of a TorchScript model, seen in one probe forward pass.
struct ModuleInfo {
  std::string name;            ///< path as in PyTorch's named_modules(): "features.18"
  std::string type;            ///< class name: "Conv2d", "Sequential", ...
  std::vector<int64_t> shape;  ///< output shape for the probe batch; empty if none
  bool called = false;         ///< forward() calls it (outside control flow)
  bool is_default = false;     ///< the default layer
  bool is_head = false;        ///< the final linear layer
};

/// Wraps a torch::jit::Module (scripted or traced) of any architecture whose
/// forward(x) returns logits [N, classes]. Layers are its submodules, named
/// as by named_modules(). capture() runs a copy of forward()'s graph in
/// which the calls leading to the requested layer and to the head (the last
/// nn.Linear) are inlined, and returns the layer's output and the head's
/// input next to the logits: what forward hooks record in PyTorch, without
/// changing the model (docs/HACKING.md, "Capturing a layer"). A forward()
/// that returns a tuple or a dict serves the element that
/// TorchScriptOptions names; a layer whose output is a token sequence
/// [N, T, D] is captured as maps [N, D, h, w] (TorchScriptOptions::class_tokens),
/// reshaped inside the graph so that gradients w.r.t. the maps are the
/// gradients w.r.t. those tokens.
class TorchScriptClassifier final : public Classifier {
 public:
  /// Loads and validates `path`. Throws c10::Error naming the file when it
  /// cannot be read as TorchScript or its forward() does not return logits
  /// [N, classes] for the probe batch (naming --output-index / --output-key
  /// when it returns a tuple or a dict and `options` does not choose).
  /// `verify_file`: compares every entry's CRC-32 while loading
  /// (core::load_verified) and throws "... is corrupt ..." on a mismatch.
  TorchScriptClassifier(const std::string& path, torch::Device device, ProbeShape probe = {},
                        TorchScriptOptions options = {}, bool verify_file = false);
  ~TorchScriptClassifier() override;

  torch::Tensor forward(const torch::Tensor& x) override;
  /// The output of submodule `layer` (capture().maps).
  torch::Tensor body(const torch::Tensor& x, const std::string& layer) override;
  /// Only for ResNet-style modules and their stage names (layer1..layer4).
  torch::Tensor features(const torch::Tensor& maps, const std::string& layer) override;
  /// The head (head_name()) applied to features.
  torch::Tensor classify(const torch::Tensor& features) override;
  Capture capture(const torch::Tensor& x, const std::string& layer, bool maps_leaf) override;
  /// Every nn.Conv2d submodule. capture_conv() serves those that forward()
  /// calls once, outside control flow, with groups 1 and zero padding; it
  /// reads their geometry from the module's attributes (scripted) or from
  /// the convolution that tracing recorded (traced).
  std::vector<std::string> conv_layer_names() override;
  ConvCapture capture_conv(const torch::Tensor& x, const std::string& layer, const std::string& conv) override;
  /// Every submodule path, in named_modules() order.
  std::vector<std::string> layers() const override;
  /// The outermost name of the last module output, in execution order, that
  /// is 4-D with more than one spatial position and does not come from a
  /// pooling module (falls back to any 4-D one). torchvision: layer4 for
  /// ResNets, features for VGG, MobileNet, DenseNet, EfficientNet. A
  /// transformer (a *Attention module called after that output): the last
  /// LayerNorm with grid tokens [N, T, D] called before the last attention
  /// (a ViT's last-block norm1). gradlens.json's "layer" overrides both.
  std::string default_layer() const override;
  int64_t num_classes() const override { return num_classes_; }
  int64_t in_channels() const override { return in_channels_; }
  std::vector<std::pair<std::string, torch::Tensor>> named_parameters() override;
  std::vector<std::pair<std::string, torch::Tensor>> named_buffers() override;
  /// The head's weight and bias; throws when there is no head or forward()
  /// changes the head's output before returning it.
  torch::Tensor fc_weight() override;
  torch::Tensor fc_bias() override;
  void train(bool on) override;
  bool is_training() const override;
  void to(torch::Device device) override;
  torch::Device device() const override { return device_; }
  std::string describe() const override;

  /// Every submodule with its output shape for the probe batch.
  std::vector<ModuleInfo> modules() const;
  /// Path of the head: the nn.Linear whose output forward() returns, else
  /// the last nn.Linear ("" if none).
  const std::string& head_name() const;
  /// True if the module has torchvision's ResNet submodules.
  bool resnet_style() const { return resnet_style_; }
  torch::jit::Module& module();

 private:
  struct Graphs;
  struct CaptureCode;
  /// The capture graph for `layer` and the convolution `conv` ("" for none), compiled once.
  const CaptureCode& capture_code(const std::string& layer, const std::string& conv);
  ConvCapture capture_conv_impl(const torch::Tensor& x, const std::string& layer, const std::string& conv);
  void require_resnet_style(const char* what) const;
  void require_head(const char* what) const;
  const Graphs& probed() const;
  torch::Tensor logits_of(const c10::IValue& out) const;
  std::string path_;
  std::unique_ptr<torch::jit::Module> module_;
  std::unique_ptr<Graphs> graphs_;
  torch::Device device_{torch::kCPU};
  bool resnet_style_ = false;
  std::string metadata_layer_;  ///< gradlens.json's "layer", or ""
  TorchScriptOptions options_;  ///< flags over gradlens.json
  int64_t num_classes_ = 0;
  int64_t in_channels_ = 0;
  int64_t probe_size_ = 28;
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
