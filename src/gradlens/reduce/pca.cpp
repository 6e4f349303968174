#include "gradlens/reduce/pca.h"
#include <torch/types.h>
#include <ATen/Parallel.h>

#include "gradlens/core/blas.h"
#include "gradlens/core/check.h"
#include "gradlens/core/collectives.h"
#include "gradlens/core/hugepage.h"
#include "gradlens/core/numpy_random.h"
#include "gradlens/reduce/range_finder.h"
#include "gradlens/core/tensor_checks.h"

#include <atomic>

namespace gradlens::reduce {

namespace {

// sklearn's svd_flip: the largest-|.| entry of each column of `u` made
// positive; `v` rows flipped alike. Returns the signs [k].
torch::Tensor flip_signs_from(const torch::Tensor& u) {
  const torch::Tensor idx = u.abs().argmax(0);
  const torch::Tensor picked = u.gather(0, idx.unsqueeze(0)).squeeze(0);
  return torch::sign(picked);
}

using Factors = detail::PcaFactors;

Factors full_svd(const torch::Tensor& xc) {
  auto [u, s, vt] = torch::linalg_svd(xc, /*full_matrices=*/false);
  const torch::Tensor signs = flip_signs_from(u);
  return {s, vt * signs.unsqueeze(1), s};
}

// X^T X in float64 of a contiguous CPU matrix [n, d], by blocks of rows.
// float64 data: symmetric rank-k updates (dsyrk, half a GEMM's work) of
// float64 rows. float32 data: each block's products by sgemm in float32
// (scikit-learn's exact PCA of float32 data is a float32 SVD), the blocks
// summed in float64, so the rounding error stays near float32 precision of
// the entries (~kPcaGram32Rows / sqrt(n) ulp) rather than growing with n;
// sgemm runs ~3x faster than dsyrk here (AVX-512, 2 cores).
constexpr int64_t kPcaChunkRows = 2048;
constexpr int64_t kPcaGram32Rows = 8192;
constexpr int64_t kPcaPanels = 4;

int64_t pca_block_rows(const torch::Tensor& x) {
  return std::min(x.size(0), x.scalar_type() == torch::kFloat32 ? kPcaGram32Rows : kPcaChunkRows);
}

// A flat work buffer of at least `numel` elements of x's dtype: `scratch` if
// it is large enough, else a fresh huge-page one (on a virtual machine each
// fresh 4 KiB page costs ~40 us, so the passes share one buffer).
torch::Tensor scratch_or_new(const torch::Tensor& scratch, const torch::Tensor& x, int64_t numel) {
  if (scratch.defined() && scratch.numel() >= numel && scratch.scalar_type() == x.scalar_type()) return scratch;
  return core::empty_hugepage({numel}, x.options());
}

// Rows [s, s + rows) of x minus mean, into buf (reused between blocks, so
// the centred data is never stored whole), on the OpenMP threads that then
// run the single-threaded GEMMs.
template <typename T>
const T* centre_rows(const torch::Tensor& x, const torch::Tensor& mean, int64_t s, int64_t rows, T* bp) {
  const int64_t d = x.size(1);
  const T* xp = x.data_ptr<T>() + s * d;
  const T* mp = mean.data_ptr<T>();
  at::parallel_for(0, rows, 256, [&](int64_t r0, int64_t r1) {
    for (int64_t i = r0; i < r1; ++i) {
      for (int64_t j = 0; j < d; ++j) bp[i * d + j] = xp[i * d + j] - mp[j];
    }
  });
  return bp;
}

torch::Tensor pca_gram64_cpu(const torch::Tensor& x, const torch::Tensor& mean, const torch::Tensor& scratch) {
  const int64_t n = x.size(0);
  const int64_t d = x.size(1);
  const int64_t chunk = pca_block_rows(x);
  torch::Tensor gram = torch::zeros({d, d}, x.options().dtype(torch::kFloat64));
  double* gp = gram.data_ptr<double>();
  const torch::Tensor buf = scratch_or_new(scratch, x, chunk * d).slice(0, 0, chunk * d).view({chunk, d});
  if (x.scalar_type() == torch::kFloat32) {
    torch::Tensor block = core::empty_hugepage({d, d}, x.options());
    float* bp = block.data_ptr<float>();
    // The upper triangle by column panels: with X = [A_1 .. A_P], row panel
    // p of X^T X right of the diagonal is A_p^T [A_p .. A_P] (5/8 of the full
    // product for P = 4).
    // The panels are single-threaded GEMMs shared out over the OpenMP
    // threads (largest first), with the centring and the float64 sums on
    // the same threads: OpenBLAS's own pool would spin against OpenMP's
    // (measured on 2 cores: 0.52 -> 0.45 s). At least two panels per thread.
    const int64_t panels = std::max<int64_t>(kPcaPanels, 2 * at::get_num_threads());
    const int64_t width = (d + panels - 1) / panels;
    const int64_t n_panels = (d + width - 1) / width;
    const core::BlasThreadLimit one_blas_thread(1);
    for (int64_t s = 0; s < n; s += chunk) {
      const int64_t rows = std::min(n, s + chunk) - s;
      const float* cp = centre_rows<float>(x, mean, s, rows, buf.data_ptr<float>());
      std::atomic<int64_t> next{0};
      std::atomic<bool> ok{true};
      at::parallel_for(0, std::min<int64_t>(n_panels, at::get_num_threads()), 1, [&](int64_t, int64_t) {
        for (int64_t p = next++; p < n_panels; p = next++) {
          const int64_t c0 = p * width, w = std::min(width, d - c0);
          if (!core::blas_gemm(true, false, w, d - c0, rows, 1.0F, cp + c0, d, cp + c0, d, 0.0F, bp + c0 * d + c0, d))
            ok = false;
        }
      });
      if (!ok) {
        const torch::Tensor c = buf.slice(0, 0, rows);
        torch::mm_out(block, c.t(), c);
      }
      at::parallel_for(0, d, 16, [&](int64_t r0, int64_t r1) {
        for (int64_t i = r0; i < r1; ++i) {
          for (int64_t j = i; j < d; ++j) gp[i * d + j] += static_cast<double>(bp[i * d + j]);
        }
      });
    }
  } else {
    for (int64_t s = 0; s < n; s += chunk) {
      const int64_t rows = std::min(n, s + chunk) - s;
      const double* cp = centre_rows<double>(x, mean, s, rows, buf.data_ptr<double>());
      if (!core::blas_syrk_upper(rows, d, 1.0, cp, d, 1.0, gp, d)) {
        const torch::Tensor c = buf.slice(0, 0, rows);
        gram.addmm_(c.t(), c);  // full matrix; the mirroring below is then a no-op
      }
    }
  }
  // Both routes hold the upper triangle: mirror it (an exactly symmetric matrix).
  for (int64_t i = 0; i < d; ++i) {
    for (int64_t j = i + 1; j < d; ++j) gp[j * d + i] = gp[i * d + j];
  }
  return gram;
}

// For each of the k columns of u = (x - mean) v: the largest |u_ij| and u_ij
// at its first occurrence, as [2, k] float64. u in x's dtype, by blocks of
// rows (for float32 data, u in float32, as scikit-learn's svd_flip sees it).
template <typename T>
torch::Tensor pca_column_extremes_cpu(const torch::Tensor& x, const torch::Tensor& mean, const torch::Tensor& v64,
                                      const torch::Tensor& scratch) {
  const int64_t n = x.size(0);
  const int64_t d = x.size(1);
  const int64_t k = v64.size(1);
  const torch::Tensor v = v64.to(x.scalar_type()).contiguous();
  std::vector<T> best_abs(k, T(-1)), best_val(k, T(0));
  const int64_t chunk = pca_block_rows(x);
  const torch::Tensor work = scratch_or_new(scratch, x, chunk * (d + k));
  const torch::Tensor buf = work.slice(0, 0, chunk * d).view({chunk, d});
  const torch::Tensor u = work.slice(0, chunk * d, chunk * (d + k)).view({chunk, k});
  // Single-threaded GEMMs on 512-row pieces over the OpenMP threads (as the
  // Gram pass), then the extremes in row order.
  const core::BlasThreadLimit one_blas_thread(1);
  constexpr int64_t kPiece = 512;
  for (int64_t s = 0; s < n; s += chunk) {
    const int64_t rows = std::min(n, s + chunk) - s;
    const T* cp = centre_rows<T>(x, mean, s, rows, buf.data_ptr<T>());
    T* up = u.data_ptr<T>();
    std::atomic<bool> ok{true};
    at::parallel_for(0, rows, kPiece, [&](int64_t r0, int64_t r1) {
      for (int64_t a = r0; a < r1; a += kPiece) {
        const int64_t m = std::min(r1, a + kPiece) - a;
        if (!core::blas_gemm(false, false, m, k, d, T(1), cp + a * d, d, v.data_ptr<T>(), k, T(0), up + a * k, k))
          ok = false;
      }
    });
    if (!ok) {
      torch::Tensor uc = u.slice(0, 0, rows);
      torch::mm_out(uc, buf.slice(0, 0, rows), v);
    }
    for (int64_t i = 0; i < rows; ++i) {
      for (int64_t j = 0; j < k; ++j) {
        const T a = std::abs(up[i * k + j]);
        if (a > best_abs[j]) {  // first occurrence of the maximum, as argmax
          best_abs[j] = a;
          best_val[j] = up[i * k + j];
        }
      }
    }
  }
  torch::Tensor out = torch::empty({2, k}, v64.options());
  for (int64_t j = 0; j < k; ++j) {
    out[0][j] = static_cast<double>(best_abs[j]);
    out[1][j] = static_cast<double>(best_val[j]);
  }
  return out;
}

// Eigendecomposition of X^T X (float64). Only the first k components get
// sklearn's sign convention (the others are not returned by pca_fit).
Factors covariance_eig(const torch::Tensor& x, const torch::Tensor& mean, int64_t k) {
  const torch::Tensor scratch = detail::pca_scratch(x, k);
  return detail::pca_factors_from_gram(
      detail::pca_gram64(x, mean, scratch),
      [&](const torch::Tensor& vk) { return torch::sign(detail::pca_column_extremes(x, mean, vk, scratch)[1]); },
      k, x.scalar_type());
}

Factors randomized(const torch::Tensor& xc, int64_t k, int64_t n_oversamples, int n_iter,
                   PowerIterationNormalizer normalizer, uint64_t seed) {
  const int64_t n = xc.size(0);
  const int64_t d = xc.size(1);
  if (n_iter < 0) n_iter = k < 0.1 * static_cast<double>(std::min(n, d)) ? 7 : 4;
  // sklearn factors M = X_c^T for wide data (n < d); the range finder wants
  // M's rows contiguous.
  const bool transpose = n < d;
  const torch::Tensor m = transpose ? xc.t().contiguous() : xc;
  core::NumpyRandomState rng(seed);
  const int64_t n_random = k + n_oversamples;
  const torch::Tensor q0 = rng.normal(m.size(1), n_random).to(xc.device(), xc.scalar_type());
  const torch::Tensor q = randomized_range_finder(m, q0, n_iter, normalizer);
  const torch::Tensor b = range_project(q, m);
  auto [uhat, s, vt] = torch::linalg_svd(b, /*full_matrices=*/false);
  torch::Tensor u = torch::matmul(q, uhat);
  if (!transpose) {
    const torch::Tensor signs = flip_signs_from(u);
    u = u * signs.unsqueeze(0);
    vt = vt * signs.unsqueeze(1);
    return {s.slice(0, 0, k), vt.slice(0, 0, k), {}};
  }
  // M^T = U S Vt: the data's left vectors are vt^T, its components are u^T;
  // sklearn flips with u_based_decision=False, i.e. by the rows of vt.
  const torch::Tensor signs = flip_signs_from(vt.t());
  vt = vt * signs.unsqueeze(1);
  u = u * signs.unsqueeze(0);
  return {s.slice(0, 0, k), u.slice(1, 0, k).t(), {}};
}

// kRowGram (pca.h): the leading eigenpairs of X_c X_c^T [n, n] in float64,
// V^T = U^T X_c / S. Returns no factors (undefined s) when the last kept
// singular value is below kRowGramMinRatio of the largest, where V would
// lose accuracy; the caller then takes the full SVD.
constexpr double kRowGramMinRatio = 1e-3;

Factors row_gram_eig(const torch::Tensor& xc, int64_t k) {
  // X_c X_c^T is the Gram matrix of the float64 transpose X_c^T [d, n],
  // whose rows are already centred (a zero mean): pca_gram64, by dsyrk.
  const torch::Tensor xt = xc.t().to(torch::kFloat64).contiguous();
  const torch::Tensor gram = detail::pca_gram64(xt, torch::zeros({xc.size(0)}, xt.options()), {});
  Factors f = detail::pca_factors_from_gram(
      gram, [](const torch::Tensor& u) { return flip_signs_from(u); }, k, torch::kFloat64);
  const torch::Tensor s = f.s.slice(0, 0, k);
  const double s_first = s[0].item<double>();
  const double s_last = s[k - 1].item<double>();
  if (!(s_first > 0.0) || s_last < kRowGramMinRatio * s_first) return {};
  // f.vt holds U^T (signs applied): the components are its rows times X_c / S.
  const torch::Tensor vt = torch::matmul(f.vt.slice(0, 0, k), xt.t()) / s.unsqueeze(1);
  const auto dtype = xc.scalar_type();
  return {s.to(dtype), vt.to(dtype), f.all_s.defined() ? f.all_s.to(dtype) : f.all_s, f.total_ss, f.residual_ss};
}

void check_against(const Pca& pca, const torch::Tensor& x, int64_t cols, const char* fn) {
  core::check_matrix(x, std::string(fn) + ": x");
  GRADLENS_CHECK(pca.components.defined(), fn, ": the Pca is not fitted; call pca_fit first");
  GRADLENS_CHECK(x.size(1) == cols, fn, ": x has ", x.size(1), " columns but the fitted PCA expects ", cols);
}

}  // namespace

namespace detail {

torch::Tensor pca_column_sums64(const torch::Tensor& x) {
  const int64_t n = x.size(0);
  const int64_t d = x.size(1);
  if (x.device().type() != torch::kCPU) return x.to(torch::kFloat64).sum(0);
  // Column sums in float64 by a plain pass (no float64 copy of x): fixed
  // blocks of rows, each read contiguously, then the block sums added in
  // block order (the same sums for any thread count).
  const torch::Tensor xin = x.contiguous();
  torch::Tensor sums = torch::empty({d}, x.options().dtype(torch::kFloat64));
  constexpr int64_t kRowBlock = 4096;
  const int64_t n_blocks = (n + kRowBlock - 1) / kRowBlock;
  std::vector<double> partial(static_cast<size_t>(n_blocks * d), 0.0);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "pca_mean", [&] {
    const scalar_t* xp = xin.data_ptr<scalar_t>();
    at::parallel_for(0, n_blocks, 1, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) {
        double* acc = partial.data() + b * d;
        for (int64_t i = b * kRowBlock; i < std::min(n, (b + 1) * kRowBlock); ++i) {
          for (int64_t j = 0; j < d; ++j) acc[j] += static_cast<double>(xp[i * d + j]);
        }
      }
    });
  });
  double* mp = sums.data_ptr<double>();
  for (int64_t j = 0; j < d; ++j) {
    double total = 0.0;
    for (int64_t b = 0; b < n_blocks; ++b) total += partial[b * d + j];
    mp[j] = total;
  }
  return sums;
}

