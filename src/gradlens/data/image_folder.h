// Loader for image classification folders laid out as torchvision's
// ImageFolder expects: root/<class>/<image>, with optional object masks
// root/<class>/<stem>.mask.png next to the images.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "gradlens/core/progress.h"
#include "gradlens/data/dataset.h"

namespace gradlens::data {

/// The files of an image folder, in torchvision's order.
struct ImageFolderIndex {
  /// Class names: the sub-directories of root, sorted by name (byte order),
  /// exactly torchvision's find_classes(). Label i is class_names[i].
  std::vector<std::string> class_names;
  /// Sample paths, class by class; within a class, every directory below the
  /// class folder (recursively, sorted by path) and its files sorted by name,
  /// as torchvision's make_dataset(). Files count when their lower-cased name
  /// ends in one of torchvision's IMG_EXTENSIONS (.jpg .jpeg .png .ppm .bmp
  /// .pgm .tif .tiff .webp) and not in ".mask.png".
  std::vector<std::string> paths;
  std::vector<int64_t> labels;
  /// Per sample: "<dir>/<stem>.mask.png" when that file exists, else "".
  std::vector<std::string> mask_paths;
  /// ".mask.png" files that belong to no sample (ignored).
  int64_t orphan_masks = 0;
};

/// Lists `root` as described on ImageFolderIndex. Throws c10::Error when root
/// is not a directory (naming it and the --data flag), has no class folders,
/// or a class folder holds no image file (naming the folder).
ImageFolderIndex scan_image_folder(const std::string& root);

struct ImageFolderOptions {
  /// Output side S: Resize(S) (shorter side to S, bilinear with Pillow's
  /// antialiasing) then CenterCrop(S), as torchvision. 0 keeps the decoded
  /// size, and then every image must have the same size.
  int64_t size = 0;
  /// Shorter side before the centre crop to `size` (torchvision's
  /// Resize(resize) + CenterCrop(size)); 0: `size`. Must be >= size.
  int64_t resize = 0;
  /// 3: RGB (grey images are replicated, alpha dropped, as PIL's
  /// convert("RGB")); 1: luminance as PIL's convert("L"), applied after the
  /// resize and crop (torchvision's Compose([Resize, CenterCrop, Grayscale])).
  int channels = 3;
  /// Skip images that cannot be decoded (and their masks) instead of
  /// throwing; they are listed in ImageFolderResult::skipped_paths.
  bool skip_bad_images = false;
  /// Load <stem>.mask.png masks into Dataset::masks when every sample has one.
  bool load_masks = true;
  /// Per-channel normalisation for the result; empty: computed from the
  /// loaded images (mean and population std of x/255 per channel).
  std::vector<double> mean, std;
};

struct ImageFolderResult {
  /// images uint8 [N, C, S, S]; labels int64 [N]; paths; masks uint8
  /// [N, 1, S, S] (255 inside the object) or undefined; name = root's
  /// directory name.
  Dataset dataset;
  int64_t skipped = 0;
  std::vector<std::string> skipped_paths;
  /// Number of samples whose mask was loaded (N or 0).
  int64_t masks_loaded = 0;
  int64_t orphan_masks = 0;
};

/// Loads an image folder (PNG, JPEG, BMP, PPM/PGM via stb_image) into memory,
/// decoding in parallel on LibTorch's intra-op threads. Progress: stage
/// "load-images", one event per chunk of images.
///
/// Throws c10::Error when: scan_image_folder() throws; options are invalid
/// (size < 0, channels not 1 or 3, mean/std of the wrong length); an image
/// cannot be decoded and skip_bad_images is false (naming its path and
/// suggesting to fix or remove it, or to skip bad images); size is 0 and the
/// images differ in size; a mask cannot be decoded or its size differs from
/// its image; only some samples have masks (naming the first without one);
/// every image was skipped.
ImageFolderResult load_image_folder(const std::string& root, const ImageFolderOptions& opts = {},
                                    const core::ProgressFn& progress = {});

/// Decodes one image file into uint8 [H, W, C] with C = `channels` (1 or 3);
/// a grey source asked for 3 channels is replicated. Throws c10::Error naming
/// the path when the file cannot be read or decoded.
torch::Tensor decode_image(const std::string& path, int channels);

}  // namespace gradlens::data
