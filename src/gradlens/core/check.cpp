#include "gradlens/core/check.h"
#include <torch/types.h>

namespace gradlens {

std::string error_message(const std::exception& e) {
  if (const auto* ce = dynamic_cast<const c10::Error*>(&e)) {
    std::string msg = ce->what_without_backtrace();
    // c10 appends "\nException raised from ..." in some builds: keep line one.
    const auto nl = msg.find('\n');
    if (nl != std::string::npos) msg.resize(nl);
    return msg;
  }
  return e.what();
}

}  // namespace gradlens
