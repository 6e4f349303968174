// The files of an evaluation report: the seed's three tables, the PCA
// figures, confusion heat maps, the label-error tables, samples.csv,
// report.json, report.md and report.html.
#include <torch/types.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <ctime>
#include <filesystem>
#include <future>
#include <thread>

#include "gradlens/core/check.h"
#include "gradlens/core/fs.h"
#include "gradlens/core/npy.h"
#include "gradlens/core/runtime.h"
#include "gradlens/pipeline/evaluate.h"
#include "gradlens/report/gnuplot.h"
#include "gradlens/report/document.h"
#include "gradlens/report/overlay.h"
#include "gradlens/report/table.h"

namespace gradlens::pipeline {

namespace fs = std::filesystem;
using report::format_number;
using report::Table;

namespace {

std::string evrep_gradcam_name(const EvaluateConfig& cfg) {
  return cfg.target == extract::GradientTarget::kPred
             ? "gradcam-weights"
             : "gradcam-weights." + extract::gradient_target_name(cfg.target);
}

// The analysed representation named `name` of a model (nullptr if absent).
const AnalyzedRepresentation* evrep_find(const ModelEvaluation& m, const std::string& name) {
  for (const auto& r : m.analysis.representations)
    if (r.name == name) return &r;
  return nullptr;
}

std::string evrep_rep_name(const EvaluateConfig& cfg, const std::string& base) {
  return base == "gradcam-weights" ? evrep_gradcam_name(cfg) : base;
}

std::string evrep_flags(const AnalyzedRepresentation& r) {
  std::string f;
  if (r.degenerate) f += "degenerate";
  if (r.label_informed) f += std::string(f.empty() ? "" : ",") + "label-informed";
  return f;
}

std::string evrep_protocol(const EvaluateConfig& cfg, const RunContext& ctx, const EvaluateResult& res) {
  const auto& o = cfg.analyze;
  const std::string input =
      o.pca_dims > 0 ? fmt::format("PCA to min({}, D, N-1) dimensions", o.pca_dims) : std::string("raw rows");
  return fmt::format(
      "{} test images ({} per class of {}); layer {}; Grad-CAM target '{}' ({}); input-grad and param-grad "
      "with the predicted label (label-free); clustering input: {}{}; k = {}; KMeans k-means++ n_init {}; "
      "GMM {} covariance, reg_covar {}; silhouette: Euclidean on the clustering input; seed {}; input {}.",
      res.n, cfg.per_class, cfg.data.data, cfg.layer.empty() ? "each model's default" : cfg.layer,
      extract::gradient_target_name(cfg.target),
      cfg.target == extract::GradientTarget::kPred ? "label-free" : "label-informed", input,
      o.normalize == analysis::RowNormalization::kL2 ? " of l2-normalised rows" : "",
      o.k > 0 ? std::to_string(o.k) : std::string("number of classes"), o.kmeans_n_init,
      analysis::covariance_type_name(o.gmm_covariance), o.reg_covar, ctx.seed, res.input);
}

Table evrep_table1(const EvaluateConfig& cfg, const EvaluateResult& res) {
  Table t;
  t.header = {"Model\\Metrics", "Cos_Sim_GW", "Cos_Sim_P", "Cos_Sim_FM", "Grad_Cam_CC",
              "Grad_Cam_KLD", "Grad_Cam_SIM", "Grad_Cam_AUC", "Accuracy"};
  for (const auto& m : res.models) {
    std::vector<std::string> row = {m.name};
    for (const auto* base : {"gradcam-weights", "probs", "activations"}) {
      const auto* r = evrep_find(m, evrep_rep_name(cfg, base));
      row.push_back(r ? format_number(r->analysis.cosine.cos_sim, 4) : "n/a");
    }
    for (const auto* metric : {"CC", "KLD", "SIM", "AUC-Judd"}) row.push_back(format_number(m.saliency.value(metric), 4));
    row.push_back(format_number(100.0 * m.errors.accuracy, 2) + "%");
    t.rows.push_back(row);
  }
  return t;
}

Table evrep_cluster_table(const EvaluateConfig& cfg, const EvaluateResult& res, bool gmm) {
  Table t;
  t.header = {"Clustering by\\Metric"};
  t.groups = {{"", 1}};
  for (const auto& m : res.models) {
    t.groups.emplace_back(m.name, 4);
    for (const auto* h : {"ARI", "NMI", "Silhouette", "Flags"}) t.header.push_back(h);
  }
  for (const auto& [base, title] : evaluate_representation_rows()) {
    std::vector<std::string> row = {title};
    bool any = false;
    for (const auto& m : res.models) {
      const auto* r = evrep_find(m, evrep_rep_name(cfg, base));
      if (!r) {
        row.insert(row.end(), {"n/a", "n/a", "n/a", ""});
        continue;
      }
      any = true;
      const auto& c = gmm ? r->analysis.gmm : r->analysis.kmeans;
      if (!c.error.empty()) {
        row.insert(row.end(), {"failed", "failed", "failed", evrep_flags(*r)});
        continue;
      }
      row.push_back(format_number(c.ari, 3));
      row.push_back(format_number(c.nmi, 3));
      row.push_back(format_number(c.silhouette, 3));
      row.push_back(evrep_flags(*r));
    }
    if (any) t.rows.push_back(row);
  }
  return t;
}

void evrep_write_table(const fs::path& dir, const std::string& stem, const Table& t) {
  core::write_text_atomically(dir / (stem + ".md"), report::to_markdown(t));
  core::write_text_atomically(dir / (stem + ".csv"), report::to_csv(t));
}

std::vector<std::string> evrep_cluster_names(int64_t k, const char* prefix) {
  std::vector<std::string> n;
  for (int64_t i = 0; i < k; ++i) n.push_back(fmt::format("{} {}", prefix, i));
  return n;
}

// The seed's figure: columns gradient weights / final predictions / feature
// maps, rows coloured by true class / KMeans cluster / GMM cluster.
fs::path evrep_pca_figure(const EvaluateConfig& cfg, const EvaluateResult& res, const ModelEvaluation& m,
                          const fs::path& dir) {
  std::vector<report::ScatterPanel> panels;
  const std::vector<std::pair<std::string, std::string>> cols = {
      {evrep_gradcam_name(cfg), "Gradient Weights"}, {"probs", "Final Predictions"}, {"activations", "Feature Maps"}};
  for (const auto* row : {"true classes", "KMeans", "GMM"}) {
    for (const auto& [name, title] : cols) {
      const auto* r = evrep_find(m, name);
      report::ScatterPanel p;
      p.title = fmt::format("{}: {}", title, row);
      if (!r || !r->analysis.pca2.defined()) {
        p.xy = torch::zeros({0, 2});
        p.groups = torch::zeros({0}, torch::kLong);
        p.title += " (not available)";
        panels.push_back(p);
        continue;
      }
      p.xy = r->analysis.pca2;
      const std::string which = row;
      if (which == "true classes") {
        p.groups = m.labels;
        p.group_names = res.class_names;
      } else {
        const auto& c = which == "KMeans" ? r->analysis.kmeans : r->analysis.gmm;
        if (c.labels.defined()) {
          p.groups = c.labels;
          p.group_names = evrep_cluster_names(r->analysis.k, "cluster");
          p.title += fmt::format(" (ARI {:.2f})", c.ari);
        } else {
          p.groups = torch::zeros({m.labels.size(0)}, torch::kLong);
          p.group_names = {"fit failed"};
          p.title += " (fit failed)";
        }
      }
      panels.push_back(p);
    }
  }
  report::ScatterGridOptions o;
  o.rows = 3;
  o.cols = 3;
  o.title = fmt::format("{}: first two principal components", m.name);
  const fs::path png = dir / (m.slug + "-pca.png");
  report::write_scatter_grid(png, panels, o);
  return png;
}

fs::path evrep_confusion_figure(const EvaluateResult& res, const ModelEvaluation& m, const fs::path& dir) {
  report::HeatmapOptions o;
  o.title = fmt::format("{}: confusion matrix ({} errors of {})", m.name, m.errors.errors, res.n);
  o.xlabel = "predicted class";
  o.ylabel = "true class";
  o.row_names = o.col_names = res.class_names;
  const fs::path png = dir / (m.slug + "-confusion.png");
  report::write_heatmap(png, m.errors.confusion, o);
  return png;
}

// The mean deletion and insertion curves of each compared attribution
// method, one figure each.
std::vector<fs::path> evrep_curve_figures(const ModelEvaluation& m, const fs::path& dir) {
  std::vector<fs::path> out;
  for (const bool insertion : {false, true}) {
    report::LinePlotOptions o;
    o.title = fmt::format("{}: {} curves (mean over the images)", m.name, insertion ? "insertion" : "deletion");
    o.xlabel = fmt::format("share of pixels {} (most relevant first)", insertion ? "put back" : "removed");
    o.ylabel = "probability of the predicted class";
    std::vector<torch::Tensor> ys;
    for (const auto& f : m.methods) {
      o.series_names.push_back(f.method);
      ys.push_back(insertion ? f.insertion_curve : f.deletion_curve);
    }
    const fs::path png = dir / (m.slug + (insertion ? "-insertion-curves.png" : "-deletion-curves.png"));
    report::write_line_plot(png, m.methods.front().curve_fractions, torch::stack(ys), o);
    out.push_back(png);
  }
  return out;
}

// The cascading randomisation picture (Adebayo et al. 2018, Fig. 2): one row
// per method, the image's map on the trained model, then after each step.
fs::path evrep_randomisation_figure(const EvaluateResult& res, const ModelEvaluation& m, const fs::path& dir) {
  const auto& first = m.methods.front();
  const int64_t rows = static_cast<int64_t>(m.methods.size());
  report::OverlayGrid grid;
  grid.images = res.images.slice(0, first.figure_row, first.figure_row + 1).expand({rows, -1, -1, -1}).contiguous();
  grid.image_title = "image";
  grid.title = fmt::format("{}, image {}: cascading randomisation", m.name,
                           res.indices.defined() ? res.indices[first.figure_row].item<int64_t>() : first.figure_row);
  for (const auto& f : m.methods) grid.image_captions.push_back(f.method);
  std::vector<std::string> groups = {"trained"};
  std::string so_far;
  for (size_t b = 0, e; b <= first.randomised.size(); b = e + 1) {
    e = std::min(first.randomised.find(',', b), first.randomised.size());
    if (e > b) groups.push_back("+ " + first.randomised.substr(b, e - b));
  }
  for (int64_t c = 0; c < static_cast<int64_t>(groups.size()); ++c) {
    report::OverlayColumn col;
    col.title = groups[c];
    std::vector<torch::Tensor> maps;
    for (const auto& f : m.methods) maps.push_back(f.randomisation_maps[c]);
    col.maps = torch::stack(maps);
    grid.columns.push_back(std::move(col));
  }
  const fs::path png = dir / (m.slug + "-cascading-randomisation.png");
  report::OverlayOptions oo;
  oo.cell_size = 112;
  oo.rows_per_block = rows;
  report::write_overlay_grid(png, grid, oo);
  return png;
}

Table evrep_per_class_table(const EvaluateResult& res) {
  Table t;
  t.header = {"class"};
  for (const auto& m : res.models) t.header.push_back(m.name);
  for (size_t c = 0; c < res.class_names.size(); ++c) {
    std::vector<std::string> row = {res.class_names[c]};
    for (const auto& m : res.models)
      row.push_back(format_number(100.0 * m.errors.per_class_accuracy[c].item<double>(), 1) + "%");
    t.rows.push_back(row);
  }
  return t;
}

Table evrep_ranking_table(const EvaluateResult& res) {
  Table t;
  t.header = {"model", "score", "AUROC", "precision@flipped", "precision@10", "flipped"};
  for (const auto& m : res.models)
    for (const auto& q : m.errors.ranking)
      t.rows.push_back({m.name, q.score + (q.score == m.errors.best_score ? " (best)" : ""), format_number(q.auroc, 3),
                        format_number(q.precision_at_flipped, 3), format_number(q.precision_at_10, 3),
                        std::to_string(m.errors.flipped)});
  return t;
}

std::string evrep_sample_id(const EvaluateResult& res, int64_t i) {
  if (!res.paths.empty()) return res.paths[i];
  return fmt::format("test[{}]", res.indices[i].item<int64_t>());
}

// The most suspicious given labels of one model by its best score.
Table evrep_suspects_table(const EvaluateResult& res, const ModelEvaluation& m, int64_t top) {
  Table t;
  t.header = {"rank", "sample", "label", "prediction", "confidence"};
  for (const auto& [name, s] : m.errors.scores) t.header.push_back(name);
  const auto best = m.errors.best_score.empty() ? std::string("normalized_margin") : m.errors.best_score;
  torch::Tensor key;
  for (const auto& [name, s] : m.errors.scores)
    if (name == best) key = s;
  if (!key.defined()) return t;
  auto order = std::get<1>(key.sort(true, 0, true));
  for (int64_t r = 0; r < std::min<int64_t>(top, order.size(0)); ++r) {
    const int64_t i = order[r].item<int64_t>();
    std::vector<std::string> row = {std::to_string(r + 1), evrep_sample_id(res, i),
                                    res.class_names[m.labels[i].item<int64_t>()],
                                    res.class_names[m.preds[i].item<int64_t>()],
                                    format_number(m.confidence[i].item<double>(), 3)};
    for (const auto& [name, s] : m.errors.scores) row.push_back(format_number(s[i].item<double>(), 3));
    t.rows.push_back(row);
  }
  return t;
}

Table evrep_neighbors_table(const EvaluateResult& res, const ModelEvaluation& m, int64_t top) {
  Table t;
  t.header = {"sample", "label", "prediction", "gradient-space neighbours", "feature-space neighbours"};
  if (m.errors.errors == 0) return t;
  auto classes = [&](const torch::Tensor& nb) {
    std::string s;
    for (int64_t j = 0; j < nb.size(0); ++j)
      s += (j ? ", " : "") + res.class_names[m.labels[nb[j].item<int64_t>()].item<int64_t>()];
    return s;
  };
  for (int64_t e = 0; e < std::min<int64_t>(top, m.errors.error_indices.size(0)); ++e) {
    const int64_t i = m.errors.error_indices[e].item<int64_t>();
    t.rows.push_back({evrep_sample_id(res, i), res.class_names[m.labels[i].item<int64_t>()],
                      res.class_names[m.preds[i].item<int64_t>()], classes(m.errors.gradient_neighbors[e]),
                      classes(m.errors.feature_neighbors[e])});
  }
  return t;
}

std::string evrep_samples_csv(const EvaluateConfig& cfg, const EvaluateResult& res) {
  Table t;
  t.header = {"index", "sample", "label"};
  for (const auto& m : res.models) {
    for (const auto* h : {"prediction", "confidence", "misclassified"}) t.header.push_back(m.slug + "." + h);
    for (const auto& r : m.analysis.representations) {
      t.header.push_back(m.slug + ".kmeans." + r.name);
      t.header.push_back(m.slug + ".gmm." + r.name);
    }
    for (const auto& [name, s] : m.errors.scores) t.header.push_back(m.slug + "." + name);
  }
  for (int64_t i = 0; i < res.n; ++i) {
    std::vector<std::string> row = {std::to_string(res.indices[i].item<int64_t>()), evrep_sample_id(res, i)};
    row.push_back(res.models.empty() ? "" : res.class_names[res.models[0].labels[i].item<int64_t>()]);
    for (const auto& m : res.models) {
      row.push_back(res.class_names[m.preds[i].item<int64_t>()]);
      row.push_back(format_number(m.confidence[i].item<double>(), 4));
      row.push_back(m.preds[i].item<int64_t>() != m.labels[i].item<int64_t>() ? "1" : "0");
      for (const auto& r : m.analysis.representations) {
        const auto& km = r.analysis.kmeans.labels;
        const auto& gm = r.analysis.gmm.labels;
        row.push_back(km.defined() ? std::to_string(km[i].item<int64_t>()) : "");
        row.push_back(gm.defined() ? std::to_string(gm[i].item<int64_t>()) : "");
      }
      for (const auto& [name, s] : m.errors.scores) row.push_back(format_number(s[i].item<double>(), 4));
    }
    t.rows.push_back(row);
  }
  (void)cfg;
  return report::to_csv(t);
}

// Grad-CAM overlays: per class up to `per_class` images the first model gets
// right and as many it gets wrong; one column per model.
fs::path evrep_overlay_figure(const EvaluateConfig& cfg, const EvaluateResult& res, const fs::path& dir) {
  const auto& first = res.models.at(0);
  std::vector<int64_t> rows;
  const int64_t k = static_cast<int64_t>(res.class_names.size());
  for (int64_t c = 0; c < k; ++c) {
    for (const bool wrong : {false, true}) {
      int64_t taken = 0;
      for (int64_t i = 0; i < res.n && taken < cfg.overlay_per_class; ++i) {
        if (first.labels[i].item<int64_t>() != c) continue;
        if ((first.preds[i].item<int64_t>() != c) != wrong) continue;
        rows.push_back(i);
        ++taken;
      }
    }
  }
  report::OverlayGrid grid;
  const auto idx = torch::tensor(rows, torch::kLong);
  grid.images = res.images.index_select(0, idx);
  grid.title = fmt::format("Grad-CAM {}, target {}", cfg.layer.empty() ? "at each model's default layer" : cfg.layer,
                           extract::gradient_target_name(cfg.target));
  for (const int64_t i : rows) grid.image_captions.push_back(res.class_names[first.labels[i].item<int64_t>()]);
  for (const auto& m : res.models) {
    report::OverlayColumn col;
    col.title = m.name;
    col.maps = m.saliency.maps.index_select(0, idx);
    for (const int64_t i : rows) {
      const int64_t p = m.preds[i].item<int64_t>();
      col.captions.push_back(fmt::format("{} {:.0f}%", res.class_names[p],
                                         100.0 * m.confidence[i].item<double>()));
      col.marked.push_back(p != m.labels[i].item<int64_t>());
    }
    grid.columns.push_back(std::move(col));
  }
  const fs::path png = dir / "gradcam-overlays.png";
  report::OverlayOptions oo;
  oo.cell_size = 140;
  report::write_overlay_grid(png, grid, oo);
  return png;
}

std::vector<double> evrep_vec(const torch::Tensor& t) {
  auto c = t.to(torch::kCPU, torch::kFloat64).contiguous();
  return {c.data_ptr<double>(), c.data_ptr<double>() + c.numel()};
}

nlohmann::json evrep_json(const EvaluateConfig& cfg, const RunContext& ctx, const EvaluateResult& res) {
  nlohmann::json j;
  j["format"] = "gradlens-evaluate/1";
  j["protocol"] = {{"text", evrep_protocol(cfg, ctx, res)},
                   {"data", cfg.data.data},
                   {"per_class", cfg.per_class},
                   {"input", {{"mean", res.input_mean},
                              {"std", res.input_std},
                              {"input_range", res.input_range},
                              {"resize", cfg.data.resize},
                              {"text", res.input}}},
                   {"images", res.n},
                   {"layer", cfg.layer.empty() ? "last" : cfg.layer},
                   {"target", extract::gradient_target_name(cfg.target)},
                   {"pca_dims", cfg.analyze.pca_dims},
                   {"normalize", analysis::row_normalization_name(cfg.analyze.normalize)},
                   {"k", cfg.analyze.k},
                   {"kmeans_n_init", cfg.analyze.kmeans_n_init},
                   {"gmm_covariance", analysis::covariance_type_name(cfg.analyze.gmm_covariance)},
                   {"flip_fraction", cfg.flip_fraction},
                   {"neighbors", cfg.neighbors},
                   {"label_error_embedding", cfg.label_error_embedding},
                   {"seed", ctx.seed},
                   {"device", device_name(ctx)},
                   {"threads", ctx.threads},
                   {"libtorch", core::torch_version()}};
  j["class_names"] = res.class_names;
  j["warnings"] = res.warnings;
  nlohmann::json models = nlohmann::json::array();
  for (const auto& m : res.models) {
    nlohmann::json jm;
    jm["spec"] = m.spec;
    jm["name"] = m.name;
    jm["checkpoint"] = m.checkpoint;
    jm["description"] = m.description;
    jm["layer"] = m.layer;
    jm["run_dir"] = m.run_dir.string();
    jm["extraction_cached"] = m.extraction_cached;
    jm["accuracy"] = m.errors.accuracy;
    nlohmann::json reps = nlohmann::json::object();
    for (const auto& r : m.analysis.representations) {
      auto cl = [](const analysis::ClusteringResult& c) {
        nlohmann::json o = {{"ari", c.ari}, {"nmi", c.nmi}, {"ami", c.ami}, {"silhouette", c.silhouette},
                            {"accuracy", c.accuracy}, {"converged", c.converged}, {"n_iter", c.n_iter}};
        if (!c.error.empty()) o["error"] = c.error;
        return o;
      };
      reps[r.name] = {{"cos_sim", r.analysis.cosine.cos_sim},
                      {"dims", r.analysis.d},
                      {"clustering_input", r.analysis.clustering_input},
                      {"pca_cumulative_ratio", r.analysis.pca.cumulative_ratio},
                      {"kmeans", cl(r.analysis.kmeans)},
                      {"gmm", cl(r.analysis.gmm)},
                      {"degenerate", r.degenerate},
                      {"label_informed", r.label_informed}};
    }
    jm["representations"] = reps;
    nlohmann::json sal = nlohmann::json::object();
    for (const auto& [name, mean, sd] : m.saliency.metrics) sal[name] = {{"mean", mean}, {"std", sd}};
    jm["grad_cam"] = {{"reference", "class-mean map"}, {"metrics", sal}, {"constant_maps", m.saliency.constant_maps}};
    if (!m.methods.empty()) {
      const auto num = [](double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); };
      nlohmann::json meth = nlohmann::json::array();
      for (const auto& f : m.methods)
        meth.push_back({{"method", f.method},
                        {"deletion_auc", num(f.deletion_auc)},
                        {"insertion_auc", num(f.insertion_auc)},
                        {"average_drop", num(f.average_drop)},
                        {"road_combined", num(f.road_combined)},
                        {"pointing_game", num(f.pointing_game)},
                        {"randomisation_spearman", num(f.randomisation_spearman)},
                        {"randomised_groups", f.randomised},
                        {"deletion_curve", evrep_vec(f.deletion_curve)},
                        {"insertion_curve", evrep_vec(f.insertion_curve)},
                        {"curve_fractions", evrep_vec(f.curve_fractions)},
                        {"randomisation_figure_index", res.indices.defined()
                                                           ? res.indices[f.figure_row].item<int64_t>()
                                                           : f.figure_row},
                        {"seconds", f.seconds}});
      jm["attribution_methods"] = meth;
    }
    if (!m.saliency.localisation.empty()) {
      nlohmann::json loc = nlohmann::json::object();
      for (const auto& [name, mean, n] : m.saliency.localisation)
        loc[name] = {{"mean", std::isfinite(mean) ? nlohmann::json(mean) : nlohmann::json(nullptr)}, {"n", n}};
      jm["grad_cam"]["localisation"] = {{"reference", "object masks"},
                                        {"pointing_tolerance_px", m.saliency.pointing_tolerance},
                                        {"metrics", loc}};
    }
    nlohmann::json ranking = nlohmann::json::array();
    for (const auto& q : m.errors.ranking)
      ranking.push_back({{"score", q.score},
                         {"auroc", q.auroc},
                         {"precision_at_flipped", q.precision_at_flipped},
                         {"precision_at_10", q.precision_at_10}});
    std::vector<std::vector<int64_t>> conf;
    for (int64_t a = 0; a < m.errors.confusion.size(0); ++a) {
      std::vector<int64_t> row;
      for (int64_t b = 0; b < m.errors.confusion.size(1); ++b) row.push_back(m.errors.confusion[a][b].item<int64_t>());
      conf.push_back(row);
    }
    jm["misclassification"] = {{"errors", m.errors.errors},
                               {"confusion", conf},
                               {"per_class_accuracy", evrep_vec(m.errors.per_class_accuracy)},
                               {"flipped", m.errors.flipped},
                               {"label_error_ranking", ranking},
                               {"best_score", m.errors.best_score}};
    nlohmann::json secs = nlohmann::json::object();
    for (const auto& [stage, s] : m.seconds) secs[stage] = s;
    jm["seconds"] = secs;
    models.push_back(jm);
  }
  j["models"] = models;
  return j;
}

std::string evrep_now() {
  std::time_t t = std::time(nullptr);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M UTC", std::gmtime(&t));
  return buf;
}

}  // namespace

