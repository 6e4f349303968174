#include "gradlens/progress_printer.h"

#include <fmt/format.h>
#include <unistd.h>

#include <ostream>

namespace gradlens::cli {

ProgressPrinter::ProgressPrinter(std::ostream& out, bool tty, double interval_s)
    : out_(out), tty_(tty), interval_s_(interval_s), last_(std::chrono::steady_clock::now()) {}

bool ProgressPrinter::stderr_is_tty() { return ::isatty(STDERR_FILENO) == 1; }

std::string format_duration(double s) {
  if (!(s >= 0) || s > 1e7) return "?";
  const auto t = static_cast<int64_t>(s + 0.5);
  if (t >= 3600) return fmt::format("{}h{:02d}m", t / 3600, (t / 60) % 60);
  if (t >= 60) return fmt::format("{}m{:02d}s", t / 60, t % 60);
  return fmt::format("{}s", t);
}

namespace {
std::string values_text(const core::ProgressEvent& ev) {
  std::string s;
  for (const auto& [k, v] : ev.values) {
    if (k.find("acc") != std::string::npos)
      s += fmt::format(" {} {:.2f}%", k, 100.0 * v);
    else if (k == "img/s")
      s += fmt::format(" {:.0f} img/s", v);
    else if (k == "lr")
      s += fmt::format(" lr {:.4f}", v);
    else
      s += fmt::format(" {} {:.4f}", k, v);
  }
  return s;
}
}  // namespace

void ProgressPrinter::operator()(const core::ProgressEvent& ev) {
  const double frac = ev.total > 0 ? static_cast<double>(ev.done) / ev.total : 0.0;
  const double eta = frac > 0 ? ev.elapsed_s * (1.0 - frac) / frac : -1.0;
  const auto now = std::chrono::steady_clock::now();
  if (tty_) {
    if (!ev.stage_end &&
        std::chrono::duration<double>(now - last_).count() < 0.1 && drawn_)
      return;
    last_ = now;
    const int width = 24;
    const int filled = static_cast<int>(frac * width);
    std::string bar(filled, '#');
    bar += std::string(width - filled, '.');
    out_ << "\r\033[K" << fmt::format("{} [{}] {}/{}", ev.stage, bar, ev.done, ev.total)
         << values_text(ev)
         << (ev.stage_end ? fmt::format(" in {}", format_duration(ev.elapsed_s))
                          : fmt::format(" ETA {}", format_duration(eta)));
    if (ev.stage_end) out_ << "\n";
    out_.flush();
    drawn_ = !ev.stage_end;
    return;
  }
  if (!ev.stage_end && std::chrono::duration<double>(now - last_).count() < interval_s_) return;
  last_ = now;
  out_ << fmt::format("{} {}/{}", ev.stage, ev.done, ev.total) << values_text(ev)
       << (ev.stage_end ? fmt::format(" done in {}", format_duration(ev.elapsed_s))
                        : fmt::format(" ETA {}", format_duration(eta)))
       << "\n";
  out_.flush();
}

core::ProgressFn ProgressPrinter::fn() {
  return [this](const core::ProgressEvent& ev) { (*this)(ev); };
}

}  // namespace gradlens::cli
