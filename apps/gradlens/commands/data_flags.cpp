#include "gradlens/commands/data_flags.h"

namespace gradlens::cli {

void add_data_flags(CLI::App* cmd, pipeline::DataConfig& d) {
  cmd->add_option("--data", d.data,
                  "fashion-mnist | mnist | an ImageFolder directory (root/<class>/<image>)")
      ->capture_default_str();
  cmd->add_option("--data-dir", d.idx_dir,
                  "Directory of the IDX files (default /usr/share/datasets/fashion-mnist)");
  cmd->add_option("--image-size", d.image_size,
                  "ImageFolder: resize + centre-crop side (0: 28 for 1 channel, else 224)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--channels", d.channels, "ImageFolder: 1 (grayscale) or 3 (RGB)")
      ->check(CLI::IsMember({0, 1, 3}));
  cmd->add_flag("--skip-bad-images", d.skip_bad_images,
                "ImageFolder: skip unreadable images (counted) instead of failing");
  cmd->add_option("--test-fraction", d.test_fraction,
                  "ImageFolder: stratified fraction held out for testing")
      ->capture_default_str()->check(CLI::Range(0.0, 0.9));
  cmd->add_option("--train-per-class", d.train_per_class,
                  "Use only the first N training images of each class (0 = all)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--test-per-class", d.test_per_class,
                  "Use only the first N test images of each class (0 = all)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--subset", d.subset,
                  "How per-class subsets are chosen: first (file order) | random (seeded)")
      ->capture_default_str();
}

}  // namespace gradlens::cli
