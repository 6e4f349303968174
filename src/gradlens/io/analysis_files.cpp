#include "gradlens/io/analysis_files.h"
#include <torch/types.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <torch/version.h>

#include <cmath>
#include <string>
#include <vector>

#include "gradlens/core/check.h"
#include "gradlens/core/fs.h"
#include "gradlens/core/npy.h"

namespace gradlens::io {

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

json af_num(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

std::string af_csv_num(double v) { return std::isfinite(v) ? fmt::format("{:.10g}", v) : std::string(); }
std::string af_md_num(double v, int digits = 4) {
  return std::isfinite(v) ? fmt::format("{:.{}f}", v, digits) : std::string("–");
}

json af_clustering_json(const analysis::ClusteringResult& c, const std::string& file) {
  json j{{"ari", af_num(c.ari)},
         {"nmi", af_num(c.nmi)},
         {"ami", af_num(c.ami)},
         {"silhouette", af_num(c.silhouette)},
         {"accuracy", af_num(c.accuracy)},
         {"clusters_found", c.clusters_found},
         {"converged", c.converged},
         {"n_iter", c.n_iter},
         {"seconds", c.seconds},
         {"labels", c.error.empty() ? json(file) : json(nullptr)},
         {"error", c.error.empty() ? json(nullptr) : json(c.error)}};
  if (c.method == "kmeans") j["inertia"] = af_num(c.inertia);
  if (c.method == "gmm") j["lower_bound"] = af_num(c.lower_bound);
  return j;
}

}  // namespace

AnalysisPaths write_analysis(const fs::path& dir, const analysis::RunAnalysis& res,
                             const analysis::RunAnalysisOptions& opts, const extract::RunManifest& manifest) {
  AnalysisPaths paths;
  paths.json = dir / "analysis.json";
  paths.csv = dir / "analysis.csv";
  paths.markdown = dir / "analysis.md";
  {
    std::error_code ec;
    fs::remove(paths.json, ec);
    GRADLENS_CHECK(!ec, "RUN_DIR: cannot remove the previous ", paths.json.string(), ": ", ec.message());
  }
  core::ensure_writable_dir(dir / "clusters", "RUN_DIR");
  core::ensure_writable_dir(dir / "pca2", "RUN_DIR");
  const auto& o = opts.options;
  json out = json::object();
  std::string csv =
      "representation,method,input,dims,k,ari,nmi,ami,silhouette,accuracy,cos_sim,degenerate,label_informed\n";
  for (const auto& a : res.representations) {
    const auto& r = a.analysis;
    json rj;
    rj["file"] = a.file;
    rj["rows"] = r.n;
    rj["cols"] = r.d;
    rj["cos_sim"] = af_num(r.cosine.cos_sim);
    json within = json::object();
    const auto cls = r.cosine.classes.to(torch::kCPU);
    const auto win = r.cosine.within.to(torch::kCPU, torch::kDouble);
    for (int64_t c = 0; c < cls.size(0); ++c) {
      const int64_t label = cls[c].item<int64_t>();
      const std::string key = label < static_cast<int64_t>(res.class_names.size())
                                  ? res.class_names[static_cast<size_t>(label)]
                                  : std::to_string(label);
      within[key] = af_num(win[c].item<double>());
    }
    rj["cos_sim_within"] = within;
    rj["zero_vectors"] = r.cosine.zero_vectors;
    rj["cos_sim_classes_used"] = r.cosine.classes_used;
    rj["pca"] = {{"explained_variance_ratio", r.pca.explained_variance_ratio},
                 {"dims", r.pca.dims},
                 {"cumulative_ratio", af_num(r.pca.cumulative_ratio)},
                 {"solver", analysis::pca_solver_name(r.pca.solver)},
                 {"scores_2d", "pca2/" + a.name + ".npy"}};
    rj["clustering_input"] = r.clustering_input;
    rj["clustering_dims"] = r.clustering_dims;
    rj["k"] = r.k;
    for (const auto* c : {&r.kmeans, &r.gmm}) {
      const fs::path lp = dir / "clusters" / (a.name + "." + c->method + ".npy");
      if (c->error.empty()) {
        core::write_npy(lp, c->labels.to(torch::kCPU, torch::kLong));
      } else {
        std::error_code ec;
        fs::remove(lp, ec);  // no stale labels from an earlier analysis
      }
      rj[c->method] = af_clustering_json(*c, "clusters/" + lp.filename().string());
      csv += fmt::format("{},{},{},{},{},{},{},{},{},{},{},{},{}\n", a.name, c->method, r.clustering_input,
                         r.clustering_dims, r.k, af_csv_num(c->ari), af_csv_num(c->nmi), af_csv_num(c->ami),
                         af_csv_num(c->silhouette), af_csv_num(c->accuracy), af_csv_num(r.cosine.cos_sim),
                         a.audit_source == "none" ? "" : (a.degenerate ? "true" : "false"),
                         a.label_informed ? "true" : "false");
    }
    core::write_npy(dir / "pca2" / (a.name + ".npy"), r.pca2.to(torch::kCPU, torch::kFloat));
    if (a.audit_source == "none") {
      rj["audit"] = nullptr;
    } else {
      json aj = a.audit;
      rj["audit"] = aj;
    }
    rj["audit_source"] = a.audit_source;
    rj["degenerate"] = a.audit_source == "none" ? json(nullptr) : json(a.degenerate);
    rj["label_informed"] = a.label_informed;
    rj["warnings"] = a.warnings;
    json secs = json::object();
    for (const auto& [stage, s] : r.seconds) secs[stage] = s;
    rj["seconds"] = secs;
    out[a.name] = rj;
  }
  std::vector<std::string> names;
  for (const auto& a : res.representations) names.push_back(a.name);
  const std::string solver = analysis::pca_solver_name(o.pca_solver);
  out["protocol"] = {
      {"format", "gradlens-analyze"},
      {"format_version", 1},
      {"run_dir", dir.string()},
      {"n", res.n},
      {"num_classes", res.num_classes},
      {"class_names", res.class_names},
      {"representations", names},
      {"k", res.k},
      {"cos_sim", "mean over classes of the mean pairwise cosine within the class, on the raw rows"},
      {"normalize", analysis::row_normalization_name(o.normalize)},
      {"pca_dims", o.pca_dims},
      {"pca_solver", solver},
      {"kmeans",
       {{"init", "k-means++"}, {"n_init", o.kmeans_n_init}, {"max_iter", o.kmeans_max_iter}, {"tol", o.kmeans_tol}}},
      {"gmm",
       {{"covariance", analysis::covariance_type_name(o.gmm_covariance)},
        {"init", "kmeans"},
        {"n_init", o.gmm_n_init},
        {"max_iter", o.gmm_max_iter},
        {"tol", o.gmm_tol},
        {"reg_covar", o.reg_covar}}},
      {"silhouette", {{"metric", "euclidean"}, {"on", "clustering input"}, {"sample_size", o.silhouette_sample_size}}},
      {"nmi_average", "arithmetic"},
      {"seed", o.seed},
      {"audit", opts.audit},
      {"warnings", res.warnings},
      {"libtorch_version", TORCH_VERSION},
      {"seconds", res.seconds}};

  // Markdown.
  std::string md = fmt::format("# Analysis of {}\n\n", dir.string());
  md += fmt::format("{} samples, {} classes, dataset {}, model {}.\n\n", res.n, res.num_classes,
                    manifest.dataset.empty() ? "?" : manifest.dataset, manifest.model.empty() ? "?" : manifest.model);
  md += "| representation | method | input | ARI | NMI | AMI | silhouette | accuracy | Cos_Sim | flags |\n"
        "|---|---|---|---|---|---|---|---|---|---|\n";
  for (const auto& a : res.representations) {
    const auto& r = a.analysis;
    std::string flags;
    if (a.degenerate) flags += "degenerate";
    if (a.label_informed) flags += std::string(flags.empty() ? "" : ", ") + "label-informed";
    for (const auto* c : {&r.kmeans, &r.gmm})
      md += fmt::format("| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n", a.name, c->method,
                        r.clustering_input, af_md_num(c->ari), af_md_num(c->nmi), af_md_num(c->ami),
                        af_md_num(c->silhouette), af_md_num(c->accuracy), af_md_num(r.cosine.cos_sim),
                        c->error.empty() ? flags : "failed: " + c->error);
  }
  md += "\nPCA (explained-variance ratio of the first components; cumulative at the dims clustered):\n\n";
  md += "| representation | D | dims | cumulative | first components |\n|---|---|---|---|---|\n";
  for (const auto& a : res.representations) {
    std::string first;
    for (double v : a.analysis.pca.explained_variance_ratio) first += (first.empty() ? "" : " ") + af_md_num(v, 3);
    md += fmt::format("| {} | {} | {} | {} | {} |\n", a.name, a.analysis.d, a.analysis.pca.dims,
                      af_md_num(a.analysis.pca.cumulative_ratio), first);
  }
  md += "\n## Warnings\n\n";
  if (res.warnings.empty()) md += "None.\n";
  for (const auto& w : res.warnings) md += "- " + w + "\n";
  md += "\n## Protocol\n\n";
  md += "- Cos_Sim: mean over classes of the mean pairwise cosine similarity within the class, on the raw "
        "rows (not normalised, not reduced); zero rows count as cosine 0.\n";
  md += fmt::format("- Rows normalised: {}; then PCA ({}) to min({}, D, N - 1) dimensions{}.\n",
                    analysis::row_normalization_name(o.normalize), solver, o.pca_dims,
                    o.pca_dims == 0 ? " (0: clustering the rows themselves)" : "");
  md += fmt::format("- k = {} clusters{}.\n", res.k, o.k == 0 ? " (the number of classes)" : "");
  md += fmt::format("- KMeans: k-means++, n_init {}, max_iter {}, tol {} (scikit-learn 1.2 Lloyd).\n",
                    o.kmeans_n_init, o.kmeans_max_iter, o.kmeans_tol);
  md += fmt::format("- GMM: {} covariance, KMeans init, n_init {}, max_iter {}, tol {}, reg_covar {}.\n",
                    analysis::covariance_type_name(o.gmm_covariance), o.gmm_n_init, o.gmm_max_iter, o.gmm_tol,
                    o.reg_covar);
  md += fmt::format("- Scores: ARI, NMI (arithmetic), AMI and Hungarian accuracy against the true labels; "
                    "Euclidean silhouette on the clustering input ({}).\n",
                    o.silhouette_sample_size > 0 ? fmt::format("{} samples", o.silhouette_sample_size)
                                                 : std::string("exact"));
  md += fmt::format("- Seed {} (numpy RandomState, as scikit-learn's random_state).\n", o.seed);
  md += fmt::format("- Audit: {}.\n", opts.audit ? "on (manifest's when present, else computed)" : "off");

  core::write_text_atomically(paths.csv, csv);
  core::write_text_atomically(paths.markdown, md);
  core::write_text_atomically(paths.json, out.dump(2) + "\n");
  return paths;
}

}  // namespace gradlens::io
