// Portable random draws for the data area. std::uniform_*_distribution are
// implementation-defined; these are not, so a seed gives the same subsets,
// augmentations and generated images with every standard library.
#pragma once

#include <cmath>
#include <cstdint>
#include <random>

namespace gradlens::data {

/// Uniform integer in [0, n) (n > 0), by rejection sampling on the 64-bit
/// output of `gen`: unbiased and portable.
inline uint64_t uniform_below(std::mt19937_64& gen, uint64_t n) {
  const uint64_t limit = UINT64_MAX - (UINT64_MAX % n + 1) % n;  // accept [0, limit]
  uint64_t x = gen();
  while (x > limit) x = gen();
  return x % n;
}

/// Uniform double in [0, 1) from the top 53 bits of one draw.
inline double uniform_01(std::mt19937_64& gen) {
  return static_cast<double>(gen() >> 11) * (1.0 / 9007199254740992.0);
}

/// Uniform double in [lo, hi).
inline double uniform_real(std::mt19937_64& gen, double lo, double hi) {
  return lo + (hi - lo) * uniform_01(gen);
}

/// Standard normal draw (Box-Muller on two uniform_01 draws).
inline double normal_01(std::mt19937_64& gen) {
  const double u1 = 1.0 - uniform_01(gen);  // (0, 1]
  const double u2 = uniform_01(gen);
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}

/// SplitMix64 finaliser: decorrelates seeds derived from (seed, index) pairs.
inline uint64_t mix_seed(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace gradlens::data
