#include "gradlens/report/document.h"

#include <utility>

#include "gradlens/core/check.h"
#include "gradlens/report/html.h"

namespace gradlens::report {

Document::Document(std::string title) : title_(std::move(title)) {}

Document& Document::heading(const std::string& text, int level) {
  GRADLENS_CHECK(level >= 2 && level <= 6, "Document::heading: level must be 2..6 (1 is the title), got ", level);
  Block b{Kind::kHeading, text};
  b.level = level;
  blocks_.push_back(std::move(b));
  return *this;
}

Document& Document::paragraph(const std::string& text) {
  blocks_.emplace_back(Kind::kParagraph, text);
  return *this;
}

Document& Document::warning(const std::string& text) {
  blocks_.emplace_back(Kind::kWarning, text);
  return *this;
}

Document& Document::list(const std::vector<std::string>& items) {
  Block b{Kind::kList};
  b.items = items;
  blocks_.push_back(std::move(b));
  return *this;
}

Document& Document::table(const Table& t, const std::string& caption) {
  (void)report::to_markdown(t);  // validates the shape now, where the caller can be named
  Block b{Kind::kTable};
  b.table = t;
  b.caption = caption;
  blocks_.push_back(std::move(b));
  return *this;
}

Document& Document::image(const std::filesystem::path& path, const std::string& alt, const std::string& caption) {
  Block b{Kind::kImage, alt};
  b.path = path;
  b.caption = caption;
  blocks_.push_back(std::move(b));
  return *this;
}

Document& Document::pre(const std::string& text) {
  blocks_.emplace_back(Kind::kPre, text);
  return *this;
}

std::string Document::to_markdown() const {
  std::string md = "# " + title_ + "\n\n";
  for (const auto& b : blocks_) {
    switch (b.kind) {
      case Kind::kHeading:
        md += std::string(static_cast<size_t>(b.level), '#') + " " + b.text + "\n\n";
        break;
      case Kind::kParagraph:
        md += b.text + "\n\n";
        break;
      case Kind::kWarning:
        md += "> **Warning:** " + b.text + "\n\n";
        break;
      case Kind::kList:
        for (const auto& item : b.items) md += "- " + item + "\n";
        md += "\n";
        break;
      case Kind::kTable:
        if (!b.caption.empty()) md += b.caption + ":\n\n";
        md += report::to_markdown(b.table) + "\n";
        break;
      case Kind::kImage:
        md += "![" + b.text + "](" + b.path.generic_string() + ")\n\n";
        if (!b.caption.empty()) md += "*" + b.caption + "*\n\n";
        break;
      case Kind::kPre:
        md += "```\n" + b.text + (b.text.empty() || b.text.back() == '\n' ? "" : "\n") + "```\n\n";
        break;
    }
  }
  return md;
}

std::string Document::to_html(const std::filesystem::path& base_dir) const {
  HtmlDocument doc(title_);
  for (const auto& b : blocks_) {
    switch (b.kind) {
      case Kind::kHeading: doc.heading(b.text, b.level); break;
      case Kind::kParagraph: doc.paragraph(b.text); break;
      case Kind::kWarning: doc.warning(b.text); break;
      case Kind::kList: doc.list(b.items); break;
      case Kind::kTable: doc.table(b.table, b.caption); break;
      case Kind::kImage: doc.image(base_dir / b.path, b.text, b.caption); break;
      case Kind::kPre: doc.pre(b.text); break;
    }
  }
  return doc.render();
}

}  // namespace gradlens::report
