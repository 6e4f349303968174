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
  return e.what();
}

}  // namespace gradlens
