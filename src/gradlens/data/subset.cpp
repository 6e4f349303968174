#include "gradlens/data/subset.h"
#include <torch/types.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "gradlens/core/check.h"
#include "gradlens/data/rng.h"

namespace gradlens::data {

namespace {

/// Sample indices of each class, in dataset order.
std::vector<std::vector<int64_t>> group_by_class(const torch::Tensor& labels, int64_t num_classes,
                                                 const char* fn) {
  GRADLENS_CHECK(labels.defined() && labels.dim() == 1 &&
                     c10::isIntegralType(labels.scalar_type(), /*includeBool=*/false),
                 fn, ": labels must be a 1-D integer tensor, got ",
                 labels.defined() ? labels.sizes() : c10::IntArrayRef{});
  const auto l = labels.to(torch::kCPU, torch::kInt64).contiguous();
  const int64_t* p = l.data_ptr<int64_t>();
  const int64_t n = l.numel();
  int64_t hi = -1;
  for (int64_t i = 0; i < n; ++i) {
    GRADLENS_CHECK(p[i] >= 0, fn, ": label ", p[i], " at index ", i, " is negative");
    hi = std::max(hi, p[i]);
  }
  if (num_classes < 0) num_classes = hi + 1;
  GRADLENS_CHECK(hi < num_classes, fn, ": label ", hi, " is outside [0, ", num_classes, ")");
  std::vector<std::vector<int64_t>> groups(static_cast<size_t>(num_classes));
  for (int64_t i = 0; i < n; ++i) groups[static_cast<size_t>(p[i])].push_back(i);
  return groups;
}

/// Moves a uniformly random k-subset of v to its front (partial Fisher-Yates).
void shuffle_prefix(std::vector<int64_t>& v, size_t k, std::mt19937_64& gen) {
  for (size_t i = 0; i < k && i + 1 < v.size(); ++i) {
    const size_t j = i + static_cast<size_t>(uniform_below(gen, v.size() - i));
    std::swap(v[i], v[j]);
  }
}

torch::Tensor sorted_tensor(std::vector<int64_t> v) {
  std::sort(v.begin(), v.end());
  return torch::tensor(v, torch::kInt64);
}

}  // namespace

std::string subset_mode_name(SubsetMode mode) { return mode == SubsetMode::kRandom ? "random" : "first"; }

SubsetMode parse_subset_mode(const std::string& text, const std::string& flag) {
  if (text == "first") return SubsetMode::kFirst;
  if (text == "random") return SubsetMode::kRandom;
  GRADLENS_CHECK_OPTION(false, flag, " '", text, "' is not a subset mode; use 'first' or 'random'");
  return SubsetMode::kFirst;
}

torch::Tensor per_class_indices(const torch::Tensor& labels, int64_t n_per_class, SubsetMode mode,
                                uint64_t seed, int64_t num_classes,
                                const std::vector<std::string>& class_names) {
  GRADLENS_CHECK(n_per_class >= 1, "per_class_indices: the number of samples per class must be "
                 ">= 1, got ", n_per_class);
  auto groups = group_by_class(labels, num_classes, "per_class_indices");
  std::mt19937_64 gen(seed);
  std::vector<int64_t> out;
  out.reserve(groups.size() * static_cast<size_t>(n_per_class));
  for (size_t c = 0; c < groups.size(); ++c) {
    auto& g = groups[c];
    const std::string name =
        c < class_names.size() ? "'" + class_names[c] + "' (label " + std::to_string(c) + ")"
                               : "label " + std::to_string(c);
    GRADLENS_CHECK(static_cast<int64_t>(g.size()) >= n_per_class, "class ", name, " has only ",
                   g.size(), " samples but ", n_per_class,
                   " per class were requested; ask for at most ", g.size(), " per class");
    if (mode == SubsetMode::kRandom) shuffle_prefix(g, static_cast<size_t>(n_per_class), gen);
    out.insert(out.end(), g.begin(), g.begin() + n_per_class);
  }
  return sorted_tensor(std::move(out));
}

Dataset balanced_subset(const Dataset& ds, int64_t n_per_class, SubsetMode mode, uint64_t seed) {
  return select(ds, per_class_indices(ds.labels, n_per_class, mode, seed, ds.num_classes(),
                                      ds.class_names));
}

SplitIndices stratified_split(const torch::Tensor& labels, double test_fraction, uint64_t seed) {
  GRADLENS_CHECK(std::isfinite(test_fraction) && test_fraction > 0.0 && test_fraction < 1.0,
                 "the test fraction must be in (0, 1), got ", test_fraction);
  auto groups = group_by_class(labels, -1, "stratified_split");
  std::mt19937_64 gen(seed);
  std::vector<int64_t> train, test;
  for (auto& g : groups) {
    const auto n = static_cast<int64_t>(g.size());
    if (n == 0) continue;
    int64_t k = static_cast<int64_t>(std::llround(test_fraction * static_cast<double>(n)));
    k = n >= 2 ? std::clamp<int64_t>(k, 1, n - 1) : 0;
    shuffle_prefix(g, static_cast<size_t>(k), gen);
    test.insert(test.end(), g.begin(), g.begin() + k);
    train.insert(train.end(), g.begin() + k, g.end());
  }
  return {sorted_tensor(std::move(train)), sorted_tensor(std::move(test))};
}

std::pair<Dataset, Dataset> train_test_split(const Dataset& ds, double test_fraction,
                                             uint64_t seed) {
  const auto s = stratified_split(ds.labels, test_fraction, seed);
  Dataset train = select(ds, s.train);
  Dataset test = select(ds, s.test);
  train.name = ds.name + "-train";
  test.name = ds.name + "-test";
  return {std::move(train), std::move(test)};
}

}  // namespace gradlens::data
