#include "gradlens/report/overlay.h"
#include <torch/types.h>

#include <algorithm>
#include <cmath>
#include <sstream>

#include "gradlens/core/check.h"
#include "gradlens/report/colormap.h"
#include "gradlens/report/font.h"
#include "gradlens/report/png.h"

namespace gradlens::report {
namespace {

constexpr int64_t kOverlayMargin = 10;
constexpr int64_t kOverlayGap = 10;
constexpr int64_t kOverlayFrame = 3;
constexpr int64_t kOverlayLegendBar = 256;
const Rgb kOverlayInk = {20, 20, 20};
const Rgb kOverlayRed = {215, 25, 28};

std::vector<std::string> overlay_lines(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream is(s);
  std::string line;
  while (std::getline(is, line)) out.push_back(line);
  if (out.empty()) out.emplace_back();
  return out;
}

size_t overlay_max_lines(const std::vector<std::string>& texts) {
  size_t n = 0;
  for (const auto& t : texts) n = std::max(n, overlay_lines(t).size());
  return n;
}

/// Greedy word wrap of one paragraph into lines of at most `width` pixels (a
/// single word wider than that is shortened with an ellipsis).
std::vector<std::string> overlay_wrap(const Font& font, const std::string& text, double px, int64_t width) {
  std::vector<std::string> lines;
  std::istringstream is(text);
  std::string word, line;
  while (is >> word) {
    const std::string trial = line.empty() ? word : line + " " + word;
    if (line.empty() || font.text_width(trial, px) <= width) {
      line = trial;
    } else {
      lines.push_back(font.fit(line, px, width));
      line = word;
    }
  }
  if (!line.empty()) lines.push_back(font.fit(line, px, width));
  return lines;
}

/// Draws `text` (possibly several lines) centred in [x, x + w), each line
/// shortened with an ellipsis to fit.
void overlay_text_centred(Canvas& cv, const Font& font, const std::string& text, int64_t x,
                          int64_t y, int64_t w, double px, Rgb color) {
  const int64_t lh = font.line_height(px);
  int64_t yy = y;
  for (const auto& line : overlay_lines(text)) {
    const auto fitted = font.fit(line, px, w);
    const int64_t tw = font.text_width(fitted, px);
    font.draw(cv, fitted, x + std::max<int64_t>(0, (w - tw) / 2), yy, px, color);
    yy += lh;
  }
}

}  // namespace

Rgb blend_pixel(Rgb image, Rgb colour, double alpha) {
  Rgb out;
  for (int k = 0; k < 3; ++k)
    out[k] = static_cast<uint8_t>(std::lround((1 - alpha) * image[k] + alpha * colour[k]));
  return out;
}

Canvas render_overlay_grid(const OverlayGrid& grid, const OverlayOptions& opts,
                           OverlayLayout* layout_out) {
  const auto& im = grid.images;
  GRADLENS_CHECK(im.defined() && im.dim() == 4 && im.scalar_type() == torch::kByte &&
                     (im.size(1) == 1 || im.size(1) == 3),
                 "overlay grid: images must be uint8 [N, C, H, W] with C = 1 or 3, got ",
                 im.defined() ? im.sizes() : c10::IntArrayRef{}, " ",
                 im.defined() ? c10::toString(im.scalar_type()) : "undefined");
  const int64_t n = im.size(0), c_in = im.size(1), h = im.size(2), w = im.size(3);
  GRADLENS_CHECK(n >= 1 && h >= 1 && w >= 1, "overlay grid: no image to draw (images ", im.sizes(), ")");
  GRADLENS_CHECK(!grid.columns.empty(), "overlay grid: no map column to draw");
  GRADLENS_CHECK(grid.image_captions.empty() || static_cast<int64_t>(grid.image_captions.size()) == n,
                 "overlay grid: ", grid.image_captions.size(), " image captions for ", n, " images");
  const auto cmap = opts.colormap;
  GRADLENS_CHECK(std::isfinite(opts.alpha) && opts.alpha >= 0 && opts.alpha <= 1,
                 "--alpha must lie in [0, 1], got ", opts.alpha);
  GRADLENS_CHECK(opts.cell_size >= 1, "overlay grid: cell size must be >= 1, got ", opts.cell_size);
  GRADLENS_CHECK(std::isfinite(opts.font_px) && opts.font_px > 0 && opts.font_px <= 200,
                 "overlay grid: font size must lie in (0, 200] pixels, got ", opts.font_px);

  std::vector<torch::Tensor> maps;
  for (const auto& col : grid.columns) {
    const auto& m = col.maps;
    GRADLENS_CHECK(m.defined() && m.dim() == 3 && m.size(0) == n && m.size(1) == h && m.size(2) == w &&
                       (m.is_floating_point() || m.scalar_type() == torch::kByte),
                   "overlay grid: column '", col.title, "' has maps of shape ",
                   m.defined() ? m.sizes() : c10::IntArrayRef{}, " but the images are ", im.sizes(),
                   "; give one [N, H, W] map per image at the image size");
    const auto mf = m.to(torch::kCPU, torch::kFloat).contiguous();
    GRADLENS_CHECK(torch::isfinite(mf).all().item<bool>(), "overlay grid: column '", col.title,
                   "' has NaN or Inf map values");
    maps.push_back(mf);
    GRADLENS_CHECK(col.captions.empty() || static_cast<int64_t>(col.captions.size()) == n,
                   "overlay grid: column '", col.title, "' has ", col.captions.size(),
                   " captions for ", n, " images");
    GRADLENS_CHECK(col.marked.empty() || static_cast<int64_t>(col.marked.size()) == n,
                   "overlay grid: column '", col.title, "' has ", col.marked.size(),
                   " marks for ", n, " images");
  }
  const Font font(opts.font_path);
  const double px = opts.font_px;
  const int64_t lh = font.line_height(px);

  // Geometry.
  const int64_t scale = std::max<int64_t>(1, (opts.cell_size + std::max(h, w) - 1) / std::max(h, w));
  const int64_t cw = scale * w, ch = scale * h;
  const int64_t ncols = 1 + static_cast<int64_t>(grid.columns.size());
  std::vector<std::string> titles = {grid.image_title};
  std::vector<std::string> captions = grid.image_captions;
  bool any_mark = false;
  for (const auto& col : grid.columns) {
    titles.push_back(col.title);
    captions.insert(captions.end(), col.captions.begin(), col.captions.end());
    for (bool b : col.marked) any_mark = any_mark || b;
  }
  const int64_t title_h = grid.title.empty() ? 0 : lh + 8;
  const int64_t header_h = static_cast<int64_t>(overlay_max_lines(titles)) * lh + 6;
  const size_t caption_lines = overlay_max_lines(captions);
  const int64_t caption_h = captions.empty() ? 0 : static_cast<int64_t>(caption_lines) * lh + 4;
  const int64_t row_h = ch + caption_h + kOverlayGap;
  const int64_t block_w = ncols * cw + (ncols - 1) * kOverlayGap;
  const int64_t block_gap = 3 * kOverlayGap;

  // Blocks of rows side by side: the count whose picture is closest to 3:4.
  int64_t per_block = opts.rows_per_block > 0 ? std::min(opts.rows_per_block, n) : n;
  if (opts.rows_per_block <= 0) {
    double best = 1e300;
    for (int64_t b = 1; b <= std::min<int64_t>(12, n); ++b) {
      const int64_t rows = (n + b - 1) / b;
      const double wd = static_cast<double>(b * block_w + (b - 1) * block_gap);
      const double ht = static_cast<double>(header_h + rows * row_h);
      const double score = std::abs(std::log((ht / wd) / (4.0 / 3.0)));
      if (score < best - 1e-12) {
        best = score;
        per_block = rows;
      }
    }
  }
  const int64_t blocks = (n + per_block - 1) / per_block;
  const int64_t grid_w = blocks * block_w + (blocks - 1) * block_gap;
  const int64_t min_w = opts.legend ? kOverlayLegendBar + 40 : 0;
  const int64_t width = 2 * kOverlayMargin + std::max(grid_w, min_w);
  const int64_t text_w = width - 2 * kOverlayMargin;
  std::vector<std::string> legend_lines;
  if (opts.legend) {
    for (const auto& l : overlay_wrap(font, "Colour: the attribution map, min-max scaled to [0, 1] per image, drawn "
                                            "over the image.", px, text_w))
      legend_lines.push_back(l);
  }
  std::vector<std::string> note_lines;
  if (opts.legend)
    for (const auto& note : grid.notes)
      for (const auto& l : overlay_wrap(font, note, px, text_w)) note_lines.push_back(l);
  std::vector<std::string> mark_lines;
  if (opts.legend && any_mark)
    mark_lines = overlay_wrap(font, "Red frame and caption: misclassified (the prediction differs from the true "
                                    "class).", px, text_w);
  const int64_t legend_h =
      opts.legend ? 8 + static_cast<int64_t>(legend_lines.size() + mark_lines.size() + note_lines.size()) * lh + lh + 8
                  : 0;
  const int64_t height = 2 * kOverlayMargin + title_h + header_h + per_block * row_h + legend_h;
  Canvas cv(width, height);

  OverlayLayout layout;
  layout.width = width;
  layout.height = height;
  layout.scale = scale;
  layout.cell_width = cw;
  layout.cell_height = ch;
  layout.blocks = blocks;
  layout.rows_per_block = per_block;

  int64_t y = kOverlayMargin;
  if (!grid.title.empty()) {
    font.draw(cv, font.fit(grid.title, px, text_w), kOverlayMargin, y, px, kOverlayInk);
    y += title_h;
  }
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t bx = kOverlayMargin + b * (block_w + block_gap);
    for (int64_t c = 0; c < ncols; ++c)
      overlay_text_centred(cv, font, titles[c], bx + c * (cw + kOverlayGap), y, cw, px, kOverlayInk);
    if (b > 0)  // a thin rule between blocks
      cv.fill_rect(bx - block_gap / 2 - 1, y, 1, header_h + per_block * row_h - kOverlayGap, {200, 200, 200});
  }
  y += header_h;

