// Benchmark: gradlens::saliency metrics against the numpy port of the MIT
// reference code (tests/python/saliency_reference.py), same inputs, same run.
//
//   saliency_metrics_bench [N=1000] [SIZE=224] [PYTHON=/usr/bin/python3]
//
// Generates N smooth SIZE x SIZE prediction / ground-truth density pairs,
// fixation maps (~20 fixations drawn from the density) and other-image
// fixation maps (union of 10 other images), times each metric over the whole
// batch here, then runs bench/saliency_metrics_bench.py on the same data (the
// sampled AUCs' negatives are handed over) and prints, per metric, our time,
// numpy's time, their ratio and the largest per-image difference.
#include "gradlens/saliency/metrics.h"

#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <random>
#include <sstream>
#include <string>

#ifndef GRADLENS_SOURCE_DIR
#define GRADLENS_SOURCE_DIR "."
#endif

namespace fs = std::filesystem;
using gradlens::saliency::MetricResult;
using gradlens::saliency::SampledAucResult;

namespace {

void write_raw(const torch::Tensor& t, const fs::path& path) {
  const torch::Tensor c = t.contiguous();
  std::ofstream out(path, std::ios::binary);
  out.write(static_cast<const char*>(c.data_ptr()), static_cast<std::streamsize>(c.nbytes()));
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

torch::Tensor read_f64(const fs::path& path, int64_t n) {
  torch::Tensor t = torch::empty({n}, torch::kFloat64);
  std::ifstream in(path, std::ios::binary);
  in.read(static_cast<char*>(t.data_ptr()), static_cast<std::streamsize>(t.nbytes()));
  if (!in) throw std::runtime_error("cannot read " + path.string());
  return t;
}

/// Smooth random maps in [0, 1): box-blurred uniform noise, [n, size, size].
torch::Tensor smooth_maps(int64_t n, int64_t size) {
  namespace F = torch::nn::functional;
  torch::Tensor x = torch::rand({n, 1, size, size});
  for (int pass = 0; pass < 2; ++pass) {
    x = F::avg_pool2d(x, F::AvgPool2dFuncOptions(15).stride(1).padding(7).count_include_pad(false));
  }
  x = x.squeeze(1);
  const auto lo = std::get<0>(x.flatten(1).min(1)).view({n, 1, 1});
  const auto hi = std::get<0>(x.flatten(1).max(1)).view({n, 1, 1});
  return (x - lo) / (hi - lo);
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const int64_t n = argc > 1 ? std::stoll(argv[1]) : 1000;
    const int64_t size = argc > 2 ? std::stoll(argv[2]) : 224;
    const std::string python = argc > 3 ? argv[3] : "/usr/bin/python3";
    torch::manual_seed(0);

    const torch::Tensor pred = smooth_maps(n, size);
    const torch::Tensor gt = (0.5 * pred + 0.5 * smooth_maps(n, size)).pow(4);
    const torch::Tensor density = gt / gt.sum({1, 2}, /*keepdim=*/true);
    torch::Tensor fix = (torch::rand({n, size, size}) < density * 20.0).to(torch::kUInt8);
    fix.select(1, size / 2).select(1, size / 2).fill_(1);  // no image without fixations
    torch::Tensor other = torch::zeros_like(fix);
    for (int64_t shift = 1; shift <= 10; ++shift) other = other.logical_or(fix.roll(shift, 0));
    other = other.to(torch::kUInt8);

    gradlens::saliency::SampledAucOptions sampled;
    sampled.keep_negatives = true;
    std::map<std::string, double> ours_s;
    std::map<std::string, torch::Tensor> ours_v;
    const auto time = [&](const std::string& name, const std::function<MetricResult()>& fn) {
      const auto t0 = std::chrono::steady_clock::now();
      ours_v[name] = fn().values;
      ours_s[name] = seconds_since(t0);
    };
    SampledAucResult borji, shuffled;
    time("cc", [&] { return gradlens::saliency::cc(pred, gt); });
    time("kld", [&] { return gradlens::saliency::kld(pred, gt); });
    time("sim", [&] { return gradlens::saliency::sim(pred, gt); });
    time("nss", [&] { return gradlens::saliency::nss(pred, fix); });
    time("auc_judd", [&] { return gradlens::saliency::auc_judd(pred, fix); });
    time("auc_borji", [&] { return borji = gradlens::saliency::auc_borji(pred, fix, sampled); });
    time("auc_shuffled",
         [&] { return shuffled = gradlens::saliency::auc_shuffled(pred, fix, other, sampled); });

    const fs::path dir = fs::temp_directory_path() /
                         ("gradlens-saliency-bench-" + std::to_string(std::random_device{}()));
    fs::create_directories(dir);
    write_raw(pred, dir / "pred.f32");
    write_raw(gt, dir / "gt.f32");
    write_raw(fix, dir / "fix.u8");
    write_raw(other, dir / "other.u8");
    for (const auto& [name, r] : {std::pair{"borji", &borji}, std::pair{"sauc", &shuffled}}) {
      std::vector<int64_t> k;
      for (const auto& t : r->negatives) k.push_back(t.size(1));
      write_raw(torch::cat(r->negatives, 1).flatten(), dir / (std::string(name) + "_neg.i64"));
      write_raw(torch::tensor(k, torch::kInt64), dir / (std::string(name) + "_k.i64"));
    }

    std::ostringstream cmd;
    cmd << python << " " << GRADLENS_SOURCE_DIR << "/bench/saliency_metrics_bench.py " << dir
        << " " << n << " " << size << " " << sampled.n_splits << " " << sampled.step_size;
    FILE* pipe = popen(cmd.str().c_str(), "r");
    std::string output;
    char buf[4096];
    while (pipe != nullptr && std::fgets(buf, sizeof buf, pipe) != nullptr) output += buf;
    const int status = pipe != nullptr ? pclose(pipe) : -1;
    if (status != 0) {
      fs::remove_all(dir);
      throw std::runtime_error("the numpy peer failed (" + cmd.str() + "):\n" + output);
    }
    std::map<std::string, double> numpy_s;
    std::istringstream lines(output);
    std::string name;
    double secs = 0;
    while (lines >> name >> secs) numpy_s[name] = secs;

    std::printf("saliency metrics, %lld maps of %lldx%lld, torch threads %d\n",
                static_cast<long long>(n), static_cast<long long>(size),
                static_cast<long long>(size), torch::get_num_threads());
    std::printf("%-13s %10s %10s %8s %14s %12s\n", "metric", "ours [s]", "numpy [s]",
                "ratio", "max |diff|", "mean");
    for (const std::string m : {"cc", "kld", "sim", "nss", "auc_judd", "auc_borji", "auc_shuffled"}) {
      const torch::Tensor theirs = read_f64(dir / ("numpy_" + m + ".f64"), n);
      const double diff = (ours_v[m] - theirs).abs().max().item<double>();
      std::printf("%-13s %10.3f %10.3f %7.1fx %14.3g %12.6f\n", m.c_str(), ours_s[m], numpy_s[m],
                  numpy_s[m] / ours_s[m], diff, ours_v[m].mean().item<double>());
    }
    std::printf("ratio = numpy time / our time (the sampled AUCs' numpy time excludes "
                "drawing the negatives, which it reads from us)\n");
    fs::remove_all(dir);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "saliency_metrics_bench: %s\n", e.what());
    return 1;
  }
}
