// `gradlens extract`: open a model and a dataset split, extract the
// requested representations into a run directory (see docs/formats.md).
#pragma once

#include <memory>
#include <string>

#include "gradlens/core/collectives.h"
#include "gradlens/data/mnist.h"
#include "gradlens/extract/run.h"
#include "gradlens/models/classifier.h"
#include "gradlens/models/model_options.h"
#include "gradlens/pipeline/run_context.h"
#include "gradlens/pipeline/train.h"

namespace gradlens::pipeline {

struct ExtractCommandConfig {
  DataConfig data;
  data::Split split = data::Split::kTest;
  /// Images per class of the split (0 = all).
  int64_t per_class = 100;
  /// A gradlens checkpoint, a TorchScript file, or "default".
  std::string model = "default";
  extract::ExtractConfig extract;
};

/// Opens `spec` ("default" = the cached default model) for data with
/// `channels` channels and `size`-pixel images. Throws c10::Error naming
/// --model when it is missing or does not fit the data.
/// `channels_last`: on the CPU and for 1-channel data, converts the model to
/// channels-last memory format (Classifier::to_channels_last; oneDNN's
/// convolutions then run 1.5-2x faster for the forward + backward passes of
/// extraction and Grad-CAM; the values differ from the default layout only
/// by float rounding). Not for 3-channel data: Debian's LibTorch 1.13
/// crashes in a channels-last backward there (train/trainer.cpp).
/// `options.conv`: Classifier::set_conv_algorithm (kAuto and kWinograd: a native
/// ResNet runs its eligible 3x3 convolutions by Winograd F(4x4, 3x3) in eval
/// mode, in practice on channels-last maps, so 1-channel data on an AVX-512F
/// CPU; kDirect: LibTorch's convolutions throughout); `options.torchscript`:
/// how a TorchScript model's output and token layers are read.
std::unique_ptr<models::Classifier> open_model_for(const std::string& spec, torch::Device device,
                                                   int64_t channels, int64_t size, bool channels_last = false,
                                                   const models::ModelOptions& options = {});

/// This rank's share of a multi-process extraction of `rows` images: a
/// contiguous block of whole `batch_size` batches (core::shard_range), the
/// rows gathered to rank 0 through `comm`.
extract::ExtractRanks extract_ranks(core::Collectives& comm, int64_t rows, int64_t batch_size);

/// ctx.model.conv kAuto: Winograd where it applies (open_model_for); ctx.seed
/// draws the random per-class subsets (--subset random) and is recorded in
/// the manifest.
extract::ExtractRunResult run_extract_command(const ExtractCommandConfig& cfg, const RunContext& ctx = {});

}  // namespace gradlens::pipeline
