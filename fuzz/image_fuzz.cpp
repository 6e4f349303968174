// libFuzzer target for the image decoder (gradlens::data::decode_image: PNG,
// JPEG, BMP, GIF, ... through stb_image).
//
// Contract: on any file, decode_image() returns uint8 [H, W, C] with the
// channels asked for, or throws c10::Error. Anything else is a bug.
#include <torch/types.h>

#include "fuzz_file.h"
#include "gradlens/data/image_folder.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  gradlens::fuzz::quiet_errors();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto path = gradlens::fuzz::write_input(data, size, ".png");
  for (const int channels : {1, 3}) {
    try {
      const auto img = gradlens::data::decode_image(path, channels);
      if (img.dim() != 3 || img.size(2) != channels || img.scalar_type() != torch::kByte) __builtin_trap();
    } catch (const c10::Error&) {
    }
  }
  return 0;
}
