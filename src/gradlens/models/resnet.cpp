#include "gradlens/models/resnet.h"
#include <torch/torch.h>

#include <sstream>

#include "gradlens/core/check.h"
#include "gradlens/models/winograd.h"

namespace gradlens::models {

namespace nn = torch::nn;

// Eval-mode shortcuts of conv_bn (below): fold each BN into its
// convolution, and run eligible folded convolutions by Winograd.
struct ResNetFastEval {
  bool fold = true;
  bool winograd = true;
};

namespace {

nn::Conv2d conv3x3(int64_t in, int64_t out, int64_t stride) {
  return nn::Conv2d(nn::Conv2dOptions(in, out, 3).stride(stride).padding(1).bias(false));
}

nn::Conv2d conv1x1(int64_t in, int64_t out, int64_t stride) {
  return nn::Conv2d(nn::Conv2dOptions(in, out, 1).stride(stride).bias(false));
}

// BN(conv(x)). In eval mode with `fold` set, one convolution whose weight
// and bias carry the BN's affine map: w' = w * s, b' = beta + (b - mean) * s
// with s = gamma / sqrt(var + eps). The same function up to float rounding,
// with one pass less over the activations forward and one less backward.
// w' and b' are recomputed on every call from the live parameters, as
// differentiable tensor ops, so gradients with respect to the convolution's
// and the BN's parameters (Hessian products, training in eval mode) are
// those of the unfolded network, and a changed parameter is always seen.
// With `winograd` (a cache for the conv's transformed kernels) a folded 3x3
// stride-1 convolution that winograd_applies to runs by Winograd F(4x4, 3x3)
// (models/winograd.h); the cache transforms the folded kernels again only
// after the conv's or the BN's tensors change.
torch::Tensor conv_bn(nn::Conv2dImpl& conv, nn::BatchNorm2dImpl& bn, const torch::Tensor& x,
                      const ResNetFastEval& fe, WinogradKernelCache* winograd = nullptr) {
  const bool fold = fe.fold;
  const auto& co = conv.options;
  const auto* pad = c10::get_if<torch::ExpandingArray<2>>(&co.padding());
  const bool foldable = fold && !bn.is_training() && bn.options.affine() &&
                        bn.options.track_running_stats() && pad != nullptr &&
                        c10::get_if<torch::enumtype::kZeros>(&co.padding_mode()) != nullptr;
  if (!foldable) {
    // (A training-mode BN updates its running statistics without bumping
    // their version counters in LibTorch 1.13: start afresh after it.)
    if (winograd != nullptr) winograd->clear();
    return bn.forward(conv.forward(x));
  }
  const auto s = bn.weight * torch::rsqrt(bn.running_var + bn.options.eps());
  auto w = (conv.weight * s.reshape({-1, 1, 1, 1})).contiguous(conv.weight.suggest_memory_format());
  auto b = conv.bias.defined() ? bn.bias + (conv.bias - bn.running_mean) * s : bn.bias - bn.running_mean * s;
  if (fe.winograd && winograd != nullptr && winograd_applies(x, w, *co.stride(), **pad, *co.dilation(), co.groups())) {
    const auto& kernels =
        winograd->get({conv.weight, conv.bias, bn.weight, bn.bias, bn.running_mean, bn.running_var,
                       bn.num_batches_tracked},
                      w, {bn.options.eps()});
    return winograd_conv3x3(x, w, b, &kernels);
  }
  return torch::conv2d(x, w, b, *co.stride(), **pad, *co.dilation(), co.groups());
}

torch::Tensor conv_bn(nn::SequentialImpl& pair, const torch::Tensor& x, const ResNetFastEval& fe) {
  return conv_bn(*pair[0]->as<nn::Conv2dImpl>(), *pair[1]->as<nn::BatchNorm2dImpl>(), x, fe);
}

// Residual block interface; both block kinds are held in nn::Sequential.
struct BlockImpl : nn::Module {
  virtual torch::Tensor forward(torch::Tensor x) = 0;
  /// Fold each BN into its convolution in eval mode, and use Winograd
  /// (conv_bn).
  ResNetFastEval fast;
};

struct BasicBlockImpl : BlockImpl {
  static constexpr int64_t kExpansion = 1;
  nn::Conv2d conv1{nullptr}, conv2{nullptr};
  nn::BatchNorm2d bn1{nullptr}, bn2{nullptr};
  nn::Sequential downsample{nullptr};
  WinogradKernelCache winograd1, winograd2;

