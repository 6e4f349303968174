// Grad-CAM display maps (layer4, predicted class, bilinear upsampling to the
// input size, per-image min-max) against the same computation in Python torch
// on the same weights and inputs (bench/saliency_bench.py): once as batched
// torch ops, once along pytorch-grad-cam's code path (hooks, numpy, per-image
// scaling). Two data sets:
//   fashion-mnist  Fashion-MNIST test images, 1x28x28, ResNet18 small stem,
//                  width 16, channels-last weights as `gradlens saliency`
//                  and `evaluate` use them for 1-channel data on the CPU
//   shapes         `make-shapes` images rendered at 224 px, 3x224x224,
//                  torchvision's ResNet18 (ImageNet stem, width 64, 8
//                  classes; torchvision.models.resnet18 on the Python side)
// The weights are seeded (untrained): the timing does not depend on them.
//
// usage: saliency_bench [N=1000] [BATCH=100] [THREADS] [fashion-mnist|shapes]
//        (both sides use THREADS)
#include <torch/torch.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>

#include "bench_data.h"
#include "bench_peer.h"
#include "gradlens/core/blas.h"
#include "gradlens/core/npy.h"
#include "gradlens/core/runtime.h"
#include "gradlens/data/mnist.h"
#include "gradlens/data/shapes.h"
#include "gradlens/models/resnet.h"
#include "gradlens/saliency/cam.h"

namespace fs = std::filesystem;
using namespace gradlens;

int main(int argc, char** argv) {
  const int64_t n = argc > 1 ? std::atoll(argv[1]) : 1000;
  const int64_t batch = argc > 2 ? std::atoll(argv[2]) : 100;
  if (n < 1 || batch < 1 || (argc > 3 && std::atoi(argv[3]) < 1)) {
    std::cerr << "usage: saliency_bench [IMAGES >= 1 [BATCH >= 1 [THREADS >= 1 [fashion-mnist|shapes]]]]\n";
    return 2;
  }
  if (argc > 3) at::set_num_threads(std::atoi(argv[3]));  // default: LibTorch's (1 with Debian's)
  const int threads = at::get_num_threads();
  const std::string dataset = argc > 4 ? argv[4] : "fashion-mnist";
  if (dataset != "fashion-mnist" && dataset != "shapes") {
    std::cerr << "saliency_bench: the 4th argument must be fashion-mnist or shapes, got '" << dataset << "'\n";
    return 2;
  }
  const bool shapes = dataset == "shapes";
  // As every gradlens program does (core::init_runtime); the peer is run
  // once with Python's default malloc and once with the same settings.
  const bool kept = core::keep_freed_memory();
  core::set_blas_threads(1);  // as init_runtime sets it
  torch::manual_seed(0);
  const models::ResNetConfig cfg = bench::resnet18_config(shapes);
  models::ResNet model(cfg);
  model.train(false);
  if (!shapes) model.to_channels_last();

  // make-shapes: rendered in memory (as make-shapes writes them), normalised
  // with the ImageNet mean and std.
  const torch::Tensor x = bench::bench_images(n, shapes).images;

  const fs::path dir = fs::temp_directory_path() / ("gradlens-saliency-bench-" + std::to_string(::getpid()));
  bench::write_peer_model(model, x, shapes, dir);
  {
    torch::NoGradGuard g;
    core::write_npy(dir / "logits.npy", model.forward(x));
  }

  saliency::AttributionOptions opts;  // Grad-CAM, layer4, target pred
  int64_t constant = 0;
  auto run = [&]() {
    std::vector<torch::Tensor> parts;
    constant = 0;
    for (int64_t s = 0; s < n; s += batch) {
      auto a = saliency::compute_attribution(model, x.slice(0, s, std::min(n, s + batch)), {}, opts, s);
      parts.push_back(a.maps);
      constant += a.num_constant;
    }
    return torch::cat(parts);
  };
  run();  // warm-up
  const auto t0 = std::chrono::steady_clock::now();
  const auto maps = run();
  const double ours = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  core::write_npy(dir / "ours_maps.npy", maps);

  const std::string cmd = std::string("/usr/bin/python3 ") + GRADLENS_SOURCE_DIR + "/bench/saliency_bench.py " +
                          dir.string() + " " + std::to_string(threads) + " " + std::to_string(batch);
  const std::string peer_out = bench::run_peer(cmd);
  const bench::PeerValues value(peer_out);
  const double py_torch = value("python_torch_s"), py_gradcam = value("python_gradcam_s");
  const bench::PeerValues kept_value(bench::run_peer(bench::kPeerKeepFreedMemoryEnv + cmd + " torch"));
  const double py_torch_kept = kept_value("python_torch_s");
  std::printf("saliency: Grad-CAM maps of %lld %s, layer4, batch %lld, %d threads\n",
              static_cast<long long>(n),
              shapes ? "224-px make-shapes images, resnet18 (ImageNet stem, width 64)"
                     : "Fashion-MNIST test images, resnet18 small stem width 16 (ours channels-last)",
              static_cast<long long>(batch), threads);
  std::printf("  gradlens compute_attribution (1 forward + 1 backward per batch): %.3f s (%lld constant maps)\n",
              ours, static_cast<long long>(constant));
  std::printf("  python torch, same batched ops:                             %.3f s  ratio %.2fx\n", py_torch,
              py_torch / ours);
  std::printf("  python torch, same batched ops, gradlens' malloc settings: %.3f s  ratio %.2fx\n",
              py_torch_kept, py_torch_kept / ours);
  std::printf("    gradlens keeps freed memory (core::keep_freed_memory): %s\n", kept ? "yes" : "no (not glibc)");
  std::printf("  python, pytorch-grad-cam code path (hooks, numpy, per image): %.3f s  ratio %.2fx\n", py_gradcam,
              py_gradcam / ours);
  std::printf("  logits max abs diff (weights loaded by name): %g\n", value("logits_max_abs_diff"));
  std::printf("  maps max abs diff vs python:                  %g\n", value("maps_max_abs_diff"));
  if (std::isnan(py_torch)) std::cout << peer_out;
  std::error_code ec;
  fs::remove_all(dir, ec);
  return 0;
}
