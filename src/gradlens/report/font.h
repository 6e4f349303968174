// Text on a Canvas: a TrueType font rasterised with stb_truetype. The default
// font is DejaVu Sans from Debian's fonts-dejavu-core.
#pragma once

#include <memory>
#include <string>

#include "gradlens/report/canvas.h"

namespace gradlens::report {

/// /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf
const char* default_font_path();

class Font {
 public:
  /// Loads a TrueType font ("" = default_font_path()). Throws c10::Error
  /// naming the file when it is missing (for the default: install Debian's
  /// fonts-dejavu-core) or is not a TrueType font.
  explicit Font(const std::string& path = "");
  ~Font();
  Font(Font&&) noexcept;
  Font& operator=(Font&&) noexcept;
  Font(const Font&) = delete;
  Font& operator=(const Font&) = delete;

  /// Advance width in pixels of one line of UTF-8 text at `pixel_height`
  /// (the font's ascent - descent is scaled to this height).
  int64_t text_width(const std::string& utf8, double pixel_height) const;
  /// Line height (ascent - descent + line gap) in pixels.
  int64_t line_height(double pixel_height) const;

  /// `utf8` unchanged when it fits in max_width pixels, else cut at a
  /// character boundary and ended with an ellipsis ("…") so that it fits.
  std::string fit(const std::string& utf8, double pixel_height, int64_t max_width) const;

  /// Draws one line of text with its top-left corner (line box) at (x, y),
  /// anti-aliased over the canvas; clipped to the canvas. Returns the width.
  int64_t draw(Canvas& canvas, const std::string& utf8, int64_t x, int64_t y, double pixel_height,
               Rgb color) const;

  const std::string& path() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace gradlens::report
