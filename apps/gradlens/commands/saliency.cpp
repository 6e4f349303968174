// gradlens saliency: attribution maps of one or more models, compared per
// image with the saliency metrics, written to an output directory.
#include <fmt/format.h>

#include <ostream>

#include "gradlens/commands/commands.h"
#include "gradlens/commands/data_flags.h"
#include "gradlens/commands/value_checks.h"
#include "gradlens/pipeline/saliency.h"
#include "gradlens/progress_printer.h"
#include "gradlens/report/colormap.h"

namespace gradlens::cli {

void add_saliency_command(CLI::App& app, Context& ctx) {
  auto cfg = std::make_shared<pipeline::SaliencyCommandConfig>();
  auto method = std::make_shared<std::string>("gradcam");
  auto* cmd = app.add_subcommand(
      "saliency",
      "Attribution maps (Grad-CAM, Grad-CAM++, gradient, SmoothGrad, Integrated Gradients) of one or "
      "more models, scored per image with CC, KLD, SIM, NSS, AUC-Judd and AUC-Borji against the class-mean "
      "map, another model's map or an object mask; writes per_image.csv, summary.md/json, maps/*.npy and "
      "overlay.png");
  add_data_flags(cmd, cfg->data);
  add_choice(cmd, "--split", cfg->split, data::parse_split, data::split_name, "train | test");
  cmd->add_option("--per-class", cfg->per_class, "Images per class (first N; 0 = all)")
      ->capture_default_str()->check(whole(0));
  cmd->add_option("--models,--model", cfg->models,
                  "Comma list of gradlens checkpoints, TorchScript files or 'default' (the cached default model)")
      ->delimiter(',')->capture_default_str();
  auto& s = cfg->saliency;
  auto& a = s.attribution;
  cmd->add_option("--out", cfg->out, "Output directory to create")->required();
  cmd->add_flag("--overwrite", cfg->overwrite, "Replace a previous saliency directory");
  cmd->add_option("--method", *method, "gradcam | gradcam++ | gradient | smoothgrad | ig")
      ->capture_default_str()->check(CLI::IsMember(saliency::attribution_method_names()));
  cmd->add_option("--layer", a.layer, "Layer of Grad-CAM / Grad-CAM++ (default: last, layer4)");
  add_choice(cmd, "--target", a.target, extract::parse_gradient_target, extract::gradient_target_name,
             "pred (logit of the predicted class, as pytorch-grad-cam) | true (logit of the true class) | "
             "loss (cross-entropy with the true label)");
  add_choice(cmd, "--compare", s.compare, saliency::parse_comparison_kind, saliency::comparison_kind_name,
             "class-mean (each map vs its true class's mean map) | models (first model vs each other) | "
             "mask (map vs the object mask)");
  cmd->add_option("--smoothgrad-samples", a.smoothgrad_samples, "SmoothGrad: noisy copies per image")
      ->capture_default_str()->check(whole(1, 100000));
  cmd->add_option("--smoothgrad-sigma", a.smoothgrad_sigma,
                  "SmoothGrad: noise std as a fraction of each image's input range")
      ->capture_default_str()->check(real(0.0));
  cmd->add_option("--ig-steps", a.ig_steps, "Integrated Gradients: steps along the path")
      ->capture_default_str()->check(whole(1, 100000));
  add_choice(cmd, "--ig-rule", a.ig_rule, saliency::parse_ig_rule, saliency::ig_rule_name,
             "Integrated Gradients: trapezoid | riemann");
  add_choice(cmd, "--ig-baseline", s.ig_baseline, pipeline::parse_ig_baseline, pipeline::ig_baseline_name,
             "Integrated Gradients baseline: zero (model-input zeros = the mean colour) | black");
  cmd->add_option("--fixation-threshold", s.compare_options.fixation_threshold,
                  "NSS/AUC vs a continuous reference: fixated = reference >= this fraction of its range")
      ->capture_default_str()->check(real(0.0, 1.0));
  cmd->add_option("--auc-splits", s.compare_options.auc_borji.n_splits, "AUC-Borji: random splits")
      ->capture_default_str()->check(whole(1, 100000));
  cmd->add_flag("--leave-one-out", s.compare_options.leave_one_out,
                "class-mean: leave each image out of its own class mean");
  cmd->add_flag("--exclude-degenerate", s.compare_options.summary.exclude_degenerate,
                "Leave constant maps out of the means (they are always counted)");
  cmd->add_option("--overlay-per-class", s.overlay_per_class,
                  "Overlay: correct and misclassified images per class (0 = no overlay)")
      ->capture_default_str()->check(whole(0, 10000));
  add_choice(cmd, "--colormap", s.overlay.colormap, report::parse_colormap, report::colormap_name,
             "Overlay colour map: jet | turbo");
  cmd->add_option("--alpha", s.overlay.alpha, "Overlay: weight of the coloured map over the image")
      ->capture_default_str()->check(real(0.0, 1.0));
  cmd->add_option("--cell-size", s.overlay.cell_size, "Overlay: minimum cell side in pixels (nearest-neighbour)")
      ->capture_default_str()->check(whole(1, 4096));
  cmd->add_option("--batch-size", s.batch_size, "Images per batch")->capture_default_str()
      ->check(whole(1, 1 << 20));
  cmd->add_option("--metrics", s.metrics,
                  "Faithfulness and localisation per image (faithfulness.csv, docs/saliency.md): any of deletion, "
                  "insertion, confidence (average drop, increase in confidence), road (remove and debias: MoRF, LeRF), "
                  "pointing, energy, rank (these three need object masks), random-logit (similarity to the map of "
                  "a random other class)")
      ->delimiter(',');
  cmd->add_option("--steps", s.perturbation.steps, "Deletion/insertion: steps of the curve")
      ->capture_default_str()->check(whole(1, 10000));
  auto perturb = std::make_shared<std::string>("zero");
  cmd->add_option("--perturbation-baseline", *perturb,
                  "Deletion/insertion: what removed pixels become: zero (the data mean after normalisation) | mean "
                  "(each image's channel means) | blur")
      ->capture_default_str()->check(CLI::IsMember(saliency::baseline_names()));
  cmd->add_option("--patch-size", s.perturbation.patch_size,
                  "Deletion/insertion: perturb squares of P x P pixels, ordered by the map's sum over each (region "
                  "perturbation); 1 = single pixels; must divide the image size")
      ->capture_default_str()->check(whole(1, 4096));
  cmd->add_option("--blur-sigma", s.perturbation.blur_sigma, "Deletion/insertion blur baseline: Gaussian sigma in px")
      ->capture_default_str()->check(positive_real());
  cmd->add_option("--road-fractions", s.road.fractions,
                  "ROAD: fractions of the pixels removed, each in (0, 1)")
      ->delimiter(',')
      ->capture_default_str()
      ->check(real(0.0, 1.0, Bound::kOpen, Bound::kOpen));
  cmd->add_option("--road-noise", s.road.noise,
                  "ROAD: standard deviation of the noise added to imputed pixels (model-input units; 0 = none)")
      ->capture_default_str()
      ->check(real(0.0, 1e6));
  cmd->add_option("--pointing-tolerance", s.pointing_tolerance,
                  "Pointing game: pixels between the map's maximum and the object (TorchRay: 15 at 224 px)")
      ->capture_default_str()->check(real(0.0, 10000.0));
  add_choice(cmd, "--randomisation", s.randomisation, pipeline::parse_randomisation_test,
             pipeline::randomisation_test_name,
             "Sanity check (randomisation.csv): recompute the maps after randomising the model's parameter "
             "groups from the head down, cascading | independent, and compare them with the trained model's "
             "(Spearman, SSIM); none: off");
  cmd->add_option("--data-randomisation", cfg->data_randomisation,
                  "Sanity check: compare the first model's maps with those of this model, trained on permuted "
                  "labels (train --permute-labels) (Spearman, SSIM; summary.json)");
  cmd->add_option("--randomisation-groups", s.randomisation_options.max_groups,
                  "Randomise at most this many parameter groups from the head (0 = all)")
      ->capture_default_str()->check(whole(0, 100000));
  cmd->callback([&ctx, cfg, method, perturb] {
    ctx.action = [&ctx, cfg, method, perturb] {
      auto c = *cfg;
      c.saliency.attribution.method = saliency::parse_attribution_method(*method);
      c.saliency.perturbation.baseline = saliency::parse_baseline(*perturb, "--perturbation-baseline");
      ProgressPrinter printer(*ctx.err, ProgressPrinter::stderr_is_tty());
      const auto r = pipeline::run_saliency_command(c, run_context(ctx, printer));
      auto& out = *ctx.out;
      const auto& run = r.run;
      out << fmt::format("{} on {} images ({} target, compare {})\n", run.method, run.n, run.target, run.compare);
      for (const auto& m : run.models)
        out << fmt::format("  {:<24} accuracy {:.2f}%, {} constant map(s)\n", m.name, 100.0 * m.accuracy,
                           m.num_constant);
      for (const auto& cmp : run.comparisons) {
        out << fmt::format("  {} vs {}:", cmp.model, cmp.reference);
        for (const auto& col : cmp.result.metrics)
          if (col.summarized) out << fmt::format(" {} {:.3f}±{:.3f}", col.name, col.summary.mean, col.summary.std);
        out << "\n";
      }
      for (const auto& w : run.warnings) *ctx.err << "warning: " << w << "\n";
      out << "wrote " << r.out.string() << "\n";
      return 0;
    };
  });
}

}  // namespace gradlens::cli
