// 1 vs 2 ranks on this machine: distributed KMeans (in-process ranks of this
// binary, re-executed with torchrun's variables) and `gradlens extract` vs
// `gradlens launch -n 2 -- extract` (the built CLI next to bench/).
// Usage: dist_bench [--quick]
// Prints wall-clock times, the ratio t(1 rank) / t(2 ranks) (> 1: 2 ranks are
// faster) and the bytes all-reduced per KMeans iteration. Every rank runs
// with one intra-op thread (torch and OpenBLAS), so 2 ranks use 2 cores.
#include "gradlens/cluster/kmeans.h"
#include "gradlens/distributed/context.h"
#include "gradlens/distributed/launcher.h"

#include <torch/torch.h>

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

constexpr int64_t kN = 100000, kD = 64, kK = 64, kIter = 20;

double since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// One rank's KMeans: up to kIter Lloyd iterations (tol 0, max_iter kIter;
// heavily overlapping blobs, so labels keep changing) on its shard of the
// same data; rank 0 writes its wall time to `out`.
int bench_rank(const std::string& out) {
  torch::set_num_threads(1);
  gradlens::distributed::Communicator comm{gradlens::distributed::DistOptions{}};
  torch::manual_seed(5);
  const auto x = torch::randn({kN, kD}) + torch::randn({kK, kD}).index_select(0, torch::arange(kN) % kK) * 0.3;
  const auto [b, e] = gradlens::distributed::shard_range(kN, comm.rank(), comm.world_size());
  gradlens::cluster::KMeansOptions o;
  o.k = kK;
  o.init = gradlens::cluster::KMeansInit::kGiven;
  o.init_centroids = x.slice(0, 0, kK).clone();
  o.tol = 0;
  o.max_iter = kIter;
  comm.barrier();
  const auto t0 = std::chrono::steady_clock::now();
  const auto r = gradlens::cluster::kmeans_fit(x.slice(0, b, e), o, comm);
  const double t = since(t0);
  if (comm.is_root()) std::ofstream(out) << t << " " << r.n_iter << "\n";
  return 0;
}

// Runs `world` ranks of this binary; returns rank 0's KMeans seconds and iterations.
std::pair<double, int> run_kmeans(int world, const fs::path& dir) {
  const fs::path out = dir / ("kmeans" + std::to_string(world) + ".txt");
  gradlens::distributed::LaunchOptions opts;
  opts.exe = fs::read_symlink("/proc/self/exe").string();
  opts.argv0 = "dist_bench";
  opts.args = {"--rank", out.string()};
  opts.world_size = world;
  opts.env = {{"OPENBLAS_NUM_THREADS", "1"}, {"OMP_NUM_THREADS", "1"}};
  const auto ends = gradlens::distributed::run_ranks(
      opts, [](int, int, std::string_view bytes) { std::cerr << bytes; });
  for (const auto& e : ends)
    if (!e.ok()) {
      std::cerr << "dist_bench: a KMeans rank " << e.describe() << "\n";
      std::exit(1);
    }
  std::ifstream f(out);
  double t = 0;
  int it = 0;
  f >> t >> it;
  return {t, it};
}

double run_timed(const std::string& cmd) {
  const auto t0 = std::chrono::steady_clock::now();
  if (std::system((cmd + " > /dev/null 2>&1").c_str()) != 0) {
    std::cerr << "dist_bench: failed: " << cmd << "\n";
    std::exit(1);
  }
  return since(t0);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 3 && std::string(argv[1]) == "--rank") return bench_rank(argv[2]);
  const bool quick = argc >= 2 && std::string(argv[1]) == "--quick";
  const fs::path dir = fs::temp_directory_path() / ("gradlens-dist-bench-" + std::to_string(::getpid()));
  fs::create_directories(dir);

  // Fastest of 3 launches each (the machine is shared).
  double t1 = 1e300, t2 = 1e300;
  int it1 = 0, it2 = 0;
  for (int rep = 0; rep < 3; ++rep) {
    const auto [a, ia] = run_kmeans(1, dir);
    const auto [b, ib] = run_kmeans(2, dir);
    t1 = std::min(t1, a);
    t2 = std::min(t2, b);
    it1 = ia;
    it2 = ib;
  }
  const double bytes = 8.0 * (kK * (kD + 1) + 1);
  std::printf("kmeans  N=%lld d=%lld k=%lld, %d iterations: 1 rank %.3f s, 2 ranks %.3f s, ratio %.2fx\n",
              static_cast<long long>(kN), static_cast<long long>(kD), static_cast<long long>(kK), it1, t1, t2,
              t1 / t2);
  std::printf("kmeans  all-reduced per Lloyd iteration: %.0f bytes (float64 [sums k x d | counts k | changed 1])\n",
              bytes);
  if (it1 != it2) std::printf("kmeans  WARNING: iteration counts differ (%d vs %d)\n", it1, it2);

  const fs::path g = fs::canonical("/proc/self/exe").parent_path().parent_path() / "gradlens";
  if (!fs::exists(g)) {
    std::printf("extract skipped: build the gradlens target (%s)\n", g.c_str());
    return 0;
  }
  const std::string gs = g.string();
  const std::string per_class = quick ? "20" : "100";
  run_timed(gs + " --threads 1 --quiet train --width 4 --epochs 1 --train-per-class 10 --test-per-class 5 "
                 "--batch-size 50 --out " + (dir / "m").string());
  const std::string args = " --threads 1 --quiet extract --model " + (dir / "m" / "model.ckpt").string() +
                           " --per-class " + per_class + " --batch-size 64 --out ";
  const double e1 = run_timed(gs + args + (dir / "one").string());
  const double e2 = run_timed(gs + " launch -n 2 --" + args + (dir / "two").string());
  std::printf("extract %s images (all representations), whole command: 1 rank %.2f s, 2 ranks %.2f s, ratio %.2fx\n",
              quick ? "200" : "1000", e1, e2, e1 / e2);
  fs::remove_all(dir);
  return 0;
}
