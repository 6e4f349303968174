#include "gradlens/models/resnet.h"
#include <torch/torch.h>

#include <sstream>

#include "gradlens/core/check.h"
#include "gradlens/core/torch_compat.h"
#include "gradlens/core/strings.h"
#include "gradlens/models/winograd.h"

namespace gradlens::models {

namespace nn = torch::nn;

// Eval-mode state shared by every ConvBn of one network: BN folding,
// Winograd, and the capture point of capture_conv().
struct ResNetEval {
  bool fold = true;
  bool winograd = true;
  /// The convolution whose input and output the next forward pass keeps, or
  /// nullptr.
  const nn::Conv2dImpl* capture = nullptr;
  torch::Tensor captured_input, captured_output;
};

static nn::Conv2d conv3x3(int64_t in, int64_t out, int64_t stride) {
  return nn::Conv2d(nn::Conv2dOptions(in, out, 3).stride(stride).padding(1).bias(false));
}

static nn::Conv2d conv1x1(int64_t in, int64_t out, int64_t stride) {
  return nn::Conv2d(nn::Conv2dOptions(in, out, 1).stride(stride).bias(false));
}

// A convolution and the BatchNorm after it, run as one unit: BN(conv(x)).
// It refers to modules its block registers (so parameter names stay
// torchvision's) and owns the convolution's Winograd kernel cache.
//
// In eval mode with `fold` set it runs one convolution whose weight and bias
// carry the BN's affine map: w' = w * s, b' = beta + (b - mean) * s with
// s = gamma / sqrt(var + eps). The same function up to float rounding, with
// one pass less over the activations forward and one less backward. w' and
// b' are recomputed on every call from the live parameters, as
// differentiable tensor ops, so gradients with respect to the convolution's
// and the BN's parameters (Hessian products, training in eval mode) are
// those of the unfolded network, and a changed parameter is always seen.
// With `winograd` a folded 3x3 stride-1 convolution that winograd_applies to
// runs by Winograd F(4x4, 3x3) (models/winograd.h); the cache transforms the
// folded kernels again only after the conv's or the BN's tensors change.
// The convolution named by ResNetEval::capture runs unfolded and keeps its
// input and output there.
struct ConvBn {
  nn::Conv2dImpl* conv = nullptr;
  nn::BatchNorm2dImpl* bn = nullptr;
  ResNetEval* eval = nullptr;
  WinogradKernelCache winograd;

  torch::Tensor operator()(const torch::Tensor& x) {
    if (eval->capture == conv) {
      auto y = conv->forward(x);
      if (!y.requires_grad()) y = y.detach().requires_grad_(true);
      eval->captured_input = x.detach();
      eval->captured_output = y;
      return bn->forward(y);
    }
    const auto& co = conv->options;
    const auto* pad = compat::get_if<torch::ExpandingArray<2>>(&co.padding());
    const bool foldable = eval->fold && !bn->is_training() && bn->options.affine() &&
                          bn->options.track_running_stats() && pad != nullptr &&
                          compat::get_if<torch::enumtype::kZeros>(&co.padding_mode()) != nullptr;
    if (!foldable) {
      // (A training-mode BN updates its running statistics without bumping
      // their version counters in LibTorch 1.13: start afresh after it.)
      winograd.clear();
      return bn->forward(conv->forward(x));
    }
    const auto s = bn->weight * torch::rsqrt(bn->running_var + bn->options.eps());
    auto w = (conv->weight * s.reshape({-1, 1, 1, 1})).contiguous(conv->weight.suggest_memory_format());
    auto b = conv->bias.defined() ? bn->bias + (conv->bias - bn->running_mean) * s : bn->bias - bn->running_mean * s;
    if (eval->winograd && winograd_applies(x, w, *co.stride(), **pad, *co.dilation(), co.groups())) {
      const auto& kernels =
          winograd.get({conv->weight, conv->bias, bn->weight, bn->bias, bn->running_mean, bn->running_var,
                        bn->num_batches_tracked},
                       w, {bn->options.eps()});
      return winograd_conv3x3(x, w, b, &kernels);
    }
    return torch::conv2d(x, w, b, *co.stride(), **pad, *co.dilation(), co.groups());
  }
};

// A ConvBn over a registered nn::Sequential(conv, bn) (the downsample branch).
static ConvBn conv_bn_of(nn::Sequential& pair, ResNetEval* eval) {
  return {pair[0]->as<nn::Conv2dImpl>(), pair[1]->as<nn::BatchNorm2dImpl>(), eval, {}};
}

namespace {

// Residual block interface; both block kinds are held in nn::Sequential.
struct BlockImpl : nn::Module {
  virtual torch::Tensor forward(torch::Tensor x) = 0;
  /// The block's conv + BN units (for counting and clearing).
  virtual std::vector<ConvBn*> units() = 0;
};

struct BasicBlockImpl : BlockImpl {
  static constexpr int64_t kExpansion = 1;
  nn::Conv2d conv1{nullptr}, conv2{nullptr};
  nn::BatchNorm2d bn1{nullptr}, bn2{nullptr};
  nn::Sequential downsample{nullptr};
  ConvBn unit1, unit2, unit_ds;

