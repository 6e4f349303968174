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
  // As LibTorch 1.13 words it: the serialized code, then the original code.
  const std::runtime_error e(
      "The following operation failed in the TorchScript interpreter.\nTraceback of TorchScript, serialized code "
      "(most recent call last):\n  File \"code/__torch__.py\", line 10, in forward\n    if torch.gt(x, 2):\n"
      "      ops.prim.RaiseException(_0, \"builtins.RuntimeError\")\n    else:\n      pass\n\nTraceback of "
      "TorchScript, original code (most recent call last):\n  File \"/tmp/p.py\", line 5, in forward\n"
      "        raise RuntimeError('batches of at most 2')\nbuiltins.RuntimeError: batches of at most 2\n");
  EXPECT_EQ(error_message(e), "builtins.RuntimeError: batches of at most 2");
  // The same quoted as a c10::Error (how the interpreter rethrows LibTorch's errors).
  const c10::Error ce = compat::make_error(
      "The following operation failed in the TorchScript interpreter.\nTraceback of TorchScript (most recent call "
      "last):\n  File \"code/__torch__.py\", line 9, in forward\n    return torch.mm(x, w)\n"
      "RuntimeError: mat1 and mat2 shapes cannot be multiplied (2x3 and 4x5)\n");
  EXPECT_EQ(error_message(ce), "RuntimeError: mat1 and mat2 shapes cannot be multiplied (2x3 and 4x5)");
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
  EXPECT_FALSE(is_out_of_memory(std::runtime_error("shape '[2, 3]' is invalid for input of size 5")));
  // The interpreter's rethrow of an allocation failure inside a model.
  EXPECT_TRUE(is_out_of_memory(std::runtime_error(
      "The following operation failed in the TorchScript interpreter.\nTraceback of TorchScript (most recent "
      "call last):\n  File \"code/__torch__.py\", line 9\nRuntimeError: DefaultCPUAllocator: not enough memory: "
      "you tried to allocate 4611686018427387904 bytes.\n")));
}

}  // namespace
}  // namespace gradlens
