// report::Document: one document, the same blocks in Markdown and in HTML.
#include "gradlens/report/document.h"

#include "gradlens/core/fs.h"
#include "gradlens/report/canvas.h"
#include "gradlens/report/png.h"
#include "support/support.h"

namespace gradlens::report {
namespace {

Document document_example() {
  Table t;
  t.header = {"model", "ARI"};
  t.rows = {{"<b>net</b>", "0.5"}};
  Document doc("Title");
  doc.paragraph("Intro & more.")
      .warning("2 maps <constant>")
      .heading("Section")
      .list({"a", "b"})
      .table(t, "Scores")
      .image("figures/x.png", "a figure", "What it shows.")
      .heading("Sub", 3)
      .pre("x < y");
  return doc;
}

TEST(Document, RendersEveryBlockAsMarkdown) {
  Table t;
  t.header = {"model", "ARI"};
  t.rows = {{"<b>net</b>", "0.5"}};
  EXPECT_EQ(document_example().to_markdown(),
            "# Title\n\n"
            "Intro & more.\n\n"
            "> **Warning:** 2 maps <constant>\n\n"
            "## Section\n\n"
            "- a\n- b\n\n"
            "Scores:\n\n" +
                to_markdown(t) + "\n"
                "![a figure](figures/x.png)\n\n*What it shows.*\n\n"
                "### Sub\n\n"
                "```\nx < y\n```\n\n");
}

TEST(Document, RendersTheSameBlocksAsEscapedSelfContainedHtml) {
  test::TempDir dir;
  std::filesystem::create_directories(dir / "figures");
  write_png(dir / "figures" / "x.png", Canvas(4, 3));
  const std::string html = document_example().to_html(dir.path());
  for (const char* part : {"<h2>Section</h2>", "<h3>Sub</h3>", "Intro &amp; more.", "2 maps &lt;constant&gt;",
                           "&lt;b&gt;net&lt;/b&gt;", "data:image/png;base64,", "What it shows.", "x &lt; y"})
    EXPECT_NE(html.find(part), std::string::npos) << part;
  EXPECT_EQ(html.find("<b>net"), std::string::npos);  // data-derived text is escaped
  EXPECT_EQ(html.find("figures/x.png"), std::string::npos);  // embedded, not linked
  GRADLENS_EXPECT_THROWS_WITH(Document("t").image("missing.png", "m").to_html(dir.path()), "missing.png");
}

TEST(Document, MalformedTablesAndLevelsAreRefusedWhenAdded) {
  Table t;
  t.header = {"a", "b"};
  t.rows = {{"1"}};
  Document doc("t");
  EXPECT_THROW(doc.table(t), c10::Error);
  EXPECT_THROW(doc.heading("h", 1), c10::Error);
}

}  // namespace
}  // namespace gradlens::report
