#include "gradlens/models/winograd.h"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>
#include <memory>
#include <vector>

#include "gradlens/models/winograd_kernel.h"

namespace gradlens::models {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

bool all_equal(at::IntArrayRef v, int64_t value) {
  return std::all_of(v.begin(), v.end(), [&](int64_t e) { return e == value; });
}

torch::Tensor transform(const torch::Tensor& w, bool input_grad) {
  const auto wc = w.detach().contiguous();
  const int64_t k = wc.size(0), c = wc.size(1);
  auto u = torch::empty(input_grad ? std::vector<int64_t>{36, k, c} : std::vector<int64_t>{36, c, k}, wc.options());
  detail::winograd_transform_weights(wc.data_ptr<float>(), k, c, input_grad, u.data_ptr<float>());
  return u;
}

// x (*) kernels u + b: x [N, C, H, W] channels-last, u [36, C, K].
torch::Tensor run(const torch::Tensor& x, const torch::Tensor& u, const torch::Tensor& b) {
  detail::WinogradShape s;
  s.n = x.size(0);
  s.h = x.size(2);
  s.w = x.size(3);
  s.c = u.size(1);
  s.k = u.size(2);
  const auto xc = x.contiguous(at::MemoryFormat::ChannelsLast);
  auto y = torch::empty({s.n, s.k, s.h, s.w}, x.options().memory_format(at::MemoryFormat::ChannelsLast));
  const auto bias = b.defined() ? b.contiguous() : b;
  const float* xp = xc.data_ptr<float>();
  const float* up = u.data_ptr<float>();
  const float* bp = bias.defined() ? bias.data_ptr<float>() : nullptr;
  float* yp = y.data_ptr<float>();
  const int64_t tiles = detail::winograd_tiles(s), block = detail::winograd_block_tiles(s);
  at::parallel_for(0, (tiles + block - 1) / block, 1, [&](int64_t b0, int64_t b1) {
    // Uninitialised: every float is written before it is read.
    std::unique_ptr<float[]> scratch(new float[detail::winograd_scratch_floats(s)]);
    detail::winograd_conv_tiles(s, xp, up, bp, yp, b0 * block, std::min(tiles, b1 * block), scratch.get());
  });
  return y;
}

struct WinogradConv : torch::autograd::Function<WinogradConv> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& w,
                               const torch::Tensor& b, const torch::Tensor& u_forward,
                               const torch::Tensor& u_input_grad) {
    ctx->save_for_backward({x, w});
    ctx->saved_data["u_input_grad"] = u_input_grad;
    return run(x, u_forward, b);
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto& x = saved[0];
    const auto& w = saved[1];
    const auto& gy = grads[0];
    const bool need_x = ctx->needs_input_grad(0), need_w = ctx->needs_input_grad(1),
               need_b = ctx->needs_input_grad(2);
    torch::Tensor gx, gw, gb;
    if (torch::GradMode::is_enabled()) {
      // create_graph: the gradients of the direct convolution, built as
      // differentiable ops, so that double backprop is exact.
      std::vector<torch::Tensor> inputs;
      if (need_x) inputs.push_back(x);
      if (need_w) inputs.push_back(w);
      if (!inputs.empty()) {
        const auto y = torch::conv2d(x, w, {}, 1, 1);
        auto g = torch::autograd::grad({y}, inputs, {gy}, /*retain_graph=*/true, /*create_graph=*/true,
                                       /*allow_unused=*/true);
        if (need_x) gx = g[0];
        if (need_w) gw = g[need_x ? 1 : 0];
      }
      if (need_b) gb = gy.sum({0, 2, 3});
      return {gx, gw, gb, {}, {}};
    }
    if (need_x) gx = run(gy, ctx->saved_data["u_input_grad"].toTensor(), {});
    if (need_w || need_b) {
      auto r = at::convolution_backward(gy, x, w, at::OptionalIntArrayRef(at::IntArrayRef{w.size(0)}), {1, 1},
                                        {1, 1}, {1, 1}, false, {0, 0}, 1, {false, need_w, need_b});
      gw = std::get<1>(r);
      gb = std::get<2>(r);
    }
    return {gx, gw, gb, {}, {}};
  }
};

}  // namespace

