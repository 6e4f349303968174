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

// The files of `gradlens saliency` (docs/formats.md): the overlay grid and
// write_saliency_outputs().

namespace {

// Helper names carry a sal_ prefix (the pipeline area is compiled as unity
// translation units, which merge the anonymous namespaces of its files).

namespace fs = std::filesystem;

// summary.json's options.randomisation: "" when the test is off.
std::string sal_randomisation_json(RandomisationTest test) {
  return test == RandomisationTest::kNone ? "" : randomisation_test_name(test);
}

std::string sal_class(const data::Dataset& ds, int64_t k) {
  if (k >= 0 && k < ds.num_classes()) return ds.class_names[static_cast<size_t>(k)];
  return "class " + std::to_string(k);
}

nlohmann::json sal_metric_json(const saliency::MetricColumn& m) {
  nlohmann::json j;
  j["mean"] = m.summarized ? nlohmann::json(m.summary.mean) : nlohmann::json(nullptr);
  j["std"] = m.summarized ? nlohmann::json(m.summary.std) : nlohmann::json(nullptr);
  j["count"] = m.summary.count;
  j["degenerate"] = m.summary.num_degenerate;
  return j;
}

std::string sal_cell(const saliency::MetricColumn& m) {
  return m.summarized ? report::format_mean_std(m.summary.mean, m.summary.std, 3) : "n/a";
}

std::string sal_method_title(const std::string& method) {
  if (method == "gradcam") return "Grad-CAM";
  if (method == "gradcam++") return "Grad-CAM++";
  if (method == "gradient") return "Gradient saliency";
  if (method == "smoothgrad") return "SmoothGrad";
  if (method == "ig") return "Integrated Gradients";
  return method;
}

/// Mean of the finite values (NaN when none) and their count.
std::pair<double, int64_t> finite_mean(const torch::Tensor& v) {
  const auto ok = torch::isfinite(v);
  const int64_t n = ok.sum().item<int64_t>();
  return {n == 0 ? std::nan("") : v.masked_select(ok).mean().item<double>(), n};
}

}  // namespace

report::OverlayGrid saliency_overlay_grid(const SaliencyRun& run, const data::Dataset& ds,
                                          const torch::Tensor& rows, const SaliencyConfig& cfg,
                                          const torch::Tensor& indices) {
  GRADLENS_CHECK(rows.defined() && rows.dim() == 1 && rows.numel() > 0,
                 "saliency overlay: no image selected for the overlay");
  const auto idx = rows.to(torch::kCPU, torch::kLong).contiguous();
  const int64_t m = idx.size(0);
  const auto labels = ds.labels.to(torch::kCPU).index_select(0, idx);
  report::OverlayGrid g;
  g.images = ds.images.to(torch::kCPU).index_select(0, idx);
  g.image_title = "image";
  std::string layer;
  for (const auto& mm : run.models) layer = mm.layer;
  const std::string target = run.target == "pred"   ? "the predicted class"
                             : run.target == "true" ? "the true class"
                                                    : "the cross-entropy loss";
  g.title = sal_method_title(run.method) + (layer.empty() ? "" : " at " + layer) + " for " + target + " — " +
            (ds.name.empty() ? "images" : ds.name);
  g.notes.push_back("Under each map: the model's prediction and p, its softmax probability. Under each image: "
                    "the true class and the image's index in the split. Per class, correctly classified images "
                    "come first, then misclassified ones (by the model '" + run.models.front().name + "').");
  for (int64_t r = 0; r < m; ++r) {
    const int64_t i = idx[r].item<int64_t>();
    const int64_t shown = indices.defined() ? indices[i].item<int64_t>() : i;
    g.image_captions.push_back("true: " + sal_class(ds, labels[r].item<int64_t>()) + "\nindex " + std::to_string(shown));
  }
  for (const auto& mm : run.models) {
    report::OverlayColumn col;
    col.title = mm.name;
    col.maps = mm.maps.index_select(0, idx);
    const auto p = mm.preds.index_select(0, idx);
    const auto c = mm.confidence.index_select(0, idx);
    for (int64_t r = 0; r < m; ++r) {
      const int64_t pr = p[r].item<int64_t>();
      std::ostringstream cap;
      cap << "pred: " << sal_class(ds, pr) << "\np = " << std::fixed;
      cap.precision(2);
      cap << c[r].item<float>();
      if (mm.constant[idx[r].item<int64_t>()].item<bool>()) cap << ", flat map";
      col.captions.push_back(cap.str());
      col.marked.push_back(pr != labels[r].item<int64_t>());
    }
    g.columns.push_back(std::move(col));
  }
  if (cfg.compare == saliency::ComparisonKind::kMask && ds.has_masks()) {
    report::OverlayColumn col;
    col.title = "object mask";
    col.maps = ds.masks.to(torch::kCPU).index_select(0, idx).squeeze(1).to(torch::kFloat) / 255.0;
    g.columns.push_back(std::move(col));
  }
  return g;
}

