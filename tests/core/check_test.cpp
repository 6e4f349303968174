#include "gradlens/core/check.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace gradlens
