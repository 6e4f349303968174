#include "gradlens/reduce/pca.h"
#include <torch/types.h>
#include <ATen/Parallel.h>

#include "gradlens/core/blas.h"
#include "gradlens/core/check.h"
#include "gradlens/core/hugepage.h"
#include "gradlens/reduce/numpy_random.h"
#include "gradlens/reduce/validate.h"

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

// X^T X in float64 of a contiguous CPU matrix by row chunks (float32 rows
// converted chunk by chunk, never the whole float64 copy; symmetric rank-k
// updates, half a GEMM's work), and the sign of
// the largest-|.| entry of each of the first k columns of X v.
constexpr int64_t kPcaChunkRows = 2048;

template <typename T>
torch::Tensor pca_gram64_cpu(const torch::Tensor& xc) {
  const int64_t n = xc.size(0);
  const int64_t d = xc.size(1);
  torch::Tensor gram = torch::zeros({d, d}, xc.options().dtype(torch::kFloat64));
  const T* xp = xc.data_ptr<T>();
  torch::Tensor buf;
  if (!std::is_same_v<T, double>) buf = core::empty_hugepage({std::min(n, kPcaChunkRows), d}, gram.options());
  for (int64_t s = 0; s < n; s += kPcaChunkRows) {
    const int64_t rows = std::min(n, s + kPcaChunkRows) - s;
    const double* cp = nullptr;
    if constexpr (std::is_same_v<T, double>) {
      cp = xp + s * d;
    } else {
      double* bp = buf.data_ptr<double>();
      // A serial pass: an OpenMP one would leave its threads spinning while
      // the (multi-threaded) BLAS runs, and OpenBLAS's threads spin after it.
      for (int64_t i = 0; i < rows * d; ++i) bp[i] = static_cast<double>(xp[s * d + i]);
      cp = bp;
    }
    if (!core::blas_syrk_upper(rows, d, 1.0, cp, d, 1.0, gram.data_ptr<double>(), d)) {
      const torch::Tensor c = torch::from_blob(const_cast<double*>(cp), {rows, d}, gram.options());
      gram.addmm_(c.t(), c);  // full matrix; the mirroring below is then a no-op
    }
  }
  // syrk wrote the upper triangle: mirror it.
  double* gp = gram.data_ptr<double>();
  for (int64_t i = 0; i < d; ++i) {
    for (int64_t j = i + 1; j < d; ++j) gp[j * d + i] = gp[i * d + j];
  }
  return gram;
}

template <typename T>
torch::Tensor pca_column_extremes_cpu(const torch::Tensor& xc, const torch::Tensor& v64) {
  const int64_t n = xc.size(0);
  const int64_t d = xc.size(1);
  const int64_t k = v64.size(1);
  const T* xp = xc.data_ptr<T>();
  std::vector<double> best_abs(k, -1.0), best_val(k, 0.0);
  torch::Tensor buf = core::empty_hugepage({std::min(n, kPcaChunkRows), d}, v64.options());
  torch::Tensor u = torch::empty({std::min(n, kPcaChunkRows), k}, v64.options());
  for (int64_t s = 0; s < n; s += kPcaChunkRows) {
    const int64_t rows = std::min(n, s + kPcaChunkRows) - s;
    torch::Tensor c = buf.slice(0, 0, rows);
    if constexpr (std::is_same_v<T, double>) {
      c = xc.slice(0, s, s + rows);
    } else {
      double* bp = buf.data_ptr<double>();
      // A serial pass: an OpenMP one would leave its threads spinning while
      // the (multi-threaded) BLAS runs, and OpenBLAS's threads spin after it.
      for (int64_t i = 0; i < rows * d; ++i) bp[i] = static_cast<double>(xp[s * d + i]);
    }
    torch::Tensor uc = u.slice(0, 0, rows);
    torch::mm_out(uc, c, v64);
    const double* up = uc.data_ptr<double>();
    for (int64_t i = 0; i < rows; ++i) {
      for (int64_t j = 0; j < k; ++j) {
        const double a = std::abs(up[i * k + j]);
        if (a > best_abs[j]) {  // first occurrence of the maximum, as argmax
          best_abs[j] = a;
          best_val[j] = up[i * k + j];
        }
      }
    }
  }
  torch::Tensor out = torch::empty({2, k}, v64.options());
  for (int64_t j = 0; j < k; ++j) {
    out[0][j] = best_abs[j];
    out[1][j] = best_val[j];
  }
  return out;
}

// Eigendecomposition of X^T X (float64). Only the first k components get
// sklearn's sign convention (the others are not returned by pca_fit).
Factors covariance_eig(const torch::Tensor& xc, int64_t k) {
  return detail::pca_factors_from_gram(
      detail::pca_gram64(xc),
      [&](const torch::Tensor& vk) { return torch::sign(detail::pca_column_extremes(xc, vk)[1]); }, k,
      xc.scalar_type());
}

