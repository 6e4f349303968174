// Per layer: gradlens' Winograd F(4x4, 3x3) convolution (models/winograd.h)
// against LibTorch's torch::conv2d on the same channels-last input, which
// is the oneDNN convolution Python torch runs: forward, and the input
// gradient (what extraction and Grad-CAM need), for the 3x3 stride-1 layer
// shapes of the width-16 small-stem ResNet18 on 28-px images, batch 100.
// Best of --repeat runs each, the same threads on both sides.
//
// usage: winograd_bench [REPEAT]   (threads: OMP_NUM_THREADS or LibTorch's default)
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <utility>
#include <vector>

#include "gradlens/core/runtime.h"
#include "gradlens/models/winograd.h"
#include "gradlens/models/winograd_kernel.h"

using namespace gradlens;

namespace {

template <class F>
double best_ms(int repeat, F f) {
  double best = 1e30;
  for (int r = 0; r < repeat; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    best = std::min(best, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  const int repeat = argc > 1 ? std::atoi(argv[1]) : 30;
  if (repeat < 1) {
    std::fprintf(stderr, "usage: winograd_bench [REPEAT >= 1]\n");
    return 2;
  }
  if (!models::detail::winograd_cpu_supported()) {
    std::fprintf(stderr, "winograd_bench: this CPU has no AVX-512F; the Winograd kernel does not run here\n");
    return 1;
  }
  core::keep_freed_memory();  // as every gradlens program (core::init_runtime)
  torch::manual_seed(0);
  std::printf("3x3 stride-1 convolutions, batch 100, %d threads: LibTorch (oneDNN) vs gradlens Winograd F(4x4,3x3)\n",
              at::get_num_threads());
  std::printf("  %-14s %10s %10s %7s   %10s %10s %7s   %9s\n", "layer", "fwd lib", "fwd wino", "ratio", "dx lib",
              "dx wino", "ratio", "max err");
  for (const auto& [c, h] : std::vector<std::pair<int64_t, int64_t>>{{16, 28}, {32, 14}, {64, 7}, {128, 4}}) {
    const auto x = at::empty({100, c, h, h}, at::MemoryFormat::ChannelsLast).copy_(torch::randn({100, c, h, h}));
    const auto w = at::empty({c, c, 3, 3}, at::MemoryFormat::ChannelsLast).copy_(torch::randn({c, c, 3, 3}));
    const auto b = torch::randn({c});
    const auto kernels = models::winograd_kernels(w);  // as ResNet caches them
    const double fwd_lib = best_ms(repeat, [&] { torch::conv2d(x, w, b, 1, 1); });
    const double fwd_win = best_ms(repeat, [&] { models::winograd_conv3x3(x, w, b, &kernels); });
    const auto xg = x.clone().requires_grad_(true);
    const auto y_lib = torch::conv2d(xg, w, b, 1, 1);
    const auto y_win = models::winograd_conv3x3(xg, w, b, &kernels);
    const auto gy = at::empty_like(y_lib).copy_(torch::randn_like(y_lib));
    const double dx_lib = best_ms(repeat, [&] { torch::autograd::grad({y_lib}, {xg}, {gy}, true); });
    const double dx_win = best_ms(repeat, [&] { torch::autograd::grad({y_win}, {xg}, {gy}, true); });
    const double err = ((y_win - y_lib).abs().max() / y_lib.abs().max()).item<double>();
    char name[32];
    std::snprintf(name, sizeof(name), "%lldch %lldx%lld", static_cast<long long>(c), static_cast<long long>(h),
                  static_cast<long long>(h));
    std::printf("  %-14s %8.3f ms %8.3f ms %6.2fx   %8.3f ms %8.3f ms %6.2fx   %9.2g\n", name, fwd_lib, fwd_win,
                fwd_lib / fwd_win, dx_lib, dx_win, dx_lib / dx_win, err);
  }
  return 0;
}
