// gradlens make-shapes: writes the procedural shapes data set (an ImageFolder
// with object masks) through gradlens::data::make_shapes().
#include <fmt/format.h>

#include <memory>
#include <ostream>

#include "gradlens/commands/commands.h"
#include "gradlens/commands/value_checks.h"
#include "gradlens/data/shapes.h"

namespace gradlens::cli {

void add_make_shapes_command(CLI::App& app, Context& ctx) {
  auto opts = std::make_shared<data::ShapesOptions>();
  CLI::App* sub = app.add_subcommand(
      "make-shapes",
      "Generate a shapes image-classification data set with object masks "
      "(<out>/<class>/<id>.png and <id>.mask.png); the global --seed makes it reproducible");
  sub->add_option("--classes", opts->classes,
                  "Number of classes K: the first K of circle, square, triangle, star, cross, "
                  "ring, hexagon, ellipse")
      ->check(whole(1, 8))
      ->capture_default_str();
  sub->add_option("--per-class", opts->per_class, "Images per class")
      ->check(whole(1, 1000000))
      ->capture_default_str();
  sub->add_option("--size", opts->size, "Image side in pixels")
      ->check(whole(16, 1024))
      ->capture_default_str();
  sub->add_option("--out", opts->out, "Output directory (must not exist or be empty)")->required();
  sub->add_flag("--overwrite", opts->overwrite, "Replace an existing non-empty --out directory");
  sub->callback([&ctx, opts] {
    ctx.action = [&ctx, opts] {
      data::ShapesOptions o = *opts;
      o.seed = ctx.global.runtime.seed;
      const data::ShapesSummary s = data::make_shapes(o);
      if (!ctx.global.quiet) {
        *ctx.out << fmt::format(
            "make-shapes: wrote {} images ({} classes x {}, {}x{} px, seed {}) with masks to {} "
            "in {:.1f} s\n",
            s.images, s.class_names.size(), s.per_class, s.size, s.size, s.seed, s.out, s.seconds);
      }
      return 0;
    };
  });
}

}  // namespace gradlens::cli