  BasicBlockImpl(int64_t inplanes, int64_t planes, int64_t stride, nn::Sequential ds) {
    conv1 = register_module("conv1", conv3x3(inplanes, planes, stride));
    bn1 = register_module("bn1", nn::BatchNorm2d(planes));
    conv2 = register_module("conv2", conv3x3(planes, planes, 1));
    bn2 = register_module("bn2", nn::BatchNorm2d(planes));
    if (ds) downsample = register_module("downsample", ds);
  }

  torch::Tensor forward(torch::Tensor x) override {
    auto identity = downsample ? conv_bn(*downsample, x, fast) : x;
    // In-place ReLU and addition as torchvision (safe: neither BN's nor the
    // folded convolution's backward needs its output).
    auto out = conv_bn(*conv1, *bn1, x, fast, &winograd1).relu_();
    out = conv_bn(*conv2, *bn2, out, fast, &winograd2);
    out += identity;
    return out.relu_();
  }
};

struct BottleneckImpl : BlockImpl {
  static constexpr int64_t kExpansion = 4;
  nn::Conv2d conv1{nullptr}, conv2{nullptr}, conv3{nullptr};
  nn::BatchNorm2d bn1{nullptr}, bn2{nullptr}, bn3{nullptr};
  nn::Sequential downsample{nullptr};
  WinogradKernelCache winograd2;

  BottleneckImpl(int64_t inplanes, int64_t planes, int64_t stride, nn::Sequential ds) {
    conv1 = register_module("conv1", conv1x1(inplanes, planes, 1));
    bn1 = register_module("bn1", nn::BatchNorm2d(planes));
    conv2 = register_module("conv2", conv3x3(planes, planes, stride));
    bn2 = register_module("bn2", nn::BatchNorm2d(planes));
    conv3 = register_module("conv3", conv1x1(planes, planes * kExpansion, 1));
    bn3 = register_module("bn3", nn::BatchNorm2d(planes * kExpansion));
    if (ds) downsample = register_module("downsample", ds);
  }

  torch::Tensor forward(torch::Tensor x) override {
    auto identity = downsample ? conv_bn(*downsample, x, fast) : x;
    auto out = conv_bn(*conv1, *bn1, x, fast).relu_();
    out = conv_bn(*conv2, *bn2, out, fast, &winograd2).relu_();
    out = conv_bn(*conv3, *bn3, out, fast);
    out += identity;
    return out.relu_();
  }
};

TORCH_MODULE(BasicBlock);
TORCH_MODULE(Bottleneck);


}  // namespace

struct ResNet::Impl : nn::Module {
  nn::Conv2d conv1{nullptr};
  nn::BatchNorm2d bn1{nullptr};
  bool maxpool = true;
  std::vector<nn::Sequential> stages;
  nn::Linear fc{nullptr};

