// The faithfulness and localisation metrics of saliency/faithfulness.h and
// localisation.h (deletion and insertion curves, 20 steps, zero baseline;
// average drop and increase in confidence; with masks: pointing game,
// energy-based pointing game, relevance rank accuracy) on Grad-CAM maps of a
// ResNet18, vs the same metrics in Python (bench/faithfulness_bench.py):
// (a) a per-image loop in the style of Quantus (one image, one step, one
// forward at a time), timed on the first images and scaled to all of them,
// and (b) the same computation batched in torch. Same weights, images, maps
// and threads; the values are compared.
//
// usage: faithfulness_bench [IMAGES [THREADS [fashion-mnist|shapes [LOOP_IMAGES]]]]
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <unistd.h>

#include "bench_data.h"
#include "bench_peer.h"
#include "gradlens/core/blas.h"
#include "gradlens/core/npy.h"
#include "gradlens/core/runtime.h"
#include "gradlens/data/dataset.h"
#include "gradlens/data/mnist.h"
#include "gradlens/data/shapes.h"
#include "gradlens/models/resnet.h"
#include "gradlens/saliency/cam.h"
#include "gradlens/saliency/faithfulness.h"
#include "gradlens/saliency/localisation.h"

namespace fs = std::filesystem;
using namespace gradlens;

int main(int argc, char** argv) {
  const int64_t n = argc > 1 ? std::atoll(argv[1]) : 1000;
  if (argc > 2) at::set_num_threads(std::atoi(argv[2]));
  const int threads = at::get_num_threads();
  const bool shapes = argc > 3 && std::string(argv[3]) == "shapes";
  const int64_t loop_n = argc > 4 ? std::atoll(argv[4]) : (shapes ? 5 : 50);
  if (n < 1 || loop_n < 1) {
    std::cerr << "usage: faithfulness_bench [IMAGES [THREADS [fashion-mnist|shapes [LOOP_IMAGES]]]]\n";
    return 2;
  }
  core::keep_freed_memory();
  core::set_blas_threads(1);
  torch::manual_seed(0);
  const models::ResNetConfig cfg = bench::resnet18_config(shapes);
  models::ResNet model(cfg);
  model.train(false);
  if (!shapes) model.to_channels_last();  // as gradlens runs 1-channel data

  const auto images = bench::bench_images(n, shapes);
  const torch::Tensor x = images.images, masks = images.masks;
  // Grad-CAM maps at layer4 for the predicted class: the maps being scored.
  const auto gradcam = bench::gradcam_maps(model, x);
  const torch::Tensor maps = gradcam.first, targets = gradcam.second;

  const fs::path dir = fs::temp_directory_path() / ("gradlens-faithfulness-bench-" + std::to_string(::getpid()));
  bench::write_peer_model(model, x, shapes, dir);
  core::write_npy(dir / "maps.npy", maps);
  core::write_npy(dir / "targets.npy", targets);
  if (shapes) core::write_npy(dir / "masks.npy", masks);

  const saliency::LogitsFn logits = [&model](const torch::Tensor& t) { return model.forward(t); };
  saliency::PerturbationOptions po;  // 20 steps, zero baseline
  po.batch_size = 256;
  saliency::CurveResult del, ins;
  saliency::ConfidenceChange cc;
  torch::Tensor point, energy, rank;
  auto ours = [&] {
    del = saliency::deletion_curve(logits, x, maps, targets, po);
    ins = saliency::insertion_curve(logits, x, maps, targets, po);
    cc = saliency::confidence_change(logits, x, maps, targets, 256);
    if (shapes) {
      point = saliency::pointing_game(maps, masks, 15.0);
      energy = saliency::energy_pointing_game(maps, masks);
      rank = saliency::relevance_rank_accuracy(maps, masks);
    }
  };
  ours();  // warm-up
  const auto t0 = std::chrono::steady_clock::now();
  ours();
  const double t_ours = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  core::write_npy(dir / "ours_deletion.npy", del.auc);
  core::write_npy(dir / "ours_insertion.npy", ins.auc);
  core::write_npy(dir / "ours_drop.npy", cc.drop);
  if (shapes) {
    core::write_npy(dir / "ours_pointing.npy", point);
    core::write_npy(dir / "ours_energy.npy", energy);
    core::write_npy(dir / "ours_rank.npy", rank);
  }

  const std::string cmd = std::string("/usr/bin/python3 ") + GRADLENS_SOURCE_DIR + "/bench/faithfulness_bench.py " +
                          dir.string() + " " + std::to_string(threads) + " " + std::to_string(loop_n);
  const std::string out = bench::run_peer(cmd + " 2>&1");
  const bench::PeerValues v(out);
  const double batched = v("python_batched_s"), loop = v("python_loop_s_per_image") * static_cast<double>(n);
  std::printf("faithfulness: %lld %s, Grad-CAM maps, %d threads\n", static_cast<long long>(n),
              shapes ? "224-px make-shapes images (resnet18, ImageNet stem) with masks"
                     : "Fashion-MNIST test images (resnet18 small stem, width 16)",
              threads);
  std::printf("  gradlens (deletion + insertion, 20 steps; average drop/increase%s): %.3f s\n",
              shapes ? "; pointing, energy, rank" : "", t_ours);
  std::printf("  python torch, batched the same way:                   %.3f s  ratio %.2fx\n", batched, batched / t_ours);
  std::printf("  python per-image loop (Quantus style), %lld images timed, scaled: %.3f s  ratio %.1fx\n",
              static_cast<long long>(loop_n), loop, loop / t_ours);
  std::printf("  max abs diff vs python: deletion AUC %g, insertion AUC %g, average drop %g, localisation %g\n",
              v("deletion_max_abs_diff"), v("insertion_max_abs_diff"), v("drop_max_abs_diff"),
              v("localisation_max_abs_diff"));
  if (std::isnan(batched)) std::cout << out;
  std::error_code ec;
  fs::remove_all(dir, ec);
  return 0;
}
