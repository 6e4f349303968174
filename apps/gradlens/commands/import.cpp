// gradlens import: copy a TorchScript ResNet's weights into a native ResNet
// checkpoint, by parameter name.
#include <torch/types.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <ostream>

#include "gradlens/commands/commands.h"
#include "gradlens/commands/value_checks.h"
#include "gradlens/core/check.h"
#include "gradlens/models/checkpoint.h"
#include "gradlens/models/model_file.h"
#include "gradlens/models/torchscript.h"

namespace gradlens::cli {

void add_import_command(CLI::App& app, Context& ctx) {
  struct Opts {
    std::string input, out;
    int64_t size = 224;
    bool allow_partial = false;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand(
      "import", "Copy a TorchScript (torchvision-style) ResNet's weights into a gradlens checkpoint");
  cmd->add_option("model", o->input, "TorchScript file (torch.jit.script/trace of a ResNet)")
      ->required();
  cmd->add_option("--out", o->out, "Checkpoint to write")->required();
  cmd->add_option("--probe-size", o->size, "Image side used to check the model's forward()")
      ->capture_default_str()->check(whole(1, 4096));
  cmd->add_flag("--allow-partial", o->allow_partial,
                "Write the checkpoint even if some weights are missing");
  cmd->callback([&ctx, o] {
    ctx.action = [&ctx, o] {
      models::ProbeShape probe;
      probe.size = o->size;
      models::require_model_file(o->input, models::ModelFileKind::kTorchScript, "model", ctx.global.model.verify_files);
      models::TorchScriptClassifier ts(o->input, torch::kCPU, probe, ctx.global.model.torchscript);
      const auto cfg = models::infer_resnet_config(ts.named_parameters());
      models::ResNet native(cfg);
      const auto rep = models::import_weights(ts, native);
      auto& out = *ctx.out;
      out << fmt::format("{}: {} tensors copied into {}\n", o->input, rep.copied, native.describe());
      for (const auto& n : rep.missing) out << "  missing (kept at initial value): " << n << "\n";
      for (const auto& n : rep.mismatched) out << "  shape mismatch (not copied): " << n << "\n";
      for (const auto& n : rep.unexpected) out << "  unexpected (ignored): " << n << "\n";
      GRADLENS_CHECK(rep.complete() || o->allow_partial, o->input, ": ",
                     rep.missing.size() + rep.mismatched.size(),
                     " weight(s) could not be imported (listed above); nothing written. Pass "
                     "--allow-partial to write anyway");
      models::save_checkpoint(o->out, native, nlohmann::json{{"imported_from", o->input}}.dump());
      out << "wrote " << o->out << "\n";
      return 0;
    };
  });
}

}  // namespace gradlens::cli
