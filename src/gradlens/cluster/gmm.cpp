#include "gradlens/cluster/gmm.h"
#include <torch/types.h>
#include <ATen/Parallel.h>

#include "gradlens/cluster/kmeans.h"
#include "gradlens/core/blas.h"
#include "gradlens/core/check.h"
#include "gradlens/core/hugepage.h"
#include "gradlens/core/numpy_random.h"
#include "gradlens/core/tensor_checks.h"

#include <chrono>
#include <cmath>
#include <functional>
#include <limits>

namespace gradlens::cluster {

namespace {

constexpr double kTwoPi = 6.283185307179586;

using Params = detail::GmmParams;
using RowSum = detail::GmmRowSum;

// In place: the sum over rows of all shards (nothing in one process).
void gmm_sum_rows(const RowSum& sum_rows, torch::Tensor& t) {
  if (sum_rows) sum_rows(t);
}


[[noreturn]] void ill_defined(double reg_covar, const char* what) {
  GRADLENS_CHECK(false, "gmm_fit: ", what,
                 " is not positive definite: some components have an ill-defined empirical covariance (for instance "
                 "singleton or collapsed samples) with reg_covar = ",
                 reg_covar, "; increase reg_covar (e.g. to ", std::max(reg_covar * 100, 1e-4),
                 ") or decrease n_components");
  throw std::logic_error("unreachable");
}

// Cholesky factor of the precision of each covariance (sklearn's
// _compute_precision_cholesky).
torch::Tensor precision_cholesky(const torch::Tensor& cov, CovarianceType type, double reg_covar) {
  if (type == CovarianceType::kFull || type == CovarianceType::kTied) {
    auto [chol, info] = torch::linalg_cholesky_ex(cov);
    if (info.ne(0).any().item<bool>()) ill_defined(reg_covar, "a covariance matrix");
    const int64_t d = cov.size(-1);
    const torch::Tensor eye = torch::eye(d, cov.options()).expand_as(cov);
    return torch::linalg_solve_triangular(chol, eye, /*upper=*/false).transpose(-2, -1).contiguous();
  }
  if (cov.le(0.0).any().item<bool>()) ill_defined(reg_covar, "a variance");
  return 1.0 / cov.sqrt();
}

// sklearn's _estimate_gaussian_parameters: (nk, means, covariances). Every
// sum over rows goes through sum_rows (an all-reduce over row shards in
// gmm_fit over several ranks), so the moments are those of all rows.
Params estimate_parameters(const torch::Tensor& x, const torch::Tensor& resp, double reg_covar, CovarianceType type,
                           const RowSum& sum_rows = {}) {
  Params p;
  torch::Tensor nk = resp.sum(0);
  gmm_sum_rows(sum_rows, nk);
  nk = nk + 10 * std::numeric_limits<double>::epsilon();
  torch::Tensor rx = torch::matmul(resp.t(), x);  // [k, d] sum of r x
  gmm_sum_rows(sum_rows, rx);
  p.means = rx / nk.unsqueeze(1);
  const int64_t k = resp.size(1);
  const int64_t d = x.size(1);
  switch (type) {
    case CovarianceType::kFull: {
      p.covariances = torch::empty({k, d, d}, x.options());
      for (int64_t j = 0; j < k; ++j) {
        const torch::Tensor diff = x - p.means[j];
        p.covariances[j].copy_(torch::matmul((diff * resp.select(1, j).unsqueeze(1)).t(), diff));
      }
      gmm_sum_rows(sum_rows, p.covariances);
      for (int64_t j = 0; j < k; ++j) {
        torch::Tensor c = p.covariances[j] / nk[j];
        c.diagonal().add_(reg_covar);
        p.covariances[j].copy_(c);
      }
      break;
    }
    case CovarianceType::kTied: {
      torch::Tensor xx = torch::matmul(x.t(), x);
      gmm_sum_rows(sum_rows, xx);
      torch::Tensor c = xx - torch::matmul((nk.unsqueeze(1) * p.means).t(), p.means);
      c = c / nk.sum();
      c.diagonal().add_(reg_covar);
      p.covariances = c;
      break;
    }
    case CovarianceType::kDiag:
    case CovarianceType::kSpherical: {
      torch::Tensor rx2 = torch::matmul(resp.t(), x * x);
      gmm_sum_rows(sum_rows, rx2);
      const torch::Tensor avg_x2 = rx2 / nk.unsqueeze(1);
      const torch::Tensor avg_x_means = p.means * rx / nk.unsqueeze(1);
      torch::Tensor c = avg_x2 - 2 * avg_x_means + p.means * p.means + reg_covar;
      p.covariances = type == CovarianceType::kDiag ? c : c.mean(1);
      break;
    }
  }
  p.weights = nk;
  return p;
}

// [N, k] log N(x | mu_j, Sigma_j) (sklearn's _estimate_log_gaussian_prob).
torch::Tensor log_gaussian(const torch::Tensor& x, const torch::Tensor& means, const torch::Tensor& prec_chol,
                           CovarianceType type) {
  const int64_t n = x.size(0);
  const int64_t k = means.size(0);
  const int64_t d = x.size(1);
  torch::Tensor log_prob;
  torch::Tensor log_det;
  switch (type) {
    case CovarianceType::kFull: {
      log_prob = torch::empty({n, k}, x.options());
      for (int64_t j = 0; j < k; ++j) {
        const torch::Tensor y = torch::matmul(x, prec_chol[j]) - torch::matmul(means[j], prec_chol[j]);
        log_prob.select(1, j).copy_(y.pow(2).sum(1));
      }
      log_det = prec_chol.diagonal(0, -2, -1).log().sum(1);
      break;
    }
    case CovarianceType::kTied: {
      log_prob = torch::empty({n, k}, x.options());
      const torch::Tensor xp = torch::matmul(x, prec_chol);
      for (int64_t j = 0; j < k; ++j) {
        log_prob.select(1, j).copy_((xp - torch::matmul(means[j], prec_chol)).pow(2).sum(1));
      }
      log_det = prec_chol.diagonal().log().sum();
      break;
    }
    case CovarianceType::kDiag: {
      const torch::Tensor prec = prec_chol.pow(2);
      log_prob = (means.pow(2) * prec).sum(1) - 2.0 * torch::matmul(x, (means * prec).t()) +
                 torch::matmul(x.pow(2), prec.t());
      log_det = prec_chol.log().sum(1);
      break;
    }
    case CovarianceType::kSpherical: {
      const torch::Tensor prec = prec_chol.pow(2);
      log_prob = means.pow(2).sum(1) * prec - 2.0 * torch::matmul(x, means.t() * prec) +
                 torch::outer(x.pow(2).sum(1), prec);
      log_det = static_cast<double>(d) * prec_chol.log();
      break;
    }
  }
  return -0.5 * (static_cast<double>(d) * std::log(kTwoPi) + log_prob) + log_det;
}

torch::Tensor weighted_log_prob(const torch::Tensor& x, const Params& p, CovarianceType type) {
  return log_gaussian(x, p.means, p.prec_chol, type) + p.weights.log();
}

// CPU fast path for the diag and full EM loop: float64 buffers allocated once
// per fit (huge pages), GEMMs straight into them, and one fused pass per
// E-step (log-densities -> weighted -> row logsumexp -> responsibilities),
// instead of ~10 [N, k] / [N, d] temporaries per iteration. Same formulas as
// estimate_parameters / log_gaussian (sklearn's), summed in other orders.
struct GmmWork {
  torch::Tensor x;     // [N, d] contiguous float64
  torch::Tensor x2;    // diag: x * x
  torch::Tensor y;     // full: [N, k * d] x . [P_1 .. P_k]
  torch::Tensor diff;  // full: [N, d] x - mu_j
  torch::Tensor wdiff; // full: [N, d] resp_j * (x - mu_j)
  torch::Tensor resp;  // [N, k]
};

bool gmm_fast_path(const torch::Tensor& x, CovarianceType type) {
  return x.device().type() == torch::kCPU && (type == CovarianceType::kDiag || type == CovarianceType::kFull);
}

// C[m, n] = alpha op(A) op(B) + beta C, row-major contiguous float64, on the
// OpenMP threads with single-threaded BLAS calls (the caller holds a
// BlasThreadLimit(1)): OpenBLAS's own pool would busy-wait between calls and
// starve the OpenMP passes that alternate with them. Without trans_a, rows
// of C are split; with trans_a (a reduction over the rows of A and B), fixed
// chunks of rows give partial products added in order, so the result does
// not depend on the thread count.
void gmm_gemm_serial(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha, const double* a, int64_t lda,
                     const double* b, int64_t ldb, double beta, double* c) {
  if (core::blas_gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, n)) return;
  const auto o = torch::TensorOptions().dtype(torch::kFloat64);
  torch::Tensor at = torch::from_blob(const_cast<double*>(a), {ta ? k : m, ta ? m : k}, {lda, 1}, o);
  torch::Tensor bt = torch::from_blob(const_cast<double*>(b), {tb ? n : k, tb ? k : n}, {ldb, 1}, o);
  torch::Tensor ct = torch::from_blob(c, {m, n}, o);
  ct.mul_(beta).add_(torch::mm(ta ? at.t() : at, tb ? bt.t() : bt), alpha);
}

void gmm_gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha, const double* a, const double* b,
              double beta, double* c) {
  const int64_t lda = ta ? m : k;
  const int64_t ldb = tb ? k : n;
  if (!ta) {
    constexpr int64_t kRows = 512;
    const int64_t blocks = (m + kRows - 1) / kRows;
    at::parallel_for(0, blocks, 1, [&](int64_t b0, int64_t b1) {
      const int64_t r0 = b0 * kRows, r1 = std::min(m, b1 * kRows);
      gmm_gemm_serial(false, tb, r1 - r0, n, k, alpha, a + r0 * lda, lda, b, ldb, beta, c + r0 * n);
    });
    return;
  }
  TORCH_INTERNAL_ASSERT(!tb && beta == 0.0);
  constexpr int64_t kChunk = 1024;  // >= 10 chunks for N = 10000: an even split over the threads
  const int64_t chunks = (k + kChunk - 1) / kChunk;
  std::vector<double> part(chunks * m * n);
  at::parallel_for(0, chunks, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t ch = c0; ch < c1; ++ch) {
      const int64_t r0 = ch * kChunk, r1 = std::min(k, r0 + kChunk);
      gmm_gemm_serial(true, false, m, n, r1 - r0, alpha, a + r0 * lda, lda, b + r0 * ldb, ldb, 0.0,
                      part.data() + ch * m * n);
    }
  });
  std::copy(part.begin(), part.begin() + m * n, c);
  for (int64_t ch = 1; ch < chunks; ++ch) {
    const double* pp = part.data() + ch * m * n;
    for (int64_t i = 0; i < m * n; ++i) c[i] += pp[i];
  }
}

