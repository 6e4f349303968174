// Opening the train/test splits named by a DataConfig.
#pragma once

#include <utility>

#include "gradlens/data/dataset.h"
#include "gradlens/pipeline/train.h"

namespace gradlens::pipeline {

struct Splits {
  data::Dataset train;
  data::Dataset test;
};

/// The data options for models `model_files`: each field the flags in
/// `flags` leave unset (mean/std, input_range, image_size, resize,
/// channels) is taken from the models' gradlens.json (models/metadata.h),
/// and `source` names the file it came from. Throws c10::Error when two
/// models' gradlens.json ask for different inputs (evaluate them
/// separately, or give the flags). Files that are not TorchScript archives
/// are skipped.
struct ModelData {
  DataConfig data;
  std::string source;  ///< "gradlens.json in m.pt", or "" when none was used
  /// class_names of the gradlens.json files, with their file.
  std::vector<std::pair<std::string, std::vector<std::string>>> class_names;
  /// A warning when a TorchScript model gets the data's own normalisation
  /// because neither the flags nor its file say what it expects; else "".
  std::string assumed;
};
ModelData data_for_models(const DataConfig& flags, const std::vector<std::string>& model_files);

/// Throws c10::Error when a gradlens.json's class_names do not match the
/// number of classes of `ds`, naming the file.
void check_model_classes(const ModelData& md, const data::Dataset& ds);

/// The data flags as a JSON object (every DataConfig field but
/// preprocess_source), and back. data_flags_from_json throws gradlens::Error
/// naming `what` when the text is not such an object.
std::string data_flags_json(const DataConfig& cfg);
DataConfig data_flags_from_json(const std::string& json, const std::string& what);

/// Loads the splits for `cfg` (Fashion-MNIST/MNIST from IDX files, or an
/// ImageFolder split by a seeded stratified fraction), applying the
/// per-class limits. Throws c10::Error naming --data on failure.
Splits load_splits(const DataConfig& cfg, uint64_t seed);

/// One split of load_splits(cfg, seed): the training split when `train`,
/// else the test split. For Fashion-MNIST/MNIST only that split's IDX files
/// are read; an ImageFolder is split (and normalised) as load_splits does.
data::Dataset load_split(const DataConfig& cfg, uint64_t seed, bool train);

}  // namespace gradlens::pipeline