  explicit Impl(const ResNetConfig& cfg) {
    const ResNetSpec spec = resnet_spec(cfg.arch);
    GRADLENS_CHECK(cfg.num_classes >= 1, "number of classes must be >= 1, got ", cfg.num_classes);
    GRADLENS_CHECK(cfg.in_channels >= 1, "input channels must be >= 1, got ", cfg.in_channels);
    GRADLENS_CHECK(cfg.width >= 1, "--width must be >= 1, got ", cfg.width);
    const int64_t w = cfg.width;
    if (cfg.stem == Stem::kImageNet) {
      conv1 = register_module(
          "conv1", nn::Conv2d(nn::Conv2dOptions(cfg.in_channels, w, 7).stride(2).padding(3).bias(false)));
    } else {
      conv1 = register_module("conv1", conv3x3(cfg.in_channels, w, 1));
      maxpool = false;
    }
    bn1 = register_module("bn1", nn::BatchNorm2d(w));
    const int64_t expansion = spec.bottleneck ? BottleneckImpl::kExpansion : BasicBlockImpl::kExpansion;
    int64_t inplanes = w;
    for (size_t s = 0; s < 4; ++s) {
      const int64_t planes = w << s;
      const int64_t stride = s == 0 ? 1 : 2;
      nn::Sequential stage;
      for (int64_t b = 0; b < spec.blocks[s]; ++b) {
        const int64_t st = b == 0 ? stride : 1;
        nn::Sequential ds{nullptr};
        if (b == 0 && (st != 1 || inplanes != planes * expansion)) {
          ds = nn::Sequential(conv1x1(inplanes, planes * expansion, st),
                              nn::BatchNorm2d(planes * expansion));
        }
        if (spec.bottleneck)
          stage->push_back(Bottleneck(inplanes, planes, st, ds));
        else
          stage->push_back(BasicBlock(inplanes, planes, st, ds));
        inplanes = planes * expansion;
      }
      stages.push_back(register_module(resnet_stage_names()[s], stage));
    }
    fc = register_module("fc", nn::Linear(inplanes, cfg.num_classes));

    // torchvision's initialisation.
    torch::NoGradGuard no_grad;
    for (auto& m : modules(/*include_self=*/false)) {
      if (auto* c = m->as<nn::Conv2d>()) {
        nn::init::kaiming_normal_(c->weight, 0.0, torch::kFanOut, torch::kReLU);
      } else if (auto* bn = m->as<nn::BatchNorm2d>()) {
        nn::init::ones_(bn->weight);
        nn::init::zeros_(bn->bias);
      }
    }
    if (cfg.zero_init_residual) {
      for (auto& m : modules(false)) {
        if (auto* b = m->as<BottleneckImpl>()) nn::init::zeros_(b->bn3->weight);
        if (auto* b = m->as<BasicBlockImpl>()) nn::init::zeros_(b->bn2->weight);
      }
    }
  }

  ResNetFastEval fast;
  WinogradKernelCache winograd_stem;

  void set_fast(const ResNetFastEval& fe) {
    fast = fe;
    for (auto& m : modules(/*include_self=*/false))
      if (auto* b = dynamic_cast<BlockImpl*>(m.get())) b->fast = fe;
  }