// M-step from work.resp (sklearn's _estimate_gaussian_parameters, diag/full).
Params gmm_m_step(GmmWork& w, double reg_covar, CovarianceType type) {
  const int64_t n = w.x.size(0);
  const int64_t d = w.x.size(1);
  const int64_t k = w.resp.size(1);
  const auto f64 = w.x.options();
  Params p;
  const torch::Tensor nk = w.resp.sum(0) + 10 * std::numeric_limits<double>::epsilon();
  torch::Tensor rx = torch::empty({k, d}, f64);
  gmm_gemm(true, false, k, d, n, 1.0, w.resp.data_ptr<double>(), w.x.data_ptr<double>(), 0.0, rx.data_ptr<double>());
  p.means = rx / nk.unsqueeze(1);
  if (type == CovarianceType::kDiag) {
    torch::Tensor rx2 = torch::empty({k, d}, f64);
    gmm_gemm(true, false, k, d, n, 1.0, w.resp.data_ptr<double>(), w.x2.data_ptr<double>(), 0.0,
             rx2.data_ptr<double>());
    const torch::Tensor avg_x2 = rx2 / nk.unsqueeze(1);
    const torch::Tensor avg_x_means = p.means * rx / nk.unsqueeze(1);
    p.covariances = avg_x2 - 2 * avg_x_means + p.means * p.means + reg_covar;
  } else {
    p.covariances = torch::empty({k, d, d}, f64);
    const double* xp = w.x.data_ptr<double>();
    const double* rp = w.resp.data_ptr<double>();
    double* dp = w.diff.data_ptr<double>();
    double* wp = w.wdiff.data_ptr<double>();
    const torch::Tensor means = p.means.contiguous();
    for (int64_t j = 0; j < k; ++j) {
      const double* mu = means.data_ptr<double>() + j * d;
      at::parallel_for(0, n, 1024, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) {
          const double r = rp[i * k + j];
          for (int64_t l = 0; l < d; ++l) {
            const double t = xp[i * d + l] - mu[l];
            dp[i * d + l] = t;
            wp[i * d + l] = t * r;
          }
        }
      });
      torch::Tensor c = p.covariances[j];
      gmm_gemm(true, false, d, d, n, 1.0, wp, dp, 0.0, c.data_ptr<double>());
      c.div_(nk[j]);
      c.diagonal().add_(reg_covar);
    }
  }
  p.weights = nk;
  return p;
}

