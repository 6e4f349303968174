#include "gradlens/commands/value_checks.h"

#include "gradlens/core/runtime.h"

#include <fmt/format.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>

namespace gradlens::cli {

namespace {

std::string shown(double v) { return fmt::format("{:g}", v); }

std::string with_why(std::string msg, const std::string& why) {
  return why.empty() ? msg : msg + " (" + why + ")";
}

}  // namespace

CLI::Validator whole(int64_t lo, int64_t hi, const std::string& why) {
  std::string want;
  if (hi == kNoMax)
    want = lo == 0 ? "a whole number >= 0" : fmt::format("a whole number >= {}", lo);
  else
    want = fmt::format("a whole number from {} to {}", lo, hi);
  return CLI::Validator(
      [lo, hi, want, why](std::string& s) -> std::string {
        errno = 0;
        char* end = nullptr;
        const long long v = std::strtoll(s.c_str(), &end, 10);
        if (s.empty() || end == s.c_str() || *end != '\0')
          return with_why(fmt::format("must be {}, not '{}'", want, s), why);
        if (errno == ERANGE || v < lo || v > hi)
          return with_why(fmt::format("must be {}, not {}", want, s), why);
        return {};
      },
      with_why(want, why));
}

CLI::Validator real(double lo, double hi, Bound lo_bound, Bound hi_bound, const std::string& why) {
  std::string want = "a finite number";
  const bool has_lo = std::isfinite(lo), has_hi = std::isfinite(hi);
  if (has_lo && has_hi)
    want += fmt::format(" in {}{}, {}{}", lo_bound == Bound::kClosed ? "[" : "(", shown(lo), shown(hi),
                        hi_bound == Bound::kClosed ? "]" : ")");
  else if (has_lo)
    want += fmt::format(" {} {}", lo_bound == Bound::kClosed ? ">=" : ">", shown(lo));
  else if (has_hi)
    want += fmt::format(" {} {}", hi_bound == Bound::kClosed ? "<=" : "<", shown(hi));
  return CLI::Validator(
      [=](std::string& s) -> std::string {
        char* end = nullptr;
        const double v = std::strtod(s.c_str(), &end);
        if (s.empty() || end == s.c_str() || *end != '\0')
          return with_why(fmt::format("must be {}, not '{}'", want, s), why);
        const bool below = lo_bound == Bound::kClosed ? v < lo : v <= lo;
        const bool above = hi_bound == Bound::kClosed ? v > hi : v >= hi;
        if (!std::isfinite(v) || below || above)
          return with_why(fmt::format("must be {}, not {}", want, s), why);
        return {};
      },
      with_why(want, why));
}

int64_t max_workers() { return 4 * static_cast<int64_t>(core::hardware_threads()); }

}  // namespace gradlens::cli
