// A bit-exact re-implementation of numpy's legacy numpy.random.RandomState
// (MT19937) for the draws the analysis stages make, so that a gradlens seed
// reproduces scikit-learn's random_state=seed choices (k-means++ and random
// KMeans seeding, randomized SVD test matrices, silhouette subsampling).
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <random>
#include <vector>

namespace gradlens::core {

class NumpyRandomState {
 public:
  /// As numpy.random.RandomState(seed). Throws c10::Error if seed > 2^32 - 1
  /// (numpy's limit).
  explicit NumpyRandomState(uint64_t seed);

  /// Next raw 32-bit output of MT19937.
  uint32_t next_uint32();
  /// Uniform double in [0, 1) with 53 random bits (random_sample()).
  double random_double();
  /// Uniform integer in [0, max] by masked rejection (numpy random_interval).
  uint64_t random_interval(uint64_t max);
  /// randint(high): uniform in [0, high). Throws c10::Error if high < 1.
  int64_t randint(int64_t high);
  /// uniform(size=n) in [0, 1).
  std::vector<double> uniform(int64_t n);
  /// permutation(n): Fisher-Yates from the end, as RandomState.shuffle.
  std::vector<int64_t> permutation(int64_t n);
  /// standard_normal(): polar Box-Muller with numpy's cached second value.
  double gauss();
  /// normal(size=(rows, cols)) as a float64 CPU tensor, filled in C order.
  torch::Tensor normal(int64_t rows, int64_t cols);

 private:
  std::mt19937 mt_;
  bool has_gauss_ = false;
  double gauss_ = 0.0;
};

}  // namespace gradlens::core
