#include "gradlens/report/html.h"

#include "gradlens/core/check.h"
#include "gradlens/core/fs.h"

namespace gradlens::report {

std::string html_escape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string base64_encode(const std::string& bytes) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const unsigned v = (static_cast<unsigned char>(bytes[i]) << 16) |
                       (static_cast<unsigned char>(bytes[i + 1]) << 8) | static_cast<unsigned char>(bytes[i + 2]);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (i + 1 == bytes.size()) {
    const unsigned v = static_cast<unsigned char>(bytes[i]) << 16;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == bytes.size()) {
    const unsigned v = (static_cast<unsigned char>(bytes[i]) << 16) | (static_cast<unsigned char>(bytes[i + 1]) << 8);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

HtmlDocument::HtmlDocument(std::string title) : title_(std::move(title)) {}

void HtmlDocument::heading(const std::string& text, int level) {
  GRADLENS_CHECK(level >= 1 && level <= 6, "HTML heading level must be 1..6, got ", level);
  const std::string tag = "h" + std::to_string(level);
  body_ += "<" + tag + ">" + html_escape(text) + "</" + tag + ">\n";
}

void HtmlDocument::paragraph(const std::string& text) { body_ += "<p>" + html_escape(text) + "</p>\n"; }

void HtmlDocument::warning(const std::string& text) {
  body_ += "<p class=\"warn\">" + html_escape(text) + "</p>\n";
}

void HtmlDocument::list(const std::vector<std::string>& items) {
  body_ += "<ul>\n";
  for (const auto& i : items) body_ += "<li>" + html_escape(i) + "</li>\n";
  body_ += "</ul>\n";
}

void HtmlDocument::table(const Table& t, const std::string& caption) {
  (void)to_markdown(t);  // validates the shape
  body_ += "<table>\n";
  if (!caption.empty()) body_ += "<caption>" + html_escape(caption) + "</caption>\n";
  body_ += "<thead>\n";
  if (!t.groups.empty()) {
    body_ += "<tr>";
    for (const auto& [label, n] : t.groups)
      body_ += "<th colspan=\"" + std::to_string(n) + "\">" + html_escape(label) + "</th>";
    body_ += "</tr>\n";
  }
  body_ += "<tr>";
  for (const auto& h : t.header) body_ += "<th>" + html_escape(h) + "</th>";
  body_ += "</tr>\n</thead>\n<tbody>\n";
  for (const auto& r : t.rows) {
    body_ += "<tr>";
    for (const auto& c : r) body_ += "<td>" + html_escape(c) + "</td>";
    body_ += "</tr>\n";
  }
  body_ += "</tbody>\n</table>\n";
}

void HtmlDocument::image(const std::filesystem::path& png, const std::string& alt, const std::string& caption) {
  const std::string bytes = core::read_file(png);
  GRADLENS_CHECK(bytes.size() >= 8 && bytes.compare(0, 8, "\x89PNG\r\n\x1a\n") == 0, "report image ",
                 png.string(), " is not a PNG file");
  body_ += "<figure><img alt=\"" + html_escape(alt) + "\" src=\"data:image/png;base64," + base64_encode(bytes) +
           "\">";
  if (!caption.empty()) body_ += "<figcaption>" + html_escape(caption) + "</figcaption>";
  body_ += "</figure>\n";
}

void HtmlDocument::pre(const std::string& text) { body_ += "<pre>" + html_escape(text) + "</pre>\n"; }

std::string HtmlDocument::render() const {
  return "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
         "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>" +
         html_escape(title_) +
         "</title>\n<style>\n"
         "body{font-family:'DejaVu Sans',Helvetica,Arial,sans-serif;margin:2em auto;max-width:1200px;"
         "padding:0 1em;color:#222;background:#fff;line-height:1.45}\n"
         "h1{border-bottom:2px solid #1f77b4;padding-bottom:.2em}\n"
         "table{border-collapse:collapse;margin:1em 0;font-size:13px}\n"
         "th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}\n"
         "th{background:#f0f4f8}td:first-child,th:first-child{text-align:left}\n"
         "caption{text-align:left;font-weight:bold;padding:4px 0}\n"
         "figure{margin:1em 0}img{max-width:100%;border:1px solid #ddd}\n"
         "figcaption{font-size:13px;color:#555}\n"
         ".warn{background:#fff4e5;border-left:4px solid #ff7f0e;padding:6px 10px}\n"
         "pre{background:#f6f8fa;padding:8px;overflow-x:auto;font-size:12px}\n"
         "</style>\n</head>\n<body>\n<h1>" +
         html_escape(title_) + "</h1>\n" + body_ + "</body>\n</html>\n";
}

}  // namespace gradlens::report
