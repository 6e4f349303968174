// Extraction of every representation (gradcam-weights pred at layer4,
// input-grad pred, param-grad pred of fc, features, activations, logits,
// probs) of 1000 Fashion-MNIST test images with ResNet18 (small stem, width
// 16, seeded weights), against the same computations in Python torch on the
// same weights and inputs (bench/extract_bench.py): once with gradlens'
// shared passes, once with a pass per representation as separate scripts do.
#include <torch/torch.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>

#include "bench_peer.h"
#include "gradlens/core/blas.h"
#include "gradlens/core/npy.h"
#include "gradlens/core/runtime.h"
#include "gradlens/data/mnist.h"
#include "gradlens/extract/representations.h"
#include "gradlens/models/resnet.h"

namespace fs = std::filesystem;
using namespace gradlens;

int main(int argc, char** argv) {
  const int64_t n = argc > 1 ? std::atoll(argv[1]) : 1000;
  const int64_t batch = argc > 2 ? std::atoll(argv[2]) : 100;
  if (n < 1 || batch < 1) {
    std::cerr << "usage: extract_bench [IMAGES >= 1 [BATCH >= 1]] (threads: OMP_NUM_THREADS or LibTorch's default)\n";
    return 2;
  }
  const int threads = at::get_num_threads();
  // As every gradlens program does (core::init_runtime); the peer is run
  // once with Python's default malloc and once with the same settings.
  const bool kept = core::keep_freed_memory();
  core::set_blas_threads(1);  // as init_runtime sets it
  torch::manual_seed(0);
  models::ResNetConfig cfg;
  cfg.arch = "resnet18";
  cfg.num_classes = 10;
  cfg.in_channels = 1;
  cfg.stem = models::Stem::kSmall;
  cfg.width = 16;
  models::ResNet model(cfg);
  model.train(false);
  // As `gradlens extract` and `evaluate` run it: channels-last weights for
  // 1-channel data on the CPU (pipeline::open_model_for). The Python side
  // keeps torch's default layout, as a user's script would.
  model.to_channels_last();

  const auto test = data::load_fashion_mnist(data::kDefaultFashionMnistDir, data::Split::kTest);
  const auto x = data::to_float(test, test.images.slice(0, 0, n));
  const auto y = test.labels.slice(0, 0, n);

  const fs::path dir = fs::temp_directory_path() / ("gradlens-extract-bench-" + std::to_string(::getpid()));
  fs::create_directories(dir / "params");
  for (auto& [name, p] : model.named_parameters()) core::write_npy(dir / "params" / (name + ".npy"), p.detach());
  for (auto& [name, b] : model.named_buffers()) core::write_npy(dir / "params" / (name + ".npy"), b.detach());
  core::write_npy(dir / "x.npy", x);
  core::write_npy(dir / "y.npy", y);
  {
    torch::NoGradGuard g;
    core::write_npy(dir / "logits.npy", model.forward(x));
  }

  extract::ExtractOptions opts;  // defaults: all representations, pred targets, layer4, fc
  std::vector<std::pair<std::string, double>> stages;
  auto run = [&]() {
    stages.clear();
    std::vector<std::vector<torch::Tensor>> parts;
    std::vector<std::string> names;
    for (int64_t s = 0; s < n; s += batch) {
      auto o = extract::extract_batch(model, x.slice(0, s, std::min(n, s + batch)),
                                      y.slice(0, s, std::min(n, s + batch)), opts);
      for (const auto& [k, v] : o.seconds) {
        auto it = std::find_if(stages.begin(), stages.end(), [&](const auto& e) { return e.first == k; });
        if (it == stages.end()) stages.emplace_back(k, v); else it->second += v;
      }
      if (parts.empty()) {
        parts.resize(o.values.size());
        for (auto& sp : o.specs) names.push_back(sp.name);
      }
      for (size_t j = 0; j < o.values.size(); ++j) parts[j].push_back(o.values[j]);
    }
    std::vector<std::pair<std::string, torch::Tensor>> out;
    for (size_t j = 0; j < parts.size(); ++j) out.emplace_back(names[j], torch::cat(parts[j]));
    return out;
  };
  run();  // warm-up
  // Plain forward passes, for reference (grad recording on, as extraction needs it).
  double plain_forward = 0;
  {
    const auto t = std::chrono::steady_clock::now();
    for (int64_t s = 0; s < n; s += batch) {
      auto xb = x.slice(0, s, std::min(n, s + batch)).detach().requires_grad_(true);
      model.forward(xb);
    }
    plain_forward = std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
  }
  const auto t0 = std::chrono::steady_clock::now();
  const auto out = run();
  const double ours = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (const auto& [name, t] : out) core::write_npy(dir / ("ours_" + name + ".npy"), t);

  const std::string cmd = std::string("/usr/bin/python3 ") + GRADLENS_SOURCE_DIR +
                          "/bench/extract_bench.py " + dir.string() + " " + std::to_string(threads) +
                          " " + std::to_string(batch);
  const std::string peer_out = bench::run_peer(cmd);
  const bench::PeerValues value(peer_out);
  const double shared = value("python_shared_s"), separate = value("python_separate_s");
  const bench::PeerValues kept_value(bench::run_peer(bench::kPeerKeepFreedMemoryEnv + cmd + " shared"));
  const double shared_kept = kept_value("python_shared_s");
  std::printf("extract: %lld Fashion-MNIST test images, resnet18 small stem width 16, batch %lld, %d threads\n",
              static_cast<long long>(n), static_cast<long long>(batch), threads);
  std::printf("  gradlens (1 forward + 2 backward per batch):  %.3f s\n", ours);
  std::printf("  python torch, same shared passes:             %.3f s  ratio %.2fx\n", shared, shared / ours);
  std::printf("  python torch, one pass per representation:    %.3f s  ratio %.2fx\n", separate, separate / ours);
  std::printf("  python torch, shared passes, gradlens' malloc settings: %.3f s  ratio %.2fx\n", shared_kept,
              shared_kept / ours);
  std::printf("    gradlens keeps freed memory (core::keep_freed_memory): %s\n", kept ? "yes" : "no (not glibc)");
  std::printf("    gradlens plain forward (reference)   %.3f s\n", plain_forward);
  for (const auto& [k, v] : stages) std::printf("    gradlens stage %-22s %.3f s\n", k.c_str(), v);
  std::printf("    python plain forward (reference)     %.3f s\n", value("python_forward_s"));
  std::printf("  logits max abs diff (weights loaded by name): %g\n", value("logits_max_abs_diff"));
  std::printf("  outputs' worst relative L2 diff vs python:    %g", value("max_rel_diff"));
  std::printf(" (input-grad %g)\n", value("rel_diff_input-grad"));
  if (std::isnan(shared)) std::cout << peer_out;
  std::error_code ec;
  fs::remove_all(dir, ec);
  return 0;
}
