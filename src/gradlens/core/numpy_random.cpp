#include "gradlens/core/numpy_random.h"
#include <torch/types.h>

#include "gradlens/core/check.h"

#include <cmath>

namespace gradlens::core {

NumpyRandomState::NumpyRandomState(uint64_t seed) : mt_(static_cast<uint32_t>(seed)) {
  GRADLENS_CHECK(seed <= 0xffffffffULL, "seed must be between 0 and 2^32 - 1 (numpy RandomState's range), got ",
                 seed);
}

uint32_t NumpyRandomState::next_uint32() { return static_cast<uint32_t>(mt_()); }

double NumpyRandomState::random_double() {
  const uint32_t a = next_uint32() >> 5;
  const uint32_t b = next_uint32() >> 6;
  return (a * 67108864.0 + b) / 9007199254740992.0;
}

uint64_t NumpyRandomState::random_interval(uint64_t max) {
  if (max == 0) return 0;
  uint64_t mask = max;
  for (int s = 1; s <= 32; s *= 2) mask |= mask >> s;
  uint64_t v = 0;
  if (max <= 0xffffffffULL) {
    do {
      v = next_uint32() & mask;
    } while (v > max);
  } else {
    do {
      const uint64_t hi = next_uint32();
      v = ((hi << 32) | next_uint32()) & mask;
    } while (v > max);
  }
  return v;
}

int64_t NumpyRandomState::randint(int64_t high) {
  GRADLENS_CHECK(high >= 1, "randint: high must be >= 1, got ", high);
  return static_cast<int64_t>(random_interval(static_cast<uint64_t>(high - 1)));
}

std::vector<double> NumpyRandomState::uniform(int64_t n) {
  std::vector<double> out(n);
  for (auto& v : out) v = random_double();
  return out;
}

std::vector<int64_t> NumpyRandomState::permutation(int64_t n) {
  std::vector<int64_t> p(n);
  for (int64_t i = 0; i < n; ++i) p[i] = i;
  for (int64_t i = n - 1; i >= 1; --i) std::swap(p[i], p[random_interval(static_cast<uint64_t>(i))]);
  return p;
}

double NumpyRandomState::gauss() {
  if (has_gauss_) {
    has_gauss_ = false;
    return gauss_;
  }
  double x1 = 0, x2 = 0, r2 = 0;
  do {
    x1 = 2.0 * random_double() - 1.0;
    x2 = 2.0 * random_double() - 1.0;
    r2 = x1 * x1 + x2 * x2;
  } while (r2 >= 1.0 || r2 == 0.0);
  const double f = std::sqrt(-2.0 * std::log(r2) / r2);
  gauss_ = f * x1;
  has_gauss_ = true;
  return f * x2;
}

torch::Tensor NumpyRandomState::normal(int64_t rows, int64_t cols) {
  torch::Tensor t = torch::empty({rows, cols}, torch::kFloat64);
  double* p = t.data_ptr<double>();
  for (int64_t i = 0; i < rows * cols; ++i) p[i] = gauss();
  return t;
}

}  // namespace gradlens::core
