// Validators for numeric flags, with gradlens' own messages: they say what
// the value must be ("a whole number from 1 to 4096"), what was given, and
// reject non-numbers, NaN and infinities before CLI11 converts the value.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <exception>
#include <limits>
#include <string>

#include "gradlens/core/check.h"

namespace gradlens::cli {

constexpr int64_t kNoMax = std::numeric_limits<int64_t>::max();
constexpr double kInf = std::numeric_limits<double>::infinity();

/// A whole number in [lo, hi]. `why` (optional) ends the message, e.g. "0 =
/// all cores".
CLI::Validator whole(int64_t lo, int64_t hi = kNoMax, const std::string& why = "");

/// Whether a real bound is part of the allowed interval.
enum class Bound { kClosed, kOpen };

/// A finite real number between lo and hi (each bound closed or open; an
/// infinite bound means none on that side).
CLI::Validator real(double lo, double hi = kInf, Bound lo_bound = Bound::kClosed,
                    Bound hi_bound = Bound::kClosed, const std::string& why = "");

/// A finite real > 0.
inline CLI::Validator positive_real(const std::string& why = "") {
  return real(0.0, kInf, Bound::kOpen, Bound::kClosed, why);
}

/// A flag whose value names one of an enum's values: `parse` (the library's
/// parse function, which throws naming the flag) reads it into `field` while
/// CLI11 parses, so a bad value exits 2 with the library's message before
/// any work; --help shows name(field) as the default.
template <class E>
CLI::Option* add_choice(CLI::App* cmd, const std::string& flag, E& field,
                        E (*parse)(const std::string&, const std::string&), std::string (*name)(E),
                        const std::string& help) {
  auto* opt = cmd->add_option_function<std::string>(
      flag,
      [&field, parse, flag](const std::string& v) {
        try {
          field = parse(v, flag);
        } catch (const std::exception& e) {
          throw CLI::ValidationError(error_message(e));
        }
      },
      help);
  opt->default_str(name(field));
  return opt;
}

/// At most this many threads or ranks: 4 x the machine's hardware threads
/// (more only oversubscribes the cores).
int64_t max_workers();

}  // namespace gradlens::cli
