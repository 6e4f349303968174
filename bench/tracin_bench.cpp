// TracIn-CP of influence/tracin.h with the head exact and layer4.1.conv2
// projected (influence/projection.h, 1024 numbers), on the benchmarks'
// ResNet18 (small stem, width 16) over Fashion-MNIST training images and
// test queries, vs the same computation in Python torch
// (bench/tracin_bench.py): per-sample gradients of fc and layer4.1.conv2
// from functorch's vmap(grad(...)) as TRAK computes them, the same Kronecker
// projection factors (written by this program) applied to them, the same
// scores and top-k. Checkpoints are seeded re-initialisations of the model
// (weights do not change the cost); the first queries' scores are compared.
//
// usage: tracin_bench [TRAIN [QUERIES [CHECKPOINTS [THREADS]]]]
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
#include "gradlens/data/dataset.h"
#include "gradlens/data/mnist.h"
#include "gradlens/influence/projection.h"
#include "gradlens/influence/tracin.h"
#include "gradlens/models/resnet.h"

namespace fs = std::filesystem;
using namespace gradlens;

int main(int argc, char** argv) {
  const int64_t n_train = argc > 1 ? std::atoll(argv[1]) : 10000;
  const int64_t n_query = argc > 2 ? std::atoll(argv[2]) : 1000;
  const int64_t n_ckpt = argc > 3 ? std::atoll(argv[3]) : 8;
  if (argc > 4) at::set_num_threads(std::atoi(argv[4]));
  const int threads = at::get_num_threads();
  if (n_train < 1 || n_query < 1 || n_ckpt < 1 || n_train > 60000 || n_query > 10000) {
    std::cerr << "usage: tracin_bench [TRAIN<=60000 [QUERIES<=10000 [CHECKPOINTS [THREADS]]]]\n";
    return 2;
  }
  core::keep_freed_memory();
  core::set_blas_threads(1);
  auto train = data::load_fashion_mnist(data::kDefaultFashionMnistDir, data::Split::kTrain);
  auto test = data::load_fashion_mnist(data::kDefaultFashionMnistDir, data::Split::kTest);
  train.images = train.images.slice(0, 0, n_train);
  train.labels = train.labels.slice(0, 0, n_train);
  test.images = test.images.slice(0, 0, n_query);
  test.labels = test.labels.slice(0, 0, n_query);

  const fs::path dir = fs::temp_directory_path() / ("gradlens-tracin-bench-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  core::write_npy(dir / "train_x.npy", data::to_float(train, train.images));
  core::write_npy(dir / "train_y.npy", train.labels);
  core::write_npy(dir / "query_x.npy", data::to_float(test, test.images));
  core::write_npy(dir / "query_y.npy", test.labels);

  std::vector<std::unique_ptr<models::ResNet>> ckpts;
  std::vector<double> eta;
  for (int64_t t = 0; t < n_ckpt; ++t) {
    torch::manual_seed(static_cast<uint64_t>(t));
    auto m = std::make_unique<models::ResNet>(bench::resnet18_config(false));
    m->train(false);
    m->set_winograd(false);  // LibTorch's convolutions, as Python's
    const auto p = dir / ("ckpt" + std::to_string(t)) / "params";
    fs::create_directories(p);
    for (auto& [name, v] : m->named_parameters()) core::write_npy(p / (name + ".npy"), v.detach());
    for (auto& [name, v] : m->named_buffers()) core::write_npy(p / (name + ".npy"), v.detach());
    ckpts.push_back(std::move(m));
    eta.push_back(0.1 / static_cast<double>(t + 1));
  }
  influence::ProjectionOptions po;
  po.layers = {"layer4.1.conv2"};
  po.dim = 1024;
  const auto probe = data::to_float(train, train.images.slice(0, 0, 1));
  const auto proj = influence::make_projections(*ckpts[0], probe, po);
  core::write_npy(dir / "p_out.npy", proj[0].p_out);
  core::write_npy(dir / "p_in.npy", proj[0].p_in);
  {
    std::vector<double> e(eta);
    core::write_npy(dir / "eta.npy", torch::tensor(e, torch::kFloat64));
  }

  influence::TracInResult r;
  double t_factors = 0.0;
  auto ours = [&] {
    const auto t_start = std::chrono::steady_clock::now();
    std::vector<influence::GradientFactors> tf, qf;
    for (auto& m : ckpts) {
      tf.push_back(influence::dataset_gradient_factors(*m, train, train.labels, 500, proj));
      qf.push_back(influence::dataset_gradient_factors(*m, test, test.labels, 500, proj));
    }
    t_factors = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
    influence::TracInOptions o;
    o.top_k = 10;
    r = influence::tracin(tf, qf, eta, o);
    o.keep_scores = true;
    std::vector<influence::GradientFactors> q20;
    const auto first = torch::arange(std::min<int64_t>(20, n_query), torch::kInt64);
    for (auto& q : qf) q20.push_back(q.rows(first));
    core::write_npy(dir / "ours_scores.npy", influence::tracin(tf, q20, eta, o).scores);
  };
  const auto t0 = std::chrono::steady_clock::now();
  ours();
  const double t_ours = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  core::write_npy(dir / "ours_top.npy", r.proponents);
  std::fprintf(stderr, "gradlens: %.2f s, of which factors and projections %.2f s\n", t_ours, t_factors);

  const std::string cmd = std::string("/usr/bin/python3 ") + GRADLENS_SOURCE_DIR + "/bench/tracin_bench.py " +
                          dir.string() + " " + std::to_string(threads) + " " + std::to_string(n_ckpt);
  const std::string out = bench::run_peer(cmd + " 2>&1");
  const bench::PeerValues v(out);
  const double py = v("python_s");
  std::printf("tracin: %lld training images x %lld queries, %lld checkpoints, head exact + layer4.1.conv2 "
              "projected to 1024, resnet18 (small stem, width 16), %d threads\n",
              static_cast<long long>(n_train), static_cast<long long>(n_query), static_cast<long long>(n_ckpt),
              threads);
  std::printf("  gradlens (factors, projections, scores, top-10): %.2f s (factors and projections %.2f s)\n", t_ours,
              t_factors);
  std::printf("  python torch, functorch vmap(grad) + same projection: %.2f s  ratio %.2fx\n", py, py / t_ours);
  std::printf("  scores of the first queries: max relative diff %g; top-10 proponents equal: %.1f%%\n",
              v("scores_max_rel_diff"), 100 * v("top10_equal"));
  if (std::isnan(py)) std::cout << out;
  std::error_code ec;
  fs::remove_all(dir, ec);
  return 0;
}
