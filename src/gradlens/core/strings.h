// Small string helpers for messages: joining lists and suggesting names.
#pragma once

#include <string>
#include <vector>

namespace gradlens::core {

/// "a, b, c" for {"a", "b", "c"}; "" for an empty list.
std::string join(const std::vector<std::string>& items, const std::string& sep = ", ");

/// Levenshtein distance (insertions, deletions and substitutions, each 1).
size_t edit_distance(const std::string& a, const std::string& b);

/// Up to `count` names from `names` closest to `query`: first those that
/// contain `query` or are contained in it, then by edit distance; ties keep
/// the order of `names`.
std::vector<std::string> nearest(const std::vector<std::string>& names, const std::string& query,
                                 size_t count);

/// True when `name` can stand as one file name on its own: non-empty, not
/// "." or "..", not starting with '.', and only letters, digits, '.', '-'
/// and '_'.
bool is_safe_file_stem(const std::string& name);

/// `name` with every character other than a letter, digit, '.', '-' or '_'
/// replaced by `replacement`, and leading dots replaced too; `fallback` when
/// nothing usable is left. The result satisfies is_safe_file_stem() whenever
/// `fallback` does.
std::string safe_file_stem(const std::string& name, char replacement = '-',
                           const std::string& fallback = "model");

}  // namespace gradlens::core