  torch::Tensor stem(const torch::Tensor& x) {
    auto y = conv_bn(*conv1, *bn1, x, fast, &winograd_stem).relu_();
    if (maxpool) y = torch::max_pool2d(y, 3, 2, 1);
    return y;
  }
};

Stem parse_stem(const std::string& s) {
  if (s == "imagenet") return Stem::kImageNet;
  if (s == "small") return Stem::kSmall;
  GRADLENS_CHECK(false, "--stem: unknown stem '", s, "'; use imagenet or small");
  return Stem::kImageNet;
}

std::string stem_name(Stem s) { return s == Stem::kImageNet ? "imagenet" : "small"; }

std::vector<std::string> resnet_names() {
  return {"resnet18", "resnet34", "resnet50", "resnet101", "resnet152"};
}

ResNetSpec resnet_spec(const std::string& arch) {
  if (arch == "resnet18") return {{2, 2, 2, 2}, false};
  if (arch == "resnet34") return {{3, 4, 6, 3}, false};
  if (arch == "resnet50") return {{3, 4, 6, 3}, true};
  if (arch == "resnet101") return {{3, 4, 23, 3}, true};
  if (arch == "resnet152") return {{3, 8, 36, 3}, true};
  GRADLENS_CHECK(false, "unknown model '", arch,
                 "'; use one of resnet18, resnet34, resnet50, resnet101, resnet152, or a "
                 "TorchScript file (.pt)");
  return {};
}

ResNet::ResNet(const ResNetConfig& cfg) : cfg_(cfg), impl_(std::make_shared<Impl>(cfg)) {}
ResNet::~ResNet() = default;

torch::Tensor ResNet::body(const torch::Tensor& x, const std::string& layer) {
  const int64_t last = resnet_stage_index(layer);
  GRADLENS_CHECK(x.dim() == 4 && x.size(1) == cfg_.in_channels, "input batch of shape ", x.sizes(),
                 " does not fit ", cfg_.arch, " with ", cfg_.in_channels,
                 " input channel(s); expected [N, ", cfg_.in_channels,
                 ", H, W] (use a model built for this data, or --channels to convert the images)");
  auto y = impl_->stem(x);
  for (int64_t s = 0; s <= last; ++s) y = impl_->stages[s]->forward(y);
  return y;
}

torch::Tensor ResNet::features(const torch::Tensor& maps, const std::string& layer) {
  auto y = maps;
  for (int64_t s = resnet_stage_index(layer) + 1; s < 4; ++s) y = impl_->stages[s]->forward(y);
  return y.mean({2, 3});
}

torch::Tensor ResNet::classify(const torch::Tensor& f) { return impl_->fc->forward(f); }

torch::Tensor ResNet::forward(const torch::Tensor& x) { return head(body(x, "layer4"), "layer4"); }

std::vector<std::string> ResNet::layers() const { return resnet_stage_names(); }

std::vector<std::pair<std::string, torch::Tensor>> ResNet::named_parameters() {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (auto& item : impl_->named_parameters(true)) out.emplace_back(item.key(), item.value());
  return out;
}

std::vector<std::pair<std::string, torch::Tensor>> ResNet::named_buffers() {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (auto& item : impl_->named_buffers(true)) out.emplace_back(item.key(), item.value());
  return out;
}

torch::Tensor ResNet::fc_weight() { return impl_->fc->weight; }
torch::Tensor ResNet::fc_bias() { return impl_->fc->bias; }
void ResNet::train(bool on) { impl_->train(on); }
void ResNet::set_fold_batchnorm(bool on) {
  auto fe = impl_->fast;
  fe.fold = on;
  impl_->set_fast(fe);
}
bool ResNet::folds_batchnorm() const { return impl_->fast.fold; }
void ResNet::set_winograd(bool on) {
  auto fe = impl_->fast;
  fe.winograd = on;
  impl_->set_fast(fe);
}
bool ResNet::uses_winograd() const { return impl_->fast.winograd; }
int64_t ResNet::winograd_convolutions() const {
  int64_t n = impl_->winograd_stem.calls();
  for (const auto& m : impl_->modules(/*include_self=*/false)) {
    if (const auto* b = dynamic_cast<const BasicBlockImpl*>(m.get())) n += b->winograd1.calls() + b->winograd2.calls();
    if (const auto* b = dynamic_cast<const BottleneckImpl*>(m.get())) n += b->winograd2.calls();
  }
  return n;
}
bool ResNet::is_training() const { return impl_->is_training(); }
void ResNet::to(torch::Device device) { impl_->to(device); }
torch::Device ResNet::device() const { return impl_->fc->weight.device(); }

std::string ResNet::describe() const {
  std::ostringstream os;
  os << cfg_.arch << " (" << stem_name(cfg_.stem) << " stem, width " << cfg_.width << ", "
     << cfg_.in_channels << " input channel(s), " << cfg_.num_classes << " classes)";
  return os.str();
}

std::shared_ptr<torch::nn::Module> ResNet::module() { return impl_; }

void ResNet::to_channels_last() {
  torch::NoGradGuard no_grad;
  for (auto& item : impl_->named_parameters(true)) {
    auto& p = item.value();
    // Restrided explicitly: contiguous() returns a tensor that already
    // satisfies the format unchanged, and a stem weight [C, 1, kh, kw] in
    // NCHW strides does, yet suggests NCHW, so the stem's convolution (and
    // with it layer1's identity branch) would stay NCHW while every later
    // convolution writes channels-last: each residual addition and ReLU
    // backward of layer1 then mixes layouts, several times slower.
    if (p.dim() == 4)
      p.set_data(at::empty_like(p, at::MemoryFormat::ChannelsLast).copy_(p));
  }
}

void ResNet::save(torch::serialize::OutputArchive& archive) { impl_->save(archive); }
void ResNet::load(torch::serialize::InputArchive& archive) { impl_->load(archive); }

}  // namespace gradlens::models
