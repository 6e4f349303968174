// Overlay grids: a PNG with one row per image and one column per model or
// attribution method, each map drawn over its image in a colour map.
//
// Layout (top to bottom): an optional title line; a header with the column
// titles; per row the cells (the plain image first, then one overlay per
// column) with a caption strip under them; a legend (colour bar from 0 to 1,
// and what a red frame means). Long grids are split into blocks of rows
// placed side by side. Small images are enlarged by an integer factor
// with nearest-neighbour sampling (28 px Fashion-MNIST -> 112 px cells), maps
// likewise, so one input pixel stays one visible block.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "gradlens/report/canvas.h"
#include "gradlens/report/colormap.h"

namespace gradlens::report {

/// One column of maps (a model or a method).
struct OverlayColumn {
  std::string title;
  /// float [N, H, W] with the images' H, W; values in [0, 1] (clamped).
  torch::Tensor maps;
  /// N captions under the cells (e.g. "pred: Sandal"), or empty for none.
  std::vector<std::string> captions;
  /// N flags: draw a red frame around the cell and its caption in red (a
  /// misclassified image), or empty for none.
  std::vector<bool> marked;
};

struct OverlayGrid {
  /// uint8 [N, C, H, W], C = 1 (grey) or 3 (RGB): the raw 0..255 images.
  torch::Tensor images;
  /// Title of the first column.
  std::string image_title = "image";
  /// N captions under the plain images (e.g. "#17 true: Sneaker"), or empty.
  std::vector<std::string> image_captions;
  std::vector<OverlayColumn> columns;
  /// Optional line above the grid.
  std::string title;
  /// Explanations added to the legend, one paragraph each (word-wrapped).
  std::vector<std::string> notes;
};

struct OverlayOptions {
  Colormap colormap = Colormap::kJet;
  /// Weight of the coloured map over the image: pixel = (1 - alpha) * image +
  /// alpha * colormap(map) (pytorch-grad-cam's show_cam_on_image with
  /// image_weight = 1 - alpha). In [0, 1].
  double alpha = 0.5;
  /// Images are enlarged by the smallest integer factor that makes their
  /// larger side at least this many pixels (1 for large images). >= 1.
  int64_t cell_size = 112;
  /// Caption text height in pixels (> 0).
  double font_px = 13;
  /// TrueType font; "" = DejaVu Sans (fonts-dejavu-core).
  std::string font_path;
  /// Draw the legend (colour bar and frame meaning) under the grid.
  bool legend = true;
  /// Rows per block: long grids are laid out as blocks of rows side by side
  /// (each with its own column titles), rows running down the first block,
  /// then the next. 0 = automatic (the block count that brings the picture
  /// closest to a 3:4 page, at most 12 blocks); >= n = one block.
  int64_t rows_per_block = 0;
};

/// Where things are on a rendered grid (for callers and tests).
struct OverlayLayout {
  int64_t width = 0, height = 0;  ///< the PNG's size
  int64_t scale = 1;              ///< enlargement factor of the images
  int64_t cell_width = 0, cell_height = 0;
  int64_t blocks = 1, rows_per_block = 0;
  /// Top-left corner of cell (row r, column c), c = 0 the plain image.
  std::vector<std::vector<std::pair<int64_t, int64_t>>> cells;
};

/// The colour of one overlay pixel: (1 - alpha) * image + alpha * colour,
/// rounded to the nearest level.
Rgb blend_pixel(Rgb image, Rgb colour, double alpha);

/// Renders the grid. Throws c10::Error when the images are not uint8 [N, C,
/// H, W] with C = 1 or 3, N = 0, there is no column, a column's maps are not
/// [N, H, W] (naming the column and both shapes) or hold NaN/Inf, a caption
/// or mark list is neither empty nor of length N, --alpha is out of range,
/// or the font cannot be loaded (see Font).
Canvas render_overlay_grid(const OverlayGrid& grid, const OverlayOptions& options = {},
                           OverlayLayout* layout = nullptr);

/// render_overlay_grid() written as a PNG at `path`, atomically.
OverlayLayout write_overlay_grid(const std::filesystem::path& path, const OverlayGrid& grid,
                                 const OverlayOptions& options = {});

}  // namespace gradlens::report
