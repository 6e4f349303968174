#include "gradlens/pipeline/hessian.h"
#include <torch/types.h>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <filesystem>

#include "gradlens/core/check.h"
#include "gradlens/core/fs.h"
#include "gradlens/core/runtime.h"
#include "gradlens/data/subset.h"
#include "gradlens/hessian/loss_spectrum.h"
#include "gradlens/models/checkpoint.h"
#include "gradlens/pipeline/data_source.h"
#include "gradlens/pipeline/extract.h"

namespace gradlens::pipeline {

namespace {

HessianGroupResult analyse(models::Classifier& model, const data::Dataset& ds, const HessianConfig& cfg,
                           uint64_t seed,
                           const std::string& name) {
  hessian::LossSpectrumOptions o;
  o.wrt = cfg.wrt;
  o.param_prefixes = cfg.param_prefixes;
  o.batch_size = cfg.batch_size;
  o.one_batch = cfg.one_batch;
  o.eigen = cfg.eigen;
  o.trace = cfg.trace;
  o.eigen.seed = seed;
  o.trace.seed = seed + 1;
  o.compute_trace = cfg.compute_trace;
  const auto dev = model.device();
  GRADLENS_CHECK(ds.size() > 0, "no samples to analyse for ", name);
  const auto s = hessian::loss_spectrum(model, ds.size(), [&](int64_t b, int64_t e) {
    return std::make_pair(data::to_float(ds, ds.images.slice(0, b, e).to(dev)), ds.labels.slice(0, b, e).to(dev));
  }, o);
  HessianGroupResult r;
  r.name = name;
  r.samples = s.samples;
  r.eigen = s.eigen;
  r.trace = s.trace;
  return r;
}

}  // namespace

HessianReport run_hessian(const HessianConfig& cfg, const RunContext& ctx) {
  GRADLENS_CHECK(cfg.batch_size >= 1, "--batch-size must be >= 1, got ", cfg.batch_size);
  if (!cfg.out.empty()) core::ensure_writable_dir(cfg.out, "--out");
  const auto dev = ctx.device;
  const ModelData md = data_for_models(cfg.data, {cfg.model});
  const data::Dataset test = load_split(md.data, ctx.seed, /*train=*/false);
  check_model_classes(md, test);
  auto ds = cfg.per_class > 0 ? data::balanced_subset(test, cfg.per_class) : test;
  auto model = open_model_for(cfg.model, dev, ds.channels(), ds.images.size(3), /*channels_last=*/false, ctx.model);
  HessianReport rep;
  rep.model_description = model->describe();
  std::vector<std::pair<std::string, data::Dataset>> groups = {{"all", ds}};
  if (cfg.per_class_analysis) {
    for (int64_t c = 0; c < ds.num_classes(); ++c) {
      auto idx = ds.labels.eq(c).nonzero().flatten();
      if (idx.numel() > 0) groups.emplace_back(ds.class_names[c], data::select(ds, idx));
    }
  }
  int64_t done = 0;
  for (auto& [name, g] : groups) {
    rep.groups.push_back(analyse(*model, g, cfg, ctx.seed, name));
    core::report(ctx.progress, {"hessian", ++done, static_cast<int64_t>(groups.size()), 0.0, {}, false, name});
  }
  for (const auto& t : rep.groups.front().eigen.eigenvectors.front()) rep.dimension += t.numel();

  if (!cfg.out.empty()) {
    nlohmann::json j;
    j["model"] = rep.model_description;
    j["wrt"] = hessian::hessian_wrt_name(cfg.wrt);
    j["params"] = cfg.param_prefixes;
    j["dimension"] = rep.dimension;
    j["method"] = {{"eigenvalues", "power iteration with deflation (PyHessian)"},
                   {"trace", "Hutchinson, Rademacher probes, stop on relative change"},
                   {"max_iter", cfg.eigen.max_iter},
                   {"tol", cfg.eigen.tol},
                   {"batches", cfg.one_batch || cfg.wrt == hessian::HessianWrt::kInput ? "one" : "all, size-weighted"},
                   {"mode", "eval"}};
    std::string md = fmt::format("# Hessian of the loss ({} w.r.t. {})\n\n{}\n\n", hessian::hessian_wrt_name(cfg.wrt),
                                 cfg.param_prefixes.empty() ? std::string("all")
                                                            : fmt::format("{}", fmt::join(cfg.param_prefixes, ", ")),
                                 rep.model_description);
    md += "| group | samples | top eigenvalues | trace | trace s.e. | probes |\n|---|---|---|---|---|---|\n";
    for (const auto& g : rep.groups) {
      j["groups"].push_back({{"name", g.name},
                             {"samples", g.samples},
                             {"eigenvalues", g.eigen.eigenvalues},
                             {"iterations", g.eigen.iterations},
                             {"trace", g.trace.trace},
                             {"trace_std_error", g.trace.std_error},
                             {"trace_probes", g.trace.samples.size()}});
      md += fmt::format("| {} | {} | {:.6g} | {:.6g} | {:.3g} | {} |\n", g.name, g.samples,
                        fmt::join(g.eigen.eigenvalues, ", "), g.trace.trace, g.trace.std_error,
                        g.trace.samples.size());
    }
    rep.json_path = (std::filesystem::path(cfg.out) / "hessian.json").string();
    rep.markdown_path = (std::filesystem::path(cfg.out) / "hessian.md").string();
    core::write_text_atomically(rep.json_path, j.dump(2) + "\n");
    core::write_text_atomically(rep.markdown_path, md);
  }
  return rep;
}

}  // namespace gradlens::pipeline
