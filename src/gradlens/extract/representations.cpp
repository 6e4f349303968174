#include "gradlens/extract/representations.h"
#include <torch/torch.h>

#include <chrono>
#include <set>
#include <sstream>

#include "gradlens/core/check.h"
#include "gradlens/core/choice.h"
#include "gradlens/core/timer.h"
#include "gradlens/extract/logit_seed.h"
#include "gradlens/models/classifier.h"

namespace gradlens::extract {


namespace {

constexpr const char* kGradcam = "gradcam-weights";
constexpr const char* kInputGrad = "input-grad";
constexpr const char* kParamGrad = "param-grad";
constexpr const char* kFeatures = "features";
constexpr const char* kActivations = "activations";
constexpr const char* kLogits = "logits";
constexpr const char* kProbs = "probs";

const std::vector<std::string> kSeedOrder = {"logit-pred", "logit-true", "ce-true", "ce-pred"};

std::string join(const std::vector<std::string>& v, const char* sep = ", ") {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? sep : "") + v[i];
  return s;
}

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

void check_choices(const std::vector<std::string>& values, const std::vector<std::string>& allowed,
                   const std::string& flag) {
  GRADLENS_CHECK(!values.empty(), flag, ": empty list; use one or more of ", join(allowed));
  std::set<std::string> seen;
  for (const auto& v : values) {
    GRADLENS_CHECK_OPTION(contains(allowed, v), flag, ": unknown value '", v, "'; use one of ",
                   join(allowed));
    GRADLENS_CHECK(seen.insert(v).second, flag, ": '", v, "' is listed twice");
  }
}

std::string name_of(const std::string& rep, const std::string& variant) {
  return variant.empty() || variant == "pred" ? rep : rep + "." + variant;
}

bool is_head_layer(const std::string& param_layer) {
  return param_layer.empty() || param_layer == "fc";
}

// ---------------------------------------------------------------------------
}  // namespace

const std::vector<std::string>& representation_names() {
  static const std::vector<std::string> names = {kGradcam,     kInputGrad, kParamGrad, kFeatures,
                                                 kActivations, kLogits,    kProbs};
  return names;
}

constexpr core::Choice<ActivationPool> kActivationPools[] = {
    {"none", ActivationPool::kNone}, {"avg", ActivationPool::kAvg}, {"max", ActivationPool::kMax}};

std::string activation_pool_name(ActivationPool pool) { return core::choice_name(kActivationPools, pool); }

ActivationPool parse_activation_pool(const std::string& name, const std::string& flag) {
  return core::parse_choice(kActivationPools, name, flag, "pooling");
}

std::vector<OutputSpec> plan_outputs(const ExtractOptions& opts) {
  check_choices(opts.representations, representation_names(), "--representations");
  const bool gradcam = contains(opts.representations, kGradcam);
  const bool input_grad = contains(opts.representations, kInputGrad);
  const bool param_grad = contains(opts.representations, kParamGrad);
  if (gradcam) check_choices(opts.gradcam_targets, {"pred", "true", "loss"}, "--targets");
  if (input_grad || param_grad) check_choices(opts.grad_labels, {"pred", "true"}, "--grad-labels");

  std::vector<OutputSpec> out;
  for (const auto& rep : representation_names()) {
    if (!contains(opts.representations, rep)) continue;
    if (rep == kGradcam) {
      for (const auto& t : {"pred", "true", "loss"}) {
        if (!contains(opts.gradcam_targets, t)) continue;
        const std::string target = t;
        const std::string seed =
            target == "pred" ? "logit-pred" : target == "true" ? "logit-true" : "ce-true";
        out.push_back({name_of(rep, target), rep, target, target != "pred", seed});
      }
    } else if (rep == kInputGrad || rep == kParamGrad) {
      for (const auto& l : {"pred", "true"}) {
        if (!contains(opts.grad_labels, l)) continue;
        const std::string label = l;
        const bool closed_form = rep == kParamGrad && is_head_layer(opts.param_layer);
        // The head's closed form needs no backward pass, but it still uses
        // the CE seed's label; record the seed only when a pass is needed.
        const std::string seed = closed_form ? "" : (label == "pred" ? "ce-pred" : "ce-true");
        out.push_back({name_of(rep, label), rep, label, label == "true", seed});
      }
    } else {
      out.push_back({rep, rep, "", false, ""});
    }
  }
  return out;
}