void write_evaluate_report(const EvaluateConfig& cfg, const RunContext& ctx, EvaluateResult& res, const fs::path& dir) {
  fs::create_directories(dir / "figures");
  const auto t1 = evrep_table1(cfg, res);
  const auto t2 = evrep_cluster_table(cfg, res, false);
  const auto t3 = evrep_cluster_table(cfg, res, true);
  const auto tpc = evrep_per_class_table(res);
  const auto trank = evrep_ranking_table(res);
  evrep_write_table(dir, "table1-similarity-saliency", t1);
  evrep_write_table(dir, "table2-kmeans", t2);
  evrep_write_table(dir, "table3-gmm", t3);
  evrep_write_table(dir, "per-class-accuracy", tpc);
  evrep_write_table(dir, "label-error-ranking", trank);
  core::write_text_atomically(dir / "samples.csv", evrep_samples_csv(cfg, res));

  // The gnuplot figures render in their own processes: start them all, draw
  // the overlays here meanwhile, then wait (an exception reaches us by get()).
  std::vector<std::future<fs::path>> pca_jobs, confusion_jobs;
  for (const auto& m : res.models) {
    pca_jobs.push_back(std::async(std::launch::async, [&cfg, &res, &m, &dir] {
      return evrep_pca_figure(cfg, res, m, dir / "figures");
    }));
    confusion_jobs.push_back(std::async(std::launch::async, [&res, &m, &dir] {
      return evrep_confusion_figure(res, m, dir / "figures");
    }));
  }
  for (const auto& m : res.models) {
    core::write_npy((dir / "figures" / (m.slug + "-gradcam-maps.npy")).string(), m.saliency.maps);
  }
  const fs::path overlay = evrep_overlay_figure(cfg, res, dir / "figures");
  std::vector<std::pair<fs::path, fs::path>> figures;  // (pca, confusion) per model
  for (size_t i = 0; i < pca_jobs.size(); ++i) figures.emplace_back(pca_jobs[i].get(), confusion_jobs[i].get());
  const std::string protocol = evrep_protocol(cfg, ctx, res);
  const std::string when = evrep_now();
  const std::string machine =
      fmt::format("{} hardware threads, device {}, LibTorch {}", std::thread::hardware_concurrency(), device_name(ctx),
                  core::torch_version());
  const std::string flags_note =
      "Flags: 'degenerate' = the audit found the representation degenerate (e.g. Grad-CAM weights at the last "
      "layer of a GAP + linear head equal the head weights of the target class: at most one distinct row per "
      "class, so clustering them returns the predicted labels); 'label-informed' = computed with the true labels.";

  // One document, rendered as report.md and report.html.
  report::Document doc("gradlens evaluation report");
  doc.paragraph(when + " · " + machine);
  doc.paragraph("Protocol: " + protocol);
  for (const auto& w : res.warnings) doc.warning(w);
  doc.heading("Table 1: cosine similarity and Grad-CAM saliency");
  doc.paragraph("Cos_Sim_* = mean within-class cosine similarity of the Grad-CAM weights (GW), final predictions "
                "(P, softmax) and feature maps (FM, the layer's activations); Grad_Cam_* = each image's Grad-CAM "
                "map against the mean map of its class (AUC = AUC-Judd).");
  doc.table(t1);
  if (!res.models.front().saliency.localisation.empty()) {
    report::Table tl;
    tl.header = {"model", "pointing game", "energy pointing game", "relevance rank accuracy", "images"};
    for (const auto& m : res.models) {
      std::vector<std::string> row = {m.name};
      int64_t n = 0;
      for (const auto& [name, mean, count] : m.saliency.localisation) {
        row.push_back(std::isfinite(mean) ? fmt::format("{:.4f}", mean) : "n/a");
        n = std::max(n, count);
      }
      row.push_back(std::to_string(n));
      tl.rows.push_back(std::move(row));
    }
    doc.heading("Grad-CAM against the object masks");
    doc.paragraph(fmt::format(
        "Does each image's Grad-CAM map point at the object? Pointing game: the map's maximum within {:.1f} px of "
        "an object pixel (TorchRay's 15 px at 224 px, scaled); energy: the share of the map on the object; "
        "relevance rank accuracy: the share of the map's K highest pixels on the K object pixels. Higher is "
        "better (docs/saliency.md).",
        res.models.front().saliency.pointing_tolerance));
    doc.table(tl);
  }
  if (!res.models.front().methods.empty()) {
    report::Table tm;
    tm.header = {"model", "method", "deletion AUC (lower)", "insertion AUC (higher)", "average drop (lower)",
                 "ROAD combined (higher)", "pointing game (higher)", "randomisation Spearman (lower)"};
    const auto cell = [](double v) { return std::isfinite(v) ? fmt::format("{:.4f}", v) : std::string("n/a"); };
    for (const auto& m : res.models)
      for (const auto& f : m.methods)
        tm.rows.push_back({m.name, f.method, cell(f.deletion_auc), cell(f.insertion_auc), cell(f.average_drop),
                           cell(f.road_combined), cell(f.pointing_game), cell(f.randomisation_spearman)});
    doc.heading("Which attribution method is faithful?");
    doc.paragraph(
        "Each method's maps of the evaluated images for the predicted class, scored by perturbing the input in "
        "the map's order (deletion and insertion AUC, 20 steps, zero baseline; average drop of the image times "
        "its map; ROAD with noisy linear imputation at 10-90%), against the object masks where there are any, "
        "and by the cascading randomisation of the head's last two parameter groups (" +
        res.models.front().methods.front().randomised +
        "): a map that still correlates with the trained model's explains the image, not the model "
        "(docs/saliency.md).");
    doc.table(tm);
    for (const auto& m : res.models) {
      const auto curves = evrep_curve_figures(m, dir / "figures");
      doc.image(fs::path("figures") / curves[0].filename(), m.name + ": deletion curves",
                "Mean probability of the predicted class as the most relevant pixels of each method's map are "
                "removed (replaced by the zero baseline); a faithful map makes it fall fast.");
      doc.image(fs::path("figures") / curves[1].filename(), m.name + ": insertion curves",
                "Mean probability as the pixels are put back into the baseline image in the same order; a "
                "faithful map makes it rise fast.");
      const auto rnd = evrep_randomisation_figure(res, m, dir / "figures");
      doc.image(fs::path("figures") / rnd.filename(), m.name + ": cascading randomisation",
                "One image's map by each method on the trained model, then after randomising the parameter "
                "groups from the head down (Adebayo et al. 2018): a map that does not change explains the "
                "image, not the model.");
    }
  }
  doc.heading("Table 2: KMeans");
  doc.table(t2);
  doc.paragraph(flags_note);
  doc.heading("Table 3: GMM");
  doc.table(t3);
  doc.heading("Grad-CAM overlays");
  doc.image(fs::path("figures") / overlay.filename(), "Grad-CAM overlays",
            "Correct and misclassified images per class, one column per model; red frames mark "
            "misclassifications.");
  doc.heading("Misclassifications");
  doc.heading("Per-class accuracy", 3);
  doc.table(tpc);
  doc.heading("Label-error ranking", 3);
  doc.paragraph(fmt::format("{:.0f}% of the evaluation labels were flipped at random (seed {}); each score ranks "
                            "all images, and AUROC / precision measure how well it finds the flipped ones.",
                            100.0 * cfg.flip_fraction, ctx.seed));
  doc.table(trank);
  for (size_t i = 0; i < res.models.size(); ++i) {
    const auto& m = res.models[i];
    doc.heading(m.name, 3);
    doc.image(fs::path("figures") / figures[i].first.filename(), m.name + " PCA",
              "The seed's figure: PCA of gradient weights, final predictions and feature maps, coloured by class, "
              "KMeans and GMM clusters.");
    doc.image(fs::path("figures") / figures[i].second.filename(), m.name + " confusion matrix");
    doc.table(evrep_suspects_table(res, m, 15), "Most suspicious given labels");
    doc.table(evrep_neighbors_table(res, m, 15), "Misclassified images: classes of their nearest neighbours");
  }
  core::write_text_atomically(dir / "report.md", doc.to_markdown());
  core::write_text_atomically(dir / "report.html", doc.to_html(dir));
  // Last: report.json marks a complete report.
  core::write_text_atomically(dir / "report.json", evrep_json(cfg, ctx, res).dump(2) + "\n");
}

}  // namespace gradlens::pipeline
