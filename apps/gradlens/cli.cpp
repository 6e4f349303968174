#include "gradlens/cli.h"

#include <filesystem>
#include <map>
#include <new>
#include <ostream>

#include "gradlens/commands/commands.h"
#include "gradlens/commands/value_checks.h"
#include "gradlens/core/check.h"
#include "gradlens/core/runtime.h"
#include "gradlens/version.h"

namespace gradlens::cli {

namespace {

/// The first word of `args` that stands where the command belongs, if it is
/// not one of app's commands; empty otherwise (CLI11 would only say "A
/// subcommand is required").
std::string unknown_command(const CLI::App& app, const std::vector<std::string>& args) {
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--") return {};
    if (!a.empty() && a[0] == '-') {
      const auto* opt = app.get_option_no_throw(a.substr(0, a.find('=')));
      if (opt && opt->get_expected_min() > 0 && a.find('=') == std::string::npos) ++i;
      continue;
    }
    for (const auto* sub : app.get_subcommands({}))
      if (sub->check_name(a)) return {};
    return a;
  }
  return {};
}

/// A file-system error as "PATH: what went wrong".
std::string describe(const std::filesystem::filesystem_error& e) {
  std::string out;
  if (!e.path1().empty()) out += e.path1().string() + ": ";
  out += e.code().message();
  if (!e.path2().empty()) out += " (with " + e.path2().string() + ")";
  return out + "; check that the path exists and that you may read and write there";
}

}  // namespace