// E-step: work.resp = responsibilities under p; returns mean log-likelihood
// (sklearn's log_prob_norm.mean()).
double gmm_e_step(GmmWork& w, const Params& p, CovarianceType type) {
  const int64_t n = w.x.size(0);
  const int64_t d = w.x.size(1);
  const int64_t k = p.means.size(0);
  double* rp = w.resp.data_ptr<double>();
  torch::Tensor log_det;
  torch::Tensor cst;  // [k]: -0.5 * (d log 2 pi + constant part of log_prob) + log_det + log w
  if (type == CovarianceType::kDiag) {
    const torch::Tensor prec = p.prec_chol.pow(2).contiguous();
    const torch::Tensor mp = (p.means * prec).contiguous();
    log_det = p.prec_chol.log().sum(1);
    // resp <- x^2 . prec^T - 2 x . (mu prec)^T, then the per-row pass.
    gmm_gemm(false, true, n, k, d, 1.0, w.x2.data_ptr<double>(), prec.data_ptr<double>(), 0.0, rp);
    gmm_gemm(false, true, n, k, d, -2.0, w.x.data_ptr<double>(), mp.data_ptr<double>(), 1.0, rp);
    cst = -0.5 * (static_cast<double>(d) * std::log(kTwoPi) + (p.means.pow(2) * prec).sum(1)) + log_det +
          p.weights.log();
  } else {
    const torch::Tensor pc = p.prec_chol.permute({1, 0, 2}).contiguous();  // [d, k, d]
    const torch::Tensor mp = torch::matmul(p.means.unsqueeze(1), p.prec_chol).squeeze(1).contiguous();  // [k, d]
    log_det = p.prec_chol.diagonal(0, -2, -1).log().sum(1);
    double* yp = w.y.data_ptr<double>();
    gmm_gemm(false, false, n, k * d, d, 1.0, w.x.data_ptr<double>(), pc.data_ptr<double>(), 0.0, yp);
    const double* mpp = mp.data_ptr<double>();
    at::parallel_for(0, n, 256, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        for (int64_t j = 0; j < k; ++j) {
          const double* yi = yp + (i * k + j) * d;
          const double* mj = mpp + j * d;
          double acc = 0.0;
          for (int64_t l = 0; l < d; ++l) {
            const double t = yi[l] - mj[l];
            acc += t * t;
          }
          rp[i * k + j] = acc;
        }
      }
    });
    cst = -0.5 * static_cast<double>(d) * std::log(kTwoPi) + log_det + p.weights.log();
  }
  const torch::Tensor cstc = cst.contiguous();
  const double* cp = cstc.data_ptr<double>();
  constexpr int64_t kBlock = 1024;
  const int64_t n_blocks = (n + kBlock - 1) / kBlock;
  std::vector<double> partial(n_blocks, 0.0);
  at::parallel_for(0, n_blocks, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      double acc = 0.0;
      for (int64_t i = b * kBlock; i < std::min(n, (b + 1) * kBlock); ++i) {
        double* r = rp + i * k;
        double mx = -std::numeric_limits<double>::infinity();
        for (int64_t j = 0; j < k; ++j) {
          r[j] = -0.5 * r[j] + cp[j];
          mx = std::max(mx, r[j]);
        }
        double sum = 0.0;
        for (int64_t j = 0; j < k; ++j) {
          r[j] = std::exp(r[j] - mx);
          sum += r[j];
        }
        // exp(wlp - lse) as exp(wlp - max) / sum: one exp per entry, within
        // an ulp or two of sklearn's exp(log_resp).
        const double inv = 1.0 / sum;
        for (int64_t j = 0; j < k; ++j) r[j] *= inv;
        acc += std::log(sum) + mx;
      }
      partial[b] = acc;
    }
  });
  double total = 0.0;
  for (double v : partial) total += v;
  return total / static_cast<double>(n);
}

