#include "gradlens/core/check.h"
#include <torch/types.h>

#include <algorithm>

namespace gradlens {

namespace {

/// The error line of a message that quotes a TorchScript traceback (the
/// interpreter rethrows errors raised in a model that way): the first
/// non-empty line after the last "Traceback of TorchScript" header that is
/// not indented (the quoted code is); "" when there is none.
std::string torchscript_error_line(const std::string& msg) {
  const auto header = msg.rfind("Traceback of TorchScript");  // the last of "serialized" and "original" code
  if (header == std::string::npos) return "";
  size_t b = msg.find('\n', header);
  while (b != std::string::npos) {
    const size_t e = std::min(msg.find('\n', b + 1), msg.size());
    const std::string line = msg.substr(b + 1, e - b - 1);
    if (!line.empty() && line[0] != ' ' && line[0] != '\t' && line[0] != '\r') return line;
    b = e < msg.size() ? e : std::string::npos;
  }
  return "";
}

}  // namespace

std::string error_message(const std::exception& e) {
  const std::string raw = dynamic_cast<const c10::Error*>(&e) != nullptr
                              ? dynamic_cast<const c10::Error*>(&e)->what_without_backtrace()
                              : e.what();
  if (const auto line = torchscript_error_line(raw); !line.empty()) return line;
  if (const auto* ce = dynamic_cast<const c10::Error*>(&e)) {
    // Some builds append "\nException raised from ..."; TorchScript errors
    // may start with a blank line and go on with a quote of the failing
    // source (from a line ":" or "File ..."): keep the non-empty lines
    // before those, at most three, joined by " ".
    const std::string msg = ce->what_without_backtrace();
    std::string out, line;
    int kept = 0;
    for (size_t i = 0; i <= msg.size() && kept < 3; ++i) {
      if (i < msg.size() && msg[i] != '\n') {
        line += msg[i];
        continue;
      }
      const auto b = line.find_first_not_of(" \t\r");
      if (b != std::string::npos) {
        const std::string text = line.substr(b);
        if (text == ":" || text.rfind("File \"", 0) == 0 ||
            text.rfind("Exception raised from", 0) == 0)
          break;
        out += (out.empty() ? "" : " ") + text;
        ++kept;
      }
      line.clear();
    }
    return out.empty() ? std::string(msg) : out;
  }
  return raw;
}

bool is_out_of_memory(const std::exception& e) {
  if (dynamic_cast<const std::bad_alloc*>(&e) != nullptr) return true;
  if (dynamic_cast<const Error*>(&e) != nullptr) return false;
  // LibTorch's errors, and the TorchScript interpreter's rethrow of them (a
  // plain std::runtime_error quoting the model's traceback).
  const auto* ce = dynamic_cast<const c10::Error*>(&e);
  const std::string msg = ce != nullptr ? ce->what_without_backtrace() : e.what();
  for (const char* s : {"not enough memory", "out of memory", "can't allocate memory"})
    if (msg.find(s) != std::string::npos) return true;
  return false;
}

}  // namespace gradlens
