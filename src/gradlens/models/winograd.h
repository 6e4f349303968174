// 3x3 convolutions (stride 1, zero padding 1) by Winograd's F(4x4, 3x3) on
// CPUs with AVX-512F: the tensor interface of models/winograd_kernel.h.
//
// About 4x fewer multiplications than a direct convolution; the results are
// those of torch::conv2d up to float rounding, not bitwise: the largest
// error measured against a float64 convolution is 2e-6 to 9e-6 of the
// largest output, against ~5e-7 for LibTorch's float32 one (the tests allow
// 1e-5; tests/models/winograd_test.cpp, bench/winograd_bench.cpp).
// ResNet uses it in eval mode for its BatchNorm-folded convolutions
// (ResNet::set_winograd).
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <utility>
#include <vector>

namespace gradlens::models {

/// Whether winograd_conv3x3 can compute torch::conv2d(x, w, b, stride,
/// padding, dilation, groups) here: a CPU with AVX-512F, float32 tensors on
/// the CPU, x [N, C, H, W] in channels-last layout, w [K, C, 3, 3], C and K
/// multiples of 16, stride 1, padding 1, dilation 1, one group.
bool winograd_applies(const torch::Tensor& x, const torch::Tensor& w, at::IntArrayRef stride,
                      at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups);

/// w's kernels transformed for winograd_conv3x3 (forward: [36, C, K];
/// input gradient: [36, K, C]), float32 on the CPU.
struct WinogradKernels {
  torch::Tensor forward, input_grad;
};

/// The transformed kernels of w [K, C, 3, 3] (computed in float64, rounded
/// once to float32).
WinogradKernels winograd_kernels(const torch::Tensor& w);

/// torch::conv2d(x, w, b, 1, 1) by F(4x4, 3x3), channels-last output; b may
/// be undefined; kernels must be winograd_kernels(w) (computed here when
/// null). Throws c10::Error unless winograd_applies(x, w, 1, 1, 1, 1) (and
/// b, if defined, is K float32 values). Differentiable: the input gradient
/// is again a Winograd convolution (with w rotated by 180 degrees, channels
/// swapped); weight and bias gradients are LibTorch's. Under create_graph
/// (double backprop) every gradient is that of torch::conv2d, so higher
/// derivatives are exact.
torch::Tensor winograd_conv3x3(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b,
                               const WinogradKernels* kernels = nullptr);

/// Transformed kernels kept between calls for a weight that its caller
/// recomputes on every call from other tensors (ResNet's BatchNorm-folded
/// convolutions): get() transforms again unless every source is the same
/// tensor as last time (held), with the same storage (a weak reference, so
/// a new storage cannot reuse the old one's address), data pointer and
/// version counter, and every scalar is the same. Callers must name as a
/// source any tensor whose in-place changes LibTorch does not count (in
/// LibTorch 1.13 a training-mode BatchNorm updates its running statistics
/// without bumping their version; its num_batches_tracked does count), or
/// clear() the cache. Not thread-safe (as a module's forward).
class WinogradKernelCache {
 public:
  /// The kernels of w, which must be a function of `sources` and `scalars`
  /// alone.
  const WinogradKernels& get(const std::vector<torch::Tensor>& sources, const torch::Tensor& w,
                             const std::vector<double>& scalars = {});
  /// Forgets the kernels: the next get() transforms.
  void clear();
  /// Transforms done so far (tests).
  int64_t transforms() const { return transforms_; }
  /// get() calls so far: the Winograd convolutions run with this cache.
  int64_t calls() const { return calls_; }

 private:
  struct Source {
    torch::Tensor tensor;  // held: its TensorImpl's address cannot be reused
    c10::weak_intrusive_ptr<c10::StorageImpl> storage{c10::intrusive_ptr<c10::StorageImpl>()};
    const void* data = nullptr;
    int64_t version = 0;
  };
  std::vector<Source> sources_;
  std::vector<double> scalars_;
  WinogradKernels kernels_;
  int64_t transforms_ = 0;
  int64_t calls_ = 0;
};

}  // namespace gradlens::models