  BasicBlockImpl(int64_t inplanes, int64_t planes, int64_t stride, nn::Sequential ds, ResNetEval* eval) {
    conv1 = register_module("conv1", conv3x3(inplanes, planes, stride));
    bn1 = register_module("bn1", nn::BatchNorm2d(planes));
    conv2 = register_module("conv2", conv3x3(planes, planes, 1));
    bn2 = register_module("bn2", nn::BatchNorm2d(planes));
    unit1 = {conv1.get(), bn1.get(), eval, {}};
    unit2 = {conv2.get(), bn2.get(), eval, {}};
    if (ds) {
      downsample = register_module("downsample", ds);
      unit_ds = conv_bn_of(downsample, eval);
    }
  }

  torch::Tensor forward(torch::Tensor x) override {
    auto identity = downsample ? unit_ds(x) : x;
    // In-place ReLU and addition as torchvision (safe: neither BN's nor the
    // folded convolution's backward needs its output).
    auto out = unit1(x).relu_();
    out = unit2(out);
    out += identity;
    return out.relu_();
  }

  std::vector<ConvBn*> units() override {
    std::vector<ConvBn*> u = {&unit1, &unit2};
    if (downsample) u.push_back(&unit_ds);
    return u;
  }
};

struct BottleneckImpl : BlockImpl {
  static constexpr int64_t kExpansion = 4;
  nn::Conv2d conv1{nullptr}, conv2{nullptr}, conv3{nullptr};
  nn::BatchNorm2d bn1{nullptr}, bn2{nullptr}, bn3{nullptr};
  nn::Sequential downsample{nullptr};
  ConvBn unit1, unit2, unit3, unit_ds;

  BottleneckImpl(int64_t inplanes, int64_t planes, int64_t stride, nn::Sequential ds, ResNetEval* eval) {
    conv1 = register_module("conv1", conv1x1(inplanes, planes, 1));
    bn1 = register_module("bn1", nn::BatchNorm2d(planes));
    conv2 = register_module("conv2", conv3x3(planes, planes, stride));
    bn2 = register_module("bn2", nn::BatchNorm2d(planes));
    conv3 = register_module("conv3", conv1x1(planes, planes * kExpansion, 1));
    bn3 = register_module("bn3", nn::BatchNorm2d(planes * kExpansion));
    unit1 = {conv1.get(), bn1.get(), eval, {}};
    unit2 = {conv2.get(), bn2.get(), eval, {}};
    unit3 = {conv3.get(), bn3.get(), eval, {}};
    if (ds) {
      downsample = register_module("downsample", ds);
      unit_ds = conv_bn_of(downsample, eval);
    }
  }

  torch::Tensor forward(torch::Tensor x) override {
    auto identity = downsample ? unit_ds(x) : x;
    auto out = unit1(x).relu_();
    out = unit2(out).relu_();
    out = unit3(out);
    out += identity;
    return out.relu_();
  }

