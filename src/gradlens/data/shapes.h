// A procedural image-classification data set with ground-truth object masks:
// coloured shapes on cluttered, noisy backgrounds, written as an ImageFolder.
#pragma once

#include <torch/types.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "gradlens/core/progress.h"

namespace gradlens::data {

/// The generator's classes, in generator order; make_shapes() uses the first
/// K. (ImageFolder later numbers the class folders in sorted order.)
const std::vector<std::string>& shape_class_names();

struct ShapesOptions {
  int classes = 8;          ///< K in [1, 8]: the first K of shape_class_names()
  int64_t per_class = 100;  ///< images per class, >= 1
  int64_t size = 64;        ///< image side S in pixels, in [16, 1024]
  uint64_t seed = 0;        ///< every random choice derives from it
  std::string out;          ///< output directory (must not exist, or be empty)
  bool overwrite = false;   ///< replace an existing non-empty `out`
};

/// Ground truth of one generated image.
struct ShapeSample {
  std::string path;       ///< "<class>/<id>.png", relative to out
  std::string mask_path;  ///< "<class>/<id>.mask.png", relative to out
  int label = 0;          ///< index into shape_class_names()
  double cx = 0, cy = 0;  ///< object centre, pixels (pixel centres at i + 0.5)
  double radius = 0;      ///< circumradius r, pixels: the object lies in the disc (cx, cy, r)
  double angle = 0;       ///< rotation, radians
  std::array<uint8_t, 3> color{};
  int64_t mask_area = 0;  ///< number of 255 pixels in the mask
};

struct ShapesSummary {
  std::string out;  ///< the final directory
  std::vector<std::string> class_names;
  int64_t per_class = 0;
  int64_t images = 0;
  int64_t size = 0;
  uint64_t seed = 0;
  std::vector<ShapeSample> samples;  ///< class by class, id by id
  double seconds = 0;
};

/// One rendered image with its ground truth.
struct ShapeImage {
  torch::Tensor image;  ///< uint8 [S, S, 3]
  torch::Tensor mask;   ///< uint8 [S, S, 1]: 255 where the pixel centre is inside the object
  ShapeSample info;     ///< paths left empty
};

/// Renders image `index` of class `label` for `seed`, independently of every
/// other image (so generation parallelises and any image can be recreated).
/// The object (random centre, circumradius in [0.22 S, 0.38 S], rotation and
/// saturated colour, contrasting with the background) is antialiased with
/// 4x4 supersampling; the background is a random tone with 2-4 faint lines,
/// 1-3 faint blobs and Gaussian noise (sigma 6 grey levels) over everything.
/// Throws c10::Error when label is outside [0, 8) or size outside [16, 1024].
ShapeImage render_shape(int label, int64_t size, uint64_t seed, int64_t index);

/// Writes `out/<class>/<id>.png` and `out/<class>/<id>.mask.png` (ids are
/// zero-padded, 00000, 00001, ...) for the first `classes` classes, plus
/// `out/shapes.json` with every sample's ground truth. Deterministic: a seed
/// gives byte-identical files. Atomic: everything is generated in a hidden
/// sibling directory (core::temporary_sibling) which is renamed to `out` at
/// the end, so an interrupted run never leaves a complete-looking `out`; the
/// next run removes what a killed one left.
/// Progress: stage "make-shapes", one event per chunk of images.
///
/// Throws c10::Error when an option is out of range (naming its flag:
/// --classes, --per-class, --size, --out), `out` exists and is not an empty
/// directory (unless overwrite), or the parent of `out` cannot be written.
ShapesSummary make_shapes(const ShapesOptions& opts, const core::ProgressFn& progress = {});

}  // namespace gradlens::data
