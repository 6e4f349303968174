#include "gradlens/report/table.h"

#include <fmt/format.h>

#include <cmath>

#include "gradlens/core/check.h"

namespace gradlens::report {

namespace {

void table_validate(const Table& t) {
  for (size_t i = 0; i < t.rows.size(); ++i)
    GRADLENS_CHECK(t.rows[i].size() == t.header.size(), "table row ", i, " has ", t.rows[i].size(),
                   " cells but the header has ", t.header.size());
  if (t.groups.empty()) return;
  size_t span = 0;
  for (const auto& [label, n] : t.groups) {
    GRADLENS_CHECK(n >= 1, "table group '", label, "' spans ", n, " columns");
    span += static_cast<size_t>(n);
  }
  GRADLENS_CHECK(span == t.header.size(), "table groups span ", span, " columns but the header has ",
                 t.header.size());
}

std::string table_md_cell(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '|')
      out += "\\|";
    else if (c == '\n' || c == '\r')
      out += ' ';
    else
      out += c;
  }
  return out;
}

std::string table_csv_cell(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string table_md_row(const std::vector<std::string>& cells) {
  std::string out = "|";
  for (const auto& c : cells) out += " " + table_md_cell(c) + " |";
  return out + "\n";
}

}  // namespace

std::string to_markdown(const Table& t) {
  table_validate(t);
  std::string out;
  std::vector<std::string> first = t.header;
  if (!t.groups.empty()) {
    std::vector<std::string> g;
    for (const auto& [label, n] : t.groups)
      for (int i = 0; i < n; ++i) g.push_back(i == 0 ? label : "");
    first = g;
  }
  out += table_md_row(first);
  std::string sep = "|";
  for (size_t i = 0; i < t.header.size(); ++i) sep += i == 0 ? " --- |" : " ---: |";
  out += sep + "\n";
  if (!t.groups.empty()) out += table_md_row(t.header);
  for (const auto& r : t.rows) out += table_md_row(r);
  return out;
}

std::string to_csv(const Table& t) {
  table_validate(t);
  std::vector<std::string> names = t.header;
  if (!t.groups.empty()) {
    size_t col = 0;
    for (const auto& [label, n] : t.groups)
      for (int i = 0; i < n; ++i, ++col)
        if (!label.empty()) names[col] = label + "." + names[col];
  }
  std::string out;
  auto line = [&](const std::vector<std::string>& cells) {
    for (size_t i = 0; i < cells.size(); ++i) out += (i ? "," : "") + table_csv_cell(cells[i]);
    out += "\n";
  };
  line(names);
  for (const auto& r : t.rows) line(r);
  return out;
}

std::string format_number(double v, int digits) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return fmt::format("{:.{}f}", v, digits);
}

std::string format_mean_std(double mean, double std, int digits) {
  return format_number(mean, digits) + " ± " + format_number(std, digits);
}

}  // namespace gradlens::report
