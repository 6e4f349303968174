// Deterministic, class-balanced subsets and stratified train/test splits.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "gradlens/data/dataset.h"

namespace gradlens::data {

enum class SubsetMode {
  kFirst,   ///< the first N samples of each class, in dataset order
  kRandom,  ///< N samples of each class drawn without replacement (seeded)
};

/// Parses "first" or "random"; throws c10::Error naming `flag` otherwise.
SubsetMode parse_subset_mode(const std::string& text, const std::string& flag = "--subset");
/// "first" or "random".
std::string subset_mode_name(SubsetMode mode);

/// Indices of `n_per_class` samples of every class 0..num_classes-1.
///
/// `labels`: int64 [N] (any device). `num_classes` < 0 means max(label) + 1.
/// `class_names` (optional, for messages) names the classes in errors.
/// kRandom uses std::mt19937_64(seed) with portable draws, so a seed gives
/// the same subset everywhere; classes are visited in label order.
///
/// Returns CPU int64 [num_classes * n_per_class], sorted ascending (dataset
/// order). Throws c10::Error when n_per_class < 1, labels are not a 1-D
/// integer tensor or hold a negative value / one >= num_classes, or a class
/// has fewer than n_per_class samples (naming the class and its count; there
/// is no silent clamping, so a subset is always exactly balanced).
torch::Tensor per_class_indices(const torch::Tensor& labels, int64_t n_per_class,
                                SubsetMode mode = SubsetMode::kFirst, uint64_t seed = 0,
                                int64_t num_classes = -1,
                                const std::vector<std::string>& class_names = {});

/// select(ds, per_class_indices(ds.labels, n_per_class, mode, seed, ...)).
Dataset balanced_subset(const Dataset& ds, int64_t n_per_class,
                        SubsetMode mode = SubsetMode::kFirst, uint64_t seed = 0);

/// Train/test indices of a stratified split.
struct SplitIndices {
  torch::Tensor train;  ///< CPU int64, ascending
  torch::Tensor test;   ///< CPU int64, ascending
};

/// Splits every class separately: a class with n samples puts
/// round(test_fraction * n) of them (clamped to [1, n - 1] when n >= 2; a
/// single sample goes to train) into test, drawn with std::mt19937_64(seed).
/// Throws c10::Error when test_fraction is not in (0, 1) or labels are not a
/// 1-D integer tensor of non-negative values.
SplitIndices stratified_split(const torch::Tensor& labels, double test_fraction, uint64_t seed = 0);

/// The train and test datasets of stratified_split(ds.labels, ...); their
/// names get the suffixes "-train" and "-test".
std::pair<Dataset, Dataset> train_test_split(const Dataset& ds, double test_fraction,
                                             uint64_t seed = 0);

}  // namespace gradlens::data
