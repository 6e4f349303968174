// One report, written once: a list of blocks (headings, paragraphs,
// warnings, lists, tables, images, preformatted text) rendered to Markdown
// and to a self-contained HTML page (report::HtmlDocument). A section added
// to a Document appears in both renderings.
#pragma once

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "gradlens/report/table.h"

namespace gradlens::report {

class Document {
 public:
  explicit Document(std::string title);

  Document& heading(const std::string& text, int level = 2);
  Document& paragraph(const std::string& text);
  /// A warning: a boxed paragraph in HTML, a "> **Warning:**" quote in Markdown.
  Document& warning(const std::string& text);
  Document& list(const std::vector<std::string>& items);
  /// A table; `caption` (optional) is shown above it.
  Document& table(const Table& t, const std::string& caption = "");
  /// A PNG at `path`, relative to the directory the document is written to.
  Document& image(const std::filesystem::path& path, const std::string& alt, const std::string& caption = "");
  Document& pre(const std::string& text);

  /// Markdown: "# title", then the blocks; images link to their relative
  /// paths. Throws c10::Error for a malformed table (see to_markdown(Table)).
  std::string to_markdown() const;
  /// A self-contained HTML page: every text escaped, images read from
  /// `base_dir` / path and embedded as data: URIs. Throws c10::Error naming
  /// an image that cannot be read or is not a PNG.
  std::string to_html(const std::filesystem::path& base_dir) const;

 private:
  enum class Kind { kHeading, kParagraph, kWarning, kList, kTable, kImage, kPre };
  struct Block {
    explicit Block(Kind k, std::string t = {}) : kind(k), text(std::move(t)) {}
    Kind kind;
    std::string text;  ///< heading, paragraph, warning, pre; image alt
    int level = 2;
    std::vector<std::string> items;
    Table table;
    std::string caption;
    std::filesystem::path path;
  };
  std::string title_;
  std::vector<Block> blocks_;
};

}  // namespace gradlens::report
