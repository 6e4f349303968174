#include "gradlens/distributed/kmeans.h"
#include <torch/types.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>

#include "gradlens/core/check.h"
#include "gradlens/distributed/context.h"
#include "gradlens/distributed/shards.h"
#include "gradlens/core/tensor_checks.h"

namespace gradlens::distributed {

cluster::KMeansResult kmeans_fit(Communicator& comm, const torch::Tensor& x_local, const cluster::KMeansOptions& opts) {
  using cluster::KMeansInit;
  const ShardLayout layout = shard_layout(comm, x_local, "distributed::kmeans_fit");
  const int64_t n_local = x_local.size(0);
  const int64_t d = layout.d;
  const int64_t n = layout.n, offset = layout.offset;
  const auto dtype = x_local.scalar_type();
  const auto dev = x_local.device();
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  GRADLENS_CHECK(opts.k >= 1, "distributed::kmeans_fit: k must be >= 1, got ", opts.k);
  GRADLENS_CHECK(opts.k <= n, "distributed::kmeans_fit: k = ", opts.k, " is larger than the number of rows (", n,
                 ") over all ranks; use k <= n or pass more samples");
  GRADLENS_CHECK(opts.max_iter >= 1, "distributed::kmeans_fit: max_iter must be >= 1, got ", opts.max_iter);
  GRADLENS_CHECK(opts.tol >= 0 && std::isfinite(opts.tol), "distributed::kmeans_fit: tol must be finite and >= 0, got ",
                 opts.tol);
  GRADLENS_CHECK(opts.chunk_rows >= 1, "distributed::kmeans_fit: chunk_rows must be >= 1, got ", opts.chunk_rows);
  GRADLENS_CHECK(opts.init == KMeansInit::kGiven || (opts.init == KMeansInit::kKMeansPlusPlus && opts.n_init == 1),
                 "distributed::kmeans_fit: only init = kGiven, or kKMeansPlusPlus with n_init = 1, are distributed; "
                 "seed the centres (e.g. on a sample) and pass them with kGiven");
  const int64_t chunk = opts.chunk_rows;
  const int64_t k = opts.k;

  // Column mean and tolerance from all-reduced float64 sums.
  const torch::Tensor x64 = x_local.to(torch::kFloat64);
  torch::Tensor sum64 = x64.sum(0).to(torch::kCPU);
  comm.all_reduce_sum(sum64);
  const torch::Tensor mean64 = (sum64 / static_cast<double>(n)).to(dev);
  double tol = 0.0;
  if (opts.tol != 0) {
    torch::Tensor ss = (x64 - mean64).pow(2).sum(0).to(torch::kCPU);
    comm.all_reduce_sum(ss);
    tol = (ss / static_cast<double>(n)).mean().item<double>() * opts.tol;
  }
  const torch::Tensor mean = mean64.to(dtype);
  const torch::Tensor xc = x_local - mean;

  // Initial centres (centred), identical on every rank.
  torch::Tensor centers;
  if (opts.init == KMeansInit::kGiven) {
    torch::Tensor init = torch::empty({k, d}, f64);
    if (comm.is_root()) {
      GRADLENS_CHECK(opts.init_centroids.defined(), "distributed::kmeans_fit: init = kGiven needs init_centroids of shape [",
                     k, ", ", d, "] on rank 0");
      GRADLENS_CHECK(opts.init_centroids.dim() == 2 && opts.init_centroids.size(0) == k &&
                         opts.init_centroids.size(1) == d,
                     "distributed::kmeans_fit: init_centroids has shape ", opts.init_centroids.sizes(), " but [k, d] = [", k,
                     ", ", d, "] is needed");
      core::check_matrix(opts.init_centroids.to(torch::kFloat64), "distributed::kmeans_fit: init_centroids");
      // Round to x's dtype first, as kmeans_fit does, then carry exactly in float64.
      init.copy_(opts.init_centroids.to(torch::kCPU).to(dtype).to(torch::kFloat64));
    }
    comm.broadcast(init, 0);
    centers = init.to(dev, dtype) - mean;
  } else {
    const torch::Tensor all = comm.gather_rows(xc.to(torch::kCPU));
    torch::Tensor init = torch::empty({k, d}, f64);
    if (comm.is_root()) {
      const auto idx = cluster::kmeans_plusplus_indices(all, k, opts.seed);
      init.copy_(all.index_select(0, idx).to(torch::kFloat64));
    }
    comm.broadcast(init, 0);
    centers = init.to(dev, dtype);
  }

  // Lloyd, as cluster::kmeans_fit's lloyd().
  const auto t0 = std::chrono::steady_clock::now();
  torch::Tensor labels_old = torch::full({n_local}, -1, torch::TensorOptions().dtype(torch::kInt64).device(dev));
  torch::Tensor labels;
  bool strict = false, converged = false;
  int i = 0;
  for (; i < opts.max_iter; ++i) {
    labels = cluster::kmeans_predict(xc, centers, chunk);
    auto [sums, counts_local] = cluster::detail::kmeans_cluster_sums(xc, labels, k, chunk);
    const double changed_local = (labels != labels_old).sum().item<double>();
    // One all-reduce: [sums | counts] and the number of changed labels.
    torch::Tensor packed = torch::cat({sums.reshape(-1).to(torch::kCPU), counts_local.to(torch::kCPU),
                                       torch::tensor({changed_local}, f64)});
    comm.all_reduce_sum(packed);
    sums = packed.slice(0, 0, k * d).view({k, d}).to(dev).clone();
    torch::Tensor counts = packed.slice(0, k * d, k * d + k).to(dev).clone();
    const double changed = packed[k * d + k].item<double>();

    const torch::Tensor empty = (counts == 0).nonzero().view(-1);
    const int64_t n_empty = empty.numel();
    if (n_empty > 0) {
      // Each rank proposes its n_empty farthest rows: [dist, global index, label, row...].
      const torch::Tensor dist = cluster::detail::kmeans_row_sq_dist(xc, centers, labels, chunk);
      const int64_t m = std::min(n_empty, n_local);
      const torch::Tensor far = std::get<1>(dist.topk(m, 0, true, true));
      torch::Tensor cand = torch::cat({dist.index_select(0, far).unsqueeze(1),
                                       (far + offset).to(torch::kFloat64).unsqueeze(1),
                                       labels.index_select(0, far).to(torch::kFloat64).unsqueeze(1),
                                       xc.index_select(0, far).to(torch::kFloat64)},
                                      1)
                               .to(torch::kCPU);
      const torch::Tensor all = comm.all_gather_rows(cand).contiguous();
      const double* p = all.data_ptr<double>();
      const int64_t w = all.size(1);
      std::vector<int64_t> order(all.size(0));
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
        if (p[a * w] != p[b * w]) return p[a * w] > p[b * w];
        return p[a * w + 1] < p[b * w + 1];
      });
      if (!order.empty() && p[order[0] * w] > 0) {
        for (int64_t j = 0; j < n_empty; ++j) {
          const int64_t c = order[j];
          const int64_t new_id = empty[j].item<int64_t>();
          const int64_t old_id = static_cast<int64_t>(p[c * w + 2]);
          const torch::Tensor row = all[c].slice(0, 3, w).to(dev);
          sums[old_id].sub_(row);
          sums[new_id].copy_(row);
          counts[new_id] = 1.0;
          counts[old_id] -= 1.0;
        }
      }
    }
    const double shift = cluster::detail::kmeans_update_centers(centers, sums, counts, opts, i, 0, t0);
    if (changed == 0) {
      strict = converged = true;
      break;
    }
    if (shift <= tol) {
      converged = true;
      break;
    }
    labels_old = labels;
  }
  if (!strict) labels = cluster::kmeans_predict(xc, centers, chunk);
  torch::Tensor inertia = torch::tensor({cluster::detail::kmeans_inertia(xc, centers, labels, chunk)}, f64);
  comm.all_reduce_sum(inertia);

  cluster::KMeansResult out;
  out.centroids = centers + mean;
  out.labels = labels;
  out.inertia = inertia.item<double>();
  out.n_iter = std::min(i + 1, opts.max_iter);
  out.converged = converged;
  out.best_init = 0;
  return out;
}

}  // namespace gradlens::distributed
