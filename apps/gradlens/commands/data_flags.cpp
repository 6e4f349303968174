#include "gradlens/commands/data_flags.h"

#include "gradlens/commands/value_checks.h"
#include "gradlens/data/subset.h"

namespace gradlens::cli {

void add_data_flags(CLI::App* cmd, pipeline::DataConfig& d) {
  cmd->add_option("--data", d.data,
                  "fashion-mnist | mnist | an ImageFolder directory (root/<class>/<image>)")
      ->capture_default_str();
  cmd->add_option("--data-dir", d.idx_dir,
                  "Directory of the IDX files (default $GRADLENS_DATASETS/<data>, else /usr/share/datasets/<data>)");
  cmd->add_option("--image-size", d.image_size,
                  "Centre-crop side after the resize (0: ImageFolder 28 for 1 channel, else 224; IDX keeps 28)")
      ->check(whole(0, 4096));
  cmd->add_option("--resize", d.resize,
                  "Shorter side before the centre crop, as torchvision's Resize(R) + CenterCrop(S) "
                  "(0: the --image-size)")
      ->check(whole(0, 4096));
  cmd->add_option("--mean", d.mean,
                  "The model's per-channel input mean, in the units of --input-range (e.g. "
                  "0.485,0.456,0.406); default: the data's own statistics")
      ->delimiter(',')->expected(1, 3)
      ->check(real(-kInf, kInf));
  cmd->add_option("--std", d.std, "The model's per-channel input std (e.g. 0.229,0.224,0.225); with --mean")
      ->delimiter(',')->expected(1, 3)
      ->check(positive_real());
  cmd->add_option("--input-range", d.input_range,
                  "Pixel range the model takes before --mean/--std: 0-1 (x/255) | 0-255 (raw); "
                  "alone: no mean/std normalisation")
      ->check(CLI::IsMember({"0-1", "0-255"}));
  cmd->add_option("--channels", d.channels, "ImageFolder: 1 (grayscale) or 3 (RGB)")
      ->check(CLI::IsMember({0, 1, 3}));
  cmd->add_flag("--skip-bad-images", d.skip_bad_images,
                "ImageFolder: skip unreadable images (counted) instead of failing");
  cmd->add_option("--test-fraction", d.test_fraction,
                  "ImageFolder: stratified fraction held out for testing")
      ->capture_default_str()->check(real(0.0, 0.9, Bound::kOpen, Bound::kClosed, "0 would leave no test images"));
  cmd->add_option("--train-per-class", d.train_per_class,
                  "Use only the first N training images of each class (0 = all)")
      ->check(whole(0));
  cmd->add_option("--test-per-class", d.test_per_class,
                  "Use only the first N test images of each class (0 = all)")
      ->check(whole(0));
  add_choice(cmd, "--subset", d.subset, data::parse_subset_mode, data::subset_mode_name,
             "How per-class subsets are chosen: first (file order) | random (seeded)");
}

bool data_flags_given(const CLI::App* cmd) {
  for (const char* name : {"--data", "--data-dir", "--image-size", "--resize", "--mean", "--std", "--input-range",
                           "--channels", "--skip-bad-images", "--test-fraction", "--train-per-class",
                           "--test-per-class", "--subset"})
    if (cmd->get_option(name)->count() > 0) return true;
  return false;
}

}  // namespace gradlens::cli