Factors randomized(const torch::Tensor& xc, int64_t k, int64_t n_oversamples, int n_iter, uint64_t seed) {
  const int64_t n = xc.size(0);
  const int64_t d = xc.size(1);
  if (n_iter < 0) n_iter = k < 0.1 * static_cast<double>(std::min(n, d)) ? 7 : 4;
  const bool transpose = n < d;
  const torch::Tensor m = transpose ? xc.t() : xc;
  NumpyRandomState rng(seed);
  const int64_t n_random = k + n_oversamples;
  torch::Tensor q = rng.normal(m.size(1), n_random).to(xc.device(), xc.scalar_type());
  for (int i = 0; i < n_iter; ++i) {
    q = std::get<0>(torch::linalg_qr(torch::matmul(m, q)));
    q = std::get<0>(torch::linalg_qr(torch::matmul(m.t(), q)));
  }
  q = std::get<0>(torch::linalg_qr(torch::matmul(m, q)));
  const torch::Tensor b = torch::matmul(q.t(), m);
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

void check_against(const Pca& pca, const torch::Tensor& x, int64_t cols, const char* fn) {
  check_matrix(x, std::string(fn) + ": x");
  GRADLENS_CHECK(pca.components.defined(), fn, ": the Pca is not fitted; call pca_fit first");
  GRADLENS_CHECK(x.size(1) == cols, fn, ": x has ", x.size(1), " columns but the fitted PCA expects ", cols);
}

}  // namespace

namespace detail {

torch::Tensor pca_column_sums64(const torch::Tensor& x) {
  const int64_t n = x.size(0);
  const int64_t d = x.size(1);
  if (x.device().type() != torch::kCPU) return x.to(torch::kFloat64).sum(0);
  // Column sums in float64 by a plain pass (no float64 copy of x).
  const torch::Tensor xin = x.contiguous();
  torch::Tensor sums = torch::empty({d}, x.options().dtype(torch::kFloat64));
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "pca_mean", [&] {
    const scalar_t* xp = xin.data_ptr<scalar_t>();
    double* mp = sums.data_ptr<double>();
    at::parallel_for(0, d, 16, [&](int64_t f0, int64_t f1) {
      std::vector<double> acc(f1 - f0, 0.0);
      for (int64_t i = 0; i < n; ++i) {
        for (int64_t j = f0; j < f1; ++j) acc[j - f0] += static_cast<double>(xp[i * d + j]);
      }
      for (int64_t j = f0; j < f1; ++j) mp[j] = acc[j - f0];
    });
  });
  return sums;
}

torch::Tensor pca_gram64(const torch::Tensor& xc) {
  torch::Tensor gram;
  if (xc.device().type() == torch::kCPU) {
    const torch::Tensor x = xc.contiguous();
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "pca_gram", [&] { gram = pca_gram64_cpu<scalar_t>(x); });
  } else {
    const torch::Tensor x64 = xc.to(torch::kFloat64);
    gram = torch::matmul(x64.t(), x64);
  }
  return gram;
}

torch::Tensor pca_column_extremes(const torch::Tensor& xc, const torch::Tensor& v64) {
  torch::Tensor out;
  if (xc.device().type() == torch::kCPU) {
    const torch::Tensor x = xc.contiguous();
    const torch::Tensor vk = v64.to(torch::kCPU).contiguous();
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "pca_signs", [&] { out = pca_column_extremes_cpu<scalar_t>(x, vk); });
    return out.to(v64.device());
  }
  const torch::Tensor u = torch::matmul(xc.to(torch::kFloat64), v64);
  const torch::Tensor idx = u.abs().argmax(0);
  const torch::Tensor picked = u.gather(0, idx.unsqueeze(0)).squeeze(0);
  return torch::stack({picked.abs(), picked});
}

PcaFactors pca_factors_from_gram(const torch::Tensor& gram,
                                 const std::function<torch::Tensor(const torch::Tensor&)>& signs_of, int64_t k,
                                 torch::ScalarType dtype) {
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
    p.noise_variance = k < max_k ? all_var.slice(0, k).mean().item<double>() : 0.0;
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

Pca pca_fit(const torch::Tensor& x, const PcaOptions& opts) {
  check_matrix(x, "pca_fit: x");
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
  p.solver = opts.solver == PcaSolver::kExact ? (n >= 2 * d ? PcaSolver::kCovariance : PcaSolver::kFullSvd)
                                              : opts.solver;
  torch::Tensor xc;
  if (x.device().type() == torch::kCPU) {
    // Column means in float64 by a plain pass (no float64 copy of x), and the
    // centred copy in huge-page memory.
    const torch::Tensor xin = x.contiguous();
    p.mean = (detail::pca_column_sums64(xin) / static_cast<double>(n)).to(x.scalar_type());
    xc = core::empty_hugepage({n, d}, x.options());
    torch::sub_out(xc, xin, p.mean);
  } else {
    p.mean = x.to(torch::kFloat64).mean(0).to(x.scalar_type());
    xc = x - p.mean;
  }
  Factors f;
  if (p.solver == PcaSolver::kFullSvd) {
    f = full_svd(xc);
  } else if (p.solver == PcaSolver::kCovariance) {
    f = covariance_eig(xc, k);
  } else {
    f = randomized(xc, k, opts.n_oversamples, opts.n_iter, opts.seed);
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
