// libFuzzer target for the JSON gradlens reads: a run directory's
// manifest.json (extract::RunManifest) and a model's gradlens.json
// (models::parse_model_metadata).
//
// Contract: on any text each returns or throws c10::Error (gradlens::Error
// is one) or nlohmann::json::exception (the manifest's caller, io::read_run,
// turns it into an error naming the file). Anything else is a bug.
#include <nlohmann/json.hpp>

#include "fuzz_file.h"
#include "gradlens/extract/run_manifest.h"
#include "gradlens/models/metadata.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  gradlens::fuzz::quiet_errors();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const auto j = nlohmann::json::parse(text);
    const auto m = j.get<gradlens::extract::RunManifest>();
    (void)m;
  } catch (const c10::Error&) {
  } catch (const nlohmann::json::exception&) {
  }
  try {
    const auto m = gradlens::models::parse_model_metadata(text, "fuzz.pt");
    if (m.mean.size() != m.std.size()) __builtin_trap();
  } catch (const c10::Error&) {
  }
  return 0;
}
