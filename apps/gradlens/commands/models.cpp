// gradlens models: the model zoo with parameter counts.
#include <fmt/format.h>

#include <ostream>

#include "gradlens/commands/commands.h"
#include "gradlens/commands/value_checks.h"
#include "gradlens/models/resnet.h"

namespace gradlens::cli {

void add_models_command(CLI::App& app, Context& ctx) {
  struct Opts {
    int64_t classes = 1000;
    int64_t channels = 3;
    std::string stem = "imagenet";
    int64_t width = 64;
  };
  auto opts = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand("models", "List the models with their parameter counts");
  cmd->add_option("--classes", opts->classes, "Number of classes")->capture_default_str()
      ->check(whole(2, 1000000));
  cmd->add_option("--channels", opts->channels, "Input channels")->capture_default_str()
      ->check(whole(1, 64));
  cmd->add_option("--stem", opts->stem, "imagenet | small")->capture_default_str();
  cmd->add_option("--width", opts->width, "Channels of the stem and layer1 (torchvision: 64)")
      ->capture_default_str()->check(whole(1, 1024));
  cmd->callback([&ctx, opts] {
    ctx.action = [&ctx, opts] {
      auto& out = *ctx.out;
      out << fmt::format("{:<10} {:>14}  {}\n", "model", "parameters", "blocks per stage");
      for (const auto& name : models::resnet_names()) {
        models::ResNetConfig cfg;
        cfg.arch = name;
        cfg.num_classes = opts->classes;
        cfg.in_channels = opts->channels;
        cfg.stem = models::parse_stem(opts->stem);
        cfg.width = opts->width;
        models::ResNet m(cfg);
        const auto spec = models::resnet_spec(name);
        out << fmt::format("{:<10} {:>14}  {}/{}/{}/{} {}\n", name, models::count_parameters(m),
                           spec.blocks[0], spec.blocks[1], spec.blocks[2], spec.blocks[3],
                           spec.bottleneck ? "bottleneck" : "basic");
      }
      return 0;
    };
  });
}

}  // namespace gradlens::cli
