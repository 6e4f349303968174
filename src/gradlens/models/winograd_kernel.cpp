#include "gradlens/models/winograd_kernel.h"

#include <c10/util/Exception.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "gradlens/core/cpu.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define GRADLENS_WINOGRAD_X86 1
#endif

namespace gradlens::models::detail {

namespace {

constexpr int64_t kLanes = 16;  // floats per AVX-512 register
constexpr int64_t kPositions = 36;  // 6 x 6 transformed tile
// Floats of the V and M blocks together (384 KiB): within a core's L2.
constexpr int64_t kBlockFloats = 96 * 1024;
constexpr int64_t kRowGroup = 12;  // block tiles are a multiple of this

int64_t tiles_along(int64_t len) { return (len + 3) / 4; }

#ifdef GRADLENS_WINOGRAD_X86

#define GRADLENS_AVX512 __attribute__((target("avx512f")))

// B^T d for one column (or row) of six vectors d0..d5.
GRADLENS_AVX512 inline void input_1d(const __m512 (&d)[6], __m512 (&t)[6]) {
  const __m512 four = _mm512_set1_ps(4.0f), five = _mm512_set1_ps(5.0f), two = _mm512_set1_ps(2.0f);
  t[0] = _mm512_fmadd_ps(four, d[0], _mm512_fnmadd_ps(five, d[2], d[4]));
  t[1] = _mm512_fnmadd_ps(four, _mm512_add_ps(d[1], d[2]), _mm512_add_ps(d[3], d[4]));
  t[2] = _mm512_fmadd_ps(four, _mm512_sub_ps(d[1], d[2]), _mm512_sub_ps(d[4], d[3]));
  t[3] = _mm512_fmadd_ps(two, _mm512_sub_ps(d[3], d[1]), _mm512_sub_ps(d[4], d[2]));
  t[4] = _mm512_fmadd_ps(two, _mm512_sub_ps(d[1], d[3]), _mm512_sub_ps(d[4], d[2]));
  t[5] = _mm512_fmadd_ps(four, d[1], _mm512_fnmadd_ps(five, d[3], d[5]));
}

// A^T m for six vectors m0..m5: four outputs.
GRADLENS_AVX512 inline void output_1d(const __m512 (&m)[6], __m512 (&o)[4]) {
  const __m512 two = _mm512_set1_ps(2.0f), four = _mm512_set1_ps(4.0f), eight = _mm512_set1_ps(8.0f);
  const __m512 a = _mm512_add_ps(m[1], m[2]), b = _mm512_sub_ps(m[1], m[2]);
  const __m512 c = _mm512_add_ps(m[3], m[4]), d = _mm512_sub_ps(m[3], m[4]);
  o[0] = _mm512_add_ps(_mm512_add_ps(m[0], a), c);
  o[1] = _mm512_fmadd_ps(two, d, b);
  o[2] = _mm512_fmadd_ps(four, c, a);
  o[3] = _mm512_add_ps(_mm512_fmadd_ps(eight, d, b), m[5]);
}

// V[p][row][:] = (B^T d B)[p] for every 16-channel block of one tile's 6 x 6
// input patch (zeros outside the image). v points at the tile's row of
// position 0; positions are pstride floats apart. Two passes through a
// small buffer in L1 (rows, then columns), so that each pass keeps its 12
// vectors in registers.
GRADLENS_AVX512 void input_transform(const WinogradShape& s, const float* x, int64_t tile, float* v,
                                     int64_t pstride) {
  const int64_t th = tiles_along(s.h), tw = tiles_along(s.w);
  const int64_t img = tile / (th * tw), rem = tile % (th * tw);
  const int64_t y0 = (rem / tw) * 4 - 1, x0 = (rem % tw) * 4 - 1;
  const int64_t cs = s.c;
  const float* base = x + img * s.h * s.w * cs;
  bool col_in[6];
  for (int j = 0; j < 6; ++j) col_in[j] = x0 + j >= 0 && x0 + j < s.w;
  const bool cols_all_in = x0 >= 0 && x0 + 6 <= s.w;
  __m512 tmp[36];
  for (int64_t cb = 0; cb < cs; cb += kLanes) {
#pragma GCC unroll 1
    for (int i = 0; i < 6; ++i) {
      const int64_t yy = y0 + i;
      __m512 r[6];
      if (yy < 0 || yy >= s.h) {
#pragma GCC unroll 6
        for (int j = 0; j < 6; ++j) r[j] = _mm512_setzero_ps();
      } else {
        const float* row = base + yy * s.w * cs + cb;  // pixel (yy, 0)
        __m512 d[6];
        if (cols_all_in) {
#pragma GCC unroll 6
          for (int j = 0; j < 6; ++j) d[j] = _mm512_loadu_ps(row + (x0 + j) * cs);
        } else {
          // (Addresses formed only for columns inside the image.)
#pragma GCC unroll 6
          for (int j = 0; j < 6; ++j) d[j] = col_in[j] ? _mm512_loadu_ps(row + (x0 + j) * cs) : _mm512_setzero_ps();
        }
        input_1d(d, r);
      }
#pragma GCC unroll 6
      for (int j = 0; j < 6; ++j) tmp[i * 6 + j] = r[j];
    }
#pragma GCC unroll 1
    for (int j = 0; j < 6; ++j) {
      __m512 d[6], r[6];
#pragma GCC unroll 6
      for (int i = 0; i < 6; ++i) d[i] = tmp[i * 6 + j];
      input_1d(d, r);
#pragma GCC unroll 6
      for (int i = 0; i < 6; ++i) _mm512_storeu_ps(v + (i * 6 + j) * pstride + cb, r[i]);
    }
  }
}

// y = (A^T M A) + bias for one tile, every 16-channel block, only the pixels
// inside the image; two passes as input_transform.
GRADLENS_AVX512 void output_transform(const WinogradShape& s, const float* m, int64_t pstride, const float* bias,
                                      float* y, int64_t tile) {
  const int64_t th = tiles_along(s.h), tw = tiles_along(s.w);
  const int64_t img = tile / (th * tw), rem = tile % (th * tw);
  const int64_t y0 = (rem / tw) * 4, x0 = (rem % tw) * 4;
  const int64_t rows = s.h - y0 < 4 ? s.h - y0 : 4, cols = s.w - x0 < 4 ? s.w - x0 : 4;
  const int64_t ks = s.k;
  float* base = y + (img * s.h * s.w + y0 * s.w + x0) * ks;
  __m512 tmp[24];  // A^T applied along each of the 6 rows: tmp[i][q], q < 4
  for (int64_t kb = 0; kb < ks; kb += kLanes) {
#pragma GCC unroll 1
    for (int i = 0; i < 6; ++i) {
      __m512 d[6], o[4];
#pragma GCC unroll 6
      for (int j = 0; j < 6; ++j) d[j] = _mm512_loadu_ps(m + (i * 6 + j) * pstride + kb);
      output_1d(d, o);
#pragma GCC unroll 4
      for (int q = 0; q < 4; ++q) tmp[i * 4 + q] = o[q];
    }
    const __m512 b = bias != nullptr ? _mm512_loadu_ps(bias + kb) : _mm512_setzero_ps();
#pragma GCC unroll 1
    for (int q = 0; q < cols; ++q) {
      __m512 d[6], o[4];
#pragma GCC unroll 6
      for (int i = 0; i < 6; ++i) d[i] = tmp[i * 4 + q];
      output_1d(d, o);
      float* dst = base + q * ks + kb;
      if (rows == 4) {
#pragma GCC unroll 4
        for (int r = 0; r < 4; ++r) _mm512_storeu_ps(dst + r * s.w * ks, _mm512_add_ps(o[r], b));
      } else {
        for (int r = 0; r < rows; ++r) _mm512_storeu_ps(dst + r * s.w * ks, _mm512_add_ps(o[r], b));
      }
    }
  }
}

// m[r][0:16*KV] = sum_ci v[r][ci] * u[ci][0:16*KV] for R rows: v has row
// stride c, u and m row stride k. R x KV accumulators stay in registers.
template <int R, int KV>
GRADLENS_AVX512 inline void gemm_tile(const float* v, int64_t c, const float* u, int64_t k, float* m) {
  __m512 acc[R][KV];
#pragma GCC unroll 16
  for (int i = 0; i < R; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < KV; ++j) acc[i][j] = _mm512_setzero_ps();
  for (int64_t ci = 0; ci < c; ++ci) {
    __m512 w[KV];
#pragma GCC unroll 4
    for (int j = 0; j < KV; ++j) w[j] = _mm512_loadu_ps(u + ci * k + j * kLanes);
#pragma GCC unroll 16
    for (int i = 0; i < R; ++i) {
      const __m512 b = _mm512_set1_ps(v[i * c + ci]);
#pragma GCC unroll 4
      for (int j = 0; j < KV; ++j) acc[i][j] = _mm512_fmadd_ps(b, w[j], acc[i][j]);
    }
  }
#pragma GCC unroll 16
  for (int i = 0; i < R; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < KV; ++j) _mm512_storeu_ps(m + i * k + j * kLanes, acc[i][j]);
}

// All `rows` rows in groups of R, then the remainder with R - 1, R - 2, ...
template <int R, int KV>
GRADLENS_AVX512 void gemm_rows(const float* v, int64_t rows, int64_t c, const float* u, int64_t k, float* m) {
  int64_t r = 0;
  for (; r + R <= rows; r += R) gemm_tile<R, KV>(v + r * c, c, u, k, m + r * k);
  if constexpr (R > 1) {
    if (r < rows) gemm_rows<R - 1, KV>(v + r * c, rows - r, c, u, k, m + r * k);
  }
}

// M = V U for one position: V [rows, c], U [c, k], M [rows, k], row-major.
GRADLENS_AVX512 void gemm(const float* v, int64_t rows, int64_t c, const float* u, int64_t k, float* m) {
  int64_t col = 0;
  for (; col + 4 * kLanes <= k; col += 4 * kLanes) gemm_rows<6, 4>(v, rows, c, u + col, k, m + col);
  switch ((k - col) / kLanes) {
    case 3: gemm_rows<8, 3>(v, rows, c, u + col, k, m + col); break;
    case 2: gemm_rows<12, 2>(v, rows, c, u + col, k, m + col); break;
    case 1: gemm_rows<12, 1>(v, rows, c, u + col, k, m + col); break;
    default: break;
  }
}

GRADLENS_AVX512 void conv_tiles512(const WinogradShape& s, const float* x, const float* u, const float* bias,
                                   float* y, int64_t tile_begin, int64_t tile_end, float* scratch) {
  const int64_t block = winograd_block_tiles(s);
  float* vbuf = scratch;
  float* mbuf = scratch + kPositions * block * s.c;
  for (int64_t t0 = tile_begin; t0 < tile_end; t0 += block) {
    const int64_t nt = tile_end - t0 < block ? tile_end - t0 : block;
    for (int64_t i = 0; i < nt; ++i) input_transform(s, x, t0 + i, vbuf + i * s.c, nt * s.c);
    for (int64_t p = 0; p < kPositions; ++p)
      gemm(vbuf + p * nt * s.c, nt, s.c, u + p * s.c * s.k, s.k, mbuf + p * nt * s.k);
    for (int64_t i = 0; i < nt; ++i) output_transform(s, mbuf + i * s.k, nt * s.k, bias, y, t0 + i);
  }
}

#undef GRADLENS_AVX512
#endif  // GRADLENS_WINOGRAD_X86

}  // namespace

bool winograd_cpu_supported() {
#ifdef GRADLENS_WINOGRAD_X86
  return core::cpu_has_avx512f();
#else
  return false;
#endif
}

int64_t winograd_tiles(const WinogradShape& s) { return s.n * tiles_along(s.h) * tiles_along(s.w); }

int64_t winograd_block_tiles(const WinogradShape& s) {
  const int64_t fit = kBlockFloats / (kPositions * (s.c + s.k));
  return fit < kRowGroup ? kRowGroup : fit / kRowGroup * kRowGroup;
}

int64_t winograd_scratch_floats(const WinogradShape& s) {
  return kPositions * winograd_block_tiles(s) * (s.c + s.k);
}

void winograd_transform_weights(const float* w, int64_t k, int64_t c, bool input_grad, float* u) {
  static constexpr double G[6][3] = {{1.0 / 4, 0, 0},
                                     {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                                     {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                                     {1.0 / 24, 1.0 / 12, 1.0 / 6},
                                     {1.0 / 24, -1.0 / 12, 1.0 / 6},
                                     {0, 0, 1}};
  // Forward: kernels [k][c], output u[p][c][k]. Input gradient: the
  // convolution from k to c channels whose kernel (ci -> ko swapped) is w's
  // rotated by 180 degrees, output u[p][k][c]. The loops run along u's rows
  // so that each of the 36 positions is written in order.
  const int64_t rows = input_grad ? k : c, cols = input_grad ? c : k;
  std::vector<float> line(kPositions * cols);  // one row of u for every position
  for (int64_t row = 0; row < rows; ++row) {
    for (int64_t col = 0; col < cols; ++col) {
      const int64_t ko = input_grad ? row : col, ci = input_grad ? col : row;
      const float* g = w + (ko * c + ci) * 9;
      double kern[3][3];
      for (int a = 0; a < 3; ++a)
        for (int b = 0; b < 3; ++b) kern[a][b] = input_grad ? g[(2 - a) * 3 + (2 - b)] : g[a * 3 + b];
      double gg[6][3];  // G kern
      for (int i = 0; i < 6; ++i)
        for (int b = 0; b < 3; ++b) gg[i][b] = G[i][0] * kern[0][b] + G[i][1] * kern[1][b] + G[i][2] * kern[2][b];
      for (int i = 0; i < 6; ++i)
        for (int j = 0; j < 6; ++j) {
          const double v = gg[i][0] * G[j][0] + gg[i][1] * G[j][1] + gg[i][2] * G[j][2];
          line[(i * 6 + j) * cols + col] = static_cast<float>(v);
        }
    }
    for (int64_t p = 0; p < kPositions; ++p)
      std::copy(line.begin() + p * cols, line.begin() + (p + 1) * cols, u + (p * rows + row) * cols);
  }
}

void winograd_conv_tiles(const WinogradShape& s, const float* x, const float* u, const float* bias, float* y,
                         int64_t tile_begin, int64_t tile_end, float* scratch) {
  TORCH_CHECK(s.c % kLanes == 0 && s.k % kLanes == 0 && s.c > 0 && s.k > 0,
              "winograd_conv_tiles: channel counts must be positive multiples of 16, got ", s.c, " and ", s.k);
  TORCH_CHECK(0 <= tile_begin && tile_begin <= tile_end && tile_end <= winograd_tiles(s),
              "winograd_conv_tiles: tile range [", tile_begin, ", ", tile_end, ") out of [0, ", winograd_tiles(s),
              ")");
#ifdef GRADLENS_WINOGRAD_X86
  TORCH_CHECK(winograd_cpu_supported(), "winograd_conv_tiles: this CPU has no AVX-512F");
  conv_tiles512(s, x, u, bias, y, tile_begin, tile_end, scratch);
#else
  (void)x, (void)u, (void)bias, (void)y, (void)scratch;
  TORCH_CHECK(false, "winograd_conv_tiles: not an x86-64 build");
#endif
}

}  // namespace gradlens::models::detail

#undef GRADLENS_WINOGRAD_X86