torch::Tensor pca_scratch(const torch::Tensor& x, int64_t k) {
  if (x.device().type() != torch::kCPU) return {};
  return core::empty_hugepage({pca_block_rows(x) * (x.size(1) + k)}, x.options());
}

torch::Tensor pca_gram64(const torch::Tensor& x, const torch::Tensor& mean, const torch::Tensor& scratch) {
  if (x.device().type() == torch::kCPU) {
    return pca_gram64_cpu(x.contiguous(), mean.to(x.scalar_type()).contiguous(), scratch);
  }
  const torch::Tensor x64 = (x - mean).to(torch::kFloat64);
  return torch::matmul(x64.t(), x64);
}

torch::Tensor pca_column_extremes(const torch::Tensor& x, const torch::Tensor& mean, const torch::Tensor& v64,
                                  const torch::Tensor& scratch) {
  if (x.device().type() == torch::kCPU) {
    torch::Tensor out;
    const torch::Tensor xin = x.contiguous();
    const torch::Tensor m = mean.to(x.scalar_type()).contiguous();
    const torch::Tensor vk = v64.to(torch::kCPU).contiguous();
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "pca_signs",
                               [&] { out = pca_column_extremes_cpu<scalar_t>(xin, m, vk, scratch); });
    return out.to(v64.device());
  }
  const torch::Tensor u = torch::matmul((x - mean).to(torch::kFloat64), v64);
  const torch::Tensor idx = u.abs().argmax(0);
  const torch::Tensor picked = u.gather(0, idx.unsqueeze(0)).squeeze(0);
  return torch::stack({picked.abs(), picked});
}