GmmWork gmm_make_work(const torch::Tensor& x64, int64_t k, CovarianceType type) {
  GmmWork w;
  w.x = x64.contiguous();
  const int64_t n = w.x.size(0);
  const int64_t d = w.x.size(1);
  w.resp = core::empty_hugepage({n, k}, w.x.options());
  if (type == CovarianceType::kDiag) {
    w.x2 = core::empty_hugepage({n, d}, w.x.options());
    torch::mul_out(w.x2, w.x, w.x);
  } else {
    w.y = core::empty_hugepage({n, k * d}, w.x.options());
    w.diff = core::empty_hugepage({n, d}, w.x.options());
    w.wdiff = core::empty_hugepage({n, d}, w.x.options());
  }
  return w;
}

void check_shape(const torch::Tensor& t, c10::IntArrayRef want, const char* name) {
  GRADLENS_CHECK(t.sizes() == want, "gmm_fit: ", name, " has shape ", t.sizes(), " but ", want, " is needed");
  GRADLENS_CHECK(torch::isfinite(t).all().item<bool>(), "gmm_fit: ", name, " contains NaN or Inf");
}

// n_total: the rows of all shards (x.size(0) in one process).
Params initialize(const torch::Tensor& x, const GmmOptions& opts, core::NumpyRandomState& rng,
                  const std::function<Params(const torch::Tensor&)>& estimate, int64_t n_total) {
  const int64_t n = x.size(0);
  const int64_t k = opts.n_components;
  const int64_t d = x.size(1);
  torch::Tensor resp;
  if (opts.init == GmmInit::kKMeans) {
    KMeansOptions ko;
    ko.k = k;
    ko.n_init = 1;
    const KMeansResult km = detail::kmeans_fit_with_rng(x, ko, rng);
    resp = torch::one_hot(km.labels, k).to(x.options());
  } else if (opts.init == GmmInit::kRandom) {
    resp = torch::tensor(rng.uniform(n * k), torch::kFloat64).view({n, k}).to(x.device());
    resp = resp / resp.sum(1, true);
  } else {
    GRADLENS_CHECK(opts.init_resp.defined(), "gmm_fit: init = kGiven needs init_resp of shape [", n, ", ", k, "]");
    resp = opts.init_resp.to(x.device(), torch::kFloat64);
    check_shape(resp, {n, k}, "init_resp");
    GRADLENS_CHECK(resp.ge(0).all().item<bool>(), "gmm_fit: init_resp has negative entries; responsibilities must be >= 0");
  }
  Params p = estimate(resp);
  p.weights = p.weights / static_cast<double>(n_total);
  if (opts.weights_init.defined()) {
    p.weights = opts.weights_init.to(x.device(), torch::kFloat64);
    check_shape(p.weights, {k}, "weights_init");
  }
  if (opts.means_init.defined()) {
    p.means = opts.means_init.to(x.device(), torch::kFloat64);
    check_shape(p.means, {k, d}, "means_init");
  }
  if (opts.precisions_init.defined()) {
    const torch::Tensor prec = opts.precisions_init.to(x.device(), torch::kFloat64);
    check_shape(prec, p.covariances.sizes(), "precisions_init");
    if (opts.covariance_type == CovarianceType::kFull || opts.covariance_type == CovarianceType::kTied) {
      auto [chol, info] = torch::linalg_cholesky_ex(prec);
      GRADLENS_CHECK(info.eq(0).all().item<bool>(), "gmm_fit: precisions_init is not positive definite");
      p.prec_chol = chol;
    } else {
      GRADLENS_CHECK(prec.gt(0).all().item<bool>(), "gmm_fit: precisions_init must be > 0");
      p.prec_chol = prec.sqrt();
    }
    p.covariances = torch::Tensor();  // as sklearn: only set by the first M-step
  } else {
    p.prec_chol = precision_cholesky(p.covariances, opts.covariance_type, opts.reg_covar);
  }
  return p;
}

