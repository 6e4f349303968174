// The library's one error type and the checks that throw it.
#pragma once

#include <c10/util/Exception.h>
#include <c10/util/StringUtil.h>

#include <stdexcept>
#include <string>

#include "gradlens/core/torch_compat.h"

namespace gradlens {

/// What kind of mistake an Error reports; the CLI maps it to the exit code.
enum class ErrorKind {
  kUsage,  ///< a bad flag, option value or combination of them (exit 2)
  kData,   ///< a bad, missing or corrupt file, or a failure at run time (exit 1)
};

/// The error every gradlens function throws for a user's mistake. Its
/// message names the flag or file first, then what is wrong, then what would
/// fix it ("--k 12: larger than the 10 images; lower --k"). It is a
/// c10::Error, so code that catches LibTorch's errors catches it too.
class Error : public c10::Error {
 public:
  Error(ErrorKind kind, const std::string& message)
      : c10::Error(compat::make_error(message)), kind_(kind) {}
  ErrorKind kind() const { return kind_; }

 private:
  ErrorKind kind_;
};

/// An Error of kind kUsage: a bad flag or option value (exit code 2).
class UsageError : public Error {
 public:
  explicit UsageError(const std::string& message) : Error(ErrorKind::kUsage, message) {}
};

/// The one-line message of any exception, without LibTorch's backtrace (for
/// an error raised in TorchScript code: the error's line after the quoted
/// traceback).
std::string error_message(const std::exception& e);

/// Calls `f` and returns what it returns; a usage Error it throws comes out
/// as a UsageError with "`flag`: " before its message: for library calls that
/// do not know which flag named their argument (--param-layer or
/// --param-layers). Other errors pass unchanged.
template <class F>
decltype(auto) naming_flag(const std::string& flag, F&& f) {
  try {
    return f();
  } catch (const Error& e) {
    if (e.kind() != ErrorKind::kUsage) throw;
    throw UsageError(flag + ": " + error_message(e));
  }
}

/// True for an allocation failure: std::bad_alloc, or a LibTorch error (or
/// the TorchScript interpreter's rethrow of one) from its CPU or CUDA
/// allocator ("not enough memory", "out of memory", "can't allocate memory").
bool is_out_of_memory(const std::exception& e);

}  // namespace gradlens

/// GRADLENS_CHECK(cond, "message ", value, ...): throws gradlens::Error of
/// kind kData with the concatenated message when `cond` is false. For *user*
/// errors (bad input, bad files): the message names the value, the file or
/// flag, what is wrong and what would fix it. Internal invariants use
/// TORCH_INTERNAL_ASSERT instead.
#define GRADLENS_CHECK(cond, ...)                                                              \
  do {                                                                                         \
    if (C10_UNLIKELY(!(cond)))                                                                 \
      throw ::gradlens::Error(::gradlens::ErrorKind::kData, ::c10::str(__VA_ARGS__));          \
  } while (false)

/// GRADLENS_CHECK for option values: throws gradlens::UsageError (exit 2).
#define GRADLENS_CHECK_OPTION(cond, ...)                                                       \
  do {                                                                                         \
    if (C10_UNLIKELY(!(cond))) throw ::gradlens::UsageError(::c10::str(__VA_ARGS__));         \
  } while (false)
