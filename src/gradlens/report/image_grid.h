// Image grids: rows of different images with captions, e.g. a misclassified
// test image beside its strongest training proponents and opponents, or the
// training images whose labels look most wrong.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "gradlens/report/canvas.h"

namespace gradlens::report {

struct GridCell {
  torch::Tensor image;  ///< uint8 [C, H, W], C = 1 or 3, raw 0..255
  /// Caption under the image, one entry per line (each shortened with an
  /// ellipsis to the cell's width).
  std::vector<std::string> caption;
  bool marked = false;  ///< red frame and red caption
};

struct ImageGridOptions {
  std::string title;  ///< line above the grid ("" = none)
  /// Column titles above the first row ("" entries leave a column untitled).
  std::vector<std::string> column_titles;
  /// Images are enlarged by the smallest integer factor that makes their
  /// larger side at least this many pixels (nearest neighbour). >= 1.
  int64_t cell_size = 84;
  double font_px = 11;
  std::string font_path;  ///< "" = DejaVu Sans
  /// Extra space between the first column and the others (a query beside
  /// its answers), in pixels.
  int64_t first_column_gap = 16;
};

/// Draws the rows (they may differ in length; cells of one grid must share
/// their image size). Throws gradlens::Error on an empty grid, mismatched
/// images or a bad option.
Canvas render_image_grid(const std::vector<std::vector<GridCell>>& rows, const ImageGridOptions& opts = {});

/// render_image_grid() written to `png` atomically.
void write_image_grid(const std::filesystem::path& png, const std::vector<std::vector<GridCell>>& rows,
                      const ImageGridOptions& opts = {});

}  // namespace gradlens::report
