// User-error checks and error types shared by the whole library.
#pragma once

#include <c10/util/Exception.h>

#include <stdexcept>
#include <string>

/// GRADLENS_CHECK(cond, "message ", value, ...): throws c10::Error with the
/// concatenated message when `cond` is false. For *user* errors (bad input,
/// bad options, bad files): the message names the value, the file or flag,
/// what is wrong and what would fix it. Internal invariants use
/// TORCH_INTERNAL_ASSERT instead.
#define GRADLENS_CHECK(cond, ...) TORCH_CHECK(cond, __VA_ARGS__)

namespace gradlens {

/// A bad command-line usage detected after parsing (an invalid combination of
/// flags, a value out of range). The CLI maps it to exit code 2.
class UsageError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

/// The one-line message of any exception, without LibTorch's backtrace.
std::string error_message(const std::exception& e);

}  // namespace gradlens
