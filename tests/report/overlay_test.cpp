// Overlay grids, colour maps, text and PNG writing (report/overlay.h etc.):
// the PNG is decoded again with stb_image and checked pixel by pixel.
#include "gradlens/report/overlay.h"

#include <torch/types.h>

#include <stb_image.h>

#include <memory>

#include "gradlens/report/colormap.h"
#include "gradlens/report/font.h"
#include "gradlens/report/png.h"
#include "support/support.h"

namespace gradlens::report {
namespace {

struct Decoded {
  int w = 0, h = 0;
  std::shared_ptr<unsigned char> px;
  Rgb at(int64_t x, int64_t y) const {
    const unsigned char* p = px.get() + 3 * (y * w + x);
    return {p[0], p[1], p[2]};
  }
};

Decoded decode(const test::fs::path& path) {
  Decoded d;
  int c = 0;
  unsigned char* p = stbi_load(path.c_str(), &d.w, &d.h, &c, 3);
  EXPECT_NE(p, nullptr) << path << ": " << stbi_failure_reason();
  d.px.reset(p, stbi_image_free);
  return d;
}

bool font_available() { return test::fs::exists(default_font_path()); }

TEST(Colormap, JetAndTurboAtKnownPoints) {
  // jet: matplotlib's table entry floor(256 t); 0 -> (0, 0, 0.5), 1 -> (0.5, 0, 0);
  // 0.5 -> entry 128 at x = 128/255: red (x - 0.35) / 0.31, green 1,
  // blue 1 - (x - 0.34) / 0.31.
  EXPECT_EQ(colormap_rgb(Colormap::kJet, 0.0), (Rgb{0, 0, 128}));
  EXPECT_EQ(colormap_rgb(Colormap::kJet, 1.0), (Rgb{128, 0, 0}));
  EXPECT_EQ(colormap_rgb(Colormap::kJet, 0.5), (Rgb{125, 255, 122}));
  EXPECT_EQ(colormap_rgb(Colormap::kJet, 7.0), colormap_rgb(Colormap::kJet, 1.0));
  EXPECT_EQ(colormap_rgb(Colormap::kJet, -1.0), colormap_rgb(Colormap::kJet, 0.0));
  // turbo: the polynomial at 0 is its constant terms, at 1 the sums of the
  // coefficients (blue slightly negative, clamped to 0).
  EXPECT_EQ(colormap_rgb(Colormap::kTurbo, 0.0), (Rgb{35, 23, 27}));
  EXPECT_EQ(colormap_rgb(Colormap::kTurbo, 1.0), (Rgb{144, 13, 0}));
  const Rgb mid = colormap_rgb(Colormap::kTurbo, 0.5);  // yellow-green
  EXPECT_GT(mid[1], mid[0]);
  EXPECT_GT(mid[0], mid[2]);
  EXPECT_EQ(parse_colormap("turbo"), Colormap::kTurbo);
  GRADLENS_EXPECT_THROWS_WITH(parse_colormap("viridis"), "--colormap: unknown colour map 'viridis'");
}

TEST(Overlay, PixelsAreTheImageBlendedWithTheColouredMapWhereTheyShouldBe) {
  if (!font_available()) GTEST_SKIP() << "fonts-dejavu-core is not installed";
  // Two 28x28 grey images (value 100); column A: image 0's map is 1 on the
  // left half and 0 on the right, image 1's is 0.5 everywhere and marked.
  const auto images = torch::full({2, 1, 28, 28}, 100, torch::kByte);
  auto maps = torch::zeros({2, 28, 28});
  maps[0].slice(1, 0, 14).fill_(1.0);
  maps[1].fill_(0.5);
  OverlayGrid g;
  g.images = images;
  g.image_captions = {"true: Sneaker", "true: Bag"};
  g.title = "test grid";
  g.columns.push_back({"A", maps, {"pred: Sneaker", "pred: Sandal"}, {false, true}});
  test::TempDir dir;
  const auto path = dir / "grid.png";
  const auto layout = write_overlay_grid(path, g);
  const auto d = decode(path);
  ASSERT_EQ(d.w, layout.width);
  ASSERT_EQ(d.h, layout.height);
  EXPECT_EQ(layout.scale, 4);  // 28 px -> 112 px cells
  EXPECT_EQ(layout.cell_width, 112);
  EXPECT_EQ(layout.cell_height, 112);
  ASSERT_EQ(layout.cells.size(), 2u);
  ASSERT_EQ(layout.cells[0].size(), 2u);

  const Rgb grey = {100, 100, 100};
  const Rgb hot = blend_pixel(grey, colormap_rgb(Colormap::kJet, 1.0), 0.5);
  const Rgb cold = blend_pixel(grey, colormap_rgb(Colormap::kJet, 0.0), 0.5);
  EXPECT_EQ(hot, (Rgb{114, 50, 50}));   // red-ish: 0.5 * 100 + 0.5 * 128
  EXPECT_EQ(cold, (Rgb{50, 50, 114}));  // blue-ish
  const auto [x00, y00] = layout.cells[0][0];
  const auto [x01, y01] = layout.cells[0][1];
  for (int64_t y = 0; y < 112; y += 7) {
    for (int64_t x = 0; x < 112; x += 5) {
      EXPECT_EQ(d.at(x00 + x, y00 + y), grey) << x << "," << y;
      EXPECT_EQ(d.at(x01 + x, y01 + y), x < 56 ? hot : cold) << x << "," << y;
    }
  }
  // Row 1: the mid value everywhere, with a red frame around the map cell
  // (misclassified) and none around the plain image.
  const auto [x10, y10] = layout.cells[1][0];
  const auto [x11, y11] = layout.cells[1][1];
  EXPECT_EQ(d.at(x11 + 50, y11 + 50), blend_pixel(grey, colormap_rgb(Colormap::kJet, 0.5), 0.5));
  const Rgb red = {215, 25, 28};
  EXPECT_EQ(d.at(x11 - 1, y11 + 20), red);
  EXPECT_EQ(d.at(x11 + 112, y11 + 20), red);
  EXPECT_EQ(d.at(x11 + 20, y11 - 2), red);
  EXPECT_EQ(d.at(x10 - 1, y10 + 20), (Rgb{255, 255, 255}));
  // Captions: dark text under the cells of row 0, red text under the marked cell.
  int dark = 0, reddish = 0;
  for (int64_t y = y00 + 112; y < y10; ++y)
    for (int64_t x = x00; x < x00 + 112; ++x) dark += d.at(x, y)[0] < 100;
  for (int64_t y = y11 + 112 + 3; y < layout.height; ++y)
    for (int64_t x = x11; x < x11 + 112; ++x) {
      const auto p = d.at(x, y);
      reddish += p[0] > 150 && p[1] < 120 && p[2] < 120;
    }
  EXPECT_GT(dark, 30);
  EXPECT_GT(reddish, 30);
}

TEST(Overlay, RgbImagesTurboAndAlpha) {
  if (!font_available()) GTEST_SKIP() << "fonts-dejavu-core is not installed";
  auto images = torch::zeros({1, 3, 64, 64}, torch::kByte);
  images[0][0].fill_(200);
  images[0][2].fill_(40);
  OverlayGrid g;
  g.images = images;
  g.columns.push_back({"gradcam", torch::ones({1, 64, 64}), {}, {}});
  g.columns.push_back({"ig", torch::zeros({1, 64, 64}), {}, {}});
  OverlayOptions o;
  o.colormap = Colormap::kTurbo;
  o.alpha = 0.25;
  o.legend = false;
  OverlayLayout layout;
  const auto cv = render_overlay_grid(g, o, &layout);
  EXPECT_EQ(layout.scale, 2);  // 64 px -> 128 px
  const auto t = cv.to_tensor();
  const Rgb base = {200, 0, 40};
  auto px = [&](int64_t x, int64_t y) {
    return Rgb{t[y][x][0].item<uint8_t>(), t[y][x][1].item<uint8_t>(), t[y][x][2].item<uint8_t>()};
  };
  EXPECT_EQ(px(layout.cells[0][0].first + 3, layout.cells[0][0].second + 3), base);
  EXPECT_EQ(px(layout.cells[0][1].first + 3, layout.cells[0][1].second + 3),
            blend_pixel(base, colormap_rgb(Colormap::kTurbo, 1.0), 0.25));
  EXPECT_EQ(px(layout.cells[0][2].first + 100, layout.cells[0][2].second + 100),
            blend_pixel(base, colormap_rgb(Colormap::kTurbo, 0.0), 0.25));
  EXPECT_EQ(layout.width, 2 * 10 + 3 * 128 + 2 * 10);
}

TEST(Overlay, LongGridsAreSplitIntoBlocksOfRowsSideBySide) {
  if (!font_available()) GTEST_SKIP() << "fonts-dejavu-core is not installed";
  OverlayGrid g;
  g.images = torch::zeros({12, 1, 28, 28}, torch::kByte);
  g.columns.push_back({"A", torch::zeros({12, 28, 28}), {}, {}});
  OverlayLayout auto_layout;
  render_overlay_grid(g, {}, &auto_layout);
  EXPECT_GT(auto_layout.blocks, 1);
  EXPECT_EQ(auto_layout.blocks, (12 + auto_layout.rows_per_block - 1) / auto_layout.rows_per_block);
  OverlayOptions o;
  o.rows_per_block = 5;  // blocks of 5, 5, 2
  OverlayLayout l;
  const auto cv = render_overlay_grid(g, o, &l);
  EXPECT_EQ(l.blocks, 3);
  EXPECT_EQ(l.cells[5][0].second, l.cells[0][0].second);  // row 5 starts block 2 at the top
  EXPECT_GT(l.cells[5][0].first, l.cells[4][1].first + 112);
  EXPECT_GT(l.cells[4][0].second, l.cells[0][0].second);
  EXPECT_EQ(l.cells[11][1].first + 112 + 10, cv.width);  // the last block ends at the right margin
  o.rows_per_block = 100;
  render_overlay_grid(g, o, &l);
  EXPECT_EQ(l.blocks, 1);
}

TEST(Overlay, BadInputNamesTheProblem) {
  OverlayGrid g;
  g.images = torch::zeros({2, 1, 8, 8}, torch::kByte);
  g.columns.push_back({"model-b", torch::zeros({2, 8, 9}), {}, {}});
  GRADLENS_EXPECT_THROWS_WITH(render_overlay_grid(g), "column 'model-b' has maps of shape [2, 8, 9]");
  g.columns[0].maps = torch::full({2, 8, 8}, NAN);
  GRADLENS_EXPECT_THROWS_WITH(render_overlay_grid(g), "NaN");
  g.columns[0].maps = torch::zeros({2, 8, 8});
  g.columns[0].captions = {"only one"};
  GRADLENS_EXPECT_THROWS_WITH(render_overlay_grid(g), "1 captions for 2 images");
  g.columns[0].captions.clear();
  OverlayOptions o;
  o.alpha = 1.5;
  GRADLENS_EXPECT_THROWS_WITH(render_overlay_grid(g, o), "--alpha");
  o.alpha = 0.5;
  o.font_path = "/nonexistent/font.ttf";
  GRADLENS_EXPECT_THROWS_WITH(render_overlay_grid(g, o), "font /nonexistent/font.ttf not found");
  g.images = torch::zeros({2, 2, 8, 8}, torch::kByte);
  GRADLENS_EXPECT_THROWS_WITH(render_overlay_grid(g), "C = 1 or 3");
}

TEST(Font, WidthsAndEllipsis) {
  if (!font_available()) GTEST_SKIP() << "fonts-dejavu-core is not installed";
  const Font f;
  EXPECT_EQ(f.text_width("", 13), 0);
  const int64_t w = f.text_width("Ankle boot", 13);
  EXPECT_GT(w, 40);
  EXPECT_LT(w, 90);
  EXPECT_GT(f.text_width("Ankle boot", 26), w);
  EXPECT_EQ(f.fit("Ankle boot", 13, 1000), "Ankle boot");
  const auto cut = f.fit("a rather long column title for one cell", 13, 80);
  EXPECT_LE(f.text_width(cut, 13), 80);
  EXPECT_EQ(cut.substr(cut.size() - 3), "\xE2\x80\xA6");  // U+2026
  EXPECT_GT(f.line_height(13), 12);
  Canvas cv(60, 20);
  f.draw(cv, "Bag", 2, 2, 13, {0, 0, 0});
  int dark = 0;
  for (size_t i = 0; i < cv.pixels.size(); i += 3) dark += cv.pixels[i] < 128;
  EXPECT_GT(dark, 10);
}

TEST(Png, WritesAtomicallyAndNamesAnUnwritablePath) {
  test::TempDir dir;
  Canvas cv(3, 2, {10, 20, 30});
  cv.set(2, 1, {255, 0, 0});
  write_png(dir / "a.png", cv);
  const auto d = decode(dir / "a.png");
  ASSERT_EQ(d.w, 3);
  ASSERT_EQ(d.h, 2);
  EXPECT_EQ(d.at(0, 0), (Rgb{10, 20, 30}));
  EXPECT_EQ(d.at(2, 1), (Rgb{255, 0, 0}));
  // A parent that is a regular file cannot hold the PNG.
  write_png(dir / "blocker", cv);
  GRADLENS_EXPECT_THROWS_WITH(write_png(dir / "blocker" / "a.png", cv), "blocker");
  EXPECT_EQ(std::distance(test::fs::directory_iterator(dir.path()), test::fs::directory_iterator{}), 2)
      << "no temporary file may be left behind";
}

}  // namespace
}  // namespace gradlens::report
