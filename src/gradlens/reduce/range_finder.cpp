#include "gradlens/reduce/range_finder.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <numeric>
#include <vector>

#include "gradlens/core/blas.h"
#include "gradlens/core/check.h"

namespace gradlens::reduce {

namespace {

// Rows of A per GEMM. The partial products of A^T Y are summed over blocks
// in block order, so the block size must not depend on the thread count: at
// most 64 blocks (and partial buffers) for tall matrices.
int64_t block_rows(int64_t m) { return std::max<int64_t>(2048, (m + 63) / 64); }

// Column-major Y [m, l], stored as row-major yt [l, m]: Y = A Q for a
// row-major a [m, c] and Q column-major [c, l] (row-major qt [l, c]).
template <typename T>
bool product_a(const T* a, int64_t m, int64_t c, const T* qt, int64_t l, T* yt) {
  const int64_t rows = block_rows(m);
  const int64_t blocks = (m + rows - 1) / rows;
  std::atomic<bool> ok{true};
  at::parallel_for(0, blocks, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t r0 = b * rows, r = std::min(m, r0 + rows) - r0;
      if (!core::blas_gemm(false, true, l, r, c, T(1), qt, c, a + r0 * c, c, T(0), yt + r0, m)) ok = false;
    }
  });
  return ok;
}

// Row-major zt [l, c] = yt [l, m] a [m, c] (column-major Z = A^T Y): one
// partial product per block of rows, summed in block order.
template <typename T>
bool product_at(const T* a, int64_t m, int64_t c, const T* yt, int64_t l, T* zt) {
  const int64_t rows = block_rows(m);
  const int64_t blocks = (m + rows - 1) / rows;
  const int64_t size = l * c;
  std::vector<T> part(static_cast<size_t>(blocks * size));
  std::atomic<bool> ok{true};
  at::parallel_for(0, blocks, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t r0 = b * rows, r = std::min(m, r0 + rows) - r0;
      if (!core::blas_gemm(false, false, l, c, r, T(1), yt + r0, m, a + r0 * c, c, T(0), part.data() + b * size, c))
        ok = false;
    }
  });
  if (!ok) return false;
  at::parallel_for(0, size, 4096, [&](int64_t e0, int64_t e1) {
    for (int64_t e = e0; e < e1; ++e) {
      T s = part[static_cast<size_t>(e)];
      for (int64_t b = 1; b < blocks; ++b) s += part[static_cast<size_t>(b * size + e)];
      zt[e] = s;
    }
  });
  return true;
}

PowerIterationNormalizer resolve(PowerIterationNormalizer n, int n_iter) {
  if (n != PowerIterationNormalizer::kAuto) return n;
  return n_iter <= 2 ? PowerIterationNormalizer::kNone : PowerIterationNormalizer::kLU;
}

// y [rows, l] normalised as `normalizer` says (kAuto already resolved), by
// LibTorch's LU or QR.
torch::Tensor normalised(const torch::Tensor& y, PowerIterationNormalizer normalizer) {
  switch (normalizer) {
    case PowerIterationNormalizer::kLU:
      return lu_permuted_l(y);
    case PowerIterationNormalizer::kQR:
      return std::get<0>(torch::linalg_qr(y));
    default:
      return y;
  }
}

// The CPU route: a row-major contiguous [m, c], q0 [c, l], l <= min(m, c).
// Returns an undefined tensor if the BLAS lacks a symbol.
template <typename T>
torch::Tensor range_finder_cpu(const torch::Tensor& a, const torch::Tensor& q0, int n_iter,
                               PowerIterationNormalizer normalizer) {
  const int64_t m = a.size(0), c = a.size(1), l = q0.size(1);
  const T* ap = a.data_ptr<T>();
  torch::Tensor qt = q0.t().clone(at::MemoryFormat::Contiguous);  // Q column-major [c, l], ours to overwrite
  torch::Tensor yt = torch::empty({l, m}, a.options());  // Y column-major [m, l]
  // t holds a column-major [rows, l] matrix as row-major [l, rows].
  auto normalise = [&](torch::Tensor& t, int64_t rows) {
    if (normalizer == PowerIterationNormalizer::kNone) return;
    if (normalizer == PowerIterationNormalizer::kLU &&
        core::lapack_lu_permuted_l(rows, l, t.data_ptr<T>(), rows))
      return;
    t = normalised(t.t(), normalizer).t().contiguous();
  };
  const core::BlasThreadLimit one_blas_thread(1);  // the GEMMs run inside at::parallel_for
  for (int i = 0; i < n_iter; ++i) {
    if (!product_a<T>(ap, m, c, qt.data_ptr<T>(), l, yt.data_ptr<T>())) return {};
    normalise(yt, m);
    if (!product_at<T>(ap, m, c, yt.data_ptr<T>(), l, qt.data_ptr<T>())) return {};
    normalise(qt, c);
  }
  if (!product_a<T>(ap, m, c, qt.data_ptr<T>(), l, yt.data_ptr<T>())) return {};
  return std::get<0>(torch::linalg_qr(yt.t()));
}

}  // namespace