PcaFactors pca_factors_from_gram(const torch::Tensor& gram,
                                 const std::function<torch::Tensor(const torch::Tensor&)>& signs_of, int64_t k,
                                 torch::ScalarType dtype) {
  const int64_t d = gram.size(0);
  if (gram.device().type() == torch::kCPU && k < d) {
    // Only the k leading eigenpairs (LAPACK dsyevr by index); the total
    // variance is the trace.
    torch::Tensor a = gram.to(torch::kFloat64).clone().contiguous();
    torch::Tensor w = torch::empty({k}, a.options());
    torch::Tensor z = torch::empty({k, d}, a.options());
    if (core::lapack_syevr_top(d, k, a.data_ptr<double>(), d, w.data_ptr<double>(), z.data_ptr<double>())) {
      const torch::Tensor s = w.flip(0).clamp_min(0.0).sqrt();
      torch::Tensor v = z.flip(0).t().contiguous();  // [d, k], columns by decreasing eigenvalue
      v = v * signs_of(v).to(v.options()).unsqueeze(0);
      const double total = gram.diagonal().sum().item<double>();
      const double top = w.clamp_min(0.0).sum().item<double>();
      return {s.to(dtype), v.t().to(dtype), {}, total, std::max(0.0, total - top)};
    }
  }
  auto [evals, evecs] = torch::linalg_eigh(gram);
  evals = evals.flip(0).clamp_min(0.0);
  torch::Tensor v = evecs.flip(1).contiguous();  // [d, d], columns by decreasing eigenvalue
  // u = x v / s has the same argmax and signs as x v.
  torch::Tensor signs = signs_of(v.slice(1, 0, k).contiguous()).to(v.options());
  signs = torch::cat({signs, torch::ones({v.size(1) - k}, signs.options())});
  v = v * signs.unsqueeze(0);
  const torch::Tensor s = evals.sqrt();
  return {s.to(dtype), v.t().to(dtype), s.to(dtype)};
}

