// What every command's run takes besides its own options: where it computes,
// how it draws, how it opens models and where its progress goes. The CLI
// fills one from its global flags, the Python API from its keyword
// arguments; a default-constructed context runs on the CPU with seed 0.
#pragma once

#include <c10/core/Device.h>

#include <cstdint>
#include <string>

#include "gradlens/core/progress.h"
#include "gradlens/models/model_options.h"

namespace gradlens::pipeline {

struct RunContext {
  /// Where tensors live (--device). In the commands that join ranks (train,
  /// extract, evaluate, analyze, attribute, label-errors), a CUDA device
  /// without an index means cuda:LOCAL_RANK under `gradlens launch`.
  c10::Device device{c10::kCPU};
  /// Seeds a run's draws (random subsets, label flips, training, k-means++,
  /// the GMM's KMeans, SmoothGrad noise, ROAD, the Hessian's probes), as
  /// numpy's RandomState(seed) where a peer is matched. Training-data
  /// attribution draws from the training record's seed and --proj-seed.
  uint64_t seed = 0;
  /// The intra-op threads the process runs with (core::init_runtime sets
  /// them); recorded in the outputs.
  int threads = 1;
  /// How model files are opened and convolutions run (--conv-algorithm,
  /// --output-index, --output-key, --class-tokens, --no-verify).
  models::ModelOptions model;
  /// Receives progress events; empty: none.
  core::ProgressFn progress;
};

/// The device as the outputs record it ("cpu", "cuda", "cuda:1").
inline std::string device_name(const RunContext& ctx) { return ctx.device.str(); }

}  // namespace gradlens::pipeline
