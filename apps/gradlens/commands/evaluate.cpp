// gradlens evaluate: the seed's whole protocol for one or more models, ending
// in a report directory (tables, figures, report.html).
#include <fmt/format.h>

#include <ostream>

#include "gradlens/commands/commands.h"
#include "gradlens/commands/data_flags.h"
#include "gradlens/commands/value_checks.h"
#include "gradlens/pipeline/evaluate.h"
#include "gradlens/progress_printer.h"

namespace gradlens::cli {

void add_evaluate_command(CLI::App& app, Context& ctx) {
  auto cfg = std::make_shared<pipeline::EvaluateConfig>();
  auto normalize = std::make_shared<std::string>("none");
  auto covariance = std::make_shared<std::string>("full");
  auto* cmd = app.add_subcommand(
      "evaluate",
      "The seed's protocol end to end: extract, analyse (Cos_Sim, PCA, KMeans, GMM), Grad-CAM saliency, "
      "misclassifications and label errors, and a report directory with report.html");
  cmd->add_option("--models", cfg->models,
                  "Comma list: default (the cached default model), resnet18|34|50|101|152 (trained briefly and "
                  "cached), or checkpoint / TorchScript files")
      ->delimiter(',')
      ->capture_default_str();
  add_data_flags(cmd, cfg->data);
  cmd->add_option("--per-class", cfg->per_class, "Test images per class to evaluate")
      ->capture_default_str()
      ->check(whole(1));
  cmd->add_option("--out", cfg->out, "Report directory (a previous report there is replaced)")
      ->capture_default_str();
  cmd->add_option("--layer", cfg->layer, "Layer for Grad-CAM and feature maps (default: last)");
  add_choice(cmd, "--target", cfg->target, extract::parse_gradient_target, extract::gradient_target_name,
             "Grad-CAM target: pred (default, label-free), true, loss");
  cmd->add_option("--pca-dims", cfg->analyze.pca_dims, "PCA dimensions before clustering (0 = raw rows)")
      ->capture_default_str()
      ->check(whole(0, 1000000, "0 = no PCA"));
  cmd->add_option("--normalize", *normalize, "Row normalisation before the PCA: none | l2")->capture_default_str();
  cmd->add_option("--k", cfg->analyze.k, "Clusters (0 = number of classes)")
      ->capture_default_str()
      ->check(whole(0, 100000, "0 = the number of classes"));
  cmd->add_option("--kmeans-n-init", cfg->analyze.kmeans_n_init, "KMeans restarts")
      ->capture_default_str()
      ->check(whole(1, 10000));
  cmd->add_option("--gmm-covariance", *covariance, "GMM covariance: full | diag | tied | spherical")
      ->capture_default_str();
  cmd->add_option("--flip-fraction", cfg->flip_fraction,
                  "Share of labels flipped to validate the label-error ranking")
      ->capture_default_str()
      ->check(real(0.0, 0.5, Bound::kClosed, Bound::kOpen, "flipping half the labels or more leaves no majority to detect"));
  cmd->add_option("--neighbors", cfg->neighbors, "Neighbours for the gradient-neighbourhood score")
      ->capture_default_str()
      ->check(whole(1, 100000));
  cmd->add_option("--label-error-embedding", cfg->label_error_embedding,
                  "Label-free embedding of the neighbourhood score: param-grad | input-grad | gradcam-weights | "
                  "features")
      ->capture_default_str();
  cmd->add_option("--arch-epochs", cfg->arch_epochs, "Epochs for architecture specs (resnet34 ...)")
      ->capture_default_str()
      ->check(whole(1, 100000));
  cmd->add_option("--arch-train-per-class", cfg->arch_train_per_class,
                  "Training images per class for architecture specs (0 = all)")
      ->capture_default_str()
      ->check(whole(0));
  cmd->add_option("--batch-size", cfg->batch_size, "Images per batch")
      ->capture_default_str()
      ->check(whole(1, 1 << 20));
  cmd->add_option("--compare-methods", cfg->compare_methods,
                  "Compare attribution methods for faithfulness (comma list of gradcam, gradcam++, gradient, "
                  "smoothgrad, ig, or none): deletion/insertion AUC, average drop, ROAD, pointing game, "
                  "randomisation; default: all five on data with object masks (make-shapes, ImageFolder "
                  "masks), none otherwise")
      ->delimiter(',');
  cmd->add_flag("--quick", cfg->quick,
                "Skip the attribution-quality stages (the method comparison and the scoring against object "
                "masks) whatever the data");
  auto* no_cache = cmd->add_flag("--no-cache", "Recompute extractions even when cached");
  cmd->callback([&ctx, cfg, normalize, covariance, no_cache] {
    ctx.action = [&ctx, cfg, normalize, covariance, no_cache] {
      auto c = *cfg;
      c.cache = no_cache->count() == 0;
      c.analyze.normalize = analysis::parse_row_normalization(*normalize);
      c.analyze.gmm_covariance = analysis::parse_covariance_type(*covariance);
      ProgressPrinter printer(*ctx.err, ProgressPrinter::stderr_is_tty());
      const auto r = pipeline::run_evaluate(c, run_context(ctx, printer));
      auto& out = *ctx.out;
      if (r.report_html.empty()) {  // a rank other than 0 of a multi-process run
        out << fmt::format("analysed {} model(s) on {} images; rank 0 writes the report\n", r.models.size(), r.n);
        return 0;
      }
      for (const auto& m : r.models) {
        out << fmt::format("{}: accuracy {:.2f}% on {} images", m.name, 100.0 * m.errors.accuracy, r.n);
        if (!m.errors.best_score.empty())
          for (const auto& q : m.errors.ranking)
            if (q.score == m.errors.best_score)
              out << fmt::format("; label errors: {} AUROC {:.3f}", q.score, q.auroc);
        out << "\n";
      }
      for (const auto& w : r.warnings) *ctx.err << "warning: " << w << "\n";
      out << fmt::format("wrote {} ({:.0f} s)\n", r.report_html.string(), r.seconds);
      return 0;
    };
  });
}

}  // namespace gradlens::cli
