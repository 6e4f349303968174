// A self-contained HTML report: inline CSS, images embedded as data: URIs,
// every text from data (class names, paths) escaped. No scripts, no network.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "gradlens/report/table.h"

namespace gradlens::report {

/// Escapes &, <, >, " and ' for HTML text and attribute values.
std::string html_escape(const std::string& s);

/// Standard base64 (RFC 4648, with padding).
std::string base64_encode(const std::string& bytes);

class HtmlDocument {
 public:
  explicit HtmlDocument(std::string title);
  void heading(const std::string& text, int level = 2);
  void paragraph(const std::string& text);
  /// A paragraph in a warning box.
  void warning(const std::string& text);
  /// A bulleted list.
  void list(const std::vector<std::string>& items);
  /// A table; `caption` (optional) is shown above it.
  void table(const Table& t, const std::string& caption = "");
  /// Embeds a PNG file as a data: URI. Throws c10::Error naming the file if
  /// it cannot be read or is not a PNG.
  void image(const std::filesystem::path& png, const std::string& alt, const std::string& caption = "");
  /// Preformatted text (escaped).
  void pre(const std::string& text);
  /// The whole document.
  std::string render() const;

 private:
  std::string title_;
  std::string body_;
};

}  // namespace gradlens::report