torch::Tensor lu_permuted_l(const torch::Tensor& y) {
  GRADLENS_CHECK(y.dim() == 2, "lu_permuted_l: y must be 2-D, got ", y.dim(), " dimensions");
  const int64_t m = y.size(0), n = y.size(1), k = std::min(m, n);
  // An exactly zero pivot (a sketch with fewer distinct rows than columns)
  // is no error: scipy returns P L then too.
  auto [lu, pivots, info] = torch::linalg_lu_factor_ex(y, /*pivot=*/true, /*check_errors=*/false);
  const torch::Tensor l = lu.slice(1, 0, k).tril(-1) + torch::eye(m, k, y.options());
  // Applying the row swaps of P = P_1 ... P_k to L, from the last to the
  // first, is a gather by the permuted row index.
  const torch::Tensor piv = pivots.to(torch::kCPU, torch::kLong).contiguous();
  std::vector<int64_t> idx(static_cast<size_t>(m));
  std::iota(idx.begin(), idx.end(), int64_t{0});
  const int64_t* pp = piv.data_ptr<int64_t>();
  for (int64_t i = k - 1; i >= 0; --i) std::swap(idx[static_cast<size_t>(i)], idx[static_cast<size_t>(pp[i] - 1)]);
  return l.index_select(0, torch::tensor(idx, torch::kLong).to(y.device()));
}

torch::Tensor randomized_range_finder(const torch::Tensor& a, const torch::Tensor& q0, int n_iter,
                                      PowerIterationNormalizer normalizer) {
  GRADLENS_CHECK(a.dim() == 2 && q0.dim() == 2 && q0.size(0) == a.size(1), "randomized_range_finder: a [m, c] and ",
                 "q0 [c, l] expected, got ", a.sizes(), " and ", q0.sizes());
  GRADLENS_CHECK(n_iter >= 0, "randomized_range_finder: n_iter must be >= 0, got ", n_iter);
  normalizer = resolve(normalizer, n_iter);
  // The CPU route works on its own copy of q; the other never writes it.
  const torch::Tensor q = q0.to(a.options());
  const int64_t l = q.size(1);
  if (a.device().is_cpu() && l <= std::min(a.size(0), a.size(1)) &&
      (a.scalar_type() == torch::kFloat || a.scalar_type() == torch::kDouble)) {
    const torch::Tensor ac = a.contiguous();
    torch::Tensor out = a.scalar_type() == torch::kFloat ? range_finder_cpu<float>(ac, q, n_iter, normalizer)
                                                         : range_finder_cpu<double>(ac, q, n_iter, normalizer);
    if (out.defined()) return out;
  }
  torch::Tensor qq = q;
  for (int i = 0; i < n_iter; ++i) {
    qq = normalised(torch::matmul(a, qq), normalizer);
    qq = normalised(torch::matmul(a.t(), qq), normalizer);
  }
  return std::get<0>(torch::linalg_qr(torch::matmul(a, qq)));
}

torch::Tensor range_project(const torch::Tensor& q, const torch::Tensor& a) {
  GRADLENS_CHECK(a.dim() == 2 && q.dim() == 2 && q.size(0) == a.size(0), "range_project: q [m, l] and a [m, c] ",
                 "expected, got ", q.sizes(), " and ", a.sizes());
  GRADLENS_CHECK(q.device() == a.device(), "range_project: q is on ", q.device(), " but a on ", a.device());
  if (a.device().is_cpu() && q.scalar_type() == a.scalar_type() &&
      (a.scalar_type() == torch::kFloat || a.scalar_type() == torch::kDouble)) {
    const torch::Tensor ac = a.contiguous();
    const torch::Tensor qt = q.t().contiguous();
    torch::Tensor out = torch::empty({q.size(1), a.size(1)}, a.options());
    const core::BlasThreadLimit one_blas_thread(1);
    const bool ok = a.scalar_type() == torch::kFloat
                        ? product_at<float>(ac.data_ptr<float>(), a.size(0), a.size(1), qt.data_ptr<float>(),
                                            q.size(1), out.data_ptr<float>())
                        : product_at<double>(ac.data_ptr<double>(), a.size(0), a.size(1), qt.data_ptr<double>(),
                                             q.size(1), out.data_ptr<double>());
    if (ok) return out;
  }
  return torch::matmul(q.t(), a);
}

}  // namespace gradlens::reduce
