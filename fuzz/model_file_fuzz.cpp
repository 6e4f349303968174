// libFuzzer target for what gradlens reads of a model file before LibTorch
// sees it: the zip directory and CRC-32 check (core::zip_entries,
// verify_zip), the kind told by content (models::inspect_model_file) and the
// gradlens.json inside (models::read_model_metadata).
//
// Contract: on any file each returns or throws c10::Error (gradlens::Error
// is one); a file that verifies lists entries that lie inside it.
#include <filesystem>

#include "fuzz_file.h"
#include "gradlens/core/zip.h"
#include "gradlens/models/metadata.h"
#include "gradlens/models/model_file.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  gradlens::fuzz::quiet_errors();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto path = gradlens::fuzz::write_input(data, size, ".pt");
  try {
    const auto entries = gradlens::core::zip_entries(path);
    const auto check = gradlens::core::verify_zip(path, entries);
    if (check.verified > check.entries) __builtin_trap();
    for (const auto& e : entries)
      if (e.header_offset >= size) __builtin_trap();
  } catch (const c10::Error&) {
  }
  try {
    gradlens::models::inspect_model_file(path, true);
  } catch (const c10::Error&) {
  }
  try {
    gradlens::models::read_model_metadata(path);
  } catch (const c10::Error&) {
  }
  return 0;
}
