#include "gradlens/report/canvas.h"
#include <torch/types.h>

#include <algorithm>
#include <cstring>

#include "gradlens/core/check.h"

namespace gradlens::report {

Canvas::Canvas(int64_t w, int64_t h, Rgb background) : width(w), height(h) {
  GRADLENS_CHECK(w >= 1 && h >= 1, "canvas size must be at least 1x1, got ", w, "x", h);
  GRADLENS_CHECK(w * h <= (int64_t{1} << 30), "canvas of ", w, "x", h,
                 " pixels is too large (at most 2^30 pixels); draw fewer rows or smaller cells");
  pixels.resize(static_cast<size_t>(3 * w * h));
  for (int64_t i = 0; i < w * h; ++i) std::memcpy(pixels.data() + 3 * i, background.data(), 3);
}

void Canvas::set(int64_t x, int64_t y, Rgb c) {
  if (x < 0 || y < 0 || x >= width || y >= height) return;
  std::memcpy(at(x, y), c.data(), 3);
}

void Canvas::blend(int64_t x, int64_t y, Rgb c, double a) {
  if (x < 0 || y < 0 || x >= width || y >= height || a <= 0) return;
  a = std::min(a, 1.0);
  uint8_t* p = at(x, y);
  for (int k = 0; k < 3; ++k) p[k] = static_cast<uint8_t>(std::lround((1 - a) * p[k] + a * c[k]));
}

void Canvas::fill_rect(int64_t x, int64_t y, int64_t w, int64_t h, Rgb c) {
  const int64_t x0 = std::max<int64_t>(x, 0), x1 = std::min(x + w, width);
  const int64_t y0 = std::max<int64_t>(y, 0), y1 = std::min(y + h, height);
  for (int64_t yy = y0; yy < y1; ++yy)
    for (int64_t xx = x0; xx < x1; ++xx) std::memcpy(at(xx, yy), c.data(), 3);
}

void Canvas::frame(int64_t x, int64_t y, int64_t w, int64_t h, int64_t t, Rgb c) {
  fill_rect(x - t, y - t, w + 2 * t, t, c);  // top
  fill_rect(x - t, y + h, w + 2 * t, t, c);  // bottom
  fill_rect(x - t, y, t, h, c);              // left
  fill_rect(x + w, y, t, h, c);              // right
}

torch::Tensor Canvas::to_tensor() const {
  auto t = torch::empty({height, width, 3}, torch::kByte);
  std::memcpy(t.data_ptr<uint8_t>(), pixels.data(), pixels.size());
  return t;
}

}  // namespace gradlens::report
