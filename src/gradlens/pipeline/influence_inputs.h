// What `gradlens attribute` and `gradlens label-errors` share: a training
// record (io/train_record.h), the data it was trained on, and the head's
// gradient factors of every training image under every epoch checkpoint,
// read from the influence store or computed once and stored.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "gradlens/core/progress.h"
#include "gradlens/influence/tracin.h"
#include "gradlens/io/train_record.h"
#include "gradlens/models/model_options.h"
#include "gradlens/pipeline/data_source.h"

namespace gradlens::models {
class Classifier;
}

namespace gradlens::pipeline {

struct InfluenceConfig {
  /// The data flags `gradlens train` was given (the record's seed is used).
  DataConfig data;
  /// The --out directory of `gradlens train` with a training record.
  std::string run;
  /// The influence store; "" = <run>/influence-store.
  std::string store;
  std::string device = "cpu";
  int64_t batch_size = 500;
  models::ModelOptions model;
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
};

/// Reads the record and the data and checks that they belong together (the
/// same number of training images and classes, and labels that differ from
/// the data's exactly where the record says it flipped them). With
/// `need_checkpoints`, also the training factors (from the store, or
/// computed and stored). Throws gradlens::Error naming the flag (--run,
/// --data, --store) and what to do.
InfluenceInputs load_influence_inputs(const InfluenceConfig& cfg, bool need_checkpoints,
                                      const core::ProgressFn& progress = {});

/// Gradient factors of every image of `ds` with `labels` under `model` (the
/// head exactly, cfg.projection's layers projected).
influence::GradientFactors checkpoint_factors(models::Classifier& model, const data::Dataset& ds,
                                             const torch::Tensor& labels, const InfluenceConfig& cfg);

/// Opens an epoch checkpoint of a record (after comparing its CRC-32 with
/// the record's when options.verify_files), on `device`.
std::unique_ptr<models::Classifier> open_epoch_checkpoint(const io::EpochCheckpoint& c, torch::Device device,
                                                          const models::ModelOptions& options);

}  // namespace gradlens::pipeline