  std::vector<ConvBn*> units() override {
    std::vector<ConvBn*> u = {&unit1, &unit2, &unit3};
    if (downsample) u.push_back(&unit_ds);
    return u;
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
  ResNetEval eval;  // shared by every ConvBn (they hold its address)
  ConvBn stem_unit;

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
    stem_unit = {conv1.get(), bn1.get(), &eval, {}};
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
          stage->push_back(Bottleneck(inplanes, planes, st, ds, &eval));
        else
          stage->push_back(BasicBlock(inplanes, planes, st, ds, &eval));
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

  /// Every conv + BN unit, the stem first.
  std::vector<ConvBn*> units() {
    std::vector<ConvBn*> u = {&stem_unit};
    for (auto& m : modules(/*include_self=*/false))
      if (auto* b = dynamic_cast<BlockImpl*>(m.get()))
        for (auto* c : b->units()) u.push_back(c);
    return u;
  }

  torch::Tensor stem(const torch::Tensor& x) {
    auto y = stem_unit(x).relu_();
    if (maxpool) y = torch::max_pool2d(y, 3, 2, 1);
    return y;
  }
};

Stem parse_stem(const std::string& s) {
  if (s == "imagenet") return Stem::kImageNet;
  if (s == "small") return Stem::kSmall;
  GRADLENS_CHECK_OPTION(false, "--stem: unknown stem '", s, "'; use imagenet or small");
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
  GRADLENS_CHECK_OPTION(false, "unknown model '", arch,
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
void ResNet::set_fold_batchnorm(bool on) { impl_->eval.fold = on; }
bool ResNet::folds_batchnorm() const { return impl_->eval.fold; }
void ResNet::set_winograd(bool on) { impl_->eval.winograd = on; }
bool ResNet::uses_winograd() const { return impl_->eval.winograd; }
void ResNet::set_conv_algorithm(ConvAlgorithm algorithm) { set_winograd(algorithm != ConvAlgorithm::kDirect); }
int64_t ResNet::winograd_convolutions() const {
  int64_t n = 0;
  for (const auto* u : impl_->units()) n += u->winograd.calls();
  return n;
}

std::vector<std::string> ResNet::conv_layer_names() {
  std::vector<std::string> names;
  for (const auto& item : impl_->named_modules("", /*include_self=*/false))
    if (item.value()->as<nn::Conv2dImpl>()) names.push_back(item.key());
  return names;
}

ConvCapture ResNet::capture_conv(const torch::Tensor& x, const std::string& layer, const std::string& conv) {
  const nn::Conv2dImpl* target = nullptr;
  for (const auto& item : impl_->named_modules("", /*include_self=*/false))
    if (item.key() == conv) target = item.value()->as<nn::Conv2dImpl>();
  if (target == nullptr) {
    const auto names = conv_layer_names();
    GRADLENS_CHECK_OPTION(false, "unknown convolution '", conv, "'; use any of ", core::join(names, ", "));
  }
  const auto& o = target->options;
  GRADLENS_CHECK_OPTION(o.groups() == 1, "convolution ", conv, ": grouped convolutions are not supported");
  const auto* pad = compat::get_if<torch::ExpandingArray<2>>(&o.padding());
  GRADLENS_CHECK_OPTION(pad != nullptr, "convolution ", conv, ": 'same'/'valid' padding modes are not supported");
  struct Reset {
    ResNetEval& e;
    ~Reset() {
      e.capture = nullptr;
      e.captured_input = e.captured_output = torch::Tensor();
    }
  } reset{impl_->eval};
  impl_->eval.capture = target;
  ConvCapture c;
  static_cast<Capture&>(c) = capture(x, layer, /*maps_leaf=*/false);
  TORCH_INTERNAL_ASSERT(impl_->eval.captured_output.defined(), "the forward pass did not reach ", conv);
  c.conv_input = impl_->eval.captured_input;
  c.conv_output = impl_->eval.captured_output;
  const auto& ks = *o.kernel_size();
  const auto& st = *o.stride();
  const auto& dl = *o.dilation();
  c.geometry = {{ks[0], ks[1]}, {st[0], st[1]}, {(**pad)[0], (**pad)[1]}, {dl[0], dl[1]}, o.bias()};
  return c;
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
