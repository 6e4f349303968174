// The cost of verifying a model file's CRC-32s before loading it: the
// verification (inspect_model_file with verify) vs the load itself
// (torch::jit::load for a TorchScript file, load_checkpoint without
// verification for a gradlens checkpoint), fastest of R runs each, page cache
// warm. Usage: verify_bench MODEL_FILE [R]
#include <torch/script.h>
#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <string>

#include "gradlens/core/timer.h"
#include "gradlens/models/checkpoint.h"
#include "gradlens/models/model_file.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: verify_bench MODEL_FILE [REPEATS]\n");
    return 2;
  }
  const std::string path = argv[1];
  const int repeats = argc > 2 ? std::stoi(argv[2]) : 5;
  using gradlens::models::ModelFileKind;
  const auto kind = gradlens::models::inspect_model_file(path, false).kind;
  double verify = 1e30, load = 1e30;
  gradlens::core::ZipCheck check;
  for (int r = 0; r < repeats; ++r) {
    gradlens::core::Stopwatch t;
    check = gradlens::models::inspect_model_file(path, true).check;
    verify = std::min(verify, t.seconds());
    gradlens::core::Stopwatch l;
    if (kind == ModelFileKind::kCheckpoint)
      gradlens::models::load_checkpoint(path, torch::kCPU, {}, /*verify=*/false);
    else
      torch::jit::load(path);
    load = std::min(load, l.seconds());
  }
  std::printf("%s: %lld entries, %lld verified (%.1f MB)\n", path.c_str(),
              static_cast<long long>(check.entries), static_cast<long long>(check.verified),
              check.bytes_verified / 1e6);
  std::printf("verify %.4f s   load %.4f s   verify/load %.1f%%\n", verify, load, 100.0 * verify / load);
  return 0;
}
