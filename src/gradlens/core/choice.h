// The one name <-> value mapping of an enum whose values are chosen by name
// (a flag's value, a JSON field): each enum keeps a table of
// Choice<E>{name, value} and defines its name and parse functions with
// choice_name() and parse_choice().
#pragma once

#include <cstddef>
#include <string>

#include "gradlens/core/check.h"

namespace gradlens::core {

template <class E>
struct Choice {
  const char* name;
  E value;
};

/// The name of `value` in `table` ("" when the table lacks it).
template <class E, size_t N>
std::string choice_name(const Choice<E> (&table)[N], E value) {
  for (const auto& c : table)
    if (c.value == value) return c.name;
  return "";
}

/// The value named `name` in `table`. Throws gradlens::Error (usage):
/// "<flag>: unknown <what> '<name>'; use a, b or c" (the names in table order;
/// no <what> when it is empty).
template <class E, size_t N>
E parse_choice(const Choice<E> (&table)[N], const std::string& name, const std::string& flag, const char* what) {
  for (const auto& c : table)
    if (name == c.name) return c.value;
  std::string names;
  for (size_t i = 0; i < N; ++i) names += std::string(i == 0 ? "" : i + 1 == N ? " or " : ", ") + table[i].name;
  GRADLENS_CHECK_OPTION(false, flag, ": unknown ", what, *what ? " '" : "'", name, "'; use ", names);
  return table[0].value;
}

}  // namespace gradlens::core
