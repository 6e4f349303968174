#include "gradlens/core/strings.h"

#include <algorithm>
#include <cctype>
#include <numeric>
#include <utility>

namespace gradlens::core {

std::string join(const std::vector<std::string>& items, const std::string& sep) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) out += (i ? sep : std::string()) + items[i];
  return out;
}

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  std::iota(row.begin(), row.end(), size_t{0});
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

std::vector<std::string> nearest(const std::vector<std::string>& names, const std::string& query,
                                 size_t count) {
  std::vector<std::pair<std::pair<int, size_t>, size_t>> ranked;  // ((contains?0:1, distance), index)
  for (size_t i = 0; i < names.size(); ++i) {
    const bool related = !query.empty() && (names[i].find(query) != std::string::npos ||
                                            query.find(names[i]) != std::string::npos);
    ranked.push_back({{related ? 0 : 1, edit_distance(names[i], query)}, i});
  }
  std::stable_sort(ranked.begin(), ranked.end(),
                   [](const auto& x, const auto& y) { return x.first < y.first; });
  std::vector<std::string> out;
  for (size_t i = 0; i < ranked.size() && i < count; ++i) out.push_back(names[ranked[i].second]);
  return out;
}

namespace {
bool str_stem_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' || c == '-' || c == '_';
}
}  // namespace

bool is_safe_file_stem(const std::string& name) {
  if (name.empty() || name[0] == '.') return false;
  return std::all_of(name.begin(), name.end(), str_stem_char);
}

std::string safe_file_stem(const std::string& name, char replacement, const std::string& fallback) {
  std::string out = name;
  for (char& c : out)
    if (!str_stem_char(c)) c = replacement;
  for (char& c : out) {  // no hidden names
    if (c != '.') break;
    c = replacement;
  }
  return is_safe_file_stem(out) ? out : fallback;
}

}  // namespace gradlens::core
