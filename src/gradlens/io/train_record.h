// What `gradlens train` records for training-data attribution and label-noise
// scoring, next to model.ckpt in its --out directory (docs/formats.md, "The
// training record"):
//
//   record.json          manifest (written last: a record without it is incomplete)
//   labels.npy           int64 [N] the training labels the model was trained on
//   flipped.npy          uint8 [N] 1 where --noisy-labels changed the label
//   threshold.npy        uint8 [N] 1 for AUM's threshold samples (--aum-threshold-samples)
//   dynamics/<name>.npy  float32/uint8 [E, N] train::TrainingDynamics fields
//   checkpoints/epoch-<eee>.ckpt  the weights after each epoch
//
// and the influence store: the head's per-sample gradient factors of the
// training set under every checkpoint, computed once and reused by
// `gradlens attribute` and `gradlens label-errors`.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "gradlens/core/fs.h"
#include "gradlens/influence/tracin.h"
#include "gradlens/train/dynamics.h"

namespace gradlens::io {

struct EpochCheckpoint {
  int64_t epoch = 0;  ///< 1-based
  std::filesystem::path path;  ///< absolute, inside the record's checkpoints/
  double lr_mean = 0;  ///< TracIn's step size eta_t
  std::string crc32;   ///< of the file, as core::file_crc32 gives it
};

struct TrainRecord {
  std::filesystem::path dir;
  std::string data;        ///< the data set's name as train recorded it
  /// The data flags train was given, a JSON object (pipeline::data_flags_json);
  /// "" in records written before it was kept.
  std::string data_flags;
  int64_t images = 0;      ///< N
  int64_t classes = 0;     ///< K
  std::vector<std::string> class_names;
  uint64_t seed = 0;
  double noise_fraction = 0;  ///< --noisy-labels (0: none)
  torch::Tensor labels;       ///< int64 [N]
  torch::Tensor flipped;      ///< uint8 [N]; undefined without --noisy-labels
  /// uint8 [N]: AUM's threshold samples (labelled as the extra class K - 1);
  /// undefined without --aum-threshold-samples.
  torch::Tensor threshold;
  train::TrainingDynamics dynamics;  ///< fields undefined without --record-dynamics
  std::vector<EpochCheckpoint> checkpoints;  ///< empty without --save-every-epoch
};

/// Writes labels.npy, flipped.npy (if defined), dynamics/ (if recorded) and
/// then record.json into `record.dir`, each file atomically. Checkpoints are
/// written by the trainer; their paths must lie in record.dir/checkpoints.
void write_train_record(const TrainRecord& record);

/// Reads the record of a `gradlens train --out DIR` directory. Throws
/// gradlens::Error naming `flag`, the directory or file and the fix: no
/// record.json (train with --record-dynamics, --save-every-epoch or
/// --noisy-labels), invalid JSON, a file missing or of the wrong shape.
TrainRecord read_train_record(const std::filesystem::path& dir, const std::string& flag = "--run");

/// The identity of a store: what its gradient factors were computed from.
struct StoreKey {
  std::vector<std::string> checkpoint_crc32;  ///< one per checkpoint, in order
  int64_t images = 0;
  std::string labels_crc32;  ///< CRC-32 of the labels' bytes (tensor_crc32)
  /// influence::ProjectionOptions::describe() of the projected layers ("" = none).
  std::string projection;
};

/// CRC-32 of a CPU tensor's bytes (contiguous), 8 hex digits.
std::string tensor_crc32(const torch::Tensor& t);

/// Reads the store at `dir` when it exists and holds `key`'s factors;
/// nullopt when `dir` does not exist. Every file's CRC-32 is compared with
/// the one its manifest recorded. Throws gradlens::Error naming `flag`
/// and the store when it exists but was made from other checkpoints, images
/// or labels (saying to delete it or choose another), or is damaged or
/// corrupt. A store written before checksums were recorded is read
/// unverified, with a line for `warning` (when given).
std::optional<std::vector<influence::GradientFactors>> read_influence_store(const std::filesystem::path& dir,
                                                                          const StoreKey& key,
                                                                          const std::string& flag = "--store",
                                                                          std::string* warning = nullptr);

/// Writes a store checkpoint by checkpoint: add() writes one checkpoint's
/// factors at once (nothing of it stays with the writer) into a hidden
/// sibling of `dir`; commit() writes the manifest, with the CRC-32 of each
/// file, and publishes the store under `dir`. A store is complete or absent:
/// a writer destroyed before commit() leaves nothing behind.
class InfluenceStoreWriter {
 public:
  InfluenceStoreWriter(const std::filesystem::path& dir, StoreKey key, std::string flag = "--store");
  /// The next checkpoint's factors (in key.checkpoint_crc32's order).
  void add(const influence::GradientFactors& factors);
  /// Throws gradlens::Error unless every checkpoint of the key was added.
  void commit();

 private:
  core::StagedDirectory staged_;
  StoreKey key_;
  std::string flag_;
  std::map<std::string, std::string> sums_;
  size_t added_ = 0;
  int64_t classes_ = 0, features_ = 0;
};

/// Writes the store atomically with an InfluenceStoreWriter.
void write_influence_store(const std::filesystem::path& dir, const StoreKey& key,
                           const std::vector<influence::GradientFactors>& factors,
                           const std::string& flag = "--store");

}  // namespace gradlens::io
