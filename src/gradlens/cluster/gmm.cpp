#include "gradlens/cluster/gmm.h"
#include <torch/torch.h>

#include "gradlens/cluster/kmeans.h"
#include "gradlens/core/check.h"
#include "gradlens/reduce/numpy_random.h"
#include "gradlens/reduce/validate.h"

#include <chrono>
#include <cmath>
#include <limits>

namespace gradlens::cluster {

namespace {

constexpr double kTwoPi = 6.283185307179586;

struct Params {
  torch::Tensor weights, means, covariances, prec_chol;
};


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

// sklearn's _estimate_gaussian_parameters: (nk, means, covariances).
Params estimate_parameters(const torch::Tensor& x, const torch::Tensor& resp, double reg_covar, CovarianceType type) {
  Params p;
  const torch::Tensor nk = resp.sum(0) + 10 * std::numeric_limits<double>::epsilon();
  p.means = torch::matmul(resp.t(), x) / nk.unsqueeze(1);
  const int64_t k = resp.size(1);
  const int64_t d = x.size(1);
  switch (type) {
    case CovarianceType::kFull: {
      p.covariances = torch::empty({k, d, d}, x.options());
      for (int64_t j = 0; j < k; ++j) {
        const torch::Tensor diff = x - p.means[j];
        torch::Tensor c = torch::matmul((diff * resp.select(1, j).unsqueeze(1)).t(), diff) / nk[j];
        c.diagonal().add_(reg_covar);
        p.covariances[j].copy_(c);
      }
      break;
    }
    case CovarianceType::kTied: {
      torch::Tensor c = torch::matmul(x.t(), x) - torch::matmul((nk.unsqueeze(1) * p.means).t(), p.means);
      c = c / nk.sum();
      c.diagonal().add_(reg_covar);
      p.covariances = c;
      break;
    }
    case CovarianceType::kDiag:
    case CovarianceType::kSpherical: {
      const torch::Tensor avg_x2 = torch::matmul(resp.t(), x * x) / nk.unsqueeze(1);
      const torch::Tensor avg_x_means = p.means * torch::matmul(resp.t(), x) / nk.unsqueeze(1);
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

void check_shape(const torch::Tensor& t, c10::IntArrayRef want, const char* name) {
  GRADLENS_CHECK(t.sizes() == want, "gmm_fit: ", name, " has shape ", t.sizes(), " but ", want, " is needed");
  GRADLENS_CHECK(torch::isfinite(t).all().item<bool>(), "gmm_fit: ", name, " contains NaN or Inf");
}

Params initialize(const torch::Tensor& x, const GmmOptions& opts, reduce::NumpyRandomState& rng) {
  const int64_t n = x.size(0);
  const int64_t k = opts.n_components;
  const int64_t d = x.size(1);
  torch::Tensor resp;
  if (opts.init == GmmInit::kKMeans) {
    KMeansOptions ko;
    ko.k = k;
    ko.n_init = 1;
    const KMeansResult km = detail::kmeans_fit_with_rng(x, ko, rng);
    resp = torch::nn::functional::one_hot(km.labels, k).to(x.options());
  } else if (opts.init == GmmInit::kRandom) {
    resp = torch::tensor(rng.uniform(n * k), torch::kFloat64).view({n, k}).to(x.device());
    resp = resp / resp.sum(1, true);
  } else {
    GRADLENS_CHECK(opts.init_resp.defined(), "gmm_fit: init = kGiven needs init_resp of shape [", n, ", ", k, "]");
    resp = opts.init_resp.to(x.device(), torch::kFloat64);
    check_shape(resp, {n, k}, "init_resp");
    GRADLENS_CHECK(resp.ge(0).all().item<bool>(), "gmm_fit: init_resp has negative entries; responsibilities must be >= 0");
  }
  Params p = estimate_parameters(x, resp, opts.reg_covar, opts.covariance_type);
  p.weights = p.weights / static_cast<double>(n);
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
  reduce::check_matrix(x, std::string(fn) + ": x");
  GRADLENS_CHECK(x.size(1) == gm.means.size(1), fn, ": x has ", x.size(1), " columns but the mixture was fitted on ",
                 gm.means.size(1));
}

torch::Tensor weighted_log_prob(const GaussianMixture& gm, const torch::Tensor& x) {
  const torch::Tensor x64 = x.to(gm.means.device(), torch::kFloat64);
  return log_gaussian(x64, gm.means, gm.precisions_cholesky, gm.covariance_type) + gm.weights.log();
}

}  // namespace

GaussianMixture gmm_fit(const torch::Tensor& x, const GmmOptions& opts) {
  reduce::check_matrix(x, "gmm_fit: x");
  const int64_t n = x.size(0);
  GRADLENS_CHECK(n >= 2, "gmm_fit: x has ", n, " row; a mixture needs at least 2 samples");
  GRADLENS_CHECK(opts.n_components >= 1, "gmm_fit: n_components must be >= 1, got ", opts.n_components);
  GRADLENS_CHECK(opts.n_components <= n, "gmm_fit: n_components = ", opts.n_components,
                 " is larger than the number of rows (", n, "); use fewer components or more samples");
  GRADLENS_CHECK(opts.tol >= 0 && std::isfinite(opts.tol), "gmm_fit: tol must be finite and >= 0, got ", opts.tol);
  GRADLENS_CHECK(opts.reg_covar >= 0 && std::isfinite(opts.reg_covar), "gmm_fit: reg_covar must be >= 0, got ",
                 opts.reg_covar);
  GRADLENS_CHECK(opts.max_iter >= 1, "gmm_fit: max_iter must be >= 1, got ", opts.max_iter);
  GRADLENS_CHECK(opts.n_init >= 1, "gmm_fit: n_init must be >= 1, got ", opts.n_init);
  reduce::NumpyRandomState rng(opts.seed);
  const torch::Tensor x64 = x.to(torch::kFloat64);
  const CovarianceType type = opts.covariance_type;
  const auto t0 = std::chrono::steady_clock::now();

  double best_bound = -std::numeric_limits<double>::infinity();
  bool have_best = false;
  GaussianMixture best;
  best.covariance_type = type;
  for (int init = 0; init < opts.n_init; ++init) {
    Params p = initialize(x64, opts, rng);
    double bound = -std::numeric_limits<double>::infinity();
    bool converged = false;
    int iter = 1;
    for (; iter <= opts.max_iter; ++iter) {
      const double prev = bound;
      // E-step.
      const torch::Tensor wlp = weighted_log_prob(x64, p, type);
      const torch::Tensor log_norm = torch::logsumexp(wlp, 1);
      const torch::Tensor log_resp = wlp - log_norm.unsqueeze(1);
      // M-step.
      Params q = estimate_parameters(x64, log_resp.exp(), opts.reg_covar, type);
      q.weights = q.weights / q.weights.sum();
      q.prec_chol = precision_cholesky(q.covariances, type, opts.reg_covar);
      p = std::move(q);
      bound = log_norm.mean().item<double>();
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
