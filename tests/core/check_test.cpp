#include "gradlens/core/check.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <new>
#include <stdexcept>

#include "gradlens/core/torch_compat.h"

namespace gradlens {
namespace {

TEST(ErrorMessage, KeepsTheFirstLineOfACheckFailure) {
  try {
    GRADLENS_CHECK(false, "--layer: unknown layer 'x'");
    FAIL() << "no throw";
  } catch (const c10::Error& e) {
    EXPECT_EQ(error_message(e), "--layer: unknown layer 'x'");
  }
}

TEST(ErrorMessage, SkipsABlankFirstLineAndTheSourceQuote) {
  // The shape of a TorchScript load error for an operator LibTorch lacks.
  const c10::Error e = compat::make_error(
      "\nUnknown builtin op: aten::scaled_dot_product_attention.\n"
      "Could not find any similar ops to aten::scaled_dot_product_attention.\n"
      ":\n  File \"code/__torch__/torch/nn/modules/activation.py\", line 34\n    x = ...\n");
  EXPECT_EQ(error_message(e),
            "Unknown builtin op: aten::scaled_dot_product_attention. Could not find any similar "
            "ops to aten::scaled_dot_product_attention.");
}

TEST(ErrorMessage, DropsTheRaisedFromTrailer) {
  const c10::Error e = compat::make_error("bad shape\nException raised from foo at bar.cpp:1");
  EXPECT_EQ(error_message(e), "bad shape");
  const std::runtime_error plain("plain message");
  EXPECT_EQ(error_message(plain), "plain message");
}

TEST(ErrorMessage, KeepsTheLastLineOfATorchScriptTraceback) {
  const std::runtime_error e(
      "The following operation failed in the TorchScript interpreter.\nTraceback of TorchScript, serialized code "
      "(most recent call last):\n  File \"code/__torch__.py\", line 12, in forward\n    _0 = uninitialized(Tensor)"
      "\n    ops.prim.RaiseException(\"builtins.RuntimeError\")\nbuiltins.RuntimeError: batches of at most 2\n");
  EXPECT_EQ(error_message(e), "builtins.RuntimeError: batches of at most 2");
}

// A real failure of LibTorch's CPU allocator (an impossible tensor) is
// recognised, and so is std::bad_alloc; gradlens' own errors and other
// LibTorch errors are not.
TEST(OutOfMemory, RecognisesAllocatorFailuresOnly) {
  try {
    const auto t = torch::empty({int64_t{1} << 62}, torch::kByte);
    ADD_FAILURE() << "allocated " << t.numel() << " bytes";
  } catch (const c10::Error& e) {
    EXPECT_TRUE(is_out_of_memory(e)) << e.what();
  }
  EXPECT_TRUE(is_out_of_memory(std::bad_alloc()));
  EXPECT_FALSE(is_out_of_memory(compat::make_error("shape '[2, 3]' is invalid for input of size 5")));
  EXPECT_FALSE(is_out_of_memory(Error(ErrorKind::kData, "--out: not enough memory in this directory")));
  EXPECT_FALSE(is_out_of_memory(std::runtime_error("out of memory")));
}

}  // namespace
}  // namespace gradlens
