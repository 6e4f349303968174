#include "gradlens/cluster/kmeans.h"
#include <torch/torch.h>

#include "gradlens/core/check.h"
#include "gradlens/reduce/numpy_random.h"
#include "gradlens/reduce/validate.h"

#include <chrono>
#include <cmath>

namespace gradlens::cluster {

namespace {

using reduce::NumpyRandomState;

// Squared distances [t, N] (float64) from the rows of c64 [t, d] to all rows
// of x, as sklearn's _euclidean_distances: -2 c.x + |c|^2 + |x|^2 in float64,
// clipped at 0, and rounded to float32 when x is float32 (as sklearn's
// upcasting path returns float32 distances).
torch::Tensor sq_dist_rows(const torch::Tensor& c64, const torch::Tensor& x, const torch::Tensor& x_sq64,
                           int64_t chunk) {
  const torch::Tensor c_sq = (c64 * c64).sum(1, true);
  std::vector<torch::Tensor> parts;
  for (int64_t s = 0; s < x.size(0); s += chunk) {
    const int64_t e = std::min(x.size(0), s + chunk);
    torch::Tensor d = torch::matmul(c64, x.slice(0, s, e).to(torch::kFloat64).t()).mul_(-2.0);
    d.add_(c_sq).add_(x_sq64.slice(0, s, e).unsqueeze(0)).clamp_min_(0.0);
    parts.push_back(x.scalar_type() == torch::kFloat32 ? d.to(torch::kFloat32).to(torch::kFloat64) : d);
  }
  return torch::cat(parts, 1);
}

std::vector<int64_t> plusplus(const torch::Tensor& x, const torch::Tensor& x_sq64, int64_t k,
                              NumpyRandomState& rng, int64_t chunk) {
  const int64_t n = x.size(0);
  const int64_t n_local = 2 + static_cast<int64_t>(std::log(static_cast<double>(k)));
  const auto f64 = x_sq64.options();
  std::vector<int64_t> idx(k, -1);
  idx[0] = rng.randint(n);
  torch::Tensor closest = sq_dist_rows(x[idx[0]].unsqueeze(0).to(torch::kFloat64), x, x_sq64, chunk)[0];
  double pot = closest.sum().item<double>();
  for (int64_t c = 1; c < k; ++c) {
    const torch::Tensor vals = torch::tensor(rng.uniform(n_local), torch::kFloat64).to(f64.device()) * pot;
    const torch::Tensor cand = torch::searchsorted(closest.cumsum(0), vals).clamp_max_(n - 1);
    torch::Tensor dc = sq_dist_rows(x.index_select(0, cand).to(torch::kFloat64), x, x_sq64, chunk);
    dc = torch::minimum(closest.unsqueeze(0), dc);
    const torch::Tensor pots = dc.sum(1);
    const int64_t best = pots.argmin().item<int64_t>();
    pot = pots[best].item<double>();
    closest = dc[best];
    idx[c] = cand[best].item<int64_t>();
  }
  return idx;
}

// Nearest centre per row: argmin of |c|^2 - 2 x.c in x's dtype.
torch::Tensor assign(const torch::Tensor& x, const torch::Tensor& centers, int64_t chunk) {
  const torch::Tensor c_sq = (centers * centers).sum(1).unsqueeze(0);
  std::vector<torch::Tensor> parts;
  for (int64_t s = 0; s < x.size(0); s += chunk) {
    const int64_t e = std::min(x.size(0), s + chunk);
    parts.push_back(torch::matmul(x.slice(0, s, e), centers.t()).mul_(-2.0).add_(c_sq).argmin(1));
  }
  return torch::cat(parts);
}

// Sum over rows of |x_i - c_{labels_i}|^2 in float64.
double inertia_of(const torch::Tensor& x, const torch::Tensor& centers, const torch::Tensor& labels, int64_t chunk) {
  double total = 0.0;
  const torch::Tensor c64 = centers.to(torch::kFloat64);
  for (int64_t s = 0; s < x.size(0); s += chunk) {
    const int64_t e = std::min(x.size(0), s + chunk);
    total += (x.slice(0, s, e).to(torch::kFloat64) - c64.index_select(0, labels.slice(0, s, e)))
                 .pow(2)
                 .sum()
                 .item<double>();
  }
  return total;
}

struct Run {
  torch::Tensor centers, labels;
  double inertia = 0.0;
  int n_iter = 0;
  bool converged = false;
};

Run lloyd(const torch::Tensor& x, torch::Tensor centers, const KMeansOptions& opts, double tol, int run_index) {
  const int64_t n = x.size(0);
  const int64_t k = centers.size(0);
  const int64_t chunk = opts.chunk_rows;
  const auto t0 = std::chrono::steady_clock::now();
  torch::Tensor labels_old = torch::full({n}, -1, torch::TensorOptions().dtype(torch::kInt64).device(x.device()));
  torch::Tensor labels;
  bool strict = false;
  Run r;
  int i = 0;
  for (; i < opts.max_iter; ++i) {
    labels = assign(x, centers, chunk);
    // M-step: float64 sums and counts.
    torch::Tensor sums = torch::zeros({k, x.size(1)}, x.options().dtype(torch::kFloat64));
    for (int64_t s = 0; s < n; s += chunk) {
      const int64_t e = std::min(n, s + chunk);
      sums.index_add_(0, labels.slice(0, s, e), x.slice(0, s, e).to(torch::kFloat64));
    }
    torch::Tensor counts = torch::bincount(labels, {}, k).to(torch::kFloat64);
    const torch::Tensor empty = (counts == 0).nonzero().view(-1);
    const int64_t n_empty = empty.numel();
    if (n_empty > 0) {
      // Relocate each empty cluster to one of the points farthest from their
      // centre (farthest first), as sklearn's _relocate_empty_clusters_dense.
      const torch::Tensor c64 = centers.to(torch::kFloat64);
      std::vector<torch::Tensor> dparts;
      for (int64_t s = 0; s < n; s += chunk) {
        const int64_t e = std::min(n, s + chunk);
        dparts.push_back(
            (x.slice(0, s, e).to(torch::kFloat64) - c64.index_select(0, labels.slice(0, s, e))).pow(2).sum(1));
      }
      const torch::Tensor dist = torch::cat(dparts);
      if (dist.max().item<double>() > 0) {
        const torch::Tensor far = std::get<1>(dist.topk(n_empty, 0, /*largest=*/true, /*sorted=*/true));
        for (int64_t j = 0; j < n_empty; ++j) {
          const int64_t new_id = empty[j].item<int64_t>();
          const int64_t far_idx = far[j].item<int64_t>();
          const int64_t old_id = labels[far_idx].item<int64_t>();
          const torch::Tensor row = x[far_idx].to(torch::kFloat64);
          sums[old_id].sub_(row);
          sums[new_id].copy_(row);
          counts[new_id] = 1.0;
          counts[old_id] -= 1.0;
        }
      }
    }
    const torch::Tensor denom = torch::where(counts > 0, counts, torch::ones_like(counts)).unsqueeze(1);
    const torch::Tensor new_centers = (sums / denom).to(x.scalar_type());
    const double shift = (new_centers.to(torch::kFloat64) - centers.to(torch::kFloat64)).pow(2).sum().item<double>();
    centers = new_centers;
    if (opts.progress) {
      core::ProgressEvent ev;
      ev.stage = "kmeans";
      ev.done = i + 1;
      ev.total = opts.max_iter;
      ev.elapsed_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      ev.values = {{"run", run_index}, {"center_shift", shift}};
      core::report(opts.progress, ev);
    }
    if (torch::equal(labels, labels_old)) {
      strict = true;
      r.converged = true;
      break;
    }
    if (shift <= tol) {
      r.converged = true;
      break;
    }
    labels_old = labels;
  }
  if (!strict) labels = assign(x, centers, chunk);
  r.n_iter = std::min(i + 1, opts.max_iter);
  r.centers = centers;
  r.labels = labels;
  r.inertia = inertia_of(x, centers, labels, chunk);
  return r;
}

bool same_clustering(const torch::Tensor& a, const torch::Tensor& b, int64_t k) {
  const torch::Tensor ac = a.to(torch::kCPU).contiguous();
  const torch::Tensor bc = b.to(torch::kCPU).contiguous();
  const int64_t* pa = ac.data_ptr<int64_t>();
  const int64_t* pb = bc.data_ptr<int64_t>();
  std::vector<int64_t> mapping(k, -1);
  for (int64_t i = 0; i < ac.numel(); ++i) {
    if (mapping[pa[i]] == -1) {
      mapping[pa[i]] = pb[i];
    } else if (mapping[pa[i]] != pb[i]) {
      return false;
    }
  }
  return true;
}

void check_k(int64_t k, int64_t n, const char* fn) {
  GRADLENS_CHECK(k >= 1, fn, ": k must be >= 1, got ", k);
  GRADLENS_CHECK(k <= n, fn, ": k = ", k, " is larger than the number of rows (", n,
                 "); use k <= n or pass more samples");
}

}  // namespace

KMeansResult kmeans_fit(const torch::Tensor& x, const KMeansOptions& opts) {
  NumpyRandomState rng(opts.seed);
  return detail::kmeans_fit_with_rng(x, opts, rng);
}

KMeansResult detail::kmeans_fit_with_rng(const torch::Tensor& x, const KMeansOptions& opts, NumpyRandomState& rng) {
  reduce::check_matrix(x, "kmeans_fit: x");
  const int64_t n = x.size(0);
  const int64_t d = x.size(1);
  check_k(opts.k, n, "kmeans_fit");
  GRADLENS_CHECK(opts.n_init >= 1, "kmeans_fit: n_init must be >= 1, got ", opts.n_init);
  GRADLENS_CHECK(opts.max_iter >= 1, "kmeans_fit: max_iter must be >= 1, got ", opts.max_iter);
  GRADLENS_CHECK(opts.tol >= 0 && std::isfinite(opts.tol), "kmeans_fit: tol must be finite and >= 0, got ", opts.tol);
  GRADLENS_CHECK(opts.chunk_rows >= 1, "kmeans_fit: chunk_rows must be >= 1, got ", opts.chunk_rows);
  torch::Tensor given;
  if (opts.init == KMeansInit::kGiven) {
    GRADLENS_CHECK(opts.init_centroids.defined(), "kmeans_fit: init = kGiven needs init_centroids of shape [", opts.k,
                   ", ", d, "]");
    GRADLENS_CHECK(opts.init_centroids.dim() == 2 && opts.init_centroids.size(0) == opts.k &&
                       opts.init_centroids.size(1) == d,
                   "kmeans_fit: init_centroids has shape ", opts.init_centroids.sizes(), " but [k, d] = [", opts.k,
                   ", ", d, "] is needed");
    reduce::check_matrix(opts.init_centroids.to(torch::kFloat64), "kmeans_fit: init_centroids");
    given = opts.init_centroids.to(x.device(), x.scalar_type());
  }

  // Centre the data (as sklearn) for accurate |c|^2 - 2 x.c distances.
  const torch::Tensor mean64 = x.to(torch::kFloat64).mean(0);
  const double tol =
      opts.tol == 0 ? 0.0 : (x.to(torch::kFloat64) - mean64).pow(2).mean(0).mean().item<double>() * opts.tol;
  const torch::Tensor mean = mean64.to(x.scalar_type());
  const torch::Tensor xc = x - mean;
  const int n_init = opts.init == KMeansInit::kGiven ? 1 : opts.n_init;
  torch::Tensor x_sq64;
  if (opts.init == KMeansInit::kKMeansPlusPlus) {
    std::vector<torch::Tensor> parts;
    for (int64_t s = 0; s < n; s += opts.chunk_rows) {
      parts.push_back(xc.slice(0, s, std::min(n, s + opts.chunk_rows)).to(torch::kFloat64).pow(2).sum(1));
    }
    x_sq64 = torch::cat(parts);
  }
  Run best;
  int best_init = -1;
  for (int run = 0; run < n_init; ++run) {
    torch::Tensor init;
    if (opts.init == KMeansInit::kGiven) {
      init = given - mean;
    } else if (opts.init == KMeansInit::kRandom) {
      std::vector<int64_t> perm = rng.permutation(n);
      perm.resize(opts.k);
      init = xc.index_select(0, torch::tensor(perm, torch::kInt64).to(x.device()));
    } else {
      const auto idx = plusplus(xc, x_sq64, opts.k, rng, opts.chunk_rows);
      init = xc.index_select(0, torch::tensor(idx, torch::kInt64).to(x.device()));
    }
    Run r = lloyd(xc, init, opts, tol, run);
    if (best_init < 0 || (r.inertia < best.inertia && !same_clustering(r.labels, best.labels, opts.k))) {
      best = std::move(r);
      best_init = run;
    }
  }
  KMeansResult out;
  out.centroids = best.centers + mean;
  out.labels = best.labels;
  out.inertia = best.inertia;
  out.n_iter = best.n_iter;
  out.converged = best.converged;
  out.best_init = best_init;
  return out;
}

torch::Tensor kmeans_predict(const torch::Tensor& x, const torch::Tensor& centroids, int64_t chunk_rows) {
  reduce::check_matrix(x, "kmeans_predict: x");
  reduce::check_matrix(centroids, "kmeans_predict: centroids");
  GRADLENS_CHECK(centroids.size(1) == x.size(1), "kmeans_predict: centroids have ", centroids.size(1),
                 " columns but x has ", x.size(1), "; use the centroids fitted on data of this dimension");
  GRADLENS_CHECK(chunk_rows >= 1, "kmeans_predict: chunk_rows must be >= 1, got ", chunk_rows);
  return assign(x, centroids.to(x.device(), x.scalar_type()), chunk_rows);
}

torch::Tensor kmeans_plusplus_indices(const torch::Tensor& x, int64_t k, uint64_t seed) {
  reduce::check_matrix(x, "kmeans_plusplus_indices: x");
  check_k(k, x.size(0), "kmeans_plusplus_indices");
  NumpyRandomState rng(seed);
  const torch::Tensor x_sq64 = x.to(torch::kFloat64).pow(2).sum(1);
  return torch::tensor(plusplus(x, x_sq64, k, rng, 4096), torch::kInt64).to(x.device());
}

}  // namespace gradlens::cluster
