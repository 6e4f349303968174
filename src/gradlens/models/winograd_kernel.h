// The inner loops of a 3x3, stride-1, padding-1 convolution by Winograd's
// minimal filtering F(4x4, 3x3) (Lavin and Gray, "Fast Algorithms for
// Convolutional Neural Networks", 2016: interpolation points 0, 1, -1, 2, -2
// and infinity) on x86-64 CPUs with AVX-512F, over channels-last (NHWC)
// float32 maps whose channel counts are multiples of 16.
//
// Each 4x4 output tile is computed from the 6x6 input patch around it as
//   Y = A^T [ sum_c (G g_kc G^T) .* (B^T d_c B) ] A,
// 36 multiplications per tile and channel pair where a direct convolution
// takes 144: the sum over channels is, for each of the 36 positions of the
// 6x6 transformed tile, a small matrix product over a block of tiles, held in
// the caches together with its transforms. Torch-free (raw pointers) so that
// the AVX-512 code stays behind run-time dispatch; models/winograd.h is the
// tensor interface.
#pragma once
#include <cstdint>

namespace gradlens::models::detail {

/// Whether this CPU (and build) runs the kernels: x86-64 with AVX-512F.
bool winograd_cpu_supported();

/// Shape of one convolution: n images of h x w pixels, c input and k output
/// channels (both multiples of 16), 3x3 kernel, stride 1, zero padding 1.
struct WinogradShape {
  int64_t n = 0, h = 0, w = 0, c = 0, k = 0;
};

/// Output tiles (4x4) of the whole batch: n * ceil(h/4) * ceil(w/4).
int64_t winograd_tiles(const WinogradShape& s);

/// Tiles one call of winograd_conv_tiles handles per cache block.
int64_t winograd_block_tiles(const WinogradShape& s);

/// Floats of the scratch buffer a winograd_conv_tiles call needs.
int64_t winograd_scratch_floats(const WinogradShape& s);

/// Transformed kernels u[36][c][k] (position-major; u[p][ci][ko] =
/// (G g G^T)[p] for the kernel g = w[ko][ci]) from w [k][c][3][3]
/// (contiguous), computed in float64 and rounded once. With `input_grad`
/// set, the kernels of the convolution that maps output gradients to input
/// gradients instead (kernel w[ko][ci] rotated by 180 degrees, channels
/// swapped): u[36][k][c].
void winograd_transform_weights(const float* w, int64_t k, int64_t c, bool input_grad, float* u);

/// y = conv(x, g) + bias for the output tiles [tile_begin, tile_end) (tiles
/// are numbered image-major, then row, then column). x is [n, h, w, c] and
/// y [n, h, w, k] (NHWC, contiguous); u from winograd_transform_weights;
/// bias (k floats) may be null. scratch holds winograd_scratch_floats(s)
/// floats. Tiles of different calls write disjoint parts of y.
void winograd_conv_tiles(const WinogradShape& s, const float* x, const float* u, const float* bias, float* y,
                         int64_t tile_begin, int64_t tile_end, float* scratch);

}  // namespace gradlens::models::detail
