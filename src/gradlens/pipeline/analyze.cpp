#include "gradlens/pipeline/analyze.h"
#include <torch/types.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <torch/version.h>

#include <chrono>
#include <cctype>
#include <cmath>
#include <exception>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "gradlens/core/check.h"
#include "gradlens/core/fs.h"
#include "gradlens/core/npy.h"
#include "gradlens/models/checkpoint.h"
#include "gradlens/reduce/validate.h"

namespace gradlens::pipeline {

namespace {

namespace afs = std::filesystem;
using json = nlohmann::json;
using AnClock = std::chrono::steady_clock;

constexpr double kAnNaN = std::numeric_limits<double>::quiet_NaN();

json an_num(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

double an_double(const json& j, const char* key) {
  const auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<double>() : kAnNaN;
}

template <typename T>
T an_get(const json& j, const char* key, T fallback) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  try {
    return it->get<T>();
  } catch (const json::exception&) {
    return fallback;
  }
}

// A manifest's audit entry read back into an AuditResult (nulls are NaN).
extract::AuditResult an_audit_from_json(const json& j, const std::string& name) {
  extract::AuditResult r;
  r.name = an_get<std::string>(j, "name", name);
  r.rows = an_get<int64_t>(j, "rows", 0);
  r.cols = an_get<int64_t>(j, "cols", 0);
  r.distinct_rows = an_get<int64_t>(j, "distinct_rows", 0);
  r.zero_rows = an_get<int64_t>(j, "zero_rows", 0);
  r.rank = an_get<int64_t>(j, "rank", 0);
  r.rank_rows = an_get<int64_t>(j, "rank_rows", 0);
  r.rank_tol = an_double(j, "rank_tol");
  r.top_singular_value = an_double(j, "top_singular_value");
  r.identity_checked = an_get<bool>(j, "identity_checked", false);
  r.identity_max_abs_diff = an_double(j, "identity_max_abs_diff");
  r.identity_rel_diff = an_double(j, "identity_rel_diff");
  r.equals_head_identity = an_get<bool>(j, "equals_head_identity", false);
  r.uses_true_labels = an_get<bool>(j, "uses_true_labels", false);
  r.ncm_accuracy = an_double(j, "ncm_accuracy");
  r.majority_accuracy = an_double(j, "majority_accuracy");
  r.degenerate = an_get<bool>(j, "degenerate", false);
  r.label_informed = an_get<bool>(j, "label_informed", r.uses_true_labels);
  r.warnings = an_get<std::vector<std::string>>(j, "warnings", {});
  return r;
}

json an_manifest(const afs::path& run_dir) {
  GRADLENS_CHECK(afs::is_directory(run_dir), "RUN_DIR ", run_dir.string(),
                 ": no such directory; give a run directory written by 'gradlens extract --out'");
  const afs::path mp = run_dir / "manifest.json";
  GRADLENS_CHECK(afs::exists(mp), "RUN_DIR ", run_dir.string(),
                 " is not a gradlens run directory (no manifest.json); run 'gradlens extract --out ",
                 run_dir.string(), "' first");
  json m;
  try {
    m = json::parse(core::read_file(mp));
  } catch (const json::exception& e) {
    GRADLENS_CHECK(false, mp.string(), ": not valid JSON (", e.what(), "); re-run 'gradlens extract'");
  }
  GRADLENS_CHECK(m.is_object() && m.value("format", std::string()) == "gradlens-extract" &&
                     m.contains("representations") && m["representations"].is_array(),
                 mp.string(), ": not a gradlens-extract manifest (no \"representations\" list)");
  return m;
}

// The manifest's representation entries that hold float matrices.
std::vector<json> an_float_entries(const json& m) {
  std::vector<json> out;
  for (const auto& e : m["representations"]) {
    if (!e.is_object() || !e.contains("name") || !e["name"].is_string()) continue;
    const std::string dtype = an_get<std::string>(e, "dtype", "float32");
    if (dtype != "float32" && dtype != "float64") continue;
    const std::string name = e["name"];
    if (name == "labels" || name == "preds") continue;
    out.push_back(e);
  }
  return out;
}

// Rethrows any exception with the representation's name in front.
[[noreturn]] void an_rethrow_named(const std::string& name, const std::exception& e) {
  const std::string msg = error_message(e);
  if (msg.find("'" + name + "'") != std::string::npos) throw;
  GRADLENS_CHECK(false, "representation '", name, "': ", msg);
  throw;  // unreachable
}

// The Grad-CAM head identity of a gradcam-weights representation, when the
// run directory still has everything it needs; undefined otherwise.
struct AnHeadModel {
  bool tried = false;
  torch::Tensor fc_weight;  // [K, D] double, undefined when unavailable
  std::string layer;
};

torch::Tensor an_head_identity(const json& m, const json& entry, const afs::path& run_dir,
                               const torch::Tensor& x, const torch::Tensor& labels,
                               AnHeadModel& head) {
  if (an_get<std::string>(entry, "representation", "") != "gradcam-weights") return {};
  if (!head.tried) {
    head.tried = true;
    try {
      const std::string spec = an_get<std::string>(m, "model_spec", "");
      const std::string crc = an_get<std::string>(m, "checkpoint_crc32", "");
      if (!spec.empty() && !crc.empty() && afs::is_regular_file(spec) && models::is_checkpoint(spec) &&
          core::file_crc32(spec) == crc) {
        auto ck = models::load_checkpoint(spec, torch::kCPU);
        head.fc_weight = ck.model->fc_weight().detach().to(torch::kCPU, torch::kDouble);
        head.layer = ck.model->default_layer();
      }
    } catch (const std::exception&) {
      head.fc_weight = torch::Tensor();  // unreadable: skip the identity check
    }
  }
  if (!head.fc_weight.defined()) return {};
  const auto& w = head.fc_weight;
  if (an_get<std::string>(m, "layer", "") != head.layer || x.size(1) != w.size(1)) return {};
  const auto ms = an_get<std::vector<int64_t>>(m, "map_size", {});
  if (ms.size() != 2 || ms[0] <= 0 || ms[1] <= 0) return {};
  const int64_t k = w.size(0);
  const std::string variant = an_get<std::string>(entry, "variant", "pred");
  torch::Tensor g;
  if (variant == "pred" || variant == "true") {
    const afs::path p = run_dir / (variant == "pred" ? an_get<std::string>(m, "preds", "preds.npy")
                                                     : an_get<std::string>(m, "labels", "labels.npy"));
    const auto y = variant == "true" ? labels : (afs::exists(p) ? core::read_npy(p) : torch::Tensor());
    if (!y.defined() || y.dim() != 1 || y.size(0) != x.size(0) || y.scalar_type() != torch::kLong) return {};
    if (y.min().item<int64_t>() < 0 || y.max().item<int64_t>() >= k) return {};
    g = torch::one_hot(y, k).to(torch::kDouble);
  } else if (variant == "loss") {
    torch::Tensor probs;
    if (afs::exists(run_dir / "probs.npy")) probs = core::read_npy_matrix(run_dir / "probs.npy").to(torch::kDouble);
    else if (afs::exists(run_dir / "logits.npy"))
      probs = torch::softmax(core::read_npy_matrix(run_dir / "logits.npy").to(torch::kDouble), 1);
    if (!probs.defined() || probs.size(0) != x.size(0) || probs.size(1) != k) return {};
    if (labels.max().item<int64_t>() >= k) return {};
    g = probs - torch::one_hot(labels, k).to(torch::kDouble);
  } else {
    return {};
  }
  return extract::gradcam_head_identity(w, g, ms[0] * ms[1]);
}

std::string an_csv_num(double v) { return std::isfinite(v) ? fmt::format("{:.10g}", v) : std::string(); }
std::string an_md_num(double v, int digits = 4) {
  return std::isfinite(v) ? fmt::format("{:.{}f}", v, digits) : std::string("–");
}

json an_clustering_json(const analysis::ClusteringResult& c, const std::string& file) {
  json j{{"ari", an_num(c.ari)},
         {"nmi", an_num(c.nmi)},
         {"ami", an_num(c.ami)},
         {"silhouette", an_num(c.silhouette)},
         {"accuracy", an_num(c.accuracy)},
         {"clusters_found", c.clusters_found},
         {"converged", c.converged},
         {"n_iter", c.n_iter},
         {"seconds", c.seconds},
         {"labels", c.error.empty() ? json(file) : json(nullptr)},
         {"error", c.error.empty() ? json(nullptr) : json(c.error)}};
  if (c.method == "kmeans") j["inertia"] = an_num(c.inertia);
  if (c.method == "gmm") j["lower_bound"] = an_num(c.lower_bound);
  return j;
}

// Representation names become file names under clusters/ and pca2/.
bool an_safe_name(const std::string& name) {
  if (name.empty() || name[0] == '.') return false;
  for (char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_')) return false;
  return true;
}

}  // namespace

std::vector<std::string> list_representations(const std::filesystem::path& run_dir) {
  std::vector<std::string> names;
  for (const auto& e : an_float_entries(an_manifest(run_dir))) names.push_back(e["name"].get<std::string>());
  return names;
}

AnalyzeResult run_analyze(const AnalyzeConfig& cfg, const core::ProgressFn& progress) {
  const auto t_total = AnClock::now();
  GRADLENS_CHECK(!cfg.run_dir.empty(), "RUN_DIR: no run directory given");
  const afs::path run_dir = afs::absolute(cfg.run_dir).lexically_normal();
  const json m = an_manifest(run_dir);
  const auto entries = an_float_entries(m);
  std::map<std::string, json> by_name;
  std::string available;
  for (const auto& e : entries) {
    by_name[e["name"].get<std::string>()] = e;
    available += (available.empty() ? "" : ", ") + e["name"].get<std::string>();
  }
  GRADLENS_CHECK(!entries.empty(), run_dir.string(), "/manifest.json lists no float representation to analyse");

  // Which representations, in manifest order unless named.
  std::vector<json> selected;
  if (cfg.representations.empty()) {
    selected = entries;
  } else {
    for (const auto& name : cfg.representations) {
      const auto it = by_name.find(name);
      if (it == by_name.end())
        throw UsageError("--representations: '" + name + "' is not in " + run_dir.string() +
                         "/manifest.json; available: " + available);
      bool dup = false;
      for (const auto& s : selected) dup = dup || s["name"] == name;
      if (!dup) selected.push_back(it->second);
    }
  }

  // Labels and classes.
  const afs::path labels_path = run_dir / an_get<std::string>(m, "labels", "labels.npy");
  torch::Tensor labels;
  try {
    labels = core::read_npy(labels_path);
  } catch (const std::exception& e) {
    GRADLENS_CHECK(false, error_message(e), "; the run directory is damaged: re-run 'gradlens extract'");
  }
  GRADLENS_CHECK(labels.dim() == 1 && labels.scalar_type() == torch::kLong, labels_path.string(),
                 ": expected int64 [N] labels, got ", c10::toString(labels.scalar_type()), " ",
                 labels.sizes(), "; re-run 'gradlens extract'");
  const int64_t n = labels.size(0);
  GRADLENS_CHECK(n >= 2, labels_path.string(), ": ", n,
                 " sample(s); the analysis needs at least 2 (extract more with --per-class)");
  const int64_t lmin = labels.min().item<int64_t>(), lmax = labels.max().item<int64_t>();
  GRADLENS_CHECK(lmin >= 0, labels_path.string(), ": negative label ", lmin);
  int64_t num_classes = an_get<int64_t>(m, "num_classes", 0);
  num_classes = std::max(num_classes, lmax + 1);
  const int64_t k = cfg.options.k == 0 ? num_classes : cfg.options.k;
  if (cfg.options.k < 0) throw UsageError("--k must be >= 0 (0 = the number of classes), got " +
                                          std::to_string(cfg.options.k));
  if (k > n)
    throw UsageError("--k " + std::to_string(k) + (cfg.options.k == 0 ? " (the number of classes)" : "") +
                     " is larger than the " + std::to_string(n) + " samples of " + run_dir.string() +
                     "; use --k <= " + std::to_string(n) + " or extract more images");

  // Check every selected file before the (long) analysis starts.
  std::vector<afs::path> files;
  for (const auto& e : selected) {
    const std::string name = e["name"];
    GRADLENS_CHECK(an_safe_name(name), run_dir.string(), "/manifest.json: representation name '", name,
                   "' is not a plain file name (letters, digits, '.', '-', '_'); the manifest is damaged");
    const afs::path p = run_dir / an_get<std::string>(e, "file", name + ".npy");
    GRADLENS_CHECK(afs::exists(p), "representation '", name, "': ", p.string(),
                   " listed in manifest.json is missing; re-run 'gradlens extract'");
    core::NpyHeader h;
    try {
      h = core::read_npy_header(p);
    } catch (const std::exception& ex) {
      GRADLENS_CHECK(false, error_message(ex), " (representation '", name,
                     "'); the file is damaged: re-run 'gradlens extract'");
    }
    GRADLENS_CHECK(h.dtype == torch::kFloat || h.dtype == torch::kDouble, p.string(), ": holds ",
                   h.descr, " data, not float; representation '", name,
                   "' must be a float32 [N, D] matrix (re-run 'gradlens extract')");
    GRADLENS_CHECK(h.shape.size() == 2, p.string(), ": is ", h.shape.size(),
                   "-D; representation '", name, "' must be a 2-D [N, D] matrix");
    GRADLENS_CHECK(h.shape[1] >= 1, p.string(), ": representation '", name,
                   "' has zero features per row (shape [", h.shape[0], ", 0]); nothing to analyse; "
                   "leave it out with --representations");
    GRADLENS_CHECK(h.shape[0] == n, p.string(), ": ", h.shape[0], " rows but ", labels_path.string(),
                   " has ", n, " labels; the run directory is inconsistent: re-run 'gradlens extract'");
    files.push_back(p);
  }

  AnalyzeResult res;
  res.run_dir = run_dir;
  res.n = n;
  res.num_classes = num_classes;
  res.k = k;
  res.class_names = an_get<std::vector<std::string>>(m, "class_names", {});
  const json manifest_audit = m.contains("audit") && m["audit"].is_object() ? m["audit"] : json::object();
  AnHeadModel head;
  const int64_t total_steps = 4 * static_cast<int64_t>(selected.size());

  for (size_t i = 0; i < selected.size(); ++i) {
    const json& e = selected[i];
    AnalyzedRepresentation a;
    a.name = e["name"].get<std::string>();
    a.file = files[i].filename().string();
    torch::Tensor x;
    try {
      x = core::read_npy_matrix(files[i]);
    } catch (const std::exception& ex) {
      an_rethrow_named(a.name, ex);
    }
    reduce::check_matrix(x, "representation '" + a.name + "' (" + files[i].string() + ")");
    auto inner = [&](const core::ProgressEvent& ev) {
      core::ProgressEvent out = ev;
      out.stage = "analyze";
      out.done = 4 * static_cast<int64_t>(i) + ev.done;
      out.total = total_steps;
      out.elapsed_s = std::chrono::duration<double>(AnClock::now() - t_total).count();
      out.note = a.name + ": " + ev.note;
      out.stage_end = out.done == total_steps;
      core::report(progress, out);
    };
    try {
      analysis::AnalyzeOptions o = cfg.options;
      o.k = k;
      a.analysis = analysis::analyze_representation(x, labels, num_classes, o,
                                                    progress ? core::ProgressFn(inner) : core::ProgressFn());
    } catch (const std::exception& ex) {
      an_rethrow_named(a.name, ex);
    }

    // Audit: the manifest's, or computed now.
    a.label_informed = an_get<bool>(e, "uses_true_labels", false);
    if (cfg.audit) {
      if (manifest_audit.contains(a.name) && manifest_audit[a.name].is_object()) {
        a.audit = an_audit_from_json(manifest_audit[a.name], a.name);
        a.audit_source = "manifest";
      } else {
        extract::AuditInput in{a.name, a.label_informed, {}};
        in.head_identity = an_head_identity(m, e, run_dir, x, labels, head);
        try {
          a.audit = extract::audit_representation(x, labels, num_classes, in, cfg.audit_options);
        } catch (const std::exception& ex) {
          an_rethrow_named(a.name, ex);
        }
        a.audit_source = "computed";
      }
      a.degenerate = a.audit.degenerate;
      a.label_informed = a.label_informed || a.audit.label_informed;
      a.warnings = a.audit.warnings;
    } else if (a.label_informed) {
      a.warnings.push_back(a.name + ": label-informed: computed with the true labels, so it "
                           "separates by label by construction");
    }
    for (const auto* c : {&a.analysis.kmeans, &a.analysis.gmm})
      if (!c->error.empty()) a.warnings.push_back(a.name + ": " + c->method + " failed: " + c->error);
    for (const auto& w : a.warnings) res.warnings.push_back(w);
    res.representations.push_back(std::move(a));
  }

  // Write: the old analysis.json goes first, the new one last.
  res.json_path = run_dir / "analysis.json";
  res.csv_path = run_dir / "analysis.csv";
  res.markdown_path = run_dir / "analysis.md";
  {
    std::error_code ec;
    afs::remove(res.json_path, ec);
    GRADLENS_CHECK(!ec, "RUN_DIR: cannot remove the previous ", res.json_path.string(), ": ", ec.message());
  }
  core::ensure_writable_dir(run_dir / "clusters", "RUN_DIR");
  core::ensure_writable_dir(run_dir / "pca2", "RUN_DIR");
  const auto& o = cfg.options;
  json out = json::object();
  std::string csv =
      "representation,method,input,dims,k,ari,nmi,ami,silhouette,accuracy,cos_sim,degenerate,label_informed\n";
  for (const auto& a : res.representations) {
    const auto& r = a.analysis;
    json rj;
    rj["file"] = a.file;
    rj["rows"] = r.n;
    rj["cols"] = r.d;
    rj["cos_sim"] = an_num(r.cosine.cos_sim);
    json within = json::object();
    const auto cls = r.cosine.classes.to(torch::kCPU);
    const auto win = r.cosine.within.to(torch::kCPU, torch::kDouble);
    for (int64_t c = 0; c < cls.size(0); ++c) {
      const int64_t label = cls[c].item<int64_t>();
      const std::string key = label < static_cast<int64_t>(res.class_names.size())
                                  ? res.class_names[static_cast<size_t>(label)]
                                  : std::to_string(label);
      within[key] = an_num(win[c].item<double>());
    }
    rj["cos_sim_within"] = within;
    rj["zero_vectors"] = r.cosine.zero_vectors;
    rj["cos_sim_classes_used"] = r.cosine.classes_used;
    rj["pca"] = {{"explained_variance_ratio", r.pca.explained_variance_ratio},
                 {"dims", r.pca.dims},
                 {"cumulative_ratio", an_num(r.pca.cumulative_ratio)},
                 {"solver", analysis::pca_solver_name(r.pca.solver)},
                 {"scores_2d", "pca2/" + a.name + ".npy"}};
    rj["clustering_input"] = r.clustering_input;
    rj["clustering_dims"] = r.clustering_dims;
    rj["k"] = r.k;
    for (const auto* c : {&r.kmeans, &r.gmm}) {
      const afs::path lp = run_dir / "clusters" / (a.name + "." + c->method + ".npy");
      if (c->error.empty()) {
        core::write_npy(lp, c->labels.to(torch::kCPU, torch::kLong));
      } else {
        std::error_code ec;
        afs::remove(lp, ec);  // no stale labels from an earlier analysis
      }
      rj[c->method] = an_clustering_json(*c, "clusters/" + lp.filename().string());
      csv += fmt::format("{},{},{},{},{},{},{},{},{},{},{},{},{}\n", a.name, c->method, r.clustering_input,
                         r.clustering_dims, r.k, an_csv_num(c->ari), an_csv_num(c->nmi), an_csv_num(c->ami),
                         an_csv_num(c->silhouette), an_csv_num(c->accuracy), an_csv_num(r.cosine.cos_sim),
                         a.audit_source == "none" ? "" : (a.degenerate ? "true" : "false"),
                         a.label_informed ? "true" : "false");
    }
    core::write_npy(run_dir / "pca2" / (a.name + ".npy"), r.pca2.to(torch::kCPU, torch::kFloat));
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
  res.seconds = std::chrono::duration<double>(AnClock::now() - t_total).count();
  const std::string solver = analysis::pca_solver_name(o.pca_solver);
  out["protocol"] = {
      {"format", "gradlens-analyze"},
      {"format_version", 1},
      {"run_dir", run_dir.string()},
      {"n", n},
      {"num_classes", num_classes},
      {"class_names", res.class_names},
      {"representations", names},
      {"k", k},
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
      {"audit", cfg.audit},
      {"warnings", res.warnings},
      {"libtorch_version", TORCH_VERSION},
      {"seconds", res.seconds}};

  // Markdown.
  std::string md = fmt::format("# Analysis of {}\n\n", run_dir.string());
  md += fmt::format("{} samples, {} classes, dataset {}, model {}.\n\n", n, num_classes,
                    an_get<std::string>(m, "dataset", "?"), an_get<std::string>(m, "model", "?"));
  md += "| representation | method | input | ARI | NMI | AMI | silhouette | accuracy | Cos_Sim | flags |\n"
        "|---|---|---|---|---|---|---|---|---|---|\n";
  for (const auto& a : res.representations) {
    const auto& r = a.analysis;
    std::string flags;
    if (a.degenerate) flags += "degenerate";
    if (a.label_informed) flags += std::string(flags.empty() ? "" : ", ") + "label-informed";
    for (const auto* c : {&r.kmeans, &r.gmm})
      md += fmt::format("| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n", a.name, c->method,
                        r.clustering_input, an_md_num(c->ari), an_md_num(c->nmi), an_md_num(c->ami),
                        an_md_num(c->silhouette), an_md_num(c->accuracy), an_md_num(r.cosine.cos_sim),
                        c->error.empty() ? flags : "failed: " + c->error);
  }
  md += "\nPCA (explained-variance ratio of the first components; cumulative at the dims clustered):\n\n";
  md += "| representation | D | dims | cumulative | first components |\n|---|---|---|---|---|\n";
  for (const auto& a : res.representations) {
    std::string first;
    for (double v : a.analysis.pca.explained_variance_ratio) first += (first.empty() ? "" : " ") + an_md_num(v, 3);
    md += fmt::format("| {} | {} | {} | {} | {} |\n", a.name, a.analysis.d, a.analysis.pca.dims,
                      an_md_num(a.analysis.pca.cumulative_ratio), first);
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
  md += fmt::format("- k = {} clusters{}.\n", k, o.k == 0 ? " (the number of classes)" : "");
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
  md += fmt::format("- Audit: {}.\n", cfg.audit ? "on (manifest's when present, else computed)" : "off");

  core::write_text_atomically(res.csv_path, csv);
  core::write_text_atomically(res.markdown_path, md);
  core::write_text_atomically(res.json_path, out.dump(2) + "\n");
  return res;
}

}  // namespace gradlens::pipeline
