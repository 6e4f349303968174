#include "gradlens/pipeline/saliency.h"
#include <torch/types.h>

#include <unistd.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <set>
#include <sstream>

#include "gradlens/core/check.h"
#include "gradlens/core/choice.h"
#include "gradlens/core/fs.h"
#include "gradlens/core/npy.h"
#include "gradlens/core/runtime.h"
#include "gradlens/core/strings.h"
#include "gradlens/core/timer.h"
#include "gradlens/data/dataset.h"
#include "gradlens/data/subset.h"
#include "gradlens/models/classifier.h"
#include "gradlens/models/model_spec.h"
#include "gradlens/pipeline/data_source.h"
#include "gradlens/pipeline/extract.h"
#include "gradlens/report/table.h"
#include "gradlens/saliency/localisation.h"

namespace gradlens::pipeline {

constexpr core::Choice<IgBaseline> kIgBaselines[] = {{"zero", IgBaseline::kZero}, {"black", IgBaseline::kBlack}};
constexpr core::Choice<RandomisationTest> kRandomisationTests[] = {{"cascading", RandomisationTest::kCascading},
                                                                   {"independent", RandomisationTest::kIndependent},
                                                                   {"none", RandomisationTest::kNone}};

std::string ig_baseline_name(IgBaseline baseline) { return core::choice_name(kIgBaselines, baseline); }

IgBaseline parse_ig_baseline(const std::string& name, const std::string& flag) {
  return core::parse_choice(kIgBaselines, name, flag, "baseline");
}

std::string randomisation_test_name(RandomisationTest test) { return core::choice_name(kRandomisationTests, test); }

RandomisationTest parse_randomisation_test(const std::string& name, const std::string& flag) {
  return core::parse_choice(kRandomisationTests, name, flag, "test");
}

namespace fs = std::filesystem;

std::vector<std::string> saliency_model_names(const std::vector<std::string>& specs) {
  std::vector<std::string> names;
  for (const auto& s : specs) names.push_back(s == models::kDefaultModelSpec ? s : core::safe_file_stem(fs::path(s).stem().string(), '_'));
  // Same stems (e.g. run1/model.ckpt, run2/model.ckpt): prefix the folder.
  const auto stems = names;
  for (size_t i = 0; i < names.size(); ++i) {
    bool dup = false;
    for (size_t j = 0; j < stems.size(); ++j) dup = dup || (i != j && stems[i] == stems[j]);
    if (dup && specs[i] != models::kDefaultModelSpec) {
      const auto parent = fs::path(specs[i]).parent_path().filename().string();
      if (!parent.empty()) names[i] = core::safe_file_stem(parent + "-" + names[i], '_');
    }
  }
  // Still equal: number them.
  std::set<std::string> seen;
  for (size_t i = 0; i < names.size(); ++i) {
    std::string n = names[i];
    for (int k = 2; seen.count(n) != 0; ++k) n = names[i] + "-" + std::to_string(k);
    names[i] = n;
    seen.insert(n);
  }
  return names;
}

torch::Tensor overlay_sample(const torch::Tensor& labels, const torch::Tensor& preds,
                             int64_t num_classes, int64_t per_class) {
  GRADLENS_CHECK(labels.defined() && preds.defined() && labels.dim() == 1 && labels.sizes() == preds.sizes(),
                 "overlay_sample: labels and predictions must both be [N]");
  GRADLENS_CHECK(per_class >= 0, "--overlay-per-class must be >= 0, got ", per_class);
  const auto y = labels.to(torch::kCPU, torch::kLong).contiguous();
  const auto p = preds.to(torch::kCPU, torch::kLong).contiguous();
  const int64_t* yl = y.data_ptr<int64_t>();
  const int64_t* pl = p.data_ptr<int64_t>();
  std::vector<int64_t> rows;
  for (int64_t c = 0; c < num_classes; ++c) {
    for (bool correct : {true, false}) {
      int64_t taken = 0;
      for (int64_t i = 0; i < y.size(0) && taken < per_class; ++i) {
        if (yl[i] != c || (pl[i] == yl[i]) != correct) continue;
        rows.push_back(i);
        ++taken;
      }
    }
  }
  return torch::tensor(rows, torch::kLong);
}

const std::vector<std::string>& faithfulness_metric_names() {
  static const std::vector<std::string> names = {"deletion", "insertion",    "confidence", "road",
                                                 "pointing", "energy",       "rank",       "random-logit"};
  return names;
}

namespace {

bool asked(const SaliencyConfig& cfg, const std::string& metric) {
  return std::find(cfg.metrics.begin(), cfg.metrics.end(), metric) != cfg.metrics.end();
}

/// The faithfulness and localisation scores of one model's maps.
void score_maps(models::Classifier& model, const data::Dataset& ds, const torch::Tensor& images,
                const SaliencyConfig& cfg, const saliency::AttributionOptions& attribution, SaliencyModelMaps& mm) {
  if (cfg.metrics.empty()) return;
  const auto maps = mm.maps.to(images.device());
  const saliency::LogitsFn logits = [&model](const torch::Tensor& x) { return model.forward(x); };
  saliency::PerturbationOptions po = cfg.perturbation;
  po.batch_size = std::max<int64_t>(cfg.batch_size, po.steps + 1);
  if (asked(cfg, "deletion")) {
    const auto r = saliency::deletion_curve(logits, images, maps, mm.preds, po);
    mm.scores.emplace_back("deletion_auc", r.auc);
    mm.deletion_curve = r.probs.mean(0);
    mm.curve_fractions = r.fractions;
  }
  if (asked(cfg, "insertion")) {
    const auto r = saliency::insertion_curve(logits, images, maps, mm.preds, po);
    mm.scores.emplace_back("insertion_auc", r.auc);
    mm.insertion_curve = r.probs.mean(0);
    mm.curve_fractions = r.fractions;
  }
  if (asked(cfg, "confidence")) {
    const auto r = saliency::confidence_change(logits, images, maps, mm.preds, cfg.batch_size);
    mm.scores.emplace_back("average_drop", r.drop);
    mm.scores.emplace_back("increase_in_confidence", r.increase);
  }
  if (asked(cfg, "road")) {
    saliency::RoadOptions ro = cfg.road;
    ro.seed = attribution.seed;  // --seed
    ro.batch_size = cfg.batch_size;
    const auto r = saliency::road(logits, images, maps, mm.preds, ro);
    mm.scores.emplace_back("road_morf", r.morf_mean);
    mm.scores.emplace_back("road_lerf", r.lerf_mean);
    mm.scores.emplace_back("road_combined", r.combined);
    mm.road_fractions = r.fractions;
    mm.road_morf_curve = r.morf.mean(0);
    mm.road_lerf_curve = r.lerf.mean(0);
  }
  // Masks are [N, 1, H, W] in a Dataset.
  const auto masks = ds.has_masks() ? ds.masks.to(torch::kCPU).reshape({ds.size(), ds.images.size(2), ds.images.size(3)})
                                    : torch::Tensor();
  if (asked(cfg, "pointing"))
    mm.scores.emplace_back("pointing_game", saliency::pointing_game(mm.maps, masks, cfg.pointing_tolerance));
  if (asked(cfg, "energy")) mm.scores.emplace_back("energy_pointing_game", saliency::energy_pointing_game(mm.maps, masks));
  if (asked(cfg, "rank"))
    mm.scores.emplace_back("relevance_rank_accuracy", saliency::relevance_rank_accuracy(mm.maps, masks));
  if (asked(cfg, "random-logit")) {
    saliency::RandomLogitOptions ro;
    ro.seed = attribution.seed;  // --seed
    ro.batch_size = cfg.batch_size;
    const auto r = saliency::random_logit_test(model, images, mm.preds.to(images.device()), attribution, ro);
    mm.scores.emplace_back("random_logit_spearman", r.spearman);
    mm.scores.emplace_back("random_logit_ssim", r.ssim);
  }
}

/// The maps of every image of `ds` by one model, batch by batch in dataset order.
SaliencyModelMaps model_maps(const NamedClassifier& nm, const data::Dataset& ds, const saliency::AttributionOptions& mo,
                             int64_t batch_size, const core::ProgressFn& progress) {
  const core::Stopwatch t0;
  auto& model = *nm.model;
  const auto device = model.device();
  const int64_t n = ds.size();
  SaliencyModelMaps mm;
  mm.name = nm.name;
  mm.spec = nm.spec;
  mm.description = model.describe();
  std::vector<torch::Tensor> maps, preds, conf, constant;
  const std::string stage = "saliency " + nm.name;
  for (int64_t s = 0; s < n; s += batch_size) {
    const int64_t e = std::min(n, s + batch_size);
    const auto x = data::to_float(ds, ds.images.slice(0, s, e)).to(device);
    const auto y = ds.labels.slice(0, s, e).to(device);
    const auto a = saliency::compute_attribution(model, x, y, mo, s);
    maps.push_back(a.maps.to(torch::kCPU));
    preds.push_back(a.preds.to(torch::kCPU));
    conf.push_back(std::get<0>(torch::softmax(a.logits, 1).max(1)).to(torch::kCPU));
    constant.push_back(a.constant.to(torch::kCPU));
    mm.num_constant += a.num_constant;
    mm.forward_passes += a.forward_passes;
    mm.backward_passes += a.backward_passes;
    mm.layer = a.layer;
    mm.raw_height = a.raw.size(1);
    mm.raw_width = a.raw.size(2);
    core::report(progress, {stage, e, n, t0.seconds(), {}, e == n, ""});
  }
  mm.maps = torch::cat(maps);
  mm.preds = torch::cat(preds);
  mm.confidence = torch::cat(conf).to(torch::kFloat);
  mm.constant = torch::cat(constant);
  mm.accuracy = mm.preds.eq(ds.labels.to(torch::kCPU)).to(torch::kDouble).mean().item<double>();
  mm.seconds = t0.seconds();
  return mm;
}

}  // namespace

SaliencyRun run_saliency(const std::vector<NamedClassifier>& models, const data::Dataset& ds,
                         const SaliencyConfig& cfg, const core::ProgressFn& progress,
                         const NamedClassifier* data_randomised) {
  const core::Stopwatch t_total;
  GRADLENS_CHECK(!models.empty(), "--models: no model given");
  std::set<std::string> names;
  for (const auto& m : models) {
    GRADLENS_CHECK(m.model != nullptr, "run_saliency: model '", m.name, "' is null");
    GRADLENS_CHECK(core::is_safe_file_stem(m.name), "model name '", m.name,
                   "' cannot be a file name; use letters, digits, '.', '_' and '-'");
    GRADLENS_CHECK(names.insert(m.name).second, "model name '", m.name, "' is used twice");
  }
  GRADLENS_CHECK(cfg.batch_size >= 1, "--batch-size must be >= 1, got ", cfg.batch_size);
  for (const auto& m : cfg.metrics) {
    const auto& known = faithfulness_metric_names();
    GRADLENS_CHECK_OPTION(std::find(known.begin(), known.end(), m) != known.end(), "--metrics: unknown metric '", m,
                          "'; use any of ", core::join(known, ", "));
    GRADLENS_CHECK((m != "pointing" && m != "energy" && m != "rank") || ds.has_masks(), "--metrics ", m,
                   ": the data set '", ds.name, "' has no object masks; use an ImageFolder with <image>.mask.png "
                   "files (gradlens make-shapes writes them), or drop ", m);
  }
  data::validate(ds);
  const int64_t n = ds.size();
  GRADLENS_CHECK(n > 0, "dataset '", ds.name, "' is empty; no image to compute maps for");
  GRADLENS_CHECK(cfg.compare != saliency::ComparisonKind::kModels || models.size() >= 2,
                 "--compare models needs at least two --models (got ", models.size(),
                 "); give e.g. --models a.ckpt,b.ckpt or use --compare class-mean");
  GRADLENS_CHECK(cfg.compare != saliency::ComparisonKind::kMask || ds.has_masks(), "--compare mask: the data set '", ds.name,
                 "' has no object masks; use an ImageFolder with <image>.mask.png files (gradlens "
                 "make-shapes writes them) or --compare class-mean");
  const int64_t k = ds.num_classes();
  std::vector<NamedClassifier> checked = models;
  if (data_randomised != nullptr) {
    GRADLENS_CHECK(data_randomised->model != nullptr, "run_saliency: the data-randomised model is null");
    GRADLENS_CHECK(ds.images.size(2) >= 7 && ds.images.size(3) >= 7, "--data-randomisation: SSIM needs images of at least 7 x 7 "
                   "pixels, got ", ds.images.size(2), " x ", ds.images.size(3));
    checked.push_back(*data_randomised);
  }
  for (size_t i = 0; i < checked.size(); ++i) {
    const auto& m = checked[i];
    const char* flag = i < models.size() ? "--models " : "--data-randomisation ";
    GRADLENS_CHECK(m.model->num_classes() >= k, flag, m.spec.empty() ? m.name : m.spec, " has ",
                   m.model->num_classes(), " classes but the data has ", k,
                   "; use a model trained on this data");
    GRADLENS_CHECK(m.model->in_channels() == ds.channels(), flag, m.spec.empty() ? m.name : m.spec,
                   " takes ", m.model->in_channels(), " input channel(s) but the data has ", ds.channels());
  }

  SaliencyRun run;
  run.method = saliency::attribution_method_name(cfg.attribution.method);
  run.target = extract::gradient_target_name(cfg.attribution.target);
  run.compare = saliency::comparison_kind_name(cfg.compare);
  run.n = n;
  run.height = ds.images.size(2);
  run.width = ds.images.size(3);

  saliency::AttributionOptions ao = cfg.attribution;
  if (cfg.ig_baseline == IgBaseline::kBlack) {
    const auto black = torch::zeros({1, ds.channels(), run.height, run.width}, torch::kByte);
    ao.ig_baseline = data::to_float(ds, black)[0];
  } else {
    ao.ig_baseline = torch::Tensor();
  }

  for (const auto& nm : models) {
    auto& model = *nm.model;
    const auto device = model.device();
    saliency::AttributionOptions mo = ao;
    if (mo.ig_baseline.defined()) mo.ig_baseline = mo.ig_baseline.to(device);
    SaliencyModelMaps mm = model_maps(nm, ds, mo, cfg.batch_size, progress);
    const core::Stopwatch t_scores;
    if (!cfg.metrics.empty() || cfg.randomisation != RandomisationTest::kNone) {
      // The whole set as model inputs, once per model, for both checks.
      const auto images = data::to_float(ds, ds.images).to(device);
      score_maps(model, ds, images, cfg, mo, mm);
      if (cfg.randomisation != RandomisationTest::kNone) {
        saliency::RandomisationOptions ro = cfg.randomisation_options;
        ro.cascading = cfg.randomisation == RandomisationTest::kCascading;
        ro.batch_size = cfg.batch_size;
        mm.randomisation = saliency::model_randomisation_test(model, images, ds.labels.to(device), mo, ro);
      }
    }
    if (!cfg.metrics.empty() || cfg.randomisation != RandomisationTest::kNone) {
      run.seconds.emplace_back("metrics." + nm.name, t_scores.seconds());
      core::report(progress, {"metrics " + nm.name, n, n, t_scores.seconds(), {}, true, ""});
    }
    if (saliency::is_cam_method(cfg.attribution.method) && mm.raw_height * mm.raw_width == 1)
      run.warnings.push_back(nm.name + ": the maps at " + mm.layer +
                             " are 1x1, so " + run.method +
                             " cannot localise anything (every map is constant); use an earlier --layer "
                             "or larger images");
    else if (mm.num_constant > 0)
      run.warnings.push_back(nm.name + ": " + std::to_string(mm.num_constant) + " of " + std::to_string(n) +
                             " maps are constant (for Grad-CAM: no positive evidence at the layer); they are "
                             "all zero, scored with chance values and counted as degenerate");
    run.seconds.emplace_back("maps." + nm.name, mm.seconds);
    run.models.push_back(std::move(mm));
  }

  if (data_randomised != nullptr) {
    const core::Stopwatch t_dr;
    saliency::AttributionOptions mo = ao;
    if (mo.ig_baseline.defined()) mo.ig_baseline = mo.ig_baseline.to(data_randomised->model->device());
    const auto rm = model_maps(*data_randomised, ds, mo, cfg.batch_size, progress);
    auto& d = run.data_randomisation;
    d.name = rm.name;
    d.spec = rm.spec;
    d.description = rm.description;
    d.accuracy = rm.accuracy;
    d.spearman = saliency::spearman_rank_correlation(run.models.front().maps, rm.maps);
    d.ssim = saliency::ssim(run.models.front().maps, rm.maps);
    run.seconds.emplace_back("data_randomisation", t_dr.seconds());
  }

  const core::Stopwatch t_cmp;
  const auto labels = ds.labels.to(torch::kCPU);
  if (cfg.compare == saliency::ComparisonKind::kClassMean) {
    for (const auto& mm : run.models)
      run.comparisons.push_back({mm.name, mm.name, "class-mean",
                                 saliency::compare_to_class_mean(mm.maps, labels, k, cfg.compare_options)});
  } else if (cfg.compare == saliency::ComparisonKind::kMask) {
    for (const auto& mm : run.models)
      run.comparisons.push_back(
          {mm.name, mm.name, "mask", saliency::compare_to_masks(mm.maps, ds.masks.to(torch::kCPU), cfg.compare_options)});
  } else {
    const auto& a = run.models.front();
    for (size_t j = 1; j < run.models.size(); ++j) {
      const auto& b = run.models[j];
      run.comparisons.push_back({a.name + " vs " + b.name, a.name, b.name,
                                 saliency::compare_models(a.maps, b.maps, cfg.compare_options)});
    }
  }
  for (const auto& c : run.comparisons)
    if (c.result.num_reference_constant > 0 && c.reference != c.model)
      run.warnings.push_back(c.name + ": " + std::to_string(c.result.num_reference_constant) +
                             " reference map(s) are constant (" + c.reference +
                             "); those images are scored with chance values and counted as degenerate");
  core::report(progress, {"compare", static_cast<int64_t>(run.comparisons.size()),
                          static_cast<int64_t>(run.comparisons.size()), t_cmp.seconds(), {}, true, ""});
  run.seconds.emplace_back("compare", t_cmp.seconds());
  run.seconds.emplace_back("total", t_total.seconds());
  return run;
}

SaliencyCommandResult run_saliency_command(const SaliencyCommandConfig& cfg, const RunContext& ctx) {
  GRADLENS_CHECK(!cfg.models.empty(), "--models: no model given");
  GRADLENS_CHECK(!cfg.out.empty(), "--out: no output directory given");
  GRADLENS_CHECK(cfg.per_class >= 0, "--per-class must be >= 0, got ", cfg.per_class);
  // Refuse a clobber before the (slow) maps are computed.
  const fs::path out = fs::absolute(cfg.out).lexically_normal();
  if (fs::exists(out)) {
    GRADLENS_CHECK(cfg.overwrite, "--out ", out.string(), " already exists; choose a new directory or pass --overwrite");
    GRADLENS_CHECK(fs::is_directory(out) && fs::exists(out / "summary.json"), "--out ", out.string(),
                   " exists and is not a gradlens saliency directory (no summary.json); refusing to replace it");
  }
  const auto device = ctx.device;
  std::vector<std::string> specs = cfg.models;
  if (!cfg.data_randomisation.empty()) specs.push_back(cfg.data_randomisation);
  const ModelData md = data_for_models(cfg.data, specs);
  const data::Dataset full = load_split(md.data, ctx.seed, cfg.split == data::Split::kTrain);
  check_model_classes(md, full);
  data::Dataset ds = full;
  torch::Tensor indices;
  if (cfg.per_class > 0) {
    indices = data::per_class_indices(full.labels, cfg.per_class, data::SubsetMode::kFirst, 0,
                                      full.num_classes(), full.class_names);
    ds = data::select(full, indices);
  }
  const auto names = saliency_model_names(cfg.models);
  std::vector<std::unique_ptr<models::Classifier>> owned;
  std::vector<NamedClassifier> named;
  for (size_t i = 0; i < cfg.models.size(); ++i) {
    owned.push_back(
        open_model_for(cfg.models[i], device, ds.channels(), ds.images.size(3), /*channels_last=*/true,
                       ctx.model));
    const std::string spec = models::resolve_model_spec(cfg.models[i], "--models", /*architectures=*/false).path;
    named.push_back({names[i], owned.back().get(), spec});
  }
  std::unique_ptr<models::Classifier> randomised;
  NamedClassifier randomised_named;
  if (!cfg.data_randomisation.empty()) {
    randomised = open_model_for(cfg.data_randomisation, device, ds.channels(), ds.images.size(3),
                                /*channels_last=*/true, ctx.model);
    const auto spec = models::resolve_model_spec(cfg.data_randomisation, "--data-randomisation", false).path;
    randomised_named = {saliency_model_names({cfg.data_randomisation})[0], randomised.get(), spec};
  }
  SaliencyConfig sc = cfg.saliency;
  sc.attribution.seed = ctx.seed;
  if (sc.compare_options.auc_borji.seed == 0) sc.compare_options.auc_borji.seed = ctx.seed;
  SaliencyCommandResult res;
  res.run = run_saliency(named, ds, sc, ctx.progress, randomised ? &randomised_named : nullptr);
  if (!md.assumed.empty()) res.run.warnings.push_back(md.assumed);
  write_saliency_outputs(res.run, ds, sc, out, cfg.overwrite, indices, cfg.data.data + ":" + data::split_name(cfg.split));
  res.out = out;
  return res;
}

}  // namespace gradlens::pipeline
