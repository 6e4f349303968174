#include <torch/types.h>

#include <stb_image.h>

#include <cstdlib>
#include <fstream>

#include "gradlens/core/fs.h"
#include "gradlens/report/gnuplot.h"
#include "gradlens/report/html.h"
#include "gradlens/report/table.h"
#include "support/support.h"

namespace gradlens::report {
namespace {

using test::TempDir;

// Width and height from a PNG's IHDR chunk (big-endian at bytes 16 and 20).
std::pair<int, int> report_png_size(const std::filesystem::path& p) {
  const std::string b = core::read_file(p);
  EXPECT_GE(b.size(), 24u);
  auto be = [&](size_t o) {
    return (static_cast<unsigned char>(b[o]) << 24) | (static_cast<unsigned char>(b[o + 1]) << 16) |
           (static_cast<unsigned char>(b[o + 2]) << 8) | static_cast<unsigned char>(b[o + 3]);
  };
  return {static_cast<int>(be(16)), static_cast<int>(be(20))};
}

// Pixels within 24 of an RGB colour in each channel.
int64_t report_count_colour(const std::filesystem::path& p, int r, int g, int b) {
  int w = 0, h = 0, c = 0;
  unsigned char* px = stbi_load(p.c_str(), &w, &h, &c, 3);
  EXPECT_NE(px, nullptr);
  if (!px) return -1;
  int64_t n = 0;
  for (int64_t i = 0; i < static_cast<int64_t>(w) * h; ++i)
    if (std::abs(px[3 * i] - r) < 24 && std::abs(px[3 * i + 1] - g) < 24 && std::abs(px[3 * i + 2] - b) < 24) ++n;
  stbi_image_free(px);
  return n;
}

TEST(ReportTable, MarkdownWithGroupRowLikeTheSeed) {
  Table t;
  t.header = {"Clustering by", "ARI", "NMI"};
  t.groups = {{"", 1}, {"Resnet18", 2}};
  t.rows = {{"Gradient Weights", "0.95", "0.98"}, {"a|b", "1", "2"}};
  EXPECT_EQ(to_markdown(t),
            "|  | Resnet18 |  |\n"
            "| --- | ---: | ---: |\n"
            "| Clustering by | ARI | NMI |\n"
            "| Gradient Weights | 0.95 | 0.98 |\n"
            "| a\\|b | 1 | 2 |\n");
  EXPECT_EQ(to_csv(t), "Clustering by,Resnet18.ARI,Resnet18.NMI\nGradient Weights,0.95,0.98\na|b,1,2\n");
  t.rows.push_back({"x"});
  GRADLENS_EXPECT_THROWS_WITH(to_markdown(t), "row 2 has 1 cells but the header has 3");
  t.rows.pop_back();
  t.groups = {{"A", 2}};
  GRADLENS_EXPECT_THROWS_WITH(to_csv(t), "groups span 2 columns");
}

TEST(ReportTable, CsvQuotesAndNumbers) {
  Table t;
  t.header = {"name", "value"};
  t.rows = {{"a,b", "say \"hi\""}, {"line\nbreak", "x"}};
  EXPECT_EQ(to_csv(t), "name,value\n\"a,b\",\"say \"\"hi\"\"\"\n\"line\nbreak\",x\n");
  EXPECT_EQ(format_number(0.123456, 3), "0.123");
  EXPECT_EQ(format_number(std::nan(""), 3), "nan");
  EXPECT_EQ(format_number(-INFINITY), "-inf");
  EXPECT_EQ(format_mean_std(0.5, 0.25, 2), "0.50 ± 0.25");
}

TEST(ReportHtml, EscapesAndBase64Vectors) {
  EXPECT_EQ(html_escape("<img src=x onerror='a'>&\""), "&lt;img src=x onerror=&#39;a&#39;&gt;&amp;&quot;");
  // RFC 4648 section 10 test vectors.
  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_encode("f"), "Zg==");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_EQ(base64_encode("foo"), "Zm9v");
  EXPECT_EQ(base64_encode("foob"), "Zm9vYg==");
  EXPECT_EQ(base64_encode("fooba"), "Zm9vYmE=");
  EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
}

TEST(ReportHtml, DocumentEscapesDataAndEmbedsImages) {
  TempDir dir;
  HtmlDocument doc("gradlens <report>");
  doc.heading("Class <script>alert(1)</script>");
  Table t;
  t.header = {"class", "n"};
  t.rows = {{"T-shirt/top & <b>", "3"}};
  doc.table(t, "counts");
  const std::string png = std::string("\x89PNG\r\n\x1a\n", 8) + "rest";
  core::write_text_atomically(dir / "a.png", png);
  doc.image(dir / "a.png", "alt \"x\"", "cap");
  const std::string html = doc.render();
  EXPECT_EQ(html.find("<script>"), std::string::npos);
  EXPECT_NE(html.find("Class &lt;script&gt;alert(1)&lt;/script&gt;"), std::string::npos);
  EXPECT_NE(html.find("<td>T-shirt/top &amp; &lt;b&gt;</td>"), std::string::npos);
  EXPECT_NE(html.find("data:image/png;base64," + base64_encode(png)), std::string::npos);
  EXPECT_NE(html.find("alt=\"alt &quot;x&quot;\""), std::string::npos);
  core::write_text_atomically(dir / "b.png", "GIF89a....");
  GRADLENS_EXPECT_THROWS_WITH(doc.image(dir / "b.png", "b"), "is not a PNG file");
}

TEST(ReportGnuplot, ScatterGridDrawsEachGroupInItsColourAndKeepsItsScript) {
  TempDir dir;
  torch::manual_seed(0);
  ScatterPanel a{"only class 0", torch::randn({200, 2}), torch::zeros({200}, torch::kLong), {"zero", "one"}};
  ScatterPanel b{"class <1> \"quoted\"", torch::randn({50, 2}), torch::ones({50}, torch::kLong), {"zero", "one"}};
  ScatterGridOptions o;
  o.rows = 1;
  o.cols = 2;
  o.title = "grid";
  write_scatter_grid(dir / "pca.png", {a, b}, o);
  EXPECT_EQ(report_png_size(dir / "pca.png"), std::make_pair(2 * o.panel_width, o.panel_height + 40));
  EXPECT_TRUE(std::filesystem::exists(dir / "pca.gp"));
  EXPECT_TRUE(std::filesystem::exists(dir / "pca.dat"));
  // Group 0 is tab10 blue (#1f77b4), group 1 orange (#ff7f0e): both drawn.
  EXPECT_GT(report_count_colour(dir / "pca.png", 0x1f, 0x77, 0xb4), 200);
  EXPECT_GT(report_count_colour(dir / "pca.png", 0xff, 0x7f, 0x0e), 50);
  // Only one panel with group 0: no orange.
  ScatterGridOptions one;
  write_scatter_grid(dir / "blue.png", {a}, one);
  EXPECT_EQ(report_count_colour(dir / "blue.png", 0xff, 0x7f, 0x0e), 0);
  // The kept script reproduces the figure.
  std::filesystem::remove(dir / "blue.png");
  run_gnuplot(dir / "blue.gp");
  EXPECT_TRUE(std::filesystem::exists(dir / "blue.png"));
}

TEST(ReportGnuplot, ScatterAndHeatmapRejectBadInput) {
  TempDir dir;
  ScatterGridOptions o;
  o.rows = 2;
  ScatterPanel a{"a", torch::randn({3, 2}), torch::tensor({0, 1, 5}), {"x", "y"}};
  GRADLENS_EXPECT_THROWS_WITH(write_scatter_grid(dir / "x.png", {a}, o), "1 panels for a 2 x 1 grid");
  GRADLENS_EXPECT_THROWS_WITH(write_scatter_grid(dir / "x.png", {a}, ScatterGridOptions{}), "outside [0, 2)");
  a.groups = torch::tensor({0, 1, 1});
  a.xy[1][0] = NAN;
  GRADLENS_EXPECT_THROWS_WITH(write_scatter_grid(dir / "x.png", {a}, ScatterGridOptions{}), "NaN or Inf");
  GRADLENS_EXPECT_THROWS_WITH(write_heatmap(dir / "h.png", torch::ones({2, 2}), {"t", "x", "y", {"a"}, {}}),
                              "1 row names for 2 rows");
  GRADLENS_EXPECT_THROWS_WITH(write_heatmap(dir / "h.txt", torch::ones({2, 2}), {}), "must end in .png");
  EXPECT_FALSE(std::filesystem::exists(dir / "x.png"));
}

TEST(ReportGnuplot, HeatmapDarkensTheLargestCell) {
  TempDir dir;
  auto m = torch::tensor({50, 0, 0, 0, 50, 0, 0, 0, 50}, torch::kLong).view({3, 3});
  HeatmapOptions o;
  o.title = "confusion";
  o.row_names = o.col_names = {"a", "b", "c"};
  write_heatmap(dir / "cm.png", m, o);
  EXPECT_EQ(report_png_size(dir / "cm.png"), std::make_pair(o.width, o.height));
  // The diagonal cells take the palette's top colour (#08306b).
  EXPECT_GT(report_count_colour(dir / "cm.png", 0x08, 0x30, 0x6b), 1000);
}

}  // namespace
}  // namespace gradlens::report