void write_saliency_outputs(const SaliencyRun& run, const data::Dataset& ds, const SaliencyConfig& cfg,
                            const fs::path& out_in, bool overwrite, const torch::Tensor& indices,
                            const std::string& dataset_name) {
  const core::Stopwatch t0;
  GRADLENS_CHECK(!out_in.empty(), "--out: no output directory given");
  GRADLENS_CHECK(!run.models.empty() && run.n == ds.size(), "write_saliency_outputs: the run has ",
                 run.n, " images but the dataset has ", ds.size());
  if (indices.defined())
    GRADLENS_CHECK(indices.dim() == 1 && indices.size(0) == run.n, "subset indices must be [", run.n,
                   "], got ", indices.sizes());
  const fs::path out = fs::absolute(out_in).lexically_normal();
  const fs::path parent = out.has_parent_path() ? out.parent_path() : fs::path(".");
  if (fs::exists(out)) {
    GRADLENS_CHECK(overwrite, "--out ", out.string(), " already exists; choose a new directory or pass --overwrite");
    GRADLENS_CHECK(fs::is_directory(out) && fs::exists(out / "summary.json"), "--out ", out.string(),
                   " exists and is not a gradlens saliency directory (no summary.json); refusing to replace it");
  }
  core::StagedDirectory tmp(out, "--out");
  fs::create_directories(tmp.path() / "maps");
  const int64_t n = run.n;
  const auto labels = ds.labels.to(torch::kCPU, torch::kLong).contiguous();
  const auto idx = indices.defined() ? indices.to(torch::kCPU, torch::kLong).contiguous()
                                     : torch::arange(n, torch::kLong);

  // maps/<model>.npy
  for (const auto& mm : run.models) core::write_npy(tmp.path() / "maps" / (mm.name + ".npy"), mm.maps.to(torch::kFloat));

  // per_image.csv: one row per (image, comparison).
  const auto& metric_names = saliency::comparison_metric_names();
  report::Table csv;
  csv.header = {"row", "dataset_index", "label", "true_class", "comparison", "model", "reference", "pred",
                "pred_class", "correct", "confidence", "map_constant", "reference_constant", "fixations_degenerate"};
  for (const auto& mn : metric_names) csv.header.push_back(mn);
  for (const auto& c : run.comparisons) {
    const SaliencyModelMaps* mm = nullptr;
    for (const auto& m : run.models)
      if (m.name == c.model) mm = &m;
    TORCH_INTERNAL_ASSERT(mm != nullptr, "comparison of an unknown model ", c.model);
    std::vector<torch::Tensor> values;
    for (const auto& mn : metric_names)
      values.push_back(c.result.get(mn).result.values.to(torch::kCPU, torch::kDouble).contiguous());
    const auto mc = c.result.map_constant.to(torch::kCPU).contiguous();
    const auto rc = c.result.reference_constant.to(torch::kCPU).contiguous();
    const auto fd = c.result.fixations_degenerate.to(torch::kCPU).contiguous();
    const auto pr = mm->preds.to(torch::kCPU, torch::kLong).contiguous();
    const auto cf = mm->confidence.to(torch::kCPU, torch::kFloat).contiguous();
    const auto la = labels.accessor<int64_t, 1>();
    const auto ia = idx.accessor<int64_t, 1>();
    const auto pa = pr.accessor<int64_t, 1>();
    const auto ca = cf.accessor<float, 1>();
    const auto mca = mc.accessor<bool, 1>();
    const auto rca = rc.accessor<bool, 1>();
    const auto fda = fd.accessor<bool, 1>();
    for (int64_t i = 0; i < n; ++i) {
      const int64_t y = la[i];
      const int64_t p = pa[i];
      std::vector<std::string> row = {std::to_string(i), std::to_string(ia[i]), std::to_string(y),
                                      sal_class(ds, y), c.name, c.model, c.reference, std::to_string(p),
                                      sal_class(ds, p), p == y ? "1" : "0", report::format_number(ca[i], 4),
                                      mca[i] ? "1" : "0", rca[i] ? "1" : "0", fda[i] ? "1" : "0"};
      for (const auto& v : values) row.push_back(report::format_number(v.data_ptr<double>()[i], 6));
      csv.rows.push_back(std::move(row));
    }
  }
  core::write_text_atomically(tmp.path() / "per_image.csv", report::to_csv(csv));

  // overlay.png
  const auto rows = overlay_sample(labels, run.models.front().preds, ds.num_classes(), cfg.overlay_per_class);
  nlohmann::json overlay_json = nullptr;
  if (rows.numel() > 0) {
    const auto grid = saliency_overlay_grid(run, ds, rows, cfg, idx);
    const auto layout = report::write_overlay_grid(tmp.path() / "overlay.png", grid, cfg.overlay);
    std::vector<int64_t> rows_v, rows_ds;
    for (int64_t r = 0; r < rows.size(0); ++r) {
      rows_v.push_back(rows[r].item<int64_t>());
      rows_ds.push_back(idx[rows[r].item<int64_t>()].item<int64_t>());
    }
    overlay_json = {{"file", "overlay.png"},
                    {"rows", rows_v},
                    {"dataset_indices", rows_ds},
                    {"per_class", cfg.overlay_per_class},
                    {"colormap", report::colormap_name(cfg.overlay.colormap)},
                    {"alpha", cfg.overlay.alpha},
                    {"scale", layout.scale},
                    {"size", {layout.width, layout.height}}};
  }

  // faithfulness.csv: one row per (image, model) with the asked-for scores.
  const bool scored = !run.models.front().scores.empty();
  if (scored) {
    report::Table fc;
    fc.header = {"row", "dataset_index", "label", "model", "pred"};
    for (const auto& [name, v] : run.models.front().scores) fc.header.push_back(name);
    for (const auto& mm : run.models)
      for (int64_t i = 0; i < n; ++i) {
        std::vector<std::string> row = {std::to_string(i), std::to_string(idx[i].item<int64_t>()),
                                        std::to_string(labels[i].item<int64_t>()), mm.name,
                                        std::to_string(mm.preds[i].item<int64_t>())};
        for (const auto& [name, v] : mm.scores) row.push_back(fmt::format("{:.6g}", v[i].item<double>()));
        fc.rows.push_back(std::move(row));
      }
    core::write_text_atomically(tmp.path() / "faithfulness.csv", report::to_csv(fc));
  }

  // randomisation.csv: one row per (model, step) with the mean similarities.
  const bool randomised = !run.models.front().randomisation.empty();
  if (randomised) {
    report::Table rc;
    rc.header = {"model", "step", "group", "test", "spearman_mean", "ssim_mean", "n"};
    for (const auto& mm : run.models)
      for (size_t st = 0; st < mm.randomisation.size(); ++st) {
        const auto& r = mm.randomisation[st];
        rc.rows.push_back({mm.name, std::to_string(st + 1), r.group, randomisation_test_name(cfg.randomisation),
                           fmt::format("{:.6g}", finite_mean(r.spearman).first),
                           fmt::format("{:.6g}", finite_mean(r.ssim).first), std::to_string(r.ssim.size(0))});
      }
    core::write_text_atomically(tmp.path() / "randomisation.csv", report::to_csv(rc));
  }

  // summary.json
  const auto& a = cfg.attribution;
  nlohmann::json j;
  j["format"] = "gradlens-saliency";
  j["format_version"] = 1;
  j["method"] = run.method;
  j["target"] = run.target;
  j["layer"] = run.models.front().layer;
  j["compare"] = run.compare;
  j["dataset"] = dataset_name.empty() ? ds.name : dataset_name;
  j["n"] = n;
  j["num_classes"] = ds.num_classes();
  j["class_names"] = ds.class_names;
  if (indices.defined()) {
    std::vector<int64_t> iv(idx.data_ptr<int64_t>(), idx.data_ptr<int64_t>() + n);
    j["indices"] = iv;
  } else {
    j["indices"] = nullptr;
  }
  j["image_size"] = {run.height, run.width};
  j["options"] = {{"metrics", cfg.metrics},
                  {"randomisation", sal_randomisation_json(cfg.randomisation)},
                  {"randomisation_groups", cfg.randomisation_options.max_groups},
                  {"steps", cfg.perturbation.steps},
                  {"patch_size", cfg.perturbation.patch_size},
                  {"perturbation_baseline", saliency::baseline_name(cfg.perturbation.baseline)},
                  {"blur_sigma", cfg.perturbation.blur_sigma},
                  {"pointing_tolerance", cfg.pointing_tolerance},
                  {"smoothgrad_samples", a.smoothgrad_samples},
                  {"smoothgrad_sigma", a.smoothgrad_sigma},
                  {"ig_steps", a.ig_steps},
                  {"ig_rule", saliency::ig_rule_name(a.ig_rule)},
                  {"ig_baseline", ig_baseline_name(cfg.ig_baseline)},
                  {"seed", a.seed},
                  {"fixation_threshold", cfg.compare_options.fixation_threshold},
                  {"auc_borji_splits", cfg.compare_options.auc_borji.n_splits},
                  {"auc_borji_step", cfg.compare_options.auc_borji.step_size},
                  {"auc_borji_seed", cfg.compare_options.auc_borji.seed},
                  {"leave_one_out", cfg.compare_options.leave_one_out},
                  {"exclude_degenerate", cfg.compare_options.summary.exclude_degenerate},
                  {"batch_size", cfg.batch_size}};
  nlohmann::json models_j = nlohmann::json::array();
  for (const auto& mm : run.models)
    models_j.push_back({{"name", mm.name},
                        {"spec", mm.spec},
                        {"description", mm.description},
                        {"layer", mm.layer},
                        {"raw_map_size", {mm.raw_height, mm.raw_width}},
                        {"accuracy", mm.accuracy},
                        {"constant_maps", mm.num_constant},
                        {"maps", "maps/" + mm.name + ".npy"},
                        {"passes", {{"forward", mm.forward_passes}, {"backward", mm.backward_passes}}},
                        {"seconds", mm.seconds}});
  if (scored) {
    for (size_t m = 0; m < run.models.size(); ++m) {
      const auto& mm = run.models[m];
      nlohmann::json f = nlohmann::json::object();
      for (const auto& [name, v] : mm.scores) {
        const auto [mean, count] = finite_mean(v);
        f[name] = {{"mean", std::isfinite(mean) ? nlohmann::json(mean) : nlohmann::json(nullptr)}, {"n", count}};
      }
      const auto curve = [](const torch::Tensor& t) {
        return t.defined() ? nlohmann::json(std::vector<double>(t.data_ptr<double>(), t.data_ptr<double>() + t.numel()))
                           : nlohmann::json(nullptr);
      };
      f["deletion_curve"] = curve(mm.deletion_curve);
      f["insertion_curve"] = curve(mm.insertion_curve);
      f["curve_fractions"] = curve(mm.curve_fractions);
      f["road_morf_curve"] = curve(mm.road_morf_curve);
      f["road_lerf_curve"] = curve(mm.road_lerf_curve);
      f["road_fractions"] = curve(mm.road_fractions);
      models_j[m]["faithfulness"] = f;
    }
  }
  if (randomised)
    for (size_t m = 0; m < run.models.size(); ++m) {
      nlohmann::json steps = nlohmann::json::array();
      for (const auto& r : run.models[m].randomisation)
        steps.push_back({{"group", r.group},
                         {"spearman", finite_mean(r.spearman).first},
                         {"ssim", finite_mean(r.ssim).first}});
      models_j[m]["randomisation"] = {{"test", randomisation_test_name(cfg.randomisation)}, {"steps", steps}};
    }
  j["models"] = models_j;
  const auto& dr = run.data_randomisation;
  if (dr.spearman.defined()) {
    const auto stat = [](const torch::Tensor& v) {
      const auto [mean, count] = finite_mean(v);
      return nlohmann::json{{"mean", mean}, {"n", count}};
    };
    j["data_randomisation"] = {{"model", dr.name},          {"spec", dr.spec},
                               {"description", dr.description}, {"accuracy", dr.accuracy},
                               {"spearman", stat(dr.spearman)}, {"ssim", stat(dr.ssim)}};
  }
  nlohmann::json cmp_j = nlohmann::json::array();
  for (const auto& c : run.comparisons) {
    nlohmann::json metrics = nlohmann::json::object();
    for (const auto& col : c.result.metrics) metrics[col.name] = sal_metric_json(col);
    cmp_j.push_back({{"name", c.name},
                     {"model", c.model},
                     {"reference", c.reference},
                     {"n", c.result.size()},
                     {"constant_maps", c.result.num_map_constant},
                     {"constant_references", c.result.num_reference_constant},
                     {"degenerate_fixations", c.result.num_fixations_degenerate},
                     {"metrics", metrics}});
  }
  j["comparisons"] = cmp_j;
  j["overlay"] = overlay_json;
  j["files"] = {{"per_image", "per_image.csv"}, {"summary_md", "summary.md"}};
  if (scored) j["files"]["faithfulness"] = "faithfulness.csv";
  if (randomised) j["files"]["randomisation"] = "randomisation.csv";
  j["warnings"] = run.warnings;
  nlohmann::json secs = nlohmann::json::object();
  for (const auto& [name, s] : run.seconds) secs[name] = s;
  secs["write"] = t0.seconds();
  j["seconds"] = secs;
  j["libtorch_version"] = core::torch_version();

  // summary.md
  std::ostringstream md;
  md << "# Saliency: " << run.method << (j["layer"].get<std::string>().empty() ? "" : " at " + j["layer"].get<std::string>())
     << ", target " << run.target << "\n\n";
  md << "Data: " << j["dataset"].get<std::string>() << ", " << n << " images, " << ds.num_classes()
     << " classes, " << run.height << "x" << run.width << " px. Comparison: **" << run.compare << "** — ";
  if (run.compare == "class-mean")
    md << "each image's map against the mean map of its true class";
  else if (run.compare == "mask")
    md << "each image's map against its ground-truth object mask";
  else
    md << "the first model's map of each image against the other model's map of the same image";
  md << ".\n\n";
  report::Table models_t;
  models_t.header = {"model", "description", "accuracy", "constant maps", "maps"};
  for (const auto& mm : run.models)
    models_t.rows.push_back({mm.name, mm.description, report::format_number(100 * mm.accuracy, 2) + "%",
                             std::to_string(mm.num_constant) + " / " + std::to_string(n), "maps/" + mm.name + ".npy"});
  md << report::to_markdown(models_t) << "\n";
  report::Table t;
  t.header = {"comparison", "reference"};
  for (const auto& mn : metric_names) t.header.push_back(mn);
  t.header.push_back("degenerate (map / reference / fixations)");
  for (const auto& c : run.comparisons) {
    std::vector<std::string> row = {c.name, c.reference};
    for (const auto& mn : metric_names) row.push_back(sal_cell(c.result.get(mn)));
    row.push_back(std::to_string(c.result.num_map_constant) + " / " + std::to_string(c.result.num_reference_constant) +
                  " / " + std::to_string(c.result.num_fixations_degenerate));
    t.rows.push_back(std::move(row));
  }
  md << "Mean ± standard deviation over the images (population std):\n\n" << report::to_markdown(t) << "\n";
  md << "CC, KLD and SIM compare the map with the reference as two continuous maps (KLD is "
        "KL(reference ‖ map): lower is closer; the others: higher is closer). NSS, AUC-Judd and AUC-Borji score "
        "the map against a binary fixation map: ";
  if (run.compare == "mask")
    md << "the mask's object pixels.";
  else
    md << "the reference's pixels at or above " << cfg.compare_options.fixation_threshold
       << " of its range after min-max scaling.";
  md << " Constant maps (all zero) and empty fixation maps are scored with chance values (CC 0, NSS 0, AUC 0.5) "
        "and "
     << (cfg.compare_options.summary.exclude_degenerate ? "left out of" : "included in")
     << " the means; their counts are in the last column. See docs/saliency.md.\n\n";
  if (!overlay_json.is_null())
    md << "![overlay](overlay.png)\n\n`overlay.png`: per class, up to " << cfg.overlay_per_class
       << " image(s) the first model classifies correctly and as many it misclassifies (red frames).\n\n";
  if (!run.warnings.empty()) {
    md << "## Warnings\n\n";
    for (const auto& w : run.warnings) md << "- " << w << "\n";
    md << "\n";
  }
  if (scored) {
    md << "## Faithfulness and localisation\n\nMean over the images (target: each model's prediction; "
          "deletion/insertion: " << cfg.perturbation.steps << " steps, "
       << (cfg.perturbation.patch_size > 1 ? std::to_string(cfg.perturbation.patch_size) + " px patches, " : "")
       << "baseline " << saliency::baseline_name(cfg.perturbation.baseline) << "). Lower is better for deletion AUC and average "
          "drop, higher for the others (docs/saliency.md).\n\n";
    report::Table t;
    t.header = {"model"};
    for (const auto& [name, v] : run.models.front().scores) t.header.push_back(name);
    for (const auto& mm : run.models) {
      std::vector<std::string> row = {mm.name};
      for (const auto& [name, v] : mm.scores) row.push_back(fmt::format("{:.4f}", finite_mean(v).first));
      t.rows.push_back(std::move(row));
    }
    md << report::to_markdown(t) << "\n";
  }
  if (randomised) {
    md << "## Sanity check: " << randomisation_test_name(cfg.randomisation) << " model-parameter randomisation\n\nMean similarity of each "
          "image's map to the trained model's after randomising the groups from the head down (Adebayo et al. "
          "2018); a faithful method's similarity falls (docs/saliency.md).\n\n";
    report::Table t;
    t.header = {"model", "step", "group", "Spearman", "SSIM"};
    for (const auto& mm : run.models)
      for (size_t st = 0; st < mm.randomisation.size(); ++st)
        t.rows.push_back({mm.name, std::to_string(st + 1), mm.randomisation[st].group,
                          fmt::format("{:.4f}", finite_mean(mm.randomisation[st].spearman).first),
                          fmt::format("{:.4f}", finite_mean(mm.randomisation[st].ssim).first)});
    md << report::to_markdown(t) << "\n";
  }
  if (dr.spearman.defined())
    md << "## Sanity check: data randomisation\n\nMean similarity of " << run.models.front().name
       << "'s map of each image to the map of " << dr.name << ", trained on permuted labels (accuracy "
       << report::format_number(100 * dr.accuracy, 2) << "%; Adebayo et al. 2018): Spearman "
       << fmt::format("{:.4f}", finite_mean(dr.spearman).first) << ", SSIM "
       << fmt::format("{:.4f}", finite_mean(dr.ssim).first)
       << ". A method that explains what the model learnt gives low similarity (docs/saliency.md).\n\n";
  md << "Per image: `per_image.csv`; maps: `maps/<model>.npy` (float32 [N, H, W]); everything in "
        "`summary.json`.\n";
  core::write_text_atomically(tmp.path() / "summary.md", md.str());
  core::write_text_atomically(tmp.path() / "summary.json", j.dump(2) + "\n");

  tmp.commit();
}

}  // namespace gradlens::pipeline