std::vector<std::string> plan_backward_seeds(const ExtractOptions& opts) {
  const auto specs = plan_outputs(opts);
  std::vector<std::string> seeds;
  for (const auto& s : kSeedOrder)
    for (const auto& spec : specs)
      if (spec.seed == s) {
        seeds.push_back(s);
        break;
      }
  return seeds;
}

const torch::Tensor& ExtractOutputs::get(const std::string& name) const {
  std::vector<std::string> names;
  for (size_t i = 0; i < specs.size(); ++i) {
    if (specs[i].name == name) return values[i];
    names.push_back(specs[i].name);
  }
  GRADLENS_CHECK(false, "no extracted output named '", name, "'; have ", join(names));
  return values.front();
}

void check_finite_rows(const torch::Tensor& x, int64_t first_index, const std::string& what) {
  if (!x.is_floating_point() || x.numel() == 0) return;
  const auto bad = torch::logical_not(torch::isfinite(x)).reshape({x.size(0), -1}).any(1);
  if (!bad.any().item<bool>()) return;
  const int64_t row = bad.nonzero().min().item<int64_t>();
  const int64_t count = bad.sum().item<int64_t>();
  GRADLENS_CHECK(false, what, " ", first_index + row, " (row ", row,
                 " of the batch) holds NaN or Inf (", count,
                 " bad row(s) in this batch); fix or drop the input");
}

torch::Tensor head_param_grad(const torch::Tensor& features, const torch::Tensor& logits,
                              const torch::Tensor& labels) {
  GRADLENS_CHECK(features.dim() == 2 && logits.dim() == 2 && features.size(0) == logits.size(0),
                 "head_param_grad: features [B, D] and logits [B, K] expected, got ",
                 features.sizes(), " and ", logits.sizes());
  GRADLENS_CHECK(labels.dim() == 1 && labels.size(0) == logits.size(0),
                 "head_param_grad: labels [B] expected, got ", labels.sizes());
  const int64_t k = logits.size(1);
  const auto delta = logit_seed(SeedKind::kCrossEntropy, labels, k, torch::softmax(logits, 1));
  auto gw = delta.unsqueeze(2) * features.to(logits.scalar_type()).unsqueeze(1);  // [B, K, D]
  return torch::cat({gw.flatten(1), delta}, 1);
}

torch::Tensor conv2d_param_grad(const torch::Tensor& input, const torch::Tensor& grad_output,
                                std::vector<int64_t> kernel, std::vector<int64_t> stride,
                                std::vector<int64_t> padding, std::vector<int64_t> dilation,
                                bool has_bias) {
  GRADLENS_CHECK(input.dim() == 4 && grad_output.dim() == 4 && input.size(0) == grad_output.size(0),
                 "conv2d_param_grad: input [B, Cin, H, W] and grad_output [B, Cout, H', W'] "
                 "expected, got ", input.sizes(), " and ", grad_output.sizes());
  auto cols = torch::nn::functional::unfold(
      input, torch::nn::functional::UnfoldFuncOptions(kernel)
                 .stride(stride)
                 .padding(padding)
                 .dilation(dilation));                        // [B, Cin*kh*kw, L]
  auto g = grad_output.flatten(2);                            // [B, Cout, L]
  TORCH_INTERNAL_ASSERT(g.size(2) == cols.size(2), "conv2d_param_grad: positions differ (",
                        g.size(2), " vs ", cols.size(2), ")");
  auto gw = torch::bmm(g, cols.transpose(1, 2)).flatten(1);  // [B, Cout*Cin*kh*kw]
  if (!has_bias) return gw;
  return torch::cat({gw, g.sum(2)}, 1);
}