bool winograd_applies(const torch::Tensor& x, const torch::Tensor& w, at::IntArrayRef stride,
                      at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups) {
  if (!detail::winograd_cpu_supported()) return false;
  if (!x.defined() || !w.defined() || x.dim() != 4 || w.dim() != 4) return false;
  if (!x.device().is_cpu() || !w.device().is_cpu()) return false;
  if (x.scalar_type() != torch::kFloat || w.scalar_type() != torch::kFloat) return false;
  if (w.size(2) != 3 || w.size(3) != 3 || x.size(1) != w.size(1)) return false;
  if (x.size(1) % 16 != 0 || w.size(0) % 16 != 0 || x.size(0) == 0 || x.size(2) == 0 || x.size(3) == 0)
    return false;
  if (groups != 1 || !all_equal(stride, 1) || !all_equal(padding, 1) || !all_equal(dilation, 1)) return false;
  return x.is_contiguous(at::MemoryFormat::ChannelsLast);
}

WinogradKernels winograd_kernels(const torch::Tensor& w) {
  TORCH_CHECK(w.defined() && w.dim() == 4 && w.size(2) == 3 && w.size(3) == 3 && w.device().is_cpu() &&
                  w.scalar_type() == torch::kFloat,
              "winograd_kernels: w must be float32 [K, C, 3, 3] on the CPU");
  torch::NoGradGuard no_grad;
  return {transform(w, /*input_grad=*/false), transform(w, /*input_grad=*/true)};
}

torch::Tensor winograd_conv3x3(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b,
                               const WinogradKernels* kernels) {
  TORCH_CHECK(winograd_applies(x, w, {1, 1}, {1, 1}, {1, 1}, 1),
              "winograd_conv3x3: needs an AVX-512F CPU, float32 CPU tensors, channels-last x [N, C, H, W] and "
              "w [K, C, 3, 3] with C and K multiples of 16; got x ", x.sizes(), " and w ", w.sizes());
  TORCH_CHECK(!b.defined() || (b.dim() == 1 && b.size(0) == w.size(0) && b.scalar_type() == torch::kFloat &&
                               b.device().is_cpu()),
              "winograd_conv3x3: bias must be ", w.size(0), " float32 values on the CPU");
  const int64_t k = w.size(0), c = w.size(1);
  WinogradKernels own;
  if (kernels == nullptr) {
    own = winograd_kernels(w);
    kernels = &own;
  }
  TORCH_CHECK(kernels->forward.defined() && kernels->forward.sizes() == at::IntArrayRef({36, c, k}) &&
                  kernels->input_grad.defined() && kernels->input_grad.sizes() == at::IntArrayRef({36, k, c}),
              "winograd_conv3x3: kernels do not belong to a weight of shape ", w.sizes());
  // (An undefined input tensor is not allowed through a custom Function.)
  return WinogradConv::apply(x, w, b.defined() ? b : torch::zeros({k}, w.options()), kernels->forward,
                             kernels->input_grad);
}

const WinogradKernels& WinogradKernelCache::get(const std::vector<torch::Tensor>& sources, const torch::Tensor& w,
                                                const std::vector<double>& scalars) {
  ++calls_;
  bool same = kernels_.forward.defined() && sources.size() == sources_.size() && scalars == scalars_;
  for (size_t i = 0; same && i < sources.size(); ++i) {
    const auto& t = sources[i];
    const auto& s = sources_[i];
    if (!t.defined() || !s.tensor.defined()) {
      same = !t.defined() && !s.tensor.defined();
      continue;
    }
    same = s.tensor.is_same(t) && s.storage._unsafe_get_target() == t.storage().unsafeGetStorageImpl() &&
           s.data == t.data_ptr() && s.version == static_cast<int64_t>(t._version());
  }
  if (!same) {
    kernels_ = winograd_kernels(w);
    sources_.clear();
    for (const auto& t : sources) {
      Source s;
      if (t.defined()) {
        s.tensor = t;
        s.storage = t.storage().getWeakStorageImpl();
        s.data = t.data_ptr();
        s.version = static_cast<int64_t>(t._version());
      }
      sources_.push_back(std::move(s));
    }
    scalars_ = scalars;
    ++transforms_;
  }
  return kernels_;
}

void WinogradKernelCache::clear() {
  kernels_ = {};
  sources_.clear();
  scalars_.clear();
}

}  // namespace gradlens::models
