// Hessian spectrum estimates built on Hessian-vector products, following
// PyHessian (Yao et al.): power iteration with deflation for the top
// eigenvalues, Hutchinson's estimator for the trace.
#pragma once

#include <cstdint>
#include <vector>

#include "gradlens/hessian/hvp.h"

namespace gradlens::hessian {

struct EigenOptions {
  int64_t k = 1;           ///< number of top eigenvalues (largest magnitude)
  int64_t max_iter = 100;  ///< power iterations per eigenvalue
  double tol = 1e-3;       ///< stop when |λ_t − λ_{t−1}| / (|λ_{t−1}| + 1e-6) < tol
  uint64_t seed = 0;
};

struct EigenResult {
  std::vector<double> eigenvalues;         ///< in the order found
  std::vector<TensorList> eigenvectors;    ///< unit vectors, one list per eigenvalue
  std::vector<int64_t> iterations;
};

/// Top-k eigenpairs of the Hessian behind `hvp` by power iteration with
/// deflation (each new vector is orthogonalised against the ones found:
/// PyHessian's scheme). `like` gives the shapes, dtype and device of v.
EigenResult top_eigenvalues(const HvpFn& hvp, const TensorList& like, const EigenOptions& opts);

struct TraceOptions {
  int64_t max_iter = 100;  ///< Rademacher probes at most
  int64_t min_iter = 2;
  double tol = 1e-3;       ///< stop when the running mean changes by < tol relative
  uint64_t seed = 0;
};

struct TraceResult {
  double trace = 0;             ///< mean of vᵀHv
  double std_error = 0;         ///< standard error of that mean
  std::vector<double> samples;  ///< vᵀHv per probe
};

/// Hutchinson's trace estimator with Rademacher probes: E[vᵀHv] = tr(H).
TraceResult hutchinson_trace(const HvpFn& hvp, const TensorList& like, const TraceOptions& opts);

}  // namespace gradlens::hessian
