#include "gradlens/report/image_grid.h"
#include <torch/types.h>

#include <algorithm>

#include "gradlens/core/check.h"
#include "gradlens/report/font.h"
#include "gradlens/report/png.h"

namespace gradlens::report {

namespace {
constexpr int64_t kGridMargin = 8;
constexpr int64_t kGridGap = 6;
constexpr int64_t kGridFrame = 3;
const Rgb kGridInk = {20, 20, 20};
const Rgb kGridRed = {215, 25, 28};
}  // namespace

Canvas render_image_grid(const std::vector<std::vector<GridCell>>& rows, const ImageGridOptions& opts) {
  GRADLENS_CHECK(!rows.empty(), "image grid: no rows");
  GRADLENS_CHECK(opts.cell_size >= 1 && opts.font_px > 0 && opts.first_column_gap >= 0,
                 "image grid: cell_size >= 1, font_px > 0 and first_column_gap >= 0 expected");
  int64_t h = 0, w = 0;
  size_t cols = 0, lines = 0;
  for (const auto& row : rows) {
    cols = std::max(cols, row.size());
    for (const auto& c : row) {
      GRADLENS_CHECK(c.image.defined() && c.image.dim() == 3 && c.image.scalar_type() == torch::kUInt8 &&
                         (c.image.size(0) == 1 || c.image.size(0) == 3),
                     "image grid: every image must be uint8 [1 or 3, H, W]");
      if (h == 0) h = c.image.size(1), w = c.image.size(2);
      GRADLENS_CHECK(c.image.size(1) == h && c.image.size(2) == w, "image grid: images of one grid must share their size");
      lines = std::max(lines, c.caption.size());
    }
  }
  GRADLENS_CHECK(cols >= 1 && h >= 1, "image grid: every row is empty");
  const Font font(opts.font_path);
  const int64_t scale = std::max<int64_t>(1, (opts.cell_size + std::max(h, w) - 1) / std::max(h, w));
  const int64_t cw = w * scale, ch = h * scale;
  const int64_t lh = font.line_height(opts.font_px);
  const int64_t row_h = ch + 4 + static_cast<int64_t>(lines) * lh + kGridGap;
  const int64_t title_h = opts.title.empty() ? 0 : font.line_height(opts.font_px * 1.2) + 4;
  const int64_t head_h = opts.column_titles.empty() ? 0 : lh + 4;
  const int64_t gap0 = cols > 1 ? opts.first_column_gap : 0;
  const int64_t width = 2 * kGridMargin + static_cast<int64_t>(cols) * (cw + kGridGap) + gap0;
  const int64_t height = 2 * kGridMargin + title_h + head_h + static_cast<int64_t>(rows.size()) * row_h;
  Canvas cv(width, height);
  if (!opts.title.empty())
    font.draw(cv, font.fit(opts.title, opts.font_px * 1.2, width - 2 * kGridMargin), kGridMargin, kGridMargin,
              opts.font_px * 1.2, kGridInk);
  auto col_x = [&](size_t j) {
    return kGridMargin + static_cast<int64_t>(j) * (cw + kGridGap) + (j > 0 ? gap0 : 0);
  };
  for (size_t j = 0; j < opts.column_titles.size() && j < cols; ++j)
    font.draw(cv, font.fit(opts.column_titles[j], opts.font_px, cw + kGridGap), col_x(j), kGridMargin + title_h,
              opts.font_px, kGridInk);
  for (size_t i = 0; i < rows.size(); ++i) {
    const int64_t y0 = kGridMargin + title_h + head_h + static_cast<int64_t>(i) * row_h;
    for (size_t j = 0; j < rows[i].size(); ++j) {
      const auto& cell = rows[i][j];
      const int64_t x0 = col_x(j);
      const auto img = cell.image.contiguous();
      const auto a = img.accessor<uint8_t, 3>();
      const bool grey = img.size(0) == 1;
      for (int64_t y = 0; y < ch; ++y)
        for (int64_t x = 0; x < cw; ++x) {
          const int64_t sy = y / scale, sx = x / scale;
          cv.set(x0 + x, y0 + y,
                 grey ? Rgb{a[0][sy][sx], a[0][sy][sx], a[0][sy][sx]} : Rgb{a[0][sy][sx], a[1][sy][sx], a[2][sy][sx]});
        }
      if (cell.marked) cv.frame(x0, y0, cw, ch, kGridFrame, kGridRed);
      int64_t ty = y0 + ch + 4;
      for (const auto& line : cell.caption) {
        font.draw(cv, font.fit(line, opts.font_px, cw + kGridGap - 2), x0, ty, opts.font_px,
                  cell.marked ? kGridRed : kGridInk);
        ty += lh;
      }
    }
  }
  return cv;
}

void write_image_grid(const std::filesystem::path& png, const std::vector<std::vector<GridCell>>& rows,
                      const ImageGridOptions& opts) {
  write_png(png, render_image_grid(rows, opts));
}

}  // namespace gradlens::report
