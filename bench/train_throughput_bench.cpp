// Training throughput of ResNet18 (small stem) on Fashion-MNIST batches:
// gradlens vs the same model, batch and thread count in Python torch, for a
// plain cross-entropy step and for a step with the seed's L_grad (input
// gradients by double backprop, Euclidean form, mean over same-class pairs,
// lambda 0.1). Prints images/s, the cost of an L_grad step relative to a
// plain one on each side, and the speed ratios.
//
//   build/bench/train_throughput_bench [--width 16] [--batch 128] [--steps 20] [--threads 0] [--blas-threads 1]
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>

#include "gradlens/core/runtime.h"
#include "gradlens/data/mnist.h"
#include "gradlens/models/resnet.h"
#include "gradlens/train/grad_loss.h"
#include "gradlens/train/optimizer.h"

namespace {

double run_ours(int64_t width, int64_t batch, int steps, bool channels_last, bool lgrad) {
  using namespace gradlens;
  auto ds = data::load_fashion_mnist(data::kDefaultFashionMnistDir, data::Split::kTest);
  auto x = data::to_float(ds, ds.images.slice(0, 0, batch));
  auto y = ds.labels.slice(0, 0, batch);
  models::ResNetConfig cfg;
  cfg.stem = models::Stem::kSmall;
  cfg.width = width;
  cfg.in_channels = 1;
  cfg.num_classes = 10;
  torch::manual_seed(0);
  models::ResNet m(cfg);
  if (channels_last) {
    m.to_channels_last();
    x = x.contiguous(at::MemoryFormat::ChannelsLast);
  }
  m.train(true);
  train::OptimizerOptions oo;
  auto opt = train::make_optimizer(m.parameters(), oo);
  auto step = [&] {
    opt->zero_grad();
    torch::Tensor loss;
    if (lgrad) {
      auto xr = x.detach().requires_grad_(true);
      auto logits = m.forward(xr);
      auto g = train::input_gradients(logits, y, xr);
      loss = torch::nn::functional::cross_entropy(logits, y) +
             0.1 * train::grad_alignment_loss(g, y, train::GradForm::kEuclidean, train::GradReduction::kMean).loss;
    } else {
      loss = torch::nn::functional::cross_entropy(m.forward(x), y);
    }
    loss.backward();
    opt->step();
  };
  for (int i = 0; i < 3; ++i) step();
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < steps; ++i) step();
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return static_cast<double>(batch) * steps / s;
}

}  // namespace

int main(int argc, char** argv) {
  int64_t width = 16, batch = 128;
  int steps = 20, threads = 0, blas_threads = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--width") width = std::stoll(argv[i + 1]);
    else if (a == "--batch") batch = std::stoll(argv[i + 1]);
    else if (a == "--steps") steps = std::stoi(argv[i + 1]);
    else if (a == "--threads") threads = std::stoi(argv[i + 1]);
    else if (a == "--blas-threads") blas_threads = std::stoi(argv[i + 1]);
  }
  gradlens::core::RuntimeOptions ro;
  ro.threads = threads;
  ro.blas_threads = blas_threads;  // gradlens' --blas-threads (default 1; 0 = threads)
  const auto info = gradlens::core::init_runtime(ro);
  std::printf("ResNet18 small stem, width %lld, batch %lld, %d steps, %d threads (OpenBLAS: %d)\n",
              static_cast<long long>(width), static_cast<long long>(batch), steps, info.threads, info.blas_threads);
  double ours[2], peer[2];
  for (int lg = 0; lg < 2; ++lg) {
    ours[lg] = run_ours(width, batch, steps, true, lg == 1);
    const std::string cmd = std::string("/usr/bin/python3 ") + GRADLENS_SOURCE_DIR +
                            "/bench/train_throughput.py --width " + std::to_string(width) +
                            " --batch " + std::to_string(batch) + " --steps " + std::to_string(steps) +
                            " --threads " + std::to_string(info.threads) + (lg ? " --lgrad" : "");
    FILE* p = popen(cmd.c_str(), "r");
    if (p == nullptr || std::fscanf(p, "%lf", &peer[lg]) != 1) {
      std::fprintf(stderr, "peer run failed: %s\n", cmd.c_str());
      return 1;
    }
    pclose(p);
    std::printf("%-18s gradlens %8.1f images/s, python torch %8.1f images/s, ratio %.2fx\n",
                lg ? "CE + L_grad step:" : "CE step:", ours[lg], peer[lg], ours[lg] / peer[lg]);
  }
  std::printf("cost of an L_grad step / a CE step: gradlens %.2fx, python torch %.2fx\n", ours[0] / ours[1],
              peer[0] / peer[1]);
  return 0;
}