void check_fitted(const GaussianMixture& gm, const torch::Tensor& x, const char* fn) {
  GRADLENS_CHECK(gm.means.defined(), fn, ": the mixture is not fitted; call gmm_fit first");
  core::check_matrix(x, std::string(fn) + ": x");
  GRADLENS_CHECK(x.size(1) == gm.means.size(1), fn, ": x has ", x.size(1), " columns but the mixture was fitted on ",
                 gm.means.size(1));
}

torch::Tensor weighted_log_prob(const GaussianMixture& gm, const torch::Tensor& x) {
  const torch::Tensor x64 = x.to(gm.means.device(), torch::kFloat64);
  return log_gaussian(x64, gm.means, gm.precisions_cholesky, gm.covariance_type) + gm.weights.log();
}

}  // namespace

GaussianMixture gmm_fit(const torch::Tensor& x, const GmmOptions& opts, core::Collectives& comm) {
  const bool multi = comm.world_size() > 1;
  int64_t n = 0;
  if (multi) {
    n = core::shard_layout(comm, x, "gmm_fit").n;
  } else {
    core::check_matrix(x, "gmm_fit: x");
    n = x.size(0);
  }
  GRADLENS_CHECK(n >= 2, "gmm_fit: x has ", n, " row", multi ? "(s) over all ranks" : "",
                 "; a mixture needs at least 2 samples");
  GRADLENS_CHECK(opts.n_components >= 1, "gmm_fit: n_components must be >= 1, got ", opts.n_components);
  GRADLENS_CHECK(opts.n_components <= n, "gmm_fit: n_components = ", opts.n_components,
                 " is larger than the number of rows (", n, "); use fewer components or more samples");
  GRADLENS_CHECK(opts.tol >= 0 && std::isfinite(opts.tol), "gmm_fit: tol must be finite and >= 0, got ", opts.tol);
  GRADLENS_CHECK(opts.reg_covar >= 0 && std::isfinite(opts.reg_covar), "gmm_fit: reg_covar must be >= 0, got ",
                 opts.reg_covar);
  GRADLENS_CHECK(opts.max_iter >= 1, "gmm_fit: max_iter must be >= 1, got ", opts.max_iter);
  GRADLENS_CHECK(opts.n_init >= 1, "gmm_fit: n_init must be >= 1, got ", opts.n_init);
  if (!multi) return detail::gmm_em(x.to(torch::kFloat64), opts, {}, n);
  GRADLENS_CHECK(opts.init == GmmInit::kGiven, "gmm_fit: on ", comm.world_size(),
                 " ranks only init = kGiven is supported (with init_resp = this rank's rows' responsibilities); "
                 "seed with kmeans_fit over the same Communicator and pass its labels one-hot");
  const detail::GmmRowSum sum_rows = [&comm](torch::Tensor& t) { comm.all_reduce_sum(t); };
  return detail::gmm_em(x.to(torch::kFloat64), opts, sum_rows, n);
}

