// gradlens hessian: top eigenvalues and trace of the loss Hessian.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <ostream>

#include "gradlens/commands/commands.h"
#include "gradlens/commands/data_flags.h"
#include "gradlens/commands/value_checks.h"
#include "gradlens/pipeline/hessian.h"
#include "gradlens/progress_printer.h"

namespace gradlens::cli {

void add_hessian_command(CLI::App& app, Context& ctx) {
  auto cfg = std::make_shared<pipeline::HessianConfig>();
  auto* cmd = app.add_subcommand(
      "hessian", "Top eigenvalues (power iteration with deflation) and trace (Hutchinson) of the "
                 "loss Hessian, by Hessian-vector products");
  add_data_flags(cmd, cfg->data);
  cmd->add_option("--model", cfg->model,
                  "gradlens checkpoint, TorchScript file, or 'default' (the cached default model)")
      ->capture_default_str();
  add_choice(cmd, "--wrt", cfg->wrt, hessian::parse_hessian_wrt, hessian::hessian_wrt_name,
             "params | input (one batch's inputs)");
  cmd->add_option("--params", cfg->param_prefixes,
                  "Only parameters whose names start with these prefixes (e.g. fc layer4)")
      ->delimiter(',');
  cmd->add_option("--per-class", cfg->per_class, "Test images per class (0 = all)")
      ->capture_default_str()->check(whole(0));
  cmd->add_option("--batch-size", cfg->batch_size, "Batch size")->capture_default_str()
      ->check(whole(1, 1 << 20));
  cmd->add_flag("--one-batch", cfg->one_batch, "Use only the first batch");
  cmd->add_option("--top-k", cfg->eigen.k, "Number of top eigenvalues")->capture_default_str()
      ->check(whole(1, 10000));
  cmd->add_option("--max-iter", cfg->eigen.max_iter, "Power iterations per eigenvalue")
      ->capture_default_str()->check(whole(1, 10000000));
  cmd->add_option("--tol", cfg->eigen.tol, "Relative tolerance of the power iteration")
      ->capture_default_str()
      ->check(positive_real());
  cmd->add_option("--trace-probes", cfg->trace.max_iter, "Hutchinson probes at most")
      ->capture_default_str()->check(whole(1, 10000000));
  cmd->add_option("--trace-tol", cfg->trace.tol, "Stop when the trace changes by less")
      ->capture_default_str()
      ->check(positive_real());
  cmd->add_flag("--per-class-analysis", cfg->per_class_analysis, "Also analyse each class alone");
  cmd->add_option("--out", cfg->out, "Directory for hessian.json and hessian.md");
  cmd->callback([&ctx, cfg] {
    ctx.action = [&ctx, cfg] {
      auto c = *cfg;
      ProgressPrinter printer(*ctx.err, ProgressPrinter::stderr_is_tty());
      const auto rep = pipeline::run_hessian(c, run_context(ctx, printer));
      auto& out = *ctx.out;
      out << fmt::format("{}; {} variables (w.r.t. {})\n", rep.model_description, rep.dimension,
                         hessian::hessian_wrt_name(c.wrt));
      for (const auto& g : rep.groups)
        out << fmt::format("{:<12} n={:<5} top eigenvalues [{:.5g}]  trace {:.5g} (s.e. {:.2g}, {} probes)\n",
                           g.name, g.samples, fmt::join(g.eigen.eigenvalues, ", "), g.trace.trace,
                           g.trace.std_error, g.trace.samples.size());
      if (!rep.json_path.empty()) out << "wrote " << rep.json_path << " and " << rep.markdown_path << "\n";
      return 0;
    };
  });
}

}  // namespace gradlens::cli
