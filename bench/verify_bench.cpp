// The cost of verifying a model file's CRC-32s: loading it with the check
// (core::load_verified: the archive's structure first, the tensor storages
// beside the load, as gradlens opens models) vs loading it without
// (torch::jit::load for a TorchScript file, load_checkpoint for a gradlens
// checkpoint), and the check alone before a load (verify_zip). Fastest of R
// runs each, page cache warm. Usage: verify_bench MODEL_FILE [R]
#include <torch/script.h>
#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <string>

#include "gradlens/core/timer.h"
#include "gradlens/core/zip.h"
#include "gradlens/models/checkpoint.h"
#include "gradlens/models/model_file.h"

namespace {

double fastest(int repeats, const std::function<void()>& f) {
  double best = 1e30;
  for (int r = 0; r < repeats; ++r) {
    gradlens::core::Stopwatch t;
    f();
    best = std::min(best, t.seconds());
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: verify_bench MODEL_FILE [REPEATS]\n");
    return 2;
  }
  const std::string path = argv[1];
  const int repeats = argc > 2 ? std::stoi(argv[2]) : 5;
  using gradlens::models::ModelFileKind;
  const auto info = gradlens::models::inspect_model_file(path, false);
  const auto load = [&] {
    if (info.kind == ModelFileKind::kCheckpoint)
      gradlens::models::load_checkpoint(path, torch::kCPU, {}, /*verify=*/false);
    else
      torch::jit::load(path);
  };
  gradlens::core::ZipCheck check;
  double plain = 1e30, verified = 1e30, alone = 1e30;
  for (int r = 0; r < repeats; ++r) {  // interleaved, so that drift hits all three alike
    plain = std::min(plain, fastest(1, load));
    verified = std::min(verified, fastest(1, [&] { check = gradlens::core::load_verified(path, info.entries, load); }));
    alone = std::min(alone, fastest(1, [&] { gradlens::core::verify_zip(path, info.entries); }));
  }
  std::printf("%s: %lld entries, %lld verified (%.1f MB)\n", path.c_str(),
              static_cast<long long>(check.entries), static_cast<long long>(check.verified),
              check.bytes_verified / 1e6);
  std::printf("load %.4f s   verified load %.4f s   cost %.1f%%   (the check alone before a load: %.4f s, %.1f%%)\n",
              plain, verified, 100.0 * (verified - plain) / plain, alone, 100.0 * alone / plain);
  return 0;
}