namespace detail {

GaussianMixture gmm_em(const torch::Tensor& x64, const GmmOptions& opts, const GmmRowSum& sum_rows, int64_t n_total) {
  core::NumpyRandomState rng(opts.seed);
  const CovarianceType type = opts.covariance_type;
  const auto t0 = std::chrono::steady_clock::now();

  double best_bound = -std::numeric_limits<double>::infinity();
  bool have_best = false;
  GaussianMixture best;
  best.covariance_type = type;
  // The fused CPU path sums over its own rows only: not for row shards.
  const bool fast = gmm_fast_path(x64, type) && !sum_rows;
  GmmWork work;
  if (fast) work = gmm_make_work(x64, opts.n_components, type);
  const std::function<Params(const torch::Tensor&)> estimate = [&](const torch::Tensor& resp) {
    if (!fast) return estimate_parameters(x64, resp, opts.reg_covar, type, sum_rows);
    work.resp.copy_(resp);
    return gmm_m_step(work, opts.reg_covar, type);
  };
  const core::BlasThreadLimit one_blas_thread(1);  // see gmm_gemm
  for (int init = 0; init < opts.n_init; ++init) {
    Params p = initialize(x64, opts, rng, estimate, n_total);
    double bound = -std::numeric_limits<double>::infinity();
    bool converged = false;
    int iter = 1;
    for (; iter <= opts.max_iter; ++iter) {
      const double prev = bound;
      Params q;
      if (fast) {
        bound = gmm_e_step(work, p, type);
        q = gmm_m_step(work, opts.reg_covar, type);
      } else {
        // E-step.
        const torch::Tensor wlp = weighted_log_prob(x64, p, type);
        const torch::Tensor log_norm = torch::logsumexp(wlp, 1);
        const torch::Tensor log_resp = wlp - log_norm.unsqueeze(1);
        // M-step.
        q = estimate_parameters(x64, log_resp.exp(), opts.reg_covar, type, sum_rows);
        if (sum_rows) {
          torch::Tensor total = log_norm.sum().reshape({1});
          sum_rows(total);
          bound = total.item<double>() / static_cast<double>(n_total);
        } else {
          bound = log_norm.mean().item<double>();
        }
      }
      q.weights = q.weights / q.weights.sum();
      q.prec_chol = precision_cholesky(q.covariances, type, opts.reg_covar);
      p = std::move(q);
      const double change = bound - prev;
      if (opts.progress) {
        core::ProgressEvent ev;
        ev.stage = "gmm";
        ev.done = iter;
        ev.total = opts.max_iter;
        ev.elapsed_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        ev.values = {{"init", init}, {"lower_bound", bound}, {"change", change}};
        core::report(opts.progress, ev);
      }
      if (std::abs(change) < opts.tol) {
        converged = true;
        break;
      }
    }
    if (!have_best || bound > best_bound) {
      have_best = true;
      best_bound = bound;
      best.weights = p.weights;
      best.means = p.means;
      best.covariances = p.covariances;
      best.precisions_cholesky = p.prec_chol;
      best.lower_bound = bound;
      best.n_iter = std::min(iter, opts.max_iter);
      best.converged = converged;
    }
  }
  return best;
}

}  // namespace detail