  const auto imgs = im.to(torch::kCPU).contiguous();
  const uint8_t* ip = imgs.data_ptr<uint8_t>();
  for (int64_t r = 0; r < n; ++r) {
    const int64_t b = r / per_block;
    const int64_t top = y + (r % per_block) * row_h;
    const int64_t bx = kOverlayMargin + b * (block_w + block_gap);
    std::vector<std::pair<int64_t, int64_t>> cells;
    for (int64_t c = 0; c < ncols; ++c) {
      const int64_t left = bx + c * (cw + kOverlayGap);
      cells.emplace_back(left, top);
      const float* mp = c == 0 ? nullptr : maps[c - 1].data_ptr<float>() + r * h * w;
      for (int64_t yy = 0; yy < ch; ++yy) {
        const int64_t sy = yy / scale;
        for (int64_t xx = 0; xx < cw; ++xx) {
          const int64_t sx = xx / scale;
          Rgb base;
          for (int k = 0; k < 3; ++k) {
            const int64_t ck = c_in == 1 ? 0 : k;
            base[k] = ip[((r * c_in + ck) * h + sy) * w + sx];
          }
          const Rgb out = mp == nullptr
                              ? base
                              : blend_pixel(base, colormap_rgb(cmap, mp[sy * w + sx]), opts.alpha);
          cv.set(left + xx, top + yy, out);
        }
      }
      bool marked = false;
      std::string caption;
      if (c == 0) {
        if (!grid.image_captions.empty()) caption = grid.image_captions[r];
      } else {
        const auto& col = grid.columns[c - 1];
        if (!col.captions.empty()) caption = col.captions[r];
        marked = !col.marked.empty() && col.marked[r];
      }
      if (marked) cv.frame(left, top, cw, ch, kOverlayFrame, kOverlayRed);
      if (!caption.empty())
        overlay_text_centred(cv, font, caption, left, top + ch + kOverlayFrame + 1, cw, px,
                             marked ? kOverlayRed : kOverlayInk);
    }
    layout.cells.push_back(std::move(cells));
  }

