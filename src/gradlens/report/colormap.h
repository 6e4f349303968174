// Colour maps for saliency overlays: jet and turbo.
#pragma once

#include <string>
#include <vector>

#include "gradlens/report/canvas.h"

namespace gradlens::report {

enum class Colormap {
  /// matplotlib's "jet" (its segment data, sampled as matplotlib does into a
  /// 256-entry table: entry floor(256 t), clipped to 255; pytorch-grad-cam
  /// uses OpenCV's COLORMAP_JET, which is close but not identical).
  kJet,
  /// Google's Turbo (Mikhailov 2019), by its published polynomial
  /// approximation (Apache-2.0; within a few levels of the 256-entry table).
  kTurbo,
};

/// "jet", "turbo".
const std::vector<std::string>& colormap_names();
/// Parses a name; throws c10::Error naming `flag` and listing the names.
Colormap parse_colormap(const std::string& name, const std::string& flag = "--colormap");
/// "jet" or "turbo".
std::string colormap_name(Colormap map);

/// The colour of value t (clamped to [0, 1]; NaN is treated as 0), each
/// channel rounded to the nearest of 0..255.
Rgb colormap_rgb(Colormap map, double t);

}  // namespace gradlens::report
