// gradlens analyze: Cos_Sim, PCA, KMeans/GMM scores of every representation
// of a run directory.
#include <fmt/format.h>

#include <cmath>
#include <memory>
#include <ostream>

#include "gradlens/commands/commands.h"
#include "gradlens/commands/value_checks.h"
#include "gradlens/pipeline/analyze.h"
#include "gradlens/progress_printer.h"

namespace gradlens::cli {

namespace {

// Flags kept as strings and parsed after CLI11, so that the library's parsers
// (one place for the names) give the messages.
struct AnalyzeFlags {
  pipeline::AnalyzeConfig cfg;
  std::string run_dir;
  std::string normalize = "none";
  std::string covariance = "full";
  std::string pca_solver = "exact";
  bool no_audit = false;
};

std::string analyze_cell(double v) { return std::isfinite(v) ? fmt::format("{:.4f}", v) : "-"; }

}  // namespace

void add_analyze_command(CLI::App& app, Context& ctx) {
  auto f = std::make_shared<AnalyzeFlags>();
  auto& o = f->cfg.options;
  auto* cmd = app.add_subcommand(
      "analyze",
      "Cos_Sim, PCA, KMeans and GMM (ARI, NMI, AMI, silhouette, accuracy) of each representation of "
      "a run directory; writes analysis.json/.csv/.md, clusters/ and pca2/ into it");
  cmd->add_option("RUN_DIR", f->run_dir, "Run directory written by 'gradlens extract'")->required();
  cmd->add_option("--representations", f->cfg.representations,
                  "Comma list of representation names (default: every one in the manifest)")
      ->delimiter(',');
  cmd->add_option("--pca-dims", o.pca_dims,
                  "PCA to min(this, D, N-1) dimensions before KMeans/GMM (0 = cluster the raw rows)")
      ->capture_default_str()->check(whole(0, 1000000, "0 = no PCA"));
  cmd->add_option("--pca-solver", f->pca_solver, "exact | randomized")->capture_default_str()
      ->check(CLI::IsMember({"exact", "randomized"}));
  cmd->add_option("--normalize", f->normalize, "Row normalisation before the PCA: none | l2")
      ->capture_default_str()->check(CLI::IsMember({"none", "l2"}));
  cmd->add_option("--k", o.k, "Clusters (0 = the number of classes)")->capture_default_str()
      ->check(whole(0, 100000, "0 = the number of classes"));
  cmd->add_option("--kmeans-n-init", o.kmeans_n_init, "KMeans restarts (k-means++)")->capture_default_str()
      ->check(whole(1, 10000));
  cmd->add_option("--gmm-covariance", f->covariance, "full | diag | tied | spherical")->capture_default_str()
      ->check(CLI::IsMember({"full", "diag", "tied", "spherical"}));
  cmd->add_option("--gmm-n-init", o.gmm_n_init, "GMM initialisations")->capture_default_str()
      ->check(whole(1, 10000));
  cmd->add_option("--reg-covar", o.reg_covar, "Added to the GMM covariance diagonals")->capture_default_str()
      ->check(real(0.0));
  cmd->add_option("--silhouette-sample", o.silhouette_sample_size,
                  "Silhouette on a random subset of this many samples (0 = exact)")
      ->capture_default_str()->check(whole(0));
  cmd->add_flag("--no-audit", f->no_audit, "Skip the validity audit (degenerate / label-informed)");
  cmd->callback([&ctx, f] {
    ctx.action = [&ctx, f] {
      auto c = f->cfg;
      c.run_dir = f->run_dir;
      c.audit = !f->no_audit;
      c.options.normalize = analysis::parse_row_normalization(f->normalize);
      c.options.gmm_covariance = analysis::parse_covariance_type(f->covariance);
      c.options.pca_solver = analysis::parse_pca_solver(f->pca_solver);
      ProgressPrinter printer(*ctx.err, ProgressPrinter::stderr_is_tty());
      const auto r = pipeline::run_analyze(c, run_context(ctx, printer));
      auto& out = *ctx.out;
      if (r.json_path.empty()) {  // a rank other than 0 of a multi-process run
        out << fmt::format("analysed {} representation(s) of {} samples; rank 0 writes the analysis\n",
                           r.representations.size(), r.n);
        return 0;
      }
      out << fmt::format("{} samples, {} classes, k = {}\n", r.n, r.num_classes, r.k);
      out << fmt::format("{:<26} {:<7} {:<9} {:>7} {:>7} {:>7} {:>10} {:>8} {:>8} {}\n", "representation",
                         "method", "input", "ARI", "NMI", "AMI", "silhouette", "accuracy", "Cos_Sim", "flags");
      for (const auto& a : r.representations) {
        std::string flags;
        if (a.degenerate) flags += " degenerate";
        if (a.label_informed) flags += " label-informed";
        for (const auto* m : {&a.analysis.kmeans, &a.analysis.gmm}) {
          std::string tail = m->error.empty() ? flags : " failed";
          if (!tail.empty()) tail.erase(0, 1);
          out << fmt::format("{:<26} {:<7} {:<9} {:>7} {:>7} {:>7} {:>10} {:>8} {:>8} {}\n", a.name, m->method,
                             a.analysis.clustering_input, analyze_cell(m->ari), analyze_cell(m->nmi),
                             analyze_cell(m->ami), analyze_cell(m->silhouette), analyze_cell(m->accuracy),
                             analyze_cell(a.analysis.cosine.cos_sim), tail);
        }
      }
      for (const auto& w : r.warnings) *ctx.err << "warning: " << w << "\n";
      out << fmt::format("wrote {} (and analysis.csv, analysis.md, clusters/, pca2/) in {:.1f} s\n",
                         r.json_path.string(), r.seconds);
      return 0;
    };
  });
}

}  // namespace gradlens::cli
