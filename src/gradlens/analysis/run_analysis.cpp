#include "gradlens/analysis/run_analysis.h"
#include <torch/types.h>

#include <algorithm>
#include <exception>
#include <filesystem>
#include <string>

#include "gradlens/core/check.h"
#include "gradlens/core/fs.h"
#include "gradlens/core/timer.h"
#include "gradlens/extract/logit_seed.h"
#include "gradlens/models/checkpoint.h"
#include "gradlens/core/tensor_checks.h"

namespace gradlens::analysis {

namespace {

namespace rfs = std::filesystem;

// Rethrows any exception with the representation's name in front.
[[noreturn]] void run_rethrow_named(const std::string& name, const std::exception& e) {
  const std::string msg = error_message(e);
  if (msg.find("'" + name + "'") != std::string::npos) throw;
  GRADLENS_CHECK(false, "representation '", name, "': ", msg);
  throw;  // unreachable
}

// The head of the run's model, read once from a gradlens checkpoint whose
// CRC-32 still matches the manifest's; undefined otherwise.
struct RunHead {
  bool tried = false;
  torch::Tensor fc_weight;  // [K, D] double
  std::string layer;
};

// The Grad-CAM head identity of a gradcam-weights representation, when the
// run still has everything it needs; undefined otherwise.
torch::Tensor run_head_identity(const extract::ExtractRun& run, const extract::RunEntry& entry,
                                const torch::Tensor& x, const torch::Tensor& labels, RunHead& head) {
  const auto& m = run.manifest;
  if (entry.representation != "gradcam-weights") return {};
  if (!head.tried) {
    head.tried = true;
    try {
      const std::string& spec = m.model_spec;
      if (!spec.empty() && m.checkpoint_crc32 && rfs::is_regular_file(spec) && models::is_checkpoint(spec) &&
          core::file_crc32(spec) == *m.checkpoint_crc32) {
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
  if (m.layer != head.layer || x.size(1) != w.size(1)) return {};
  if (m.map_size.size() != 2 || m.map_size[0] <= 0 || m.map_size[1] <= 0) return {};
  const int64_t k = w.size(0);
  extract::GradientTarget target;
  if (!extract::parse_gradient_target(entry.variant.empty() ? "pred" : entry.variant, target)) return {};
  torch::Tensor classes, probs;
  if (target == extract::GradientTarget::kPred) {
    classes = run.preds;
    if (!classes.defined() || classes.size(0) != x.size(0)) return {};
  } else {
    classes = labels;
  }
  if (classes.min().item<int64_t>() < 0 || classes.max().item<int64_t>() >= k) return {};
  if (target == extract::GradientTarget::kLoss) {
    try {
      if (m.find("probs") != nullptr) probs = run.load("probs").to(torch::kDouble);
      else if (m.find("logits") != nullptr) probs = torch::softmax(run.load("logits").to(torch::kDouble), 1);
    } catch (const std::exception&) {
      return {};
    }
    if (!probs.defined() || probs.size(0) != x.size(0) || probs.size(1) != k) return {};
  }
  const auto g = extract::logit_seed(extract::seed_kind(target), classes, k, probs).to(torch::kDouble);
  return extract::gradcam_head_identity(w, g, m.map_size[0] * m.map_size[1]);
}

}  // namespace

RunAnalysis analyze_run(const extract::ExtractRun& run, const RunAnalysisOptions& opts,
                        const core::ProgressFn& progress, core::Collectives& comm) {
  const core::Stopwatch t_total;
  const auto& m = run.manifest;
  const std::string where = run.dir.empty() ? std::string("the run") : run.dir.string();
  const auto entries = m.float_entries();
  std::string available;
  for (const auto* e : entries) available += (available.empty() ? "" : ", ") + e->name;
  GRADLENS_CHECK(!entries.empty(), where, "/manifest.json lists no float representation to analyse");

  // Which representations, in manifest order unless named.
  std::vector<const extract::RunEntry*> selected;
  if (opts.representations.empty()) {
    selected = entries;
  } else {
    for (const auto& name : opts.representations) {
      const auto it = std::find_if(entries.begin(), entries.end(), [&](const auto* e) { return e->name == name; });
      if (it == entries.end())
        throw UsageError("--representations: '" + name + "' is not in " + where + "/manifest.json; available: " +
                         available);
      if (std::find(selected.begin(), selected.end(), *it) == selected.end()) selected.push_back(*it);
    }
  }

  // Labels and classes.
  const auto& labels = run.labels;
  GRADLENS_CHECK(labels.defined() && labels.dim() == 1 && labels.scalar_type() == torch::kLong,
                 "the run's labels must be int64 [N]");
  const std::string labels_name = run.dir.empty() ? std::string("the labels") : (run.dir / m.labels_file).string();
  const int64_t n = labels.size(0);
  GRADLENS_CHECK(n >= 2, labels_name, ": ", n, " sample(s); the analysis needs at least 2 (extract more with --per-class)");
  const int64_t lmin = labels.min().item<int64_t>(), lmax = labels.max().item<int64_t>();
  GRADLENS_CHECK(lmin >= 0, labels_name, ": negative label ", lmin);
  const int64_t num_classes = std::max(m.num_classes, lmax + 1);
  if (opts.options.k < 0)
    throw UsageError("--k must be >= 0 (0 = the number of classes), got " + std::to_string(opts.options.k));
  const int64_t k = opts.options.k == 0 ? num_classes : opts.options.k;
  if (k > n)
    throw UsageError("--k " + std::to_string(k) + (opts.options.k == 0 ? " (the number of classes)" : "") +
                     " is larger than the " + std::to_string(n) + " samples of " + where + "; use --k <= " +
                     std::to_string(n) + " or extract more images");

  // Check every selected stored file before the (long) analysis starts.
  std::vector<std::string> names;
  for (const auto* e : selected) names.push_back(e->name);
  run.check_outputs(names);

  RunAnalysis res;
  res.run_dir = run.dir;
  res.n = n;
  res.num_classes = num_classes;
  res.k = k;
  res.class_names = m.class_names;
  RunHead head;
  const int64_t total_steps = 4 * static_cast<int64_t>(selected.size());

  for (size_t i = 0; i < selected.size(); ++i) {
    const extract::RunEntry& e = *selected[i];
    AnalyzedRepresentation a;
    a.name = e.name;
    a.file = e.file;
    torch::Tensor x;
    try {
      x = run.load(a.name);
    } catch (const std::exception& ex) {
      run_rethrow_named(a.name, ex);
    }
    const std::string what = run.dir.empty() ? "representation '" + a.name + "'"
                                             : "representation '" + a.name + "' (" + (run.dir / e.file).string() + ")";
    GRADLENS_CHECK(x.dim() == 2 && x.size(0) == n, what, " must be [", n, ", D], got ", x.sizes());
    core::check_matrix(x, what);
    auto inner = [&](const core::ProgressEvent& ev) {
      core::ProgressEvent out = ev;
      out.stage = "analyze";
      out.done = 4 * static_cast<int64_t>(i) + ev.done;
      out.total = total_steps;
      out.elapsed_s = t_total.seconds();
      out.note = a.name + ": " + ev.note;
      out.stage_end = out.done == total_steps;
      core::report(progress, out);
    };
    try {
      AnalyzeOptions o = opts.options;
      o.k = k;
      a.analysis =
          analyze_representation(x, labels, num_classes, o, progress ? core::ProgressFn(inner) : core::ProgressFn(), comm);
    } catch (const std::exception& ex) {
      run_rethrow_named(a.name, ex);
    }

    // Audit: the manifest's, or computed now.
    a.label_informed = e.uses_true_labels;
    if (opts.audit) {
      const auto it = m.audits.find(a.name);
      if (it != m.audits.end()) {
        a.audit = it->second;
        a.audit_source = "manifest";
      } else {
        extract::AuditInput in{a.name, a.label_informed, {}};
        in.head_identity = run_head_identity(run, e, x, labels, head);
        try {
          a.audit = extract::audit_representation(x, labels, num_classes, in, opts.audit_options);
        } catch (const std::exception& ex) {
          run_rethrow_named(a.name, ex);
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
  res.seconds = t_total.seconds();
  return res;
}

}  // namespace gradlens::analysis
