#include "gradlens/cluster/kmeans_kernel.h"

#include <c10/util/Exception.h>

#include <cstdint>
#include <cstring>
#include <utility>

#include "gradlens/core/cpu.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define GRADLENS_KMEANS_X86 1
#endif

namespace gradlens::cluster::detail {

namespace {

using Isa = SimdIsa;

#ifdef GRADLENS_KMEANS_X86

// t[0] + ... + t[N - 1] by a fixed tree: lane i with i + N/2, then + N/4,
// ..., + 1. Used for the AVX-512 lane sums: GCC's _mm512_reduce_add_ps/pd
// add in the same order but trip -Wuninitialized in its own header.
template <int N, typename T>
T tree_sum(T* t) {
  for (int w = N / 2; w >= 1; w /= 2)
    for (int i = 0; i < w; ++i) t[i] += t[i + w];
  return t[0];
}

__attribute__((target("avx512f"))) inline float hsum16(__m512 v) {
  alignas(64) float t[16];
  _mm512_store_ps(t, v);
  return tree_sum<16>(t);
}

__attribute__((target("avx512f"))) inline double hsum8(__m512d v) {
  alignas(64) double t[8];
  _mm512_store_pd(t, v);
  return tree_sum<8>(t);
}

// AVX-512: lanes over features. R rows by K centres of accumulators, each a
// 16-lane partial dot product; per 16 features R row loads, K centre loads
// (the centres, K x d, stay in L1) and R * K fused multiply-adds with no
// idle lanes; a tail of d % 16 features by masked loads; the 16 lanes summed
// at the end by a fixed tree.
template <int K, int R>
__attribute__((target("avx512f"))) void dots512_rows(const float* x, int64_t d, const float* c, float* out,
                                                     int64_t ld) {
  __m512 acc[R][K];
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < K; ++j) acc[r][j] = _mm512_setzero_ps();
  int64_t t = 0;
  for (; t + 16 <= d; t += 16) {
    __m512 xv[R];
    for (int r = 0; r < R; ++r) {
      // The rows of the next group, one cache line per 16 features: the
      // hardware prefetchers alone leave this loop waiting on memory.
      // (an address past the rows for the last group: prefetches never fault,
      // and it is formed as an integer, not as a pointer past the array)
      _mm_prefetch(reinterpret_cast<const char*>(reinterpret_cast<uintptr_t>(x) + sizeof(float) * ((R + r) * d + t)),
                   _MM_HINT_T0);
      xv[r] = _mm512_loadu_ps(x + r * d + t);
    }
    for (int j = 0; j < K; ++j) {
      const __m512 cv = _mm512_loadu_ps(c + j * d + t);
      for (int r = 0; r < R; ++r) acc[r][j] = _mm512_fmadd_ps(xv[r], cv, acc[r][j]);
    }
  }
  if (t < d) {
    const __mmask16 m = static_cast<__mmask16>((1U << (d - t)) - 1U);
    __m512 xv[R];
    for (int r = 0; r < R; ++r) xv[r] = _mm512_maskz_loadu_ps(m, x + r * d + t);
    for (int j = 0; j < K; ++j) {
      const __m512 cv = _mm512_maskz_loadu_ps(m, c + j * d + t);
      for (int r = 0; r < R; ++r) acc[r][j] = _mm512_fmadd_ps(xv[r], cv, acc[r][j]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < K; ++j) out[r * ld + j] = hsum16(acc[r][j]);
}

template <int K>
void dots512_all(const float* x, int64_t rows, int64_t d, const float* c, float* out, int64_t ld) {
  constexpr int R = K <= 14 ? 2 : 1;  // R * K accumulators + R + 1 of 32 registers
  int64_t r = 0;
  for (; r + R <= rows; r += R) dots512_rows<K, R>(x + r * d, d, c, out + r * ld, ld);
  for (; r < rows; ++r) dots512_rows<K, 1>(x + r * d, d, c, out + r * ld, ld);
}

template <int... Ks>
void dots512_dispatch(int64_t k, const float* x, int64_t rows, int64_t d, const float* c, float* out, int64_t ld,
                      std::integer_sequence<int, Ks...>) {
  ((k == Ks + 1 ? dots512_all<Ks + 1>(x, rows, d, c, out, ld) : void()), ...);
}

// AVX2: lanes over centres (the panel is [d, width]). R rows at a time, V
// vectors of 8 centres per row: R * V accumulators in registers; per feature
// V centre loads and R broadcasts.
template <int V, int R>
__attribute__((target("avx2,fma"))) void scores256_rows(const float* x, int64_t d, const float* ct, float* out) {
  constexpr int64_t kp = 8 * V;
  __m256 acc[R][V];
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < V; ++v) acc[r][v] = _mm256_setzero_ps();
  for (int64_t t = 0; t < d; ++t) {
    __m256 c[V];
    for (int v = 0; v < V; ++v) c[v] = _mm256_loadu_ps(ct + t * kp + 8 * v);
    for (int r = 0; r < R; ++r) {
      const __m256 xb = _mm256_set1_ps(x[r * d + t]);
      for (int v = 0; v < V; ++v) acc[r][v] = _mm256_fmadd_ps(xb, c[v], acc[r][v]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < V; ++v) _mm256_storeu_ps(out + r * kp + 8 * v, acc[r][v]);
}

// All rows: groups of R, then one row at a time.
template <int V, int R, void (*Group)(const float*, int64_t, const float*, float*),
          void (*One)(const float*, int64_t, const float*, float*)>
void scores_all(const float* x, int64_t rows, int64_t d, const float* ct, int64_t kp, float* out) {
  int64_t r = 0;
  for (; r + R <= rows; r += R) Group(x + r * d, d, ct, out + r * kp);
  for (; r < rows; ++r) One(x + r * d, d, ct, out + r * kp);
}

__attribute__((target("avx512f"))) void add_row512(const float* x, int64_t d, double* s) {
  int64_t t = 0;
  for (; t + 8 <= d; t += 8) {
    const __m512d v = _mm512_maskz_cvtps_pd(0xFF, _mm256_loadu_ps(x + t));  // maskz: no spurious -Wmaybe-uninitialized
    _mm512_storeu_pd(s + t, _mm512_add_pd(_mm512_loadu_pd(s + t), v));
  }
  for (; t < d; ++t) s[t] += static_cast<double>(x[t]);
}

__attribute__((target("avx2"))) void add_row256(const float* x, int64_t d, double* s) {
  int64_t t = 0;
  for (; t + 4 <= d; t += 4) {
    const __m256d v = _mm256_cvtps_pd(_mm_loadu_ps(x + t));
    _mm256_storeu_pd(s + t, _mm256_add_pd(_mm256_loadu_pd(s + t), v));
  }
  for (; t < d; ++t) s[t] += static_cast<double>(x[t]);
}

__attribute__((target("avx512f"))) double sq_dist512(const float* x, const float* c, int64_t d) {
  __m512d acc = _mm512_setzero_pd();
  int64_t t = 0;
  for (; t + 8 <= d; t += 8) {
    const __m512d diff = _mm512_sub_pd(_mm512_maskz_cvtps_pd(0xFF, _mm256_loadu_ps(x + t)),
                                       _mm512_maskz_cvtps_pd(0xFF, _mm256_loadu_ps(c + t)));
    acc = _mm512_fmadd_pd(diff, diff, acc);
  }
  double total = hsum8(acc);
  for (; t < d; ++t) {
    const double diff = static_cast<double>(x[t]) - static_cast<double>(c[t]);
    total += diff * diff;
  }
  return total;
}

#endif  // GRADLENS_KMEANS_X86

}  // namespace

SimdIsa simd_isa() {
#ifdef GRADLENS_KMEANS_X86
  if (core::cpu_has_avx512f()) return Isa::kAvx512;
  if (core::cpu_has_avx2_fma()) return Isa::kAvx2;
#endif
  return Isa::kNone;
}

int64_t small_k_width(int64_t k, SimdIsa isa) {
  if (k < 1 || isa == Isa::kNone) return 0;
  if (isa == Isa::kAvx512) return k <= 16 ? 16 : 0;
  return k <= 16 ? 16 : (k <= 32 ? 32 : 0);
}

int64_t small_k_panel_size(int64_t k, int64_t d, SimdIsa isa) {
  const int64_t width = small_k_width(k, isa);
  if (width == 0) return 0;
  return isa == Isa::kAvx512 ? k * d : d * width;
}

void small_k_pack(const float* c, int64_t k, int64_t d, float* panel, SimdIsa isa) {
  if (isa == Isa::kAvx512) {
    std::memcpy(panel, c, sizeof(float) * static_cast<size_t>(k * d));  // centres as rows
    return;
  }
  // AVX2: centres as lanes, [d, width] zero-padded.
  const int64_t width = small_k_width(k, isa);
  if (width == 0) return;  // no kernel for this isa (callers check small_k_width)
  std::memset(panel, 0, sizeof(float) * static_cast<size_t>(d * width));
  for (int64_t j = 0; j < k; ++j)
    for (int64_t t = 0; t < d; ++t) panel[t * width + j] = c[j * d + t];
}

void small_k_scores(const float* x, int64_t rows, int64_t d, int64_t k, const float* panel, float* out,
                    SimdIsa isa) {
  const int64_t ld = small_k_width(k, isa);
  TORCH_CHECK(ld > 0, "small_k_scores: k = ", k, " is not supported with this instruction set; check small_k_width");
#ifdef GRADLENS_KMEANS_X86
  if (isa == Isa::kAvx512) {
    return dots512_dispatch(k, x, rows, d, panel, out, ld, std::make_integer_sequence<int, 16>{});
  }
  if (ld == 16) return scores_all<2, 4, scores256_rows<2, 4>, scores256_rows<2, 1>>(x, rows, d, panel, ld, out);
  return scores_all<4, 2, scores256_rows<4, 2>, scores256_rows<4, 1>>(x, rows, d, panel, ld, out);
#else
  TORCH_CHECK(false, "small_k_scores: this build has no x86-64 kernels");
#endif
}

void prefetch_block(const void* p, int64_t bytes) {
  const char* c = static_cast<const char*>(p);
  for (int64_t o = 0; o < bytes; o += 64) __builtin_prefetch(c + o, 0, 2);
}

double sq_dist_f64(const float* x, const float* c, int64_t d) {
#ifdef GRADLENS_KMEANS_X86
  if (simd_isa() == Isa::kAvx512) return sq_dist512(x, c, d);
#endif
  double total = 0.0;
  for (int64_t t = 0; t < d; ++t) {
    const double diff = static_cast<double>(x[t]) - static_cast<double>(c[t]);
    total += diff * diff;
  }
  return total;
}

void add_row_f64(const float* x, int64_t d, double* s, SimdIsa isa) {
#ifdef GRADLENS_KMEANS_X86
  if (isa == Isa::kAvx512) return add_row512(x, d, s);
  if (isa == Isa::kAvx2) return add_row256(x, d, s);
#endif
  for (int64_t t = 0; t < d; ++t) s[t] += static_cast<double>(x[t]);
}

}  // namespace gradlens::cluster::detail
