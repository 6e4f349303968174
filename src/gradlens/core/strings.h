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

}  // namespace gradlens::core
