// What `gradlens attribute` and `gradlens label-errors` share: a training
// record (io/train_record.h), the data it was trained on, and the head's
// gradient factors of every training image under every epoch checkpoint,
// read from the influence store or computed once and stored.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "gradlens/core/collectives.h"
#include "gradlens/core/fs.h"
#include "gradlens/influence/tracin.h"
#include "gradlens/io/train_record.h"
#include "gradlens/models/model_options.h"
#include "gradlens/pipeline/data_source.h"
#include "gradlens/pipeline/run_context.h"

namespace gradlens::models {
class Classifier;
}
namespace gradlens::report {
class Document;
}

namespace gradlens::pipeline {

struct InfluenceConfig {
  /// The data flags `gradlens train` was given (the record's seed is used).
  DataConfig data;
  /// Use the data flags the record kept instead of `data` (the CLI sets it
  /// when no data flag is given); records without them use `data`.
  bool data_from_record = false;
  /// The --out directory of `gradlens train` with a training record.
  std::string run;
  /// The influence store; "" = <run>/influence-store.
  std::string store;
  int64_t batch_size = 500;
  /// Inner layers whose projected gradients join the head's (none by default).
  influence::ProjectionOptions projection;
};

struct InfluenceInputs {
  io::TrainRecord record;
  /// The splits, the training labels replaced by the record's (the labels the
  /// model was trained on).
  Splits splits;
  /// The data's own training labels (before any --noisy-labels flip), int64 [N].
  torch::Tensor original_labels;
  /// Head gradient factors of the training set with the record's labels,
  /// one per epoch checkpoint (empty when the record has no checkpoints).
  std::vector<influence::GradientFactors> train;
  std::vector<double> step_sizes;  ///< the checkpoints' mean learning rates
  std::string store;               ///< the store's directory
  bool store_reused = false;
  std::vector<std::string> warnings;  ///< e.g. a store read unverified
};

/// Reads the record and the data and checks that they belong together (the
/// same number of training images and classes, and labels that differ from
/// the data's exactly where the record says it flipped them). With
/// `need_checkpoints`, also the training factors (from the store, or
/// computed and stored by rank 0; every rank of `comm` computes a block of
/// the rows). Throws gradlens::Error naming the flag (--run, --data,
/// --store) and what to do.
/// The checkpoints open on ctx.device with ctx.model; ctx.progress hears of
/// each checkpoint.
InfluenceInputs load_influence_inputs(const InfluenceConfig& cfg, const RunContext& ctx, bool need_checkpoints,
                                      core::Collectives& comm = core::single_process());

/// load_influence_inputs() of a record already read (read_record(cfg)).
InfluenceInputs load_influence_inputs(const InfluenceConfig& cfg, const RunContext& ctx, io::TrainRecord record,
                                      bool need_checkpoints, core::Collectives& comm = core::single_process());

/// The training record of cfg.run (errors name --run).
io::TrainRecord read_record(const InfluenceConfig& cfg);

/// Gradient factors of every image of `ds` with `labels` under `model` (the
/// head exactly, cfg.projection's layers projected). Over the ranks of
/// `comm`, rank r computes the r-th contiguous block of whole batches
/// (distributed::shard_range) and every rank receives all of them (with
/// fewer batches than ranks, every rank computes all).
influence::GradientFactors checkpoint_factors(models::Classifier& model, const data::Dataset& ds,
                                             const torch::Tensor& labels, const InfluenceConfig& cfg,
                                             core::Collectives& comm = core::single_process());

/// names[c], or c as a number when it is outside `names`.
std::string class_name_of(const std::vector<std::string>& names, int64_t c);

/// The output directory of attribute / label-errors, staged: refuses an
/// existing `out` without `overwrite` (naming --out and --overwrite).
std::unique_ptr<core::StagedDirectory> stage_output(const std::filesystem::path& out, bool overwrite);

/// Writes summary.json (`summary_json`), summary.md and report.html (`doc`)
/// into the staged directory and publishes it.
void publish_outputs(core::StagedDirectory& staged, const std::string& summary_json, const report::Document& doc);

/// Opens an epoch checkpoint of a record (after comparing its CRC-32 with
/// the record's when options.verify_files), on `device`.
std::unique_ptr<models::Classifier> open_epoch_checkpoint(const io::EpochCheckpoint& c, torch::Device device,
                                                          const models::ModelOptions& options);

}  // namespace gradlens::pipeline
