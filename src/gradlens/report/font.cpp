#include "gradlens/report/font.h"
#include <torch/types.h>

#include <stb_truetype.h>

#include <cmath>
#include <filesystem>
#include <vector>

#include "gradlens/core/check.h"
#include "gradlens/core/fs.h"

namespace gradlens::report {
namespace {

constexpr const char* kFontDefaultPath = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
constexpr char32_t kFontEllipsis = 0x2026;

/// Decodes UTF-8; invalid bytes become U+FFFD.
std::vector<char32_t> font_decode_utf8(const std::string& s) {
  std::vector<char32_t> out;
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    int len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    if (len == 0 || i + len > s.size()) {
      out.push_back(0xFFFD);
      ++i;
      continue;
    }
    char32_t cp = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
    bool ok = true;
    for (int k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      ok = ok && (cc >> 6) == 0x2;
      cp = (cp << 6) | (cc & 0x3F);
    }
    out.push_back(ok ? cp : 0xFFFD);
    i += ok ? len : 1;
  }
  return out;
}

std::string font_encode_utf8(const std::vector<char32_t>& cps) {
  std::string s;
  for (char32_t cp : cps) {
    if (cp < 0x80) {
      s += static_cast<char>(cp);
    } else if (cp < 0x800) {
      s += static_cast<char>(0xC0 | (cp >> 6));
      s += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      s += static_cast<char>(0xE0 | (cp >> 12));
      s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      s += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      s += static_cast<char>(0xF0 | (cp >> 18));
      s += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      s += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }
  return s;
}

}  // namespace

struct Font::Impl {
  std::string path;
  std::string data;
  stbtt_fontinfo info{};
  int ascent = 0, descent = 0, line_gap = 0;

  float scale(double px) const { return stbtt_ScaleForPixelHeight(&info, static_cast<float>(px)); }

  /// Pen advance of the code points in pixels (with kerning).
  double advance(const std::vector<char32_t>& cps, size_t n, float sc) const {
    double x = 0;
    for (size_t i = 0; i < n; ++i) {
      int adv = 0, lsb = 0;
      stbtt_GetCodepointHMetrics(&info, static_cast<int>(cps[i]), &adv, &lsb);
      x += adv * sc;
      if (i + 1 < n)
        x += sc * stbtt_GetCodepointKernAdvance(&info, static_cast<int>(cps[i]), static_cast<int>(cps[i + 1]));
    }
    return x;
  }
};

const char* default_font_path() { return kFontDefaultPath; }

Font::Font(const std::string& path_in) : impl_(std::make_unique<Impl>()) {
  const bool is_default = path_in.empty() || path_in == kFontDefaultPath;
  impl_->path = path_in.empty() ? kFontDefaultPath : path_in;
  GRADLENS_CHECK(std::filesystem::exists(impl_->path), "font ", impl_->path, " not found; ",
                 is_default ? "install Debian's fonts-dejavu-core (apt-get install fonts-dejavu-core), which "
                              "provides it, to draw captions"
                            : "give an existing TrueType (.ttf) file");
  impl_->data = core::read_file(impl_->path);
  const auto* bytes = reinterpret_cast<const unsigned char*>(impl_->data.data());
  const int offset = stbtt_GetFontOffsetForIndex(bytes, 0);
  GRADLENS_CHECK(offset >= 0 && stbtt_InitFont(&impl_->info, bytes, offset) != 0, "font ",
                 impl_->path, " is not a TrueType font; give a .ttf file");
  stbtt_GetFontVMetrics(&impl_->info, &impl_->ascent, &impl_->descent, &impl_->line_gap);
}

Font::~Font() = default;
Font::Font(Font&&) noexcept = default;
Font& Font::operator=(Font&&) noexcept = default;

const std::string& Font::path() const { return impl_->path; }

int64_t Font::text_width(const std::string& utf8, double px) const {
  const auto cps = font_decode_utf8(utf8);
  return static_cast<int64_t>(std::ceil(impl_->advance(cps, cps.size(), impl_->scale(px))));
}

int64_t Font::line_height(double px) const {
  const float sc = impl_->scale(px);
  return static_cast<int64_t>(std::ceil(sc * (impl_->ascent - impl_->descent + impl_->line_gap)));
}

std::string Font::fit(const std::string& utf8, double px, int64_t max_width) const {
  if (text_width(utf8, px) <= max_width) return utf8;
  auto cps = font_decode_utf8(utf8);
  const float sc = impl_->scale(px);
  while (!cps.empty()) {
    cps.pop_back();
    auto trial = cps;
    trial.push_back(kFontEllipsis);
    if (impl_->advance(trial, trial.size(), sc) <= static_cast<double>(max_width))
      return font_encode_utf8(trial);
  }
  return "";
}

int64_t Font::draw(Canvas& canvas, const std::string& utf8, int64_t x, int64_t y, double px,
                   Rgb color) const {
  const auto cps = font_decode_utf8(utf8);
  const float sc = impl_->scale(px);
  const int64_t baseline = y + static_cast<int64_t>(std::lround(sc * impl_->ascent));
  double pen = static_cast<double>(x);
  std::vector<unsigned char> glyph;
  for (size_t i = 0; i < cps.size(); ++i) {
    const int cp = static_cast<int>(cps[i]);
    int x0 = 0, y0 = 0, x1 = 0, y1 = 0;
    stbtt_GetCodepointBitmapBox(&impl_->info, cp, sc, sc, &x0, &y0, &x1, &y1);
    const int w = x1 - x0, h = y1 - y0;
    const int64_t gx = static_cast<int64_t>(std::lround(pen)) + x0;
    if (w > 0 && h > 0) {
      glyph.assign(static_cast<size_t>(w) * h, 0);
      stbtt_MakeCodepointBitmap(&impl_->info, glyph.data(), w, h, w, sc, sc, cp);
      for (int r = 0; r < h; ++r)
        for (int c = 0; c < w; ++c)
          canvas.blend(gx + c, baseline + y0 + r, color, glyph[static_cast<size_t>(r) * w + c] / 255.0);
    }
    int adv = 0, lsb = 0;
    stbtt_GetCodepointHMetrics(&impl_->info, cp, &adv, &lsb);
    pen += adv * sc;
    if (i + 1 < cps.size())
      pen += sc * stbtt_GetCodepointKernAdvance(&impl_->info, cp, static_cast<int>(cps[i + 1]));
  }
  return static_cast<int64_t>(std::ceil(pen)) - x;
}

}  // namespace gradlens::report
