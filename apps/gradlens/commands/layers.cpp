// gradlens layers: every submodule of a TorchScript classifier with its
// output shape for one probe image, the default layer and the head.
#include <torch/types.h>
#include <fmt/format.h>

#include <ostream>

#include "gradlens/commands/commands.h"
#include "gradlens/commands/value_checks.h"
#include "gradlens/models/metadata.h"
#include "gradlens/models/model_file.h"
#include "gradlens/models/torchscript.h"

namespace gradlens::cli {

void add_layers_command(CLI::App& app, Context& ctx) {
  struct Opts {
    std::string model;
    int64_t size = 0;
    int64_t channels = 0;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand(
      "layers", "List a TorchScript model's submodules (the names --layer takes) with output shapes");
  cmd->add_option("--model", o->model, "TorchScript file (torch.jit.script or torch.jit.trace)")
      ->required();
  cmd->add_option("--image-size", o->size, "Side of the probe image (default: gradlens.json's image_size, else 28)")
      ->check(whole(1, 4096));
  cmd->add_option("--channels", o->channels,
                  "Input channels of the probe image (default: the first Conv2d's)")
      ->check(whole(1, 64));
  cmd->callback([&ctx, o] {
    ctx.action = [&ctx, o] {
      const auto meta = models::read_model_metadata(o->model);
      const int64_t size = o->size > 0 ? o->size : meta.image_size > 0 ? meta.image_size : 28;
      const int64_t channels = o->channels > 0 ? o->channels : meta.channels;
      models::require_model_file(o->model, models::ModelFileKind::kTorchScript, "--model", ctx.global.model.verify_files);
      models::TorchScriptClassifier ts(o->model, torch::kCPU, {channels, size}, ctx.global.model.torchscript);
      const auto mods = ts.modules();
      size_t width = 6;
      for (const auto& m : mods) width = std::max(width, m.name.size());
      auto& out = *ctx.out;
      out << fmt::format("{}\nprobe batch [2, {}, {}, {}]\n", ts.describe(), ts.in_channels(), size, size);
      out << fmt::format("{:<{}}  {:<22}  {}\n", "module", width, "type", "output");
      for (const auto& m : mods) {
        std::string shape = m.called ? "-" : "(not captured: not called, called only inside a data-dependent if or loop, or an identity a trace dropped)";
        if (!m.shape.empty()) {
          shape = "[N";
          for (size_t i = 1; i < m.shape.size(); ++i) shape += ", " + std::to_string(m.shape[i]);
          shape += "]";
        }
        const std::string mark = m.is_default ? "  <- default layer" : m.is_head ? "  <- head" : "";
        out << fmt::format("{:<{}}  {:<22}  {}{}\n", m.name, width, m.type, shape, mark);
      }
      return 0;
    };
  });
}

}  // namespace gradlens::cli
