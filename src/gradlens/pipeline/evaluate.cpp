#include "gradlens/pipeline/evaluate.h"

#include <torch/types.h>

#include <fmt/format.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <memory>

#include "gradlens/analysis/misclassification.h"
#include "gradlens/core/check.h"
#include "gradlens/core/fs.h"
#include "gradlens/core/npy.h"
#include "gradlens/core/runtime.h"
#include "gradlens/core/strings.h"
#include "gradlens/core/timer.h"
#include "gradlens/io/run_dir.h"
#include "gradlens/data/dataset.h"
#include "gradlens/data/subset.h"
#include "gradlens/distributed/context.h"
#include "gradlens/extract/run.h"
#include "gradlens/models/classifier.h"
#include "gradlens/models/model_spec.h"
#include "gradlens/pipeline/data_source.h"
#include "gradlens/pipeline/extract.h"
#include "gradlens/saliency/cam.h"
#include "gradlens/saliency/localisation.h"
#include "gradlens/saliency/compare.h"
#include "gradlens/saliency/faithfulness.h"
#include "gradlens/saliency/road.h"
#include "gradlens/saliency/sanity.h"

namespace gradlens::pipeline {

namespace fs = std::filesystem;

namespace {

// A file-name-safe model or data name: '.' becomes '-' too (cache keys and
// figure names stay as they were).
std::string eval_slug(std::string s) {
  std::replace(s.begin(), s.end(), '.', '-');
  return core::safe_file_stem(s, '-');
}

std::string eval_crc_hex(const std::string& s) {
  const uLong c = crc32(crc32(0L, Z_NULL, 0), reinterpret_cast<const Bytef*>(s.data()),
                        static_cast<uInt>(s.size()));
  return fmt::format("{:08x}", static_cast<unsigned long>(c));
}

std::string eval_arch_title(const std::string& arch) {
  return "ResNet" + arch.substr(std::string("resnet").size());
}

// Resolves a model spec to a checkpoint (training it first when needed).
struct EvalModelRef {
  std::string name, slug, path;
};

EvalModelRef eval_resolve_model(const std::string& spec, const EvaluateConfig& cfg, const RunContext& ctx,
                                double& train_seconds, bool multi) {
  const core::Stopwatch t0;
  EvalModelRef m;
  const auto ms = models::resolve_model_spec(spec, "--models", /*architectures=*/true);
  // Training would join the ranks a second time: it is done once, before.
  const auto trained_before = [&](const std::string& path) {
    GRADLENS_CHECK(!multi, "--models ", spec, ": ", path, " is not trained yet, and a multi-process evaluate "
                   "does not train; run 'gradlens evaluate --models ", spec, "' once without launch (it trains "
                   "and caches the model), then launch again");
  };
  if (ms.kind == models::ModelSpec::Kind::kDefault) {
    m = {"ResNet18 (default)", "resnet18-default", ms.path};
    if (!fs::exists(m.path)) {
      trained_before(m.path);
      auto tc = default_train_config();
      run_train(tc, ctx);
    }
  } else if (ms.kind == models::ModelSpec::Kind::kArchitecture) {
    std::string data_name = cfg.data.data;
    if (data_name != "fashion-mnist" && data_name != "mnist")
      data_name = eval_slug(fs::path(data_name).filename().string()) + "-" + eval_crc_hex(cfg.data.data);
    std::string key = fmt::format("{}-{}-w16-e{}", data_name, spec, cfg.arch_epochs);
    if (cfg.arch_train_per_class > 0) key += fmt::format("-n{}", cfg.arch_train_per_class);
    const fs::path dir = core::cache_dir() / "models" / key;
    m = {eval_arch_title(spec), spec, (dir / "model.ckpt").string()};
    if (!fs::exists(m.path)) {
      trained_before(m.path);
      auto tc = default_train_config();
      tc.data = cfg.data;
      tc.data.train_per_class = cfg.arch_train_per_class;
      tc.data.test_per_class = cfg.per_class;
      tc.model = spec;
      tc.train.epochs = cfg.arch_epochs;
      tc.train.time_budget_s = 0.0;
      tc.out = dir.string();
      run_train(tc, ctx);
    }
  } else {
    const fs::path p(spec);
    m = {p.stem().string(), eval_slug(p.stem().string()), spec};
  }
  train_seconds = t0.seconds();
  return m;
}

// Grad-CAM display maps of every image from the run's Grad-CAM weights for
// `target` and its unpooled activations at the same layer (no network pass),
// in blocks of `batch` rows to bound the temporaries.
saliency::NormalizedMaps eval_gradcam_maps(const extract::ExtractRun& run, const std::string& target,
                                           int64_t height, int64_t width, int64_t batch) {
  const auto& m = run.manifest;
  const extract::RunEntry *we = nullptr, *ae = nullptr;
  for (const auto& e : m.representations) {
    if (e.representation == "gradcam-weights" && e.variant == target) we = &e;
    if (e.representation == "activations" && e.name == "activations") ae = &e;
  }
  GRADLENS_CHECK(we != nullptr && ae != nullptr && m.map_size.size() == 2,
                 "the extraction run has no Grad-CAM weights for target '", target,
                 "' and unpooled activations; re-run without the cache (--no-cache)");
  const auto w = run.load(we->name);
  const auto a = run.load(ae->name).view({run.size(), w.size(1), m.map_size[0], m.map_size[1]});
  std::vector<torch::Tensor> maps, constant;
  int64_t num_constant = 0;
  for (int64_t s = 0; s < run.size(); s += batch) {
    const int64_t e = std::min(run.size(), s + batch);
    auto part = saliency::cam_maps_from(w.slice(0, s, e), a.slice(0, s, e), height, width);
    maps.push_back(part.maps);
    constant.push_back(part.constant);
    num_constant += part.num_constant;
  }
  saliency::NormalizedMaps out;
  out.maps = torch::cat(maps);
  out.constant = torch::cat(constant);
  out.num_constant = num_constant;
  return out;
}

SaliencyScores eval_saliency_scores(const torch::Tensor& maps, const torch::Tensor& labels, int64_t k,
                                    int64_t constant, uint64_t seed) {
  saliency::CompareOptions co;
  co.auc_borji.seed = seed;
  auto cmp = saliency::compare_to_class_mean(maps, labels, k, co);
  SaliencyScores s;
  s.maps = maps;
  s.constant_maps = constant;
  for (const auto& col : cmp.metrics) s.metrics.emplace_back(col.name, col.summary.mean, col.summary.std);
  return s;
}

double eval_finite_mean(const torch::Tensor& v) {
  const auto ok = torch::isfinite(v);
  return ok.any().item<bool>() ? v.masked_select(ok).to(torch::kFloat64).mean().item<double>() : std::nan("");
}

// The pointing game's tolerance: TorchRay's 15 px at 224 px, scaled to the
// images' shorter side.
double eval_pointing_tolerance(int64_t h, int64_t w) { return 15.0 * static_cast<double>(std::min(h, w)) / 224.0; }

// Grad-CAM maps against the object masks.
void eval_localisation(SaliencyScores& s, const data::Dataset& ds) {
  const int64_t h = ds.images.size(2), w = ds.images.size(3);
  const auto masks = ds.masks.to(torch::kCPU).reshape({ds.size(), h, w});
  s.pointing_tolerance = eval_pointing_tolerance(h, w);
  const auto add = [&](const std::string& name, const torch::Tensor& v) {
    s.localisation.emplace_back(name, eval_finite_mean(v), torch::isfinite(v).sum().item<int64_t>());
  };
  add("pointing_game", saliency::pointing_game(s.maps, masks, s.pointing_tolerance));
  add("energy_pointing_game", saliency::energy_pointing_game(s.maps, masks));
  add("relevance_rank_accuracy", saliency::relevance_rank_accuracy(s.maps, masks));
}

// Which attribution method is faithful: each method's maps of the images
// (model inputs `x`, target the prediction) scored by the perturbation
// metrics, the pointing game (with masks) and a short cascading
// randomisation.
std::vector<MethodFaithfulness> eval_compare_methods(models::Classifier& model, const data::Dataset& ds,
                                                     const torch::Tensor& x, const torch::Tensor& preds,
                                                     const std::vector<std::string>& methods,
                                                     const EvaluateConfig& cfg, const RunContext& ctx,
                                                     const std::string& name) {
  std::vector<MethodFaithfulness> out;
  models::ModeGuard eval(model, false);
  const saliency::LogitsFn logits = [&model](const torch::Tensor& t) { return model.forward(t); };
  const auto targets = preds.to(x.device());
  const auto masks = ds.has_masks() ? ds.masks.to(torch::kCPU).reshape({ds.size(), x.size(2), x.size(3)})
                                    : torch::Tensor();
  // The image of the randomisation figure: the first one classified correctly.
  const auto correct = preds.to(torch::kCPU).eq(ds.labels.to(torch::kCPU)).nonzero();
  const int64_t figure_row = correct.numel() > 0 ? correct[0][0].item<int64_t>() : 0;
  int64_t done = 0;
  for (const auto& method : methods) {
    const core::Stopwatch t;
    saliency::AttributionOptions ao;
    ao.method = saliency::parse_attribution_method(method);
    ao.layer = cfg.layer;
    ao.target = extract::GradientTarget::kTrue;  // the class given: each image's prediction
    ao.seed = ctx.seed;
    const auto maps = saliency::attribution_maps(model, x, targets, ao, cfg.batch_size);
    MethodFaithfulness f;
    f.method = method;
    saliency::PerturbationOptions po;
    po.batch_size = std::max<int64_t>(cfg.batch_size, po.steps + 1);
    const auto mx = maps.to(x.device());
    const auto del = saliency::deletion_curve(logits, x, mx, targets, po);
    const auto ins = saliency::insertion_curve(logits, x, mx, targets, po);
    f.deletion_auc = eval_finite_mean(del.auc);
    f.insertion_auc = eval_finite_mean(ins.auc);
    f.deletion_curve = del.probs.mean(0);
    f.insertion_curve = ins.probs.mean(0);
    f.curve_fractions = del.fractions;
    f.average_drop = eval_finite_mean(saliency::confidence_change(logits, x, mx, targets, cfg.batch_size).drop);
    saliency::RoadOptions ro;
    ro.seed = ctx.seed;
    ro.batch_size = cfg.batch_size;
    f.road_combined = eval_finite_mean(saliency::road(logits, x, mx, targets, ro).combined);
    f.pointing_game = masks.defined()
                          ? eval_finite_mean(saliency::pointing_game(
                                maps.to(torch::kCPU), masks, eval_pointing_tolerance(x.size(2), x.size(3))))
                          : std::nan("");
    saliency::RandomisationOptions rd;
    rd.cascading = true;
    rd.max_groups = 2;
    rd.seed = ctx.seed;
    rd.batch_size = cfg.batch_size;
    f.figure_row = figure_row;
    rd.keep_rows = {figure_row};
    const auto steps = saliency::model_randomisation_test(model, x, targets, ao, rd);
    std::vector<torch::Tensor> shown = {maps.slice(0, figure_row, figure_row + 1).to(torch::kCPU, torch::kFloat)};
    if (!steps.empty()) {
      f.randomisation_spearman = eval_finite_mean(steps.back().spearman);
      for (const auto& st : steps) {
        f.randomised += (f.randomised.empty() ? "" : ",") + st.group;
        shown.push_back(st.maps);
      }
    }
    f.randomisation_maps = torch::cat(shown);
    f.seconds = t.seconds();
    out.push_back(f);
    core::report(ctx.progress, {"methods " + name, ++done, static_cast<int64_t>(methods.size()), f.seconds, {},
                            done == static_cast<int64_t>(methods.size()), method});
  }
  return out;
}

MisclassificationSummary eval_errors(const extract::ExtractRun& run, const torch::Tensor& probs, int64_t k,
                                     const EvaluateConfig& cfg, uint64_t seed, const analysis::RunAnalysis& ar) {
  const auto& labels = run.labels;
  const auto& preds = run.preds;
  MisclassificationSummary m;
  m.confusion = analysis::confusion_matrix(labels, preds, k);
  m.per_class_accuracy = analysis::per_class_accuracy(m.confusion);
  const auto wrong = preds.ne(labels);
  m.errors = wrong.sum().item<int64_t>();
  m.accuracy = 1.0 - static_cast<double>(m.errors) / static_cast<double>(labels.size(0));

  const auto embedding = run.load(cfg.label_error_embedding);
  const auto features = run.load("features");
  const int64_t kn = std::min<int64_t>(cfg.neighbors, labels.size(0) - 1);
  const auto given = analysis::label_error_scores(probs, labels, embedding, kn);
  for (const auto& name : given.names()) m.scores.emplace_back(name, given.get(name));

  // Validation on seeded flips of the given labels: the model's probabilities
  // and the label-free embedding do not depend on the labels, only the scores do.
  const auto flip = analysis::flip_labels(labels, k, cfg.flip_fraction, seed);
  m.flipped = flip.flipped.sum().item<int64_t>();
  if (m.flipped > 0 && m.flipped < labels.size(0)) {
    const auto noisy = analysis::label_error_scores(probs, flip.labels, embedding, kn);
    double best = -1.0;
    for (const auto& name : noisy.names()) {
      RankingQuality q;
      q.score = name;
      q.auroc = analysis::auroc(noisy.get(name), flip.flipped);
      q.precision_at_flipped = analysis::precision_at_k(noisy.get(name), flip.flipped, m.flipped);
      q.precision_at_10 =
          analysis::precision_at_k(noisy.get(name), flip.flipped, std::min<int64_t>(10, labels.size(0)));
      if (q.auroc > best) {
        best = q.auroc;
        m.best_score = name;
      }
      m.ranking.push_back(q);
    }
  }

  m.error_indices = wrong.nonzero().reshape({-1});
  const int64_t kk = std::min<int64_t>(5, labels.size(0) - 1);
  if (m.errors > 0) {
    m.gradient_neighbors = analysis::cosine_neighbors(embedding, kk, m.error_indices).indices;
    m.feature_neighbors = analysis::cosine_neighbors(features, kk, m.error_indices).indices;
  }
  for (const auto& rep : ar.representations) {
    const auto& km = rep.analysis.kmeans;
    if (!km.labels.defined()) continue;
    auto counts = torch::bincount(km.labels.masked_select(wrong), {}, rep.analysis.k);
    if (rep.name == cfg.label_error_embedding) m.errors_per_gradient_cluster = counts;
    if (rep.name == "features") m.errors_per_feature_cluster = counts;
  }
  return m;
}

}  // namespace

const std::vector<std::pair<std::string, std::string>>& evaluate_representation_rows() {
  static const std::vector<std::pair<std::string, std::string>> rows = {
      {"gradcam-weights", "Gradient Weights"}, {"probs", "Final Predictions"},
      {"activations", "Feature Maps"},        {"input-grad", "Input Gradients"},
      {"param-grad", "Parameter Gradients"},  {"features", "Penultimate Features"},
      {"logits", "Logits"}};
  return rows;
}

double SaliencyScores::value(const std::string& metric) const {
  for (const auto& [name, mean, std] : metrics)
    if (name == metric) return mean;
  return std::numeric_limits<double>::quiet_NaN();
}

std::vector<std::string> evaluate_compare_methods(const EvaluateConfig& cfg, bool has_masks) {
  const auto& names = saliency::attribution_method_names();
  const bool none = std::find(cfg.compare_methods.begin(), cfg.compare_methods.end(), "none") !=
                    cfg.compare_methods.end();
  GRADLENS_CHECK_OPTION(!none || cfg.compare_methods.size() == 1,
                        "--compare-methods: 'none' turns the comparison off; give it alone");
  for (const auto& m : cfg.compare_methods)
    GRADLENS_CHECK_OPTION(m == "none" || std::find(names.begin(), names.end(), m) != names.end(),
                          "--compare-methods: unknown attribution method '", m, "'; use any of ",
                          core::join(names, ", "), ", or none");
  if (cfg.quick || none) return {};
  if (cfg.compare_methods.empty()) return has_masks ? names : std::vector<std::string>{};
  return cfg.compare_methods;
}

EvaluateResult run_evaluate(const EvaluateConfig& cfg, const RunContext& ctx) {
  const core::Stopwatch t_all;
  GRADLENS_CHECK(!cfg.models.empty(), "--models: give at least one model");
  GRADLENS_CHECK(cfg.per_class >= 1, "--per-class must be >= 1, got ", cfg.per_class);
  GRADLENS_CHECK(cfg.batch_size >= 1, "--batch-size must be >= 1, got ", cfg.batch_size);
  GRADLENS_CHECK(cfg.flip_fraction > 0.0 && cfg.flip_fraction < 1.0, "--flip-fraction must be in (0, 1), got ",
                 cfg.flip_fraction);
  evaluate_compare_methods(cfg, false);  // the names, before any work
  GRADLENS_CHECK_OPTION(cfg.label_error_embedding == "param-grad" || cfg.label_error_embedding == "input-grad" ||
                     cfg.label_error_embedding == "gradcam-weights" || cfg.label_error_embedding == "features",
                 "--label-error-embedding: unknown '", cfg.label_error_embedding,
                 "'; use param-grad, input-grad, gradcam-weights or features");
  const fs::path out = cfg.out;
  GRADLENS_CHECK(!out.empty(), "--out: give a report directory");
  // A previous report (it holds report.json) is replaced when the new one is
  // complete; any other existing path is refused.
  if (fs::exists(out))
    GRADLENS_CHECK(fs::exists(out / "report.json"), "--out ", out.string(),
                   " exists but is not a gradlens report (no report.json); refusing to replace it; choose "
                   "another directory");
  // Under `gradlens launch` or torchrun (RANK, WORLD_SIZE, ...): the
  // extraction and the clustering run over the ranks; rank 0 writes the
  // extraction cache and the report (docs/scaling.md).
  distributed::RankSetup ranks = distributed::join_ranks(ctx.device);
  distributed::Communicator& comm = ranks.comm;
  const bool multi = comm.world_size() > 1;
  const auto device = ranks.device;
  // kAuto is kDirect here (see run_evaluate()).
  models::ModelOptions model_options = ctx.model;
  if (model_options.conv == models::ConvAlgorithm::kAuto) model_options.conv = models::ConvAlgorithm::kDirect;
  const auto conv = model_options.conv;

  // The evaluation set: the first per_class test images of each class.
  const ModelData md = data_for_models(cfg.data, cfg.models);
  const data::Dataset full = load_split(md.data, ctx.seed, /*train=*/false);
  check_model_classes(md, full);
  GRADLENS_CHECK(full.size() > 0, "--data ", cfg.data.data, ": the test split is empty");
  const auto indices = data::per_class_indices(full.labels, cfg.per_class, data::SubsetMode::kFirst, 0,
                                               full.num_classes(), full.class_names);
  const data::Dataset ds = data::select(full, indices);
  GRADLENS_CHECK(ds.size() >= 2, "--data ", cfg.data.data, ": only ", ds.size(),
                 " evaluation image(s); need at least 2");
  const int64_t k = ds.num_classes();
  const auto methods = evaluate_compare_methods(cfg, ds.has_masks());

  std::unique_ptr<core::StagedDirectory> partial;
  if (comm.is_root()) partial = std::make_unique<core::StagedDirectory>(out, "--out");

  EvaluateResult res;
  res.class_names = ds.class_names;
  res.input = data::describe_input(ds);
  if (!md.assumed.empty()) res.warnings.push_back(md.assumed);
  res.input_mean = ds.mean;
  res.input_std = ds.std;
  res.input_range = data::input_range_name(ds);
  res.n = ds.size();
  res.indices = indices;
  res.paths = ds.paths;
  res.images = ds.images;
  // Steps 3 to 5 of one model: what only rank 0 runs under launch.
  const auto finish = [&](ModelEvaluation& me, const extract::ExtractRun& run, models::Classifier& model,
                          core::Stopwatch& t0) {
    for (const auto& w : me.analysis.warnings) res.warnings.push_back(me.name + ": " + w);

    me.labels = run.labels;
    me.preds = run.preds;
    const auto probs = run.load("probs");
    me.confidence = std::get<0>(probs.max(1));

    // 3. Grad-CAM maps from the extracted weights and activations, against
    // each image's class-mean map.
    const auto cam = eval_gradcam_maps(run, extract::gradient_target_name(cfg.target), ds.images.size(2), ds.images.size(3), cfg.batch_size);
    const int64_t constant = cam.num_constant;
    me.saliency = eval_saliency_scores(cam.maps, ds.labels, k, constant, ctx.seed);
    if (ds.has_masks() && !cfg.quick) eval_localisation(me.saliency, ds);
    core::report(ctx.progress, {"grad-cam " + me.name, ds.size(), ds.size(), t0.seconds(), {}, true, ""});
    me.seconds.emplace_back("saliency", t0.restart());
    if (constant > 0)
      res.warnings.push_back(fmt::format("{}: {} of {} Grad-CAM maps are constant (no positive evidence at the "
                                         "layer); they are scored at the metrics' chance values",
                                         me.name, constant, ds.size()));

    // 4. Which attribution method is faithful (when asked).
    if (!methods.empty()) {
      const auto x = data::to_float(ds, ds.images).to(device);
      me.methods = eval_compare_methods(model, ds, x, me.preds, methods, cfg, ctx, me.name);
      me.seconds.emplace_back("methods", t0.restart());
    }

    // 5. Misclassifications and label errors.
    me.errors = eval_errors(run, probs, k, cfg, ctx.seed, me.analysis);
    me.seconds.emplace_back("errors", t0.restart());
  };
  struct Pending {
    ModelEvaluation me;
    extract::ExtractRun run;
    std::unique_ptr<models::Classifier> model;
  };
  std::vector<Pending> pending;
  for (const auto& spec : cfg.models) {
    ModelEvaluation me;
    me.spec = spec;
    double train_s = 0.0;
    const auto ref = eval_resolve_model(spec, cfg, ctx, train_s, multi);
    me.name = ref.name;
    me.slug = ref.slug;
    me.checkpoint = ref.path;
    me.seconds.emplace_back("train", train_s);
    for (const auto& other : res.models)
      GRADLENS_CHECK(other.slug != me.slug, "--models: '", spec, "' is given twice");
    for (const auto& other : pending)  // rank 0 under launch keeps its models there until the end
      GRADLENS_CHECK(other.me.slug != me.slug, "--models: '", spec, "' is given twice");

    auto model =
        open_model_for(ref.path, device, ds.channels(), ds.images.size(3), /*channels_last=*/true, model_options);
    GRADLENS_CHECK(model->num_classes() >= k, "--models ", spec, " has ", model->num_classes(),
                   " classes but the data has ", k);
    me.description = model->describe();

    // 1. Extraction (cached by model file, data and options), kept in memory.
    core::Stopwatch t0;
    extract::ExtractConfig ec;
    ec.options.layer = cfg.layer;
    ec.options.gradcam_targets = {extract::gradient_target_name(cfg.target)};
    ec.options.grad_labels = {"pred"};
    ec.batch_size = cfg.batch_size;
    ec.overwrite = true;
    ec.model_spec = ref.path;
    ec.seed = ctx.seed;
    ec.indices = indices;
    ec.dataset_name = cfg.data.data + ":test";
    ec.keep_in_memory = true;
    // v2: extraction in channels-last layout (1-channel data on the CPU);
    // v3: with the convolution algorithm; v4: manifests record it; v5: with
    // every preprocessing flag and how a TorchScript output is read.
    const auto& d = cfg.data;
    const auto& ts = model_options.torchscript;
    const std::string key = fmt::format(
        "{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|v5", core::file_crc32(ref.path), d.data,
        d.idx_dir, d.image_size, d.channels, cfg.per_class, cfg.layer, extract::gradient_target_name(cfg.target), device_name(ctx),
        conv == models::ConvAlgorithm::kWinograd ? "winograd" : "direct", d.resize, fmt::join(d.mean, ","),
        fmt::join(d.std, ","), d.input_range, d.test_fraction, d.test_per_class, data::subset_mode_name(d.subset), d.skip_bad_images,
        ts.output_index, ts.output_key, ts.class_tokens, ctx.seed);
    me.run_dir = core::cache_dir() / "runs" / (me.slug + "-" + eval_crc_hex(key));
    ec.out = me.run_dir;
    me.extraction_cached = cfg.cache && fs::exists(me.run_dir / "manifest.json");
    if (multi) {  // rank 0's view, so that every rank takes the same path
      auto cached = torch::tensor({me.extraction_cached ? 1.0 : 0.0}, torch::kFloat64);
      comm.broadcast(cached, 0);
      me.extraction_cached = cached.item<double>() > 0.5;
    }
    extract::ExtractRun run;
    if (me.extraction_cached) {
      run = io::read_run(me.run_dir);
    } else if (multi) {
      // Whole batches per rank, gathered into the cache by rank 0, read back
      // by every rank.
      ec.ranks = extract_ranks(comm, ds.size(), ec.batch_size);
      if (comm.is_root()) fs::create_directories(me.run_dir.parent_path());
      extract::run_extract(*model, ds, ec, [&](const core::ProgressEvent& ev) {
        auto e2 = ev;
        e2.stage = "extract " + me.name;
        core::report(ctx.progress, e2);
      });
      comm.barrier();
      run = io::read_run(me.run_dir);
    } else {
      fs::create_directories(me.run_dir.parent_path());
      run = extract::run_extract(*model, ds, ec, [&](const core::ProgressEvent& ev) {
              auto e = ev;
              e.stage = "extract " + me.name;
              core::report(ctx.progress, e);
            }).run;
    }
    GRADLENS_CHECK(run.size() == ds.size() && run.preds.defined(), "the cached extraction ", me.run_dir.string(),
                   " does not match the evaluation set; re-run with --no-cache");
    me.seconds.emplace_back("extract", t0.restart());
    me.layer = run.manifest.layer;

    // 2. Analysis of every representation (+ the audit), in memory.
    analysis::RunAnalysisOptions ao;
    ao.options = cfg.analyze;
    ao.options.seed = ctx.seed;
    me.analysis = analysis::analyze_run(
        run, ao,
        [&](const core::ProgressEvent& ev) {
          auto e = ev;
          e.stage = "analyze " + me.name;
          core::report(ctx.progress, e);
        },
        comm);
    me.seconds.emplace_back("analyze", t0.restart());
    if (!multi) {
      finish(me, run, *model, t0);
      res.models.push_back(std::move(me));
    } else if (comm.is_root()) {
      pending.push_back({std::move(me), std::move(run), std::move(model)});
    } else {
      res.models.push_back(std::move(me));
    }
  }
  // Under launch, rank 0 finishes the models once every collective is done,
  // so that no rank waits in one while rank 0 works alone.
  for (auto& p : pending) {
    core::Stopwatch t0;
    finish(p.me, p.run, *p.model, t0);
    res.models.push_back(std::move(p.me));
  }

  // 5. Tables, figures and the report, then the atomic rename.
  if (!comm.is_root()) {
    res.seconds = t_all.seconds();
    return res;
  }
  const core::Stopwatch t0;
  core::report(ctx.progress, {"report", 0, 1, 0.0, {}, false, ""});
  write_evaluate_report(cfg, ctx, res, partial->path());
  partial->commit();
  res.out = out;
  res.report_html = out / "report.html";
  res.report_md = out / "report.md";
  res.report_seconds = t0.seconds();
  core::report(ctx.progress, {"report", 1, 1, res.report_seconds, {}, true, "wrote " + out.string()});
  res.seconds = t_all.seconds();
  return res;
}

}  // namespace gradlens::pipeline
