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

/// Loads the splits for `cfg` (Fashion-MNIST/MNIST from IDX files, or an
/// ImageFolder split by a seeded stratified fraction), applying the
/// per-class limits. Throws c10::Error naming --data on failure.
Splits load_splits(const DataConfig& cfg, uint64_t seed);

/// One split of load_splits(cfg, seed): the training split when `train`,
/// else the test split. For Fashion-MNIST/MNIST only that split's IDX files
/// are read; an ImageFolder is split (and normalised) as load_splits does.
data::Dataset load_split(const DataConfig& cfg, uint64_t seed, bool train);

}  // namespace gradlens::pipeline
