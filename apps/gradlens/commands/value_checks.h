// Validators for numeric flags, with gradlens' own messages: they say what
// the value must be ("a whole number from 1 to 4096"), what was given, and
// reject non-numbers, NaN and infinities before CLI11 converts the value.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <limits>
#include <string>

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

/// At most this many threads or ranks: 4 x the machine's hardware threads
/// (more only oversubscribes the cores).
int64_t max_workers();

}  // namespace gradlens::cli
