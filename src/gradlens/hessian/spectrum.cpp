#include "gradlens/hessian/spectrum.h"
#include <torch/types.h>

#include <cmath>

#include "gradlens/core/check.h"

namespace gradlens::hessian {

namespace {

TensorList random_like(const TensorList& like, torch::Generator& gen, bool rademacher) {
  TensorList out;
  for (const auto& t : like) {
    auto cpu = torch::randn(t.sizes(), gen, torch::TensorOptions().dtype(torch::kFloat64));
    if (rademacher) cpu = torch::where(cpu >= 0, torch::ones_like(cpu), -torch::ones_like(cpu));
    out.push_back(cpu.to(t.options().requires_grad(false)));
  }
  return out;
}

void normalize(TensorList& v) {
  const double n = std::sqrt(dot(v, v));
  for (auto& t : v) t = t / (n + 1e-6);
}

void orthogonalize(TensorList& v, const std::vector<TensorList>& basis) {
  for (const auto& b : basis) {
    const double c = dot(v, b);
    for (size_t i = 0; i < v.size(); ++i) v[i] = v[i] - c * b[i];
  }
}

}  // namespace

EigenResult top_eigenvalues(const HvpFn& hvp, const TensorList& like, const EigenOptions& opts) {
  GRADLENS_CHECK(opts.k >= 1, "--top-k must be >= 1, got ", opts.k);
  GRADLENS_CHECK(opts.max_iter >= 1, "--max-iter must be >= 1");
  int64_t p = 0;
  for (const auto& t : like) p += t.numel();
  GRADLENS_CHECK(opts.k <= p, "--top-k ", opts.k, " exceeds the dimension ", p);
  auto gen = at::detail::createCPUGenerator(opts.seed);
  EigenResult r;
  for (int64_t i = 0; i < opts.k; ++i) {
    auto v = random_like(like, gen, false);
    normalize(v);
    double lambda = 0;
    bool have = false;
    int64_t it = 0;
    for (; it < opts.max_iter; ++it) {
      orthogonalize(v, r.eigenvectors);
      normalize(v);
      auto hv = hvp(v);
      const double tmp = dot(hv, v);
      v = hv;
      normalize(v);
      if (have && std::abs(lambda - tmp) / (std::abs(lambda) + 1e-6) < opts.tol) {
        lambda = tmp;
        ++it;
        break;
      }
      lambda = tmp;
      have = true;
    }
    r.eigenvalues.push_back(lambda);
    r.eigenvectors.push_back(v);
    r.iterations.push_back(it);
  }
  return r;
}

TraceResult hutchinson_trace(const HvpFn& hvp, const TensorList& like, const TraceOptions& opts) {
  GRADLENS_CHECK(opts.max_iter >= 1, "--max-iter must be >= 1");
  auto gen = at::detail::createCPUGenerator(opts.seed);
  TraceResult r;
  double mean = 0;
  for (int64_t it = 0; it < opts.max_iter; ++it) {
    auto v = random_like(like, gen, true);
    r.samples.push_back(dot(hvp(v), v));
    double m = 0;
    for (double s : r.samples) m += s;
    m /= static_cast<double>(r.samples.size());
    const bool converged = static_cast<int64_t>(r.samples.size()) >= opts.min_iter &&
                           std::abs(m - mean) / (std::abs(mean) + 1e-6) < opts.tol;
    mean = m;
    if (converged) break;
  }
  r.trace = mean;
  double var = 0;
  for (double s : r.samples) var += (s - mean) * (s - mean);
  const auto n = static_cast<double>(r.samples.size());
  r.std_error = n > 1 ? std::sqrt(var / (n - 1) / n) : 0.0;
  return r;
}

}  // namespace gradlens::hessian