  if (opts.legend) {
    int64_t ly = y + per_block * row_h + 8;
    for (const auto& l : legend_lines) {
      font.draw(cv, l, kOverlayMargin, ly, px, kOverlayInk);
      ly += lh;
    }
    const int64_t zero_w = font.draw(cv, "0", kOverlayMargin, ly, px, kOverlayInk);
    const int64_t bar_x = kOverlayMargin + zero_w + 6;
    const int64_t bar_h = std::max<int64_t>(8, lh - 4);
    for (int64_t i = 0; i < kOverlayLegendBar; ++i)
      cv.fill_rect(bar_x + i, ly + (lh - bar_h) / 2, 1, bar_h,
                   colormap_rgb(cmap, static_cast<double>(i) / (kOverlayLegendBar - 1)));
    font.draw(cv, "1", bar_x + kOverlayLegendBar + 6, ly, px, kOverlayInk);
    ly += lh;
    for (const auto& l : mark_lines) {
      font.draw(cv, l, kOverlayMargin, ly, px, kOverlayRed);
      ly += lh;
    }
    for (const auto& l : note_lines) {
      font.draw(cv, l, kOverlayMargin, ly, px, kOverlayInk);
      ly += lh;
    }
  }
  if (layout_out != nullptr) *layout_out = std::move(layout);
  return cv;
}

OverlayLayout write_overlay_grid(const std::filesystem::path& path, const OverlayGrid& grid,
                                 const OverlayOptions& options) {
  OverlayLayout layout;
  const Canvas cv = render_overlay_grid(grid, options, &layout);
  write_png(path, cv);
  return layout;
}

}  // namespace gradlens::report
