// `gradlens evaluate` on the default 1000 images (Fashion-MNIST test, first
// 100 per class, the cached default model) against the same protocol run in
// Python (torch + scikit-learn + scipy + numpy, bench/evaluate_bench.py) on
// the same weights (passed by parameter name) and the same images, in one
// run: per stage and end to end, with the peak resident memory of each side
// and a cross-check of the numbers both sides report.
//
// usage: evaluate_bench [PER_CLASS [THREADS [direct|winograd]]]   (THREADS 0 =
// all cores; the convolutions as `evaluate --conv-algorithm`, default direct)
#include <torch/torch.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <string>

#include "bench_peer.h"
#include "gradlens/core/npy.h"
#include "gradlens/core/runtime.h"
#include "gradlens/data/dataset.h"
#include "gradlens/data/subset.h"
#include "gradlens/pipeline/data_source.h"
#include "gradlens/models/model_spec.h"
#include "gradlens/pipeline/evaluate.h"
#include "gradlens/pipeline/extract.h"
#include "gradlens/pipeline/train.h"

namespace fs = std::filesystem;
using namespace gradlens;

int main(int argc, char** argv) {
  const int64_t per_class = argc > 1 ? std::atoll(argv[1]) : 100;
  core::RuntimeOptions ro;
  ro.threads = argc > 2 ? std::atoi(argv[2]) : 0;
  const auto rt = core::init_runtime(ro);
  const std::string model_path = models::default_model_path();
  if (!fs::exists(model_path)) {
    std::cerr << "evaluate_bench: the default model " << model_path
              << " does not exist; run `build/gradlens evaluate` (or `gradlens train`) once first\n";
    return 1;
  }

  pipeline::EvaluateConfig cfg;
  cfg.per_class = per_class;
  pipeline::RunContext ctx;
  if (argc > 3 && std::string(argv[3]) == "winograd") ctx.model.conv = gradlens::models::ConvAlgorithm::kWinograd;
  ctx.threads = rt.threads;
  cfg.cache = false;
  const fs::path dir = fs::temp_directory_path() / ("gradlens-evaluate-bench-" + std::to_string(::getpid()));
  fs::create_directories(dir / "params");
  cfg.out = dir / "report";

  // The images and the weights for the Python side: the same selection as run_evaluate.
  {
    auto splits = pipeline::load_splits(cfg.data, ctx.seed);
    const auto idx = data::per_class_indices(splits.test.labels, per_class, data::SubsetMode::kFirst, 0,
                                             splits.test.num_classes(), splits.test.class_names);
    const auto ds = data::select(splits.test, idx);
    const auto x = data::to_float(ds, ds.images);
    core::write_npy(dir / "x.npy", x);
    core::write_npy(dir / "y.npy", ds.labels);
    auto model = pipeline::open_model_for(model_path, torch::kCPU, ds.channels(), ds.images.size(3));
    model->train(false);
    for (auto& [name, p] : model->named_parameters()) core::write_npy(dir / "params" / (name + ".npy"), p.detach());
    for (auto& [name, b] : model->named_buffers()) core::write_npy(dir / "params" / (name + ".npy"), b.detach());
    torch::NoGradGuard g;
    core::write_npy(dir / "logits.npy", model->forward(x));
  }

  // Ours, in process (the CLI adds only argument parsing and progress lines).
  const auto res = pipeline::run_evaluate(cfg, ctx);
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  const double our_rss_mb = static_cast<double>(ru.ru_maxrss) / 1024.0;
  const auto& me = res.models.at(0);
  std::map<std::string, double> ours;
  double staged = 0.0;
  for (const auto& [stage, s] : me.seconds) {
    ours[stage] = s;
    staged += s;
  }
  ours["report"] = res.report_seconds;                   // tables, figures, overlays, HTML, rename
  ours["setup"] = res.seconds - staged - res.report_seconds;  // data set and model loading

  // Python, on the same inputs.
  const std::string cmd = std::string("/usr/bin/python3 ") + GRADLENS_SOURCE_DIR + "/bench/evaluate_bench.py " +
                          dir.string() + " " + std::to_string(rt.threads) + " " + std::to_string(cfg.batch_size) +
                          " " + std::to_string(ctx.seed) + " 2>&1";
  const std::string peer_out = bench::run_peer(cmd);
  const bench::PeerValues value(peer_out);
  if (std::isnan(value("stage_total"))) {
    std::cerr << "evaluate_bench: the Python side failed:\n" << peer_out;
    return 1;
  }

  std::printf("evaluate: %lld Fashion-MNIST test images (first %lld per class), default model, %d threads, "
              "%s convolutions\n",
              static_cast<long long>(res.n), static_cast<long long>(per_class), rt.threads,
              ctx.model.conv == gradlens::models::ConvAlgorithm::kWinograd ? "Winograd" : "LibTorch's");
  std::printf("  %-10s %10s %10s %8s\n", "stage", "gradlens", "python", "ratio");
  double ours_common = 0.0;
  for (const std::string stage : {"extract", "analyze", "saliency", "errors"}) {
    const double py = value("stage_" + stage);
    ours_common += ours[stage];
    std::printf("  %-10s %9.3fs %9.3fs %7.2fx\n", stage.c_str(), ours[stage], py, py / ours[stage]);
  }
  const double py_total = value("stage_total");
  std::printf("  %-10s %9.3fs %10s %8s   (tables, gnuplot figures, overlays, HTML; no Python counterpart)\n",
              "report", ours["report"], "-", "-");
  std::printf("  end to end without the report: %.3f s vs %.3f s, ratio %.2fx\n", ours_common, py_total,
              py_total / ours_common);
  // Python's clock starts after it has read the prepared images and weights,
  // so the like-for-like total leaves out our data set and model loading.
  const double ours_with_report = ours_common + ours["report"];
  std::printf("  end to end with our report:    %.3f s vs %.3f s, ratio %.2fx\n", ours_with_report, py_total,
              py_total / ours_with_report);
  std::printf("  (gradlens also loaded the data set and the model in %.3f s, outside both clocks;"
              " its whole run took %.3f s)\n",
              ours["setup"], res.seconds);
  std::printf("  peak RSS: gradlens %.0f MB (this process, incl. data loading), python %.0f MB\n", our_rss_mb,
              value("peak_rss_mb"));

  // Cross-check: the numbers both sides report.
  std::printf("  cross-check (gradlens vs python):\n");
  std::printf("    %-34s %12.6f %12.6f\n", "accuracy", me.errors.accuracy, value("value_accuracy"));
  for (const auto& r : me.analysis.representations) {
    const auto& a = r.analysis;
    std::printf("    %-34s %12.6f %12.6f\n", ("cos_sim." + r.name).c_str(), a.cosine.cos_sim,
                value("value_cos_sim." + r.name));
    std::printf("    %-34s %12.6f %12.6f\n", ("kmeans.ari." + r.name).c_str(), a.kmeans.ari,
                value("value_kmeans.ari." + r.name));
    std::printf("    %-34s %12.6f %12.6f\n", ("gmm.ari." + r.name).c_str(), a.gmm.ari,
                value("value_gmm.ari." + r.name));
  }
  const std::map<std::string, std::string> sal = {{"CC", "cc"},   {"KLD", "kld"},          {"SIM", "sim"},
                                                  {"NSS", "nss"}, {"AUC-Judd", "auc_judd"}, {"AUC-Borji", "auc_borji"}};
  for (const auto& [metric, mean, sd] : me.saliency.metrics) {
    const auto it = sal.find(metric);
    if (it != sal.end())
      std::printf("    %-34s %12.6f %12.6f\n", ("saliency." + metric).c_str(), mean,
                  value("value_saliency." + it->second));
  }
  for (const auto& q : me.errors.ranking)
    std::printf("    %-34s %12.6f %12.6f   (different random flips)\n", ("auroc." + q.score).c_str(), q.auroc,
                value("value_auroc." + q.score));
  if (const char* keep = std::getenv("GRADLENS_BENCH_KEEP"); keep && *keep == '1') {
    std::printf("  kept %s\n", dir.string().c_str());
  } else {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  return 0;
}
