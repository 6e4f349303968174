// Lloyd's inner loops for a small number of centres on x86-64 CPUs with
// AVX-512 or AVX2+FMA (chosen at run time): the dot products of a block of
// float32 rows with a few centres (see small_k_width) without a BLAS call,
// and the float64
// accumulation of a float32 row. A BLAS GEMM with only k = 10 output columns
// spends as long packing the rows of x as multiplying them; these read each
// row once, straight from x.
#pragma once
#include <cstdint>

namespace gradlens::cluster::detail {

/// The instruction sets the kernels are written for.
enum class SimdIsa { kNone, kAvx2, kAvx512 };

/// The best one this CPU has (AVX-512F, else AVX2 with FMA, else none; none
/// on other architectures). The functions below use it unless told another;
/// an explicit isa must not be above simd_isa() (the CPU would fault), and
/// kAvx2 on an AVX-512 CPU is allowed (tests run both).
SimdIsa simd_isa();

/// The row stride of small_k_scores' output for k centres (16 or 32), or 0
/// when the kernel does not apply (AVX-512: k > 16; AVX2: k > 32; neither
/// AVX-512F nor AVX2 with FMA; not an x86-64 build): callers then use the BLAS.
int64_t small_k_width(int64_t k, SimdIsa isa = simd_isa());

/// The number of floats of the centre panel of k centres of d features.
int64_t small_k_panel_size(int64_t k, int64_t d, SimdIsa isa = simd_isa());

/// Lays out the centres c ([k, d] row-major) as the kernel reads them into
/// panel (small_k_panel_size(k, d) floats).
void small_k_pack(const float* c, int64_t k, int64_t d, float* panel, SimdIsa isa = simd_isa());

/// out[r * small_k_width(k) + j] = x_r . c_j for `rows` rows of x ([rows, d]
/// row-major) and j < k. AVX-512: lanes over features, 16 partial sums per
/// dot product added by a fixed tree at the end; AVX2: lanes over centres,
/// each sum a chain of fused multiply-adds in feature order. Throws
/// c10::Error if small_k_width(k) is 0.
void small_k_scores(const float* x, int64_t rows, int64_t d, int64_t k, const float* panel, float* out,
                    SimdIsa isa = simd_isa());

/// Asks the CPU to bring [p, p + bytes) into its caches (a software prefetch
/// per 64-byte line). Lloyd's passes call it for the next block of rows
/// before scoring the current one: measured on one core, this cut a streamed
/// pass over 60000 x 512 rows from 31 to 23 ms (cached: 15 ms).
void prefetch_block(const void* p, int64_t bytes);

/// |x - c|^2 over d features in float64 (AVX-512: 8 partial sums added by a
/// fixed tree, then the tail; else one sum in feature order).
double sq_dist_f64(const float* x, const float* c, int64_t d);

/// s[t] += double(x[t]) for t < d (vectorised where the CPU allows; the same
/// float64 sums as the scalar loop).
void add_row_f64(const float* x, int64_t d, double* s, SimdIsa isa = simd_isa());

}  // namespace gradlens::cluster::detail