std::vector<std::string> param_layer_names(models::Classifier& model) {
  auto names = model.conv_layer_names();
  if (!names.empty()) names.push_back("fc");
  return names;
}

ExtractOutputs extract_batch(models::Classifier& model, const torch::Tensor& x_in,
                             const torch::Tensor& labels, const ExtractOptions& opts) {
  ExtractOutputs res;
  res.specs = plan_outputs(opts);
  const auto seeds = plan_backward_seeds(opts);

  GRADLENS_CHECK(x_in.defined() && x_in.dim() == 4 && x_in.is_floating_point(),
                 "input batch must be float [N, C, H, W], got ",
                 x_in.defined() ? x_in.sizes() : c10::IntArrayRef{}, " ",
                 x_in.defined() ? c10::toString(x_in.scalar_type()) : "undefined");
  const int64_t batch = x_in.size(0);
  check_finite_rows(x_in);
  bool need_true = false;
  for (const auto& s : res.specs) need_true = need_true || s.uses_true_labels;
  if (labels.defined()) {
    GRADLENS_CHECK(labels.dim() == 1 && labels.size(0) == batch, "got ",
                   labels.dim() == 1 ? labels.size(0) : labels.numel(), " labels for ", batch,
                   " images; pass exactly one int64 label per image");
    GRADLENS_CHECK(!labels.is_floating_point(), "labels must be integers, got ",
                   c10::toString(labels.scalar_type()));
  } else {
    GRADLENS_CHECK(!need_true, "true labels are needed by a requested output (target true/loss or "
                               "label true) but none were given");
  }

  res.layer = opts.layer.empty() ? model.default_layer() : opts.layer;
  model.check_layer(res.layer, "--layer");

  const bool want_param = contains(opts.representations, kParamGrad);
  const bool conv_param = want_param && !is_head_layer(opts.param_layer);
  if (conv_param) {
    const auto names = param_layer_names(model);
    GRADLENS_CHECK_OPTION(!names.empty(), "--param-layer '", opts.param_layer, "': ", model.describe(),
                          " has no convolution whose per-sample gradients gradlens can capture; use --param-layer fc");
    GRADLENS_CHECK_OPTION(contains(names, opts.param_layer), "--param-layer: unknown layer '",
                   opts.param_layer, "'; use fc or a Conv2d: ", join(names));
  }

  models::ModeGuard eval(model, /*training=*/false);
  torch::AutoGradMode grad_mode(true);

  auto spec_needs = [&](const std::string& rep, const std::string& seed) {
    for (const auto& s : res.specs)
      if (s.representation == rep && s.seed == seed) return true;
    return false;
  };
  bool need_x_grad = contains(opts.representations, kInputGrad);
  const bool any_backward = !seeds.empty();

  // ---- forward (one pass)
  core::Stopwatch t0;
  torch::Tensor x = x_in;
  if (need_x_grad) x = x_in.detach().requires_grad_(true);
  torch::Tensor maps, feats, logits;
  models::ConvCapture cap;
  if (conv_param) {
    cap = naming_flag("--param-layer", [&] { return model.capture_conv(x, res.layer, opts.param_layer); });
    maps = cap.maps;
    feats = cap.features;
    logits = cap.logits;
  } else {
    torch::AutoGradMode record(need_x_grad || any_backward);
    auto c = model.capture(x, res.layer, /*maps_leaf=*/!need_x_grad);
    maps = c.maps;
    feats = c.features;
    logits = c.logits;
  }
  GRADLENS_CHECK(feats.defined() || !(want_param || contains(opts.representations, kFeatures)),
                 "features and param-grad are the input of the final nn.Linear and its gradient, "
                 "but ", model.describe(), " has no nn.Linear that forward() calls; drop them");
  const int64_t k = logits.size(1);
  if (labels.defined()) {
    const auto lmin = labels.numel() ? labels.min().item<int64_t>() : 0;
    const auto lmax = labels.numel() ? labels.max().item<int64_t>() : 0;
    GRADLENS_CHECK(lmin >= 0 && lmax < k, "labels must lie in [0, ", k, ") for a model with ", k,
                   " classes; got values in [", lmin, ", ", lmax, "]");
  }
  const auto zd = logits.detach();
  res.logits = zd.to(torch::kFloat);
  res.preds = zd.argmax(1);
  const auto probs = torch::softmax(zd, 1);
  res.map_height = maps.size(2);
  res.map_width = maps.size(3);
  res.seconds.emplace_back("forward", t0.seconds());

  // ---- backward passes, one per seed
  torch::Tensor y = labels.defined() ? labels.to(zd.device(), torch::kLong) : torch::Tensor();
  std::map<std::string, torch::Tensor> gradcam, input_grad, conv_grad;
  for (size_t si = 0; si < seeds.size(); ++si) {
    const auto& seed = seeds[si];
    core::Stopwatch t1;
    const SeedKind kind = seed.rfind("ce-", 0) == 0 ? SeedKind::kCrossEntropy : SeedKind::kLogit;
    const auto g = logit_seed(kind, seed == "logit-pred" || seed == "ce-pred" ? res.preds : y, k, probs);
    std::vector<torch::Tensor> inputs;
    std::vector<std::string> roles;
    if (spec_needs(kGradcam, seed)) inputs.push_back(maps), roles.push_back("maps");
    if (spec_needs(kInputGrad, seed)) inputs.push_back(x), roles.push_back("x");
    if (conv_param && spec_needs(kParamGrad, seed)) inputs.push_back(cap.conv_output), roles.push_back("conv");
    const bool last = si + 1 == seeds.size();
    auto grads = torch::autograd::grad({logits}, inputs, {g}, /*retain_graph=*/!last,
                                       /*create_graph=*/false, /*allow_unused=*/false);
    for (size_t j = 0; j < roles.size(); ++j) {
      if (roles[j] == "maps") gradcam[seed] = grads[j].mean({2, 3});
      if (roles[j] == "x") input_grad[seed] = grads[j].flatten(1);
      if (roles[j] == "conv") {
        const auto& geo = cap.geometry;
        conv_grad[seed] = conv2d_param_grad(cap.conv_input, grads[j], geo.kernel, geo.stride, geo.padding,
                                            geo.dilation, geo.has_bias);
      }
    }
    res.seconds.emplace_back("backward." + seed, t1.seconds());
  }
  res.backward_passes = static_cast<int64_t>(seeds.size());

  // ---- assemble outputs in spec order
  core::Stopwatch t2;
  bool timed_param = false;
  for (const auto& s : res.specs) {
    torch::Tensor v;
    if (s.representation == kGradcam) v = gradcam.at(s.seed);
    if (s.representation == kInputGrad) v = input_grad.at(s.seed);
    if (s.representation == kParamGrad) {
      if (conv_param) {
        v = conv_grad.at(s.seed);
      } else {
        const auto lab = s.variant == "true" ? y : res.preds;
        v = head_param_grad(feats.detach(), zd, lab);
        timed_param = true;
      }
    }
    if (s.representation == kFeatures) v = feats.detach();
    if (s.representation == kActivations) {
      const auto a = maps.detach();
      v = opts.pool == ActivationPool::kAvg   ? a.mean({2, 3})
          : opts.pool == ActivationPool::kMax ? a.amax({2, 3})
                                              : a.flatten(1);
    }
    if (s.representation == kLogits) v = zd;
    if (s.representation == kProbs) v = probs;
    TORCH_INTERNAL_ASSERT(v.defined(), "no value computed for ", s.name);
    res.values.push_back(v.to(torch::kFloat).contiguous());
  }
  if (timed_param) res.seconds.emplace_back("param-grad", t2.seconds());
  return res;
}

}  // namespace gradlens::extract