void pca_finish(Pca& p, const PcaFactors& f, int64_t k, int64_t max_k, const torch::Tensor& xc) {
  const int64_t n = p.n_samples;
  const double dof = static_cast<double>(n - 1);
  p.components = f.vt.slice(0, 0, k).contiguous();
  p.singular_values = f.s.slice(0, 0, k).contiguous();
  p.explained_variance = p.singular_values.pow(2) / dof;
  double total_var = 0.0;
  if (f.all_s.defined()) {
    const torch::Tensor all_var = f.all_s.to(torch::kFloat64).pow(2) / dof;
    total_var = all_var.sum().item<double>();
    p.noise_variance = k < max_k ? all_var.slice(0, k, max_k).mean().item<double>() : 0.0;
  } else if (f.total_ss >= 0.0) {
    total_var = f.total_ss / dof;
    p.noise_variance = k < max_k ? f.residual_ss / dof / static_cast<double>(max_k - k) : 0.0;
  } else {
    if (xc.device().type() == torch::kCPU) {
      // Sum of squares in float64 by a plain pass (no float64 copy of xc).
      AT_DISPATCH_FLOATING_TYPES(xc.scalar_type(), "pca_total_var", [&] {
        const scalar_t* xp = xc.data_ptr<scalar_t>();
        const int64_t len = xc.numel();
        constexpr int64_t kBlock = 65536;
        std::vector<double> part((len + kBlock - 1) / kBlock, 0.0);
        at::parallel_for(0, static_cast<int64_t>(part.size()), 1, [&](int64_t b0, int64_t b1) {
          for (int64_t b = b0; b < b1; ++b) {
            double acc = 0.0;
            for (int64_t i = b * kBlock; i < std::min(len, (b + 1) * kBlock); ++i) {
              acc += static_cast<double>(xp[i]) * static_cast<double>(xp[i]);
            }
            part[b] = acc;
          }
        });
        for (const double v : part) total_var += v;
      });
      total_var /= dof;
    } else {
      total_var = xc.to(torch::kFloat64).pow(2).sum().item<double>() / dof;
    }
    p.noise_variance =
        k < max_k ? (total_var - p.explained_variance.to(torch::kFloat64).sum().item<double>()) /
                        static_cast<double>(max_k - k)
                  : 0.0;
  }
  p.explained_variance_ratio = p.explained_variance / total_var;
}

}  // namespace detail

