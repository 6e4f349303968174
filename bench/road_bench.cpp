// ROAD (saliency/road.h: noisy linear imputation at 9 removal fractions, most
// and least relevant first) on Grad-CAM maps of a ResNet18, vs the same in
// Python (bench/road_bench.py) as pytorch-grad-cam computes it: one sparse
// system per image and fraction set up from the 8 neighbour offsets and
// solved with scipy.sparse.linalg.spsolve, each fraction's imputed images
// through the model in one batch. The peer is timed on the first LOOP images
// and scaled. Noise 0 on both sides, so the probabilities are compared.
//
// usage: road_bench [IMAGES [THREADS [fashion-mnist|shapes [LOOP_IMAGES]]]]
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <unistd.h>

#include "bench_data.h"
#include "bench_peer.h"
#include "gradlens/core/blas.h"
#include "gradlens/core/npy.h"
#include "gradlens/core/runtime.h"
#include "gradlens/models/resnet.h"
#include "gradlens/saliency/cam.h"
#include "gradlens/saliency/road.h"

namespace fs = std::filesystem;
using namespace gradlens;

int main(int argc, char** argv) {
  const int64_t n = argc > 1 ? std::atoll(argv[1]) : 1000;
  if (argc > 2) at::set_num_threads(std::atoi(argv[2]));
  const int threads = at::get_num_threads();
  const bool shapes = argc > 3 && std::string(argv[3]) == "shapes";
  const int64_t loop_n = argc > 4 ? std::atoll(argv[4]) : (shapes ? 2 : 100);
  if (n < 1 || loop_n < 1) {
    std::cerr << "usage: road_bench [IMAGES [THREADS [fashion-mnist|shapes [LOOP_IMAGES]]]]\n";
    return 2;
  }
  core::keep_freed_memory();
  core::set_blas_threads(1);
  torch::manual_seed(0);
  models::ResNet model(bench::resnet18_config(shapes));
  model.train(false);
  if (!shapes) model.to_channels_last();
  const torch::Tensor x = bench::bench_images(n, shapes).images;
  const auto gradcam = bench::gradcam_maps(model, x);
  const torch::Tensor maps = gradcam.first, targets = gradcam.second;

  const fs::path dir = fs::temp_directory_path() / ("gradlens-road-bench-" + std::to_string(::getpid()));
  bench::write_peer_model(model, x, shapes, dir);
  core::write_npy(dir / "maps.npy", maps);
  core::write_npy(dir / "targets.npy", targets);

  const saliency::LogitsFn logits = [&model](const torch::Tensor& t) { return model.forward(t); };
  saliency::RoadOptions o;
  o.noise = 0;
  o.batch_size = 256;
  saliency::RoadResult r;
  r = saliency::road(logits, x.slice(0, 0, std::min<int64_t>(n, 8)), maps.slice(0, 0, std::min<int64_t>(n, 8)),
                     targets.slice(0, 0, std::min<int64_t>(n, 8)), o);  // warm-up
  const auto t0 = std::chrono::steady_clock::now();
  r = saliency::road(logits, x, maps, targets, o);
  const double t_ours = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  core::write_npy(dir / "ours_morf.npy", r.morf);
  core::write_npy(dir / "ours_lerf.npy", r.lerf);

  const std::string cmd = std::string("/usr/bin/python3 ") + GRADLENS_SOURCE_DIR + "/bench/road_bench.py " +
                          dir.string() + " " + std::to_string(threads) + " " + std::to_string(loop_n);
  const std::string out = bench::run_peer(cmd + " 2>&1");
  const bench::PeerValues v(out);
  const double peer = v("python_s_per_image") * static_cast<double>(n);
  std::printf("road: %lld %s, Grad-CAM maps, 9 fractions MoRF + LeRF, %d threads\n", static_cast<long long>(n),
              shapes ? "224-px make-shapes images (resnet18, ImageNet stem)"
                     : "Fashion-MNIST test images (resnet18 small stem, width 16)",
              threads);
  std::printf("  gradlens (Eigen sparse Cholesky, images in parallel, batched forwards): %.3f s\n", t_ours);
  std::printf("  python, scipy spsolve per image and fraction (pytorch-grad-cam), %lld images timed, scaled: %.3f s  "
              "ratio %.1fx\n",
              static_cast<long long>(loop_n), peer, peer / t_ours);
  std::printf("  max abs diff of the probabilities on the timed images: %g\n", v("max_abs_diff"));
  if (std::isnan(peer)) std::cout << out;
  std::error_code ec;
  fs::remove_all(dir, ec);
  return 0;
}