torch::Tensor gmm_score_samples(const GaussianMixture& gm, const torch::Tensor& x) {
  check_fitted(gm, x, "gmm_score_samples");
  return torch::logsumexp(weighted_log_prob(gm, x), 1);
}

double gmm_score(const GaussianMixture& gm, const torch::Tensor& x) {
  return gmm_score_samples(gm, x).mean().item<double>();
}

torch::Tensor gmm_predict(const GaussianMixture& gm, const torch::Tensor& x) {
  check_fitted(gm, x, "gmm_predict");
  return weighted_log_prob(gm, x).argmax(1);
}

torch::Tensor gmm_predict_proba(const GaussianMixture& gm, const torch::Tensor& x) {
  check_fitted(gm, x, "gmm_predict_proba");
  const torch::Tensor wlp = weighted_log_prob(gm, x);
  return (wlp - torch::logsumexp(wlp, 1, true)).exp();
}

int64_t gmm_n_parameters(const GaussianMixture& gm) {
  GRADLENS_CHECK(gm.means.defined(), "gmm_n_parameters: the mixture is not fitted; call gmm_fit first");
  const double k = static_cast<double>(gm.means.size(0));
  const double d = static_cast<double>(gm.means.size(1));
  double cov = 0.0;
  switch (gm.covariance_type) {
    case CovarianceType::kFull:
      cov = k * d * (d + 1) / 2.0;
      break;
    case CovarianceType::kDiag:
      cov = k * d;
      break;
    case CovarianceType::kTied:
      cov = d * (d + 1) / 2.0;
      break;
    case CovarianceType::kSpherical:
      cov = k;
      break;
  }
  return static_cast<int64_t>(cov + d * k + k - 1);
}

double gmm_bic(const GaussianMixture& gm, const torch::Tensor& x) {
  const double n = static_cast<double>(x.size(0));
  return -2.0 * gmm_score(gm, x) * n + static_cast<double>(gmm_n_parameters(gm)) * std::log(n);
}

double gmm_aic(const GaussianMixture& gm, const torch::Tensor& x) {
  return -2.0 * gmm_score(gm, x) * static_cast<double>(x.size(0)) + 2.0 * static_cast<double>(gmm_n_parameters(gm));
}

}  // namespace gradlens::cluster
