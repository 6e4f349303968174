// libFuzzer target for the IDX reader (gradlens::data::idx_parse).
//
// Contract under test: on any input, raw or gzip, idx_parse() either returns
// a tensor whose size matches the header, or throws c10::Error. Any other
// exception, crash, sanitizer report, leak or out-of-memory is a bug.
// See fuzz/README.md for building and running.
#include <c10/util/Exception.h>
#include <c10/util/Logging.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "gradlens/data/idx.h"

// c10::Error captures and symbolises a C++ backtrace on every throw (tens of
// milliseconds); the harness throws on most inputs, so it turns that off.
extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  c10::SetStackTraceFetcher([] { return std::string(); });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  // Every input is parsed three times: any rank, as labels and as images,
  // so that all validation paths see every mutation.
  for (const int expected : {0, 1, 3}) {
    try {
      const auto t = gradlens::data::idx_parse(bytes, "fuzz-input", expected);
      // A successful parse must describe exactly the data it holds.
      int64_t numel = 1;
      for (int64_t d : t.sizes()) numel *= d;
      if (numel != t.numel() || !t.is_contiguous() || t.scalar_type() != c10::kByte)
        __builtin_trap();
      if (expected != 0 && t.dim() != expected) __builtin_trap();
    } catch (const c10::Error&) {
      // Expected for malformed input.
    }
  }
  return 0;
}
