// Benchmarks of the analysis core against scikit-learn on the same data in
// the same run: KMeans, GMM (diag, full), PCA (exact, randomized), silhouette.
// Usage: gradlens_analysis_bench [--threads N] [--blas-threads B] [--quick] [--repeat R] [--only SUBSTRING]
// Each line prints our time, sklearn's time (bench/analysis_bench.py on the
// same .npy inputs) and the ratio sklearn / ours (> 1: we are faster).
// Fairness: both sides run each fit R times (default 3) and report the
// fastest (the first run doubles as warm-up), with the same OpenMP thread
// count N. OpenBLAS gets N threads and its own kernel choice on the Python
// side (threadpoolctl; numpy's default is all cores), and here what gradlens
// programs get from core::init_runtime: B threads (--blas-threads, default
// 1; 0 = N).
#include "gradlens/cluster/gmm.h"
#include "gradlens/cluster/kmeans.h"
#include "gradlens/metrics/internal.h"
#include "gradlens/reduce/pca.h"

#include <torch/torch.h>

#include "gradlens/core/blas.h"
#include "gradlens/core/npy.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <map>
#include <sstream>
#include <thread>
#include <unistd.h>
#include <string>

namespace fs = std::filesystem;

namespace {

void save_npy(const fs::path& path, const torch::Tensor& t) { gradlens::core::write_npy(path, t); }

// Fastest of `repeat` runs.
double seconds(const std::function<void()>& fn, int repeat) {
  double best = 1e300;
  for (int r = 0; r < repeat; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

torch::Tensor blobs(int64_t n, int64_t d, int64_t k, torch::ScalarType dtype) {
  const auto centres = torch::randn({k, d}, torch::kFloat64) * 3;
  const auto labels = torch::randint(0, k, {n}, torch::kInt64);
  return (centres.index_select(0, labels) + torch::randn({n, d}, torch::kFloat64)).to(dtype);
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 0;
  int blas_threads = 1;
  bool quick = false;
  int repeat = 3;
  std::string only;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--threads" && i + 1 < argc) threads = std::stoi(argv[++i]);
    if (a == "--blas-threads" && i + 1 < argc) blas_threads = std::stoi(argv[++i]);
    if (a == "--quick") quick = true;
    if (a == "--repeat" && i + 1 < argc) repeat = std::max(1, std::stoi(argv[++i]));
    if (a == "--only" && i + 1 < argc) only = argv[++i];
  }
  if (threads <= 0) threads = static_cast<int>(std::thread::hardware_concurrency());
  torch::set_num_threads(threads);
  if (blas_threads <= 0) blas_threads = threads;
  const char* coretype = std::getenv("OPENBLAS_CORETYPE");  // both sides run under it
  const bool blas_set = gradlens::core::set_blas_threads(blas_threads);
  torch::manual_seed(0);
  const int64_t scale = quick ? 10 : 1;  // --quick: 1/10 of the rows
  const fs::path dir = fs::temp_directory_path() / ("gradlens-analysis-bench-" + std::to_string(::getpid()));
  fs::create_directories(dir);

  std::map<std::string, double> ours;
  auto run = [&](const std::string& name, const std::function<void()>& fn) {
    if (only.empty() || name.find(only) != std::string::npos) ours[name] = seconds(fn, repeat);
  };
  // KMeans k=10 on 60000 x 512 float32 blobs, 20 Lloyd iterations from the same centres.
  const auto xk = blobs(60000 / scale, 512, 10, torch::kFloat32);
  const auto init = xk.slice(0, 0, 10).clone();
  save_npy(dir / "kmeans_x.npy", xk);
  save_npy(dir / "kmeans_init.npy", init);
  gradlens::cluster::KMeansOptions ko;
  ko.k = 10;
  ko.init = gradlens::cluster::KMeansInit::kGiven;
  ko.init_centroids = init;
  ko.max_iter = 20;
  ko.tol = 0;
  run("kmeans k=10 60000x512 (20 it)", [&] { gradlens::cluster::kmeans_fit(xk, ko); });

  // GMM: diag 60000 x 64, full 10000 x 50; same random start, 20 EM iterations.
  const auto xgd = blobs(60000 / scale, 64, 10, torch::kFloat64);
  const auto xgf = blobs(10000 / scale, 50, 5, torch::kFloat64);
  save_npy(dir / "gmm_diag_x.npy", xgd);
  save_npy(dir / "gmm_full_x.npy", xgf);
  gradlens::cluster::GmmOptions go;
  go.init = gradlens::cluster::GmmInit::kRandom;
  go.max_iter = 20;
  go.tol = 0;
  go.n_components = 10;
  go.covariance_type = gradlens::cluster::CovarianceType::kDiag;
  run("gmm diag k=10 60000x64 (20 it)", [&] { gradlens::cluster::gmm_fit(xgd, go); });
  go.n_components = 5;
  go.covariance_type = gradlens::cluster::CovarianceType::kFull;
  run("gmm full k=5 10000x50 (20 it)", [&] { gradlens::cluster::gmm_fit(xgf, go); });

  // PCA, 50 components of 60000 x 784 float32.
  const auto xp = (torch::randn({60000 / scale, 784}) * torch::linspace(0.1, 3.0, 784)).contiguous();
  save_npy(dir / "pca_x.npy", xp);
  gradlens::reduce::PcaOptions po;
  po.n_components = 50;
  run("pca exact 50 of 60000x784", [&] { gradlens::reduce::pca_fit(xp, po); });
  po.solver = gradlens::reduce::PcaSolver::kRandomized;
  run("pca randomized 50 of 60000x784", [&] { gradlens::reduce::pca_fit(xp, po); });

  // Silhouette, 10000 x 512, 10 clusters.
  const auto xs = blobs(10000 / scale, 512, 10, torch::kFloat32);
  const auto ls = gradlens::cluster::kmeans_predict(xs, xs.slice(0, 0, 10));
  save_npy(dir / "sil_x.npy", xs);
  save_npy(dir / "sil_labels.npy", ls);
  run("silhouette 10000x512", [&] { gradlens::metrics::silhouette_score(xs, ls); });

  const std::string script = std::string(GRADLENS_SOURCE_DIR) + "/bench/analysis_bench.py";
  const std::string cmd = "/usr/bin/python3 " + script + " " + dir.string() + " " + std::to_string(threads) + " " +
                          std::to_string(repeat) + " '" + only + "'";
  FILE* pipe = popen(cmd.c_str(), "r");
  std::map<std::string, double> theirs;
  if (pipe != nullptr) {
    char line[512];
    while (fgets(line, sizeof line, pipe) != nullptr) {
      std::string s(line);
      const size_t tab = s.rfind('\t');
      if (tab != std::string::npos) theirs[s.substr(0, tab)] = std::stod(s.substr(tab + 1));
    }
    pclose(pipe);
  }
  std::printf("%-34s %10s %10s %8s   (threads %d)\n", "benchmark", "gradlens", "sklearn", "ratio", threads);
  if (blas_set) {
    std::printf("(fastest of %d runs each; OpenBLAS threads: gradlens %d, sklearn %d; OPENBLAS_CORETYPE %s)\n",
                repeat, blas_threads, threads, coretype == nullptr ? "unset" : coretype);
  } else {
    std::printf("(fastest of %d runs each; OpenBLAS threads not set: the BLAS is not OpenBLAS)\n", repeat);
  }
  for (const auto& [name, t] : ours) {
    const auto it = theirs.find(name);
    if (it == theirs.end()) {
      std::printf("%-34s %9.3fs %10s %8s\n", name.c_str(), t, "n/a", "n/a");
    } else {
      std::printf("%-34s %9.3fs %9.3fs %7.2fx\n", name.c_str(), t, it->second, it->second / t);
    }
  }
  fs::remove_all(dir);
  return 0;
}
