// An 8-bit RGB raster in memory, with the few drawing operations the figure
// writers need (filled rectangles, frames, copies of tensors).
#pragma once

#include <torch/types.h>

#include <array>
#include <cstdint>
#include <vector>

namespace gradlens::report {

using Rgb = std::array<uint8_t, 3>;

/// width x height RGB pixels, row-major, 3 bytes per pixel.
struct Canvas {
  int64_t width = 0;
  int64_t height = 0;
  std::vector<uint8_t> pixels;

  Canvas() = default;
  /// A canvas filled with `background`. Throws c10::Error when a side is < 1
  /// or the canvas would exceed 2^30 pixels.
  Canvas(int64_t width, int64_t height, Rgb background = {255, 255, 255});

  /// Pixel (x, y); no bounds check.
  uint8_t* at(int64_t x, int64_t y) { return pixels.data() + 3 * (y * width + x); }
  const uint8_t* at(int64_t x, int64_t y) const { return pixels.data() + 3 * (y * width + x); }
  /// Sets (x, y) when it lies on the canvas.
  void set(int64_t x, int64_t y, Rgb c);
  /// Blends `c` over (x, y) with weight a in [0, 1], when on the canvas.
  void blend(int64_t x, int64_t y, Rgb c, double a);

  /// Fills the rectangle [x, x + w) x [y, y + h), clipped to the canvas.
  void fill_rect(int64_t x, int64_t y, int64_t w, int64_t h, Rgb c);
  /// A frame of `thickness` pixels just outside the rectangle [x, x + w) x
  /// [y, y + h), clipped to the canvas.
  void frame(int64_t x, int64_t y, int64_t w, int64_t h, int64_t thickness, Rgb c);

  /// The canvas as a uint8 [height, width, 3] CPU tensor (a copy).
  torch::Tensor to_tensor() const;
};

}  // namespace gradlens::report