int run_cli(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  Context ctx;
  ctx.out = &out;
  ctx.err = &err;

  CLI::App app{"gradlens: evaluate image classifiers through their gradients", "gradlens"};
  app.set_version_flag("--version", std::string("gradlens ") + kVersion + " (LibTorch " +
                                        core::torch_version() + ")");
  app.require_subcommand(1);
  app.fallthrough();
  app.add_option("--threads", ctx.global.runtime.threads,
                 "Intra-op threads; 0 = all cores (default)")
      ->check(whole(0, max_workers(), "0 = all cores; at most 4 x this machine's hardware threads"));
  app.add_option("--blas-threads", ctx.global.runtime.blas_threads,
                 "OpenBLAS's own threads; 0 = as many as --threads. Default 1: gradlens "
                 "parallelises on LibTorch's OpenMP threads, and idle OpenBLAS workers "
                 "busy-wait and slow them")
      ->check(whole(0, max_workers(), "at most 4 x this machine's hardware threads"))
      ->capture_default_str();
  app.add_option("--device", ctx.global.runtime.device, "cpu | cuda | cuda:N")
      ->capture_default_str();
  app.add_option("--seed", ctx.global.runtime.seed, "Seed for every random choice")
      ->capture_default_str()
      ->check(whole(0));
  app.add_flag("!--release-freed-memory", ctx.global.runtime.keep_freed_memory,
               "Let malloc hand freed memory back to the system (slower: by default freed "
               "memory is kept for reuse, which spares page faults on every batch)");
  app.add_flag("--quiet,-q", ctx.global.quiet, "Only errors and final results");
  app.add_option("--conv-algorithm", ctx.global.model.conv,
                 "winograd: a native ResNet's 3x3 stride-1 convolutions on channels-last maps (1-channel "
                 "data) by Winograd F(4x4,3x3) on AVX-512 CPUs (1.1-2.6x faster per layer), equal to float rounding; "
                 "direct: LibTorch's convolutions, as Python torch computes them; auto: winograd, except in "
                 "evaluate (its clustering scores can move in the third decimal under float rounding, and its "
                 "tables are meant to equal Python torch + scikit-learn's)")
      ->transform(CLI::CheckedTransformer(
          std::map<std::string, models::ConvAlgorithm>{{"auto", models::ConvAlgorithm::kAuto},
                                                       {"winograd", models::ConvAlgorithm::kWinograd},
                                                       {"direct", models::ConvAlgorithm::kDirect}}))
      ->default_str("auto");
  auto& ts = ctx.global.model.torchscript;
  app.add_option("--output-index", ts.output_index,
                 "A TorchScript model whose forward() returns a tuple: the element that holds the logits "
                 "(e.g. 0 for (logits, aux_logits)); default: gradlens.json's output_index")
      ->check(whole(0, 1000));
  app.add_option("--output-key", ts.output_key,
                 "A TorchScript model whose forward() returns a dict: the key of the logits; default: "
                 "gradlens.json's output_key")
      ->excludes("--output-index");
  app.add_option("--class-tokens", ts.class_tokens,
                 "A vision transformer's token layer [N, T, D] becomes maps [N, D, h, w] from its last h*w "
                 "tokens after dropping this many leading (class, distillation) tokens; default: 1 if T-1 is a "
                 "square, else 0 if T is one (gradlens.json's class_tokens)")
      ->check(whole(0, 1000));
  app.add_flag("!--no-verify", ctx.global.model.verify_files,
               "Skip the CRC-32 check of model files (every entry of a checkpoint or TorchScript file is "
               "compared with the checksum recorded when it was written; skip it only for trusted files)");

  add_models_command(app, ctx);
  add_evaluate_command(app, ctx);
  add_train_command(app, ctx);
  add_make_shapes_command(app, ctx);
  add_import_command(app, ctx);
  add_layers_command(app, ctx);
  add_hessian_command(app, ctx);
  add_extract_command(app, ctx);
  add_saliency_command(app, ctx);
  add_analyze_command(app, ctx);
  add_attribute_command(app, ctx);
  add_label_errors_command(app, ctx);
  add_launch_command(app, ctx);

  if (const auto unknown = unknown_command(app, args); !unknown.empty()) {
    err << "gradlens: unknown command '" << unknown << "'; the commands are:";
    for (const auto* sub : app.get_subcommands({})) err << " " << sub->get_name();
    err << ". Run 'gradlens --help' for usage.\n";
    return 2;
  }

  // CLI11 wants argv order reversed for its vector overload.
  std::vector<std::string> rev(args.rbegin(), args.rend());
  try {
    app.parse(rev);
  } catch (const CLI::ParseError& e) {
    // Help and version requests exit 0 and print to `out`; real parse errors
    // are usage errors (exit 2).
    if (e.get_exit_code() == 0) return app.exit(e, out, err);
    err << "gradlens: " << e.what() << "\nRun 'gradlens --help' or 'gradlens <command> --help' for usage.\n";
    return 2;
  }
  if (!ctx.action) {
    err << "gradlens: no command given; run 'gradlens --help'\n";
    return 2;
  }
  // The one place where errors become exit codes: a gradlens::Error says its
  // kind; LibTorch, file-system and allocation failures are runtime errors,
  // reported with what they concern.
  try {
    ctx.runtime = core::init_runtime(ctx.global.runtime);
    return ctx.action();
  } catch (const Error& e) {
    if (e.kind() == ErrorKind::kUsage) {
      err << "gradlens: " << error_message(e) << "\n";
      return 2;
    }
    err << "gradlens: error: " << error_message(e) << "\n";
    return 1;
  } catch (const std::filesystem::filesystem_error& e) {
    err << "gradlens: error: " << describe(e) << "\n";
    return 1;
  } catch (const std::exception& e) {
    if (is_out_of_memory(e)) {
      const bool torch_alloc = dynamic_cast<const std::bad_alloc*>(&e) == nullptr;
      err << "gradlens: error: out of memory" << (torch_alloc ? " (" + error_message(e) + ")" : "")
          << "; lower --batch-size, --per-class or --image-size, or run on a machine with more memory\n";
      return 1;
    }
    err << "gradlens: error: " << error_message(e) << "\n";
    return 1;
  }
}

pipeline::RunContext run_context(const Context& ctx, ProgressPrinter& printer) {
  pipeline::RunContext rc;
  rc.device = ctx.runtime.device;
  rc.seed = ctx.runtime.seed;
  rc.threads = ctx.runtime.threads;
  rc.model = ctx.global.model;
  if (!ctx.global.quiet) rc.progress = printer.fn();
  return rc;
}

}  // namespace gradlens::cli
