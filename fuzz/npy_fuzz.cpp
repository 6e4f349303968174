// libFuzzer target for the NPY reader (gradlens::core::read_npy).
//
// Contract: on any file, read_npy() returns a tensor whose shape and dtype
// match the header (read_npy_matrix: a 2-D float32/float64 matrix), or throws
// c10::Error (gradlens::Error is one). Anything else is a bug.
#include <torch/types.h>

#include "fuzz_file.h"
#include "gradlens/core/npy.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  gradlens::fuzz::quiet_errors();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto path = gradlens::fuzz::write_input(data, size, ".npy");
  try {
    const auto h = gradlens::core::read_npy_header(path);
    const auto t = gradlens::core::read_npy(path);
    if (t.dim() != static_cast<int64_t>(h.shape.size())) __builtin_trap();
    for (size_t i = 0; i < h.shape.size(); ++i)
      if (t.size(static_cast<int64_t>(i)) != h.shape[i]) __builtin_trap();
  } catch (const c10::Error&) {
  }
  try {
    const auto m = gradlens::core::read_npy_matrix(path);
    if (m.dim() != 2 || (m.scalar_type() != torch::kFloat && m.scalar_type() != torch::kDouble)) __builtin_trap();
  } catch (const c10::Error&) {
  }
  return 0;
}
