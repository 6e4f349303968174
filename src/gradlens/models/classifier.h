// The interface every classifier in gradlens implements (native ResNets and
// user TorchScript modules). Extraction, Grad-CAM and training are written
// against it.
#pragma once

#include <torch/types.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace torch::serialize {
class OutputArchive;
class InputArchive;
}  // namespace torch::serialize

namespace gradlens::models {

/// What one forward pass keeps (Classifier::capture).
struct Capture {
  torch::Tensor logits;    ///< [N, num_classes]
  torch::Tensor maps;      ///< activations at the layer, [N, C, H, W]
  torch::Tensor features;  ///< input of the final linear layer, [N, D]; undefined if there is none
};

/// The geometry of a Conv2d (groups 1, explicit zero padding), as per-sample
/// weight gradients need it.
struct ConvGeometry {
  std::vector<int64_t> kernel, stride, padding, dilation;  ///< {h, w} each
  bool has_bias = false;
};

/// A forward pass that also keeps one convolution's input and output
/// (Classifier::capture_conv).
struct ConvCapture : Capture {
  torch::Tensor conv_input;   ///< detached [N, Cin, H, W]
  torch::Tensor conv_output;  ///< [N, Cout, H', W'] before any BatchNorm, in the graph of `logits`
  ConvGeometry geometry;
};

/// How a model that can choose runs its convolutions in eval mode.
enum class ConvAlgorithm {
  kAuto,      ///< Winograd where it applies (the commands say where they differ)
  kWinograd,  ///< Winograd F(4x4, 3x3) where it applies (models/winograd.h)
  kDirect     ///< LibTorch's convolutions, as Python torch computes them
};
/// "auto", "winograd", "direct".
const std::vector<std::string>& conv_algorithm_names();
/// Parses a name of conv_algorithm_names(); throws c10::Error naming
/// --conv-algorithm and the names otherwise.
ConvAlgorithm parse_conv_algorithm(const std::string& name);
std::string conv_algorithm_name(ConvAlgorithm a);

/// A convolutional classifier split at a named layer:
///   forward(x) == head(body(x, layer), layer)   for every layer in layers().
/// body() returns the activation maps A at `layer` ([N, C, H, W]); head()
/// runs the rest of the network. features() is the penultimate
/// representation (after global pooling, before the final linear layer).
class Classifier {
 public:
  virtual ~Classifier() = default;

  /// Logits [N, num_classes] for an input batch [N, in_channels, H, W].
  virtual torch::Tensor forward(const torch::Tensor& x) = 0;

  /// Activation maps at `layer` ([N, C, H', W']). Throws c10::Error naming
  /// the layer and listing layers() when it is unknown.
  virtual torch::Tensor body(const torch::Tensor& x, const std::string& layer) = 0;

  /// Penultimate features [N, D] computed from the maps at `layer`.
  virtual torch::Tensor features(const torch::Tensor& maps, const std::string& layer) = 0;

  /// The final linear layer applied to features: [N, D] -> [N, num_classes].
  virtual torch::Tensor classify(const torch::Tensor& features) = 0;

  /// Logits from the maps at `layer` (= classify(features(maps, layer))).
  torch::Tensor head(const torch::Tensor& maps, const std::string& layer) {
    return classify(features(maps, layer));
  }

  /// One forward pass of x that keeps the maps at `layer` and the features.
  /// Under grad mode, autograd::grad(logits, maps) is the gradient at the
  /// layer's output (what a forward hook sees in PyTorch). With `maps_leaf`
  /// the caller needs gradients only down to the maps: a model that can split
  /// there computes the body without recording it and makes maps a leaf.
  /// Without it, gradients flow on through the maps to x and the parameters.
  /// The default implementation composes body(), features() and classify().
  virtual Capture capture(const torch::Tensor& x, const std::string& layer, bool maps_leaf);

  /// The convolutions capture_conv() can capture, named as PyTorch's
  /// named_modules() names them (e.g. "conv1", "layer4.1.conv2"); empty when
  /// the model offers none (the default).
  virtual std::vector<std::string> conv_layer_names() { return {}; }
  /// capture(x, layer, /*maps_leaf=*/false) that also keeps the input and the
  /// output of the convolution `conv` (one of conv_layer_names()), so that
  /// autograd::grad(logits, conv_output) with the input gives per-sample
  /// weight gradients. Throws c10::Error naming --param-layer and the
  /// nearest names for an unknown convolution, or saying that the model
  /// offers none (the default).
  virtual ConvCapture capture_conv(const torch::Tensor& x, const std::string& layer, const std::string& conv);
  /// Chooses how convolutions run in eval mode; models with one way ignore it
  /// (the default).
  virtual void set_conv_algorithm(ConvAlgorithm algorithm) { (void)algorithm; }
  /// Convolutions run by Winograd so far (0 for models that never do).
  virtual int64_t winograd_convolutions() const { return 0; }
  /// Names accepted by body()/capture(), from the input side to the output.
  virtual std::vector<std::string> layers() const = 0;
  /// The default layer for Grad-CAM and activation maps (here the last one).
  virtual std::string default_layer() const { return layers().back(); }

  /// Throws c10::Error naming `flag`, the model and the nearest names in
  /// layers() when `layer` is not one of them.
  void check_layer(const std::string& layer, const char* flag) const;

  virtual int64_t num_classes() const = 0;
  virtual int64_t in_channels() const = 0;

  virtual std::vector<std::pair<std::string, torch::Tensor>> named_parameters() = 0;
  virtual std::vector<std::pair<std::string, torch::Tensor>> named_buffers() = 0;
  std::vector<torch::Tensor> parameters();

  /// Final linear layer weight [num_classes, D] and bias [num_classes].
  virtual torch::Tensor fc_weight() = 0;
  virtual torch::Tensor fc_bias() = 0;

  virtual void train(bool on) = 0;
  virtual bool is_training() const = 0;
  virtual void to(torch::Device device) = 0;
  virtual torch::Device device() const = 0;
  /// Stores 4-D weights in channels-last memory format, for faster oneDNN
  /// convolutions on the CPU (inputs may stay contiguous: the convolution
  /// follows the weights). The default does nothing (e.g. TorchScript models).
  virtual void to_channels_last() {}

  /// One line describing the model ("resnet18 (small stem, width 16, ...)").
  virtual std::string describe() const = 0;
};

/// RAII: puts a classifier in eval (or train) mode and restores the old mode.
class ModeGuard {
 public:
  ModeGuard(Classifier& c, bool training) : c_(c), old_(c.is_training()) { c_.train(training); }
  ~ModeGuard() { c_.train(old_); }
  ModeGuard(const ModeGuard&) = delete;
  ModeGuard& operator=(const ModeGuard&) = delete;

 private:
  Classifier& c_;
  bool old_;
};

/// The stage names of a ResNet-style network, input side first: layer1..layer4.
const std::vector<std::string>& resnet_stage_names();

/// Position of `layer` in resnet_stage_names(). Throws c10::Error naming the
/// layer and listing the valid ones (flag --layer) when it is unknown.
int64_t resnet_stage_index(const std::string& layer);

/// Total number of scalar parameters.
int64_t count_parameters(Classifier& c);

}  // namespace gradlens::models