namespace {

// pca_fit over the row shards of several ranks: the covariance solver with
// the column sums and the centred Gram matrix all-reduced in float64.
Pca pca_fit_sharded(const torch::Tensor& x_local, const PcaOptions& opts, core::Collectives& comm) {
  const core::ShardLayout layout = core::shard_layout(comm, x_local, "pca_fit");
  const int64_t n = layout.n;
  const int64_t d = layout.d;
  GRADLENS_CHECK(n >= 2, "pca_fit: the ranks hold ", n, " row; PCA needs at least 2 samples");
  const int64_t max_k = std::min(n, d);
  GRADLENS_CHECK(opts.n_components >= 0 && opts.n_components <= max_k, "pca_fit: n_components = ",
                 opts.n_components, " must be between 1 and min(n_samples, n_features) = ", max_k, " (0 keeps all)");
  GRADLENS_CHECK(opts.solver == PcaSolver::kExact || opts.solver == PcaSolver::kCovariance,
                 "pca_fit: only the covariance solver (kExact or kCovariance) runs over several ranks; gather the "
                 "rows and call pca_fit in one process for kFullSvd or kRandomized");
  const int64_t k = opts.n_components == 0 ? max_k : opts.n_components;

  Pca p;
  p.n_samples = n;
  p.whiten = opts.whiten;
  p.solver = PcaSolver::kCovariance;
  torch::Tensor sums = detail::pca_column_sums64(x_local).to(torch::kCPU);
  comm.all_reduce_sum(sums);
  p.mean = (sums / static_cast<double>(n)).to(x_local.device(), x_local.scalar_type());

  const torch::Tensor scratch = detail::pca_scratch(x_local, k);
  torch::Tensor gram = detail::pca_gram64(x_local, p.mean, scratch).to(torch::kCPU);
  comm.all_reduce_sum(gram);
  // svd_flip over all rows: each rank's (max |u|, u there) per component; the
  // first rank holding the global maximum (the lowest row index) decides.
  const auto signs_of = [&](const torch::Tensor& vk) {
    const torch::Tensor ext =
        detail::pca_column_extremes(x_local, p.mean, vk.to(x_local.device()), scratch).to(torch::kCPU);
    const torch::Tensor all = comm.all_gather_rows(ext.unsqueeze(0));  // [W, 2, k]
    torch::Tensor signs = torch::empty({vk.size(1)}, torch::kFloat64);
    for (int64_t j = 0; j < vk.size(1); ++j) {
      int64_t best = 0;
      for (int64_t r = 1; r < all.size(0); ++r)
        if (all[r][0][j].item<double>() > all[best][0][j].item<double>()) best = r;
      signs[j] = torch::sign(all[best][1][j]).item<double>();
    }
    return signs;
  };
  const auto f = detail::pca_factors_from_gram(gram.to(x_local.device()), signs_of, k, x_local.scalar_type());
  detail::pca_finish(p, f, k, max_k, torch::Tensor());  // f.all_s or f.total_ss is set
  return p;
}

}  // namespace

