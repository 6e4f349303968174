// gradlens extract: representations of every image into a run directory.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <ostream>

#include "gradlens/commands/commands.h"
#include "gradlens/commands/data_flags.h"
#include "gradlens/commands/value_checks.h"
#include "gradlens/pipeline/extract.h"
#include "gradlens/progress_printer.h"

namespace gradlens::cli {

void add_extract_command(CLI::App& app, Context& ctx) {
  auto cfg = std::make_shared<pipeline::ExtractCommandConfig>();
  auto* cmd = app.add_subcommand(
      "extract",
      "Extract gradient representations (Grad-CAM weights, input gradients, per-sample parameter "
      "gradients), features, activations, logits and probabilities into a run directory");
  add_data_flags(cmd, cfg->data);
  add_choice(cmd, "--split", cfg->split, data::parse_split, data::split_name, "train | test");
  cmd->add_option("--per-class", cfg->per_class, "Images per class (first N; 0 = all)")
      ->capture_default_str()->check(whole(0));
  cmd->add_option("--model", cfg->model,
                  "gradlens checkpoint, TorchScript file, or 'default' (the cached default model)")
      ->capture_default_str();
  auto& e = cfg->extract;
  cmd->add_option("--out", e.out, "Run directory to create")->required();
  cmd->add_flag("--overwrite", e.overwrite, "Replace a previous run directory");
  cmd->add_option("--representations", e.options.representations,
                  "Comma list of gradcam-weights, input-grad, param-grad, features, activations, "
                  "logits, probs (default: all)")
      ->delimiter(',');
  cmd->add_option("--layer", e.options.layer, "Layer for Grad-CAM and activations (default: last)");
  cmd->add_option("--targets", e.options.gradcam_targets,
                  "Grad-CAM targets: pred (default, as pytorch-grad-cam), true, loss")
      ->delimiter(',');
  cmd->add_option("--grad-labels", e.options.grad_labels,
                  "Labels for input-grad/param-grad: pred (default, label-free) and/or true")
      ->delimiter(',');
  cmd->add_option("--param-layer", e.options.param_layer,
                  "Layer for param-grad: fc (default) or a Conv2d (groups 1) as named_modules() names it, e.g. "
                  "layer4.1.conv2 or features.17.conv.2");
  add_choice(cmd, "--pool", e.options.pool, extract::parse_activation_pool, extract::activation_pool_name,
             "Activations: none | avg | max");
  cmd->add_option("--batch-size", e.batch_size, "Images per batch")->capture_default_str()
      ->check(whole(1, 1 << 20));
  cmd->add_option("--audit", e.audit, "Run the validity audit (true/false)")->capture_default_str();
  cmd->callback([&ctx, cfg] {
    ctx.action = [&ctx, cfg] {
      auto c = *cfg;
      ProgressPrinter printer(*ctx.err, ProgressPrinter::stderr_is_tty());
      const auto r = pipeline::run_extract_command(c, run_context(ctx, printer));
      auto& out = *ctx.out;
      if (r.out.empty()) {  // a rank other than 0 of a multi-process run
        out << fmt::format("extracted {} image(s); rank 0 writes the run directory\n", r.n);
        return 0;
      }
      out << fmt::format("{} images, {} batches, {} backward pass(es) per batch, accuracy {:.2f}%\n",
                         r.n, r.batches, r.backward_passes_per_batch, 100.0 * r.accuracy);
      for (size_t i = 0; i < r.outputs.size(); ++i)
        out << fmt::format("  {:<28} [{}]\n", r.outputs[i].name + ".npy", fmt::join(r.shapes[i], ", "));
      for (const auto& w : r.warnings) *ctx.err << "warning: " << w << "\n";
      out << "wrote " << r.out.string() << "\n";
      return 0;
    };
  });
}

}  // namespace gradlens::cli
