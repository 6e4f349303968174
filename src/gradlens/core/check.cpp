#include "gradlens/core/check.h"
#include <torch/types.h>

namespace gradlens {

std::string error_message(const std::exception& e) {
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
  // An error raised by TorchScript code (torch::jit::JITException) quotes
  // the traceback first; the error itself is its last line.
  const std::string msg = e.what();
  if (msg.find("Traceback of TorchScript") != std::string::npos) {
    const auto end = msg.find_last_not_of(" \t\r\n");
    if (end != std::string::npos) {
      const auto nl = msg.rfind('\n', end);
      const size_t begin = nl == std::string::npos ? 0 : nl + 1;
      return msg.substr(begin, end + 1 - begin);
    }
  }
  return msg;
}

bool is_out_of_memory(const std::exception& e) {
  if (dynamic_cast<const std::bad_alloc*>(&e) != nullptr) return true;
  const auto* ce = dynamic_cast<const c10::Error*>(&e);
  if (ce == nullptr || dynamic_cast<const Error*>(&e) != nullptr) return false;
  const std::string msg = ce->what_without_backtrace();
  for (const char* s : {"not enough memory", "out of memory", "can't allocate memory"})
    if (msg.find(s) != std::string::npos) return true;
  return false;
}

}  // namespace gradlens