Pca pca_fit(const torch::Tensor& x, const PcaOptions& opts, core::Collectives& comm) {
  if (comm.world_size() > 1) return pca_fit_sharded(x, opts, comm);
  core::check_matrix(x, "pca_fit: x");
  const int64_t n = x.size(0);
  const int64_t d = x.size(1);
  GRADLENS_CHECK(n >= 2, "pca_fit: x has ", n, " row; PCA needs at least 2 samples");
  const int64_t max_k = std::min(n, d);
  GRADLENS_CHECK(opts.n_components >= 0 && opts.n_components <= max_k, "pca_fit: n_components = ",
                 opts.n_components, " must be between 1 and min(n_samples, n_features) = ", max_k,
                 " (0 keeps all)");
  GRADLENS_CHECK(opts.n_oversamples >= 0, "pca_fit: n_oversamples must be >= 0, got ", opts.n_oversamples);
  GRADLENS_CHECK(opts.n_iter >= -1, "pca_fit: n_iter must be >= 0 (or -1 for auto), got ", opts.n_iter);
  const int64_t k = opts.n_components == 0 ? max_k : opts.n_components;

  Pca p;
  p.n_samples = n;
  p.whiten = opts.whiten;
  if (opts.solver == PcaSolver::kExact) {
    p.solver = n >= 2 * d ? PcaSolver::kCovariance : n < d ? PcaSolver::kRowGram : PcaSolver::kFullSvd;
  } else {
    p.solver = opts.solver;
  }
  const torch::Tensor xin = x.contiguous();
  if (x.device().type() == torch::kCPU) {
    // Column means in float64 by a plain pass (no float64 copy of x).
    p.mean = (detail::pca_column_sums64(xin) / static_cast<double>(n)).to(x.scalar_type());
  } else {
    p.mean = x.to(torch::kFloat64).mean(0).to(x.scalar_type());
  }
  // The covariance solver centres block by block; the others need the
  // centred copy (on CPU in huge-page memory).
  torch::Tensor xc;
  Factors f;
  if (p.solver == PcaSolver::kCovariance) {
    f = covariance_eig(xin, p.mean, k);
  } else {
    if (x.device().type() == torch::kCPU) {
      xc = core::empty_hugepage({n, d}, x.options());
      torch::sub_out(xc, xin, p.mean);
    } else {
      xc = x - p.mean;
    }
    if (p.solver == PcaSolver::kRowGram) {
      f = row_gram_eig(xc, k);
      if (!f.s.defined()) p.solver = PcaSolver::kFullSvd;
    }
    if (p.solver == PcaSolver::kFullSvd) f = full_svd(xc);
    if (p.solver == PcaSolver::kRandomized) {
      f = randomized(xc, k, opts.n_oversamples, opts.n_iter, opts.power_iteration_normalizer, opts.seed);
    }
  }
  detail::pca_finish(p, f, k, max_k, xc);
  return p;
}

torch::Tensor pca_transform(const Pca& pca, const torch::Tensor& x) {
  check_against(pca, x, pca.components.defined() ? pca.components.size(1) : 0, "pca_transform");
  torch::Tensor z = torch::matmul(x.to(pca.components.scalar_type()) - pca.mean, pca.components.t());
  if (pca.whiten) z = z / pca.explained_variance.sqrt();
  return z;
}

torch::Tensor pca_inverse_transform(const Pca& pca, const torch::Tensor& z) {
  check_against(pca, z, pca.components.defined() ? pca.components.size(0) : 0, "pca_inverse_transform");
  const torch::Tensor zc = z.to(pca.components.scalar_type());
  if (pca.whiten) {
    return torch::matmul(zc, pca.explained_variance.sqrt().unsqueeze(1) * pca.components) + pca.mean;
  }
  return torch::matmul(zc, pca.components) + pca.mean;
}

}  // namespace gradlens::reduce
