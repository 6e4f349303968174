// Registration of each sub-command (one file per command in commands/).
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <iosfwd>
#include <string>

#include "gradlens/core/runtime.h"
#include "gradlens/models/model_options.h"
#include "gradlens/pipeline/run_context.h"
#include "gradlens/progress_printer.h"

namespace gradlens::cli {

/// Flags shared by every command.
struct GlobalOptions {
  core::RuntimeOptions runtime;
  bool quiet = false;
  /// --conv-algorithm (kAuto: Winograd where it applies, except in evaluate),
  /// --output-index, --output-key, --class-tokens.
  models::ModelOptions model;
};

/// What a command needs at run time.
struct Context {
  GlobalOptions global;
  std::ostream* out = nullptr;
  std::ostream* err = nullptr;
  /// Filled by run_cli() before the action runs.
  core::RuntimeInfo runtime;
  /// Set by the chosen sub-command's callback; run_cli() calls it after
  /// parsing succeeded and the runtime was initialised.
  std::function<int()> action;
};

/// The run context of a command: the device, seed and threads init_runtime()
/// settled on, the model flags, and `printer`'s progress unless --quiet.
pipeline::RunContext run_context(const Context& ctx, ProgressPrinter& printer);

void add_models_command(CLI::App& app, Context& ctx);
void add_evaluate_command(CLI::App& app, Context& ctx);
void add_train_command(CLI::App& app, Context& ctx);
void add_make_shapes_command(CLI::App& app, Context& ctx);
void add_import_command(CLI::App& app, Context& ctx);
void add_layers_command(CLI::App& app, Context& ctx);
void add_hessian_command(CLI::App& app, Context& ctx);
void add_extract_command(CLI::App& app, Context& ctx);
void add_saliency_command(CLI::App& app, Context& ctx);
void add_analyze_command(CLI::App& app, Context& ctx);
void add_launch_command(CLI::App& app, Context& ctx);
void add_attribute_command(CLI::App& app, Context& ctx);
void add_label_errors_command(CLI::App& app, Context& ctx);

}  // namespace gradlens::cli
