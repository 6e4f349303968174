#include "gradlens/cluster/kmeans.h"
#include <torch/types.h>
#include <ATen/Parallel.h>

#include "gradlens/cluster/kmeans_kernel.h"

#include "gradlens/core/blas.h"
#include "gradlens/core/check.h"
#include "gradlens/core/collectives.h"
#include "gradlens/core/hugepage.h"
#include "gradlens/core/numpy_random.h"
#include "gradlens/reduce/pca.h"
#include "gradlens/core/tensor_checks.h"

#include <algorithm>
#include <atomic>
#include <numeric>
#include <chrono>
#include <cmath>

namespace gradlens::cluster {

namespace {

using core::NumpyRandomState;

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

// Nearest centre per row: argmin of |c|^2 - 2 x.c in x's dtype (matrix
// products by row blocks, ties to the lower index). x contiguous.
template <typename T>
void kmeans_assign_block(const T* scores, int64_t ld, const T* c_sq, int64_t rows, int64_t k, int64_t* labels) {
  for (int64_t i = 0; i < rows; ++i) {
    const T* s = scores + i * ld;
    int64_t best = 0;
    T best_v = static_cast<T>(-2) * s[0] + c_sq[0];
    for (int64_t j = 1; j < k; ++j) {
      const T v = static_cast<T>(-2) * s[j] + c_sq[j];
      if (v < best_v) {
        best_v = v;
        best = j;
      }
    }
    labels[i] = best;
  }
}

// scores[r, j] = x_r . c_j for `rows` rows of x ([rows, d] row-major) and
// the k centres ([k, d] row-major): one BLAS call on the calling thread
// (callers hold a BlasThreadLimit(1) and parallelise over row blocks, as
// sklearn's Lloyd loop).
template <typename T>
void kmeans_scores(const T* x, int64_t rows, const T* c, int64_t k, int64_t d, T* out) {
  if (core::blas_gemm(false, true, rows, k, d, T(1), x, d, c, d, T(0), out, k)) return;
  const auto opts = torch::TensorOptions().dtype(c10::CppTypeToScalarType<T>::value);
  torch::Tensor o = torch::from_blob(out, {rows, k}, opts);
  torch::mm_out(o, torch::from_blob(const_cast<T*>(x), {rows, d}, opts),
                torch::from_blob(const_cast<T*>(c), {k, d}, opts).t());
}

constexpr int64_t kKMeansSubRows = 256;     // rows per GEMM (sklearn's chunk)
constexpr int64_t kKMeansGroupRows = 2048;  // rows per partial centre sum

// The next block of rows into the caches, at most 256 KiB of it (wide rows:
// a whole block would push the current one out of L2).
void prefetch_next(const void* p, int64_t bytes) { detail::prefetch_block(p, std::min<int64_t>(bytes, 256 * 1024)); }

// The dot products of rows with centres, by the small-k kernel for float32
// data with k <= 32 on CPUs that have it (kmeans_kernel.h), else by the BLAS.
// Every path (fit, predict, the distributed fit) goes through it, so all
// assign the same labels.
template <typename T>
class BlockScores {
 public:
  BlockScores(const T* centers, int64_t k, int64_t d) : c_(centers), k_(k), d_(d) {
    if constexpr (std::is_same_v<T, float>) {
      kp_ = detail::small_k_width(k);
      if (kp_ > 0) {
        panel_.resize(static_cast<size_t>(detail::small_k_panel_size(k, d)));
        detail::small_k_pack(centers, k, d, panel_.data());
      }
    }
  }
  /// Scores per row (and per thread) buffer entries.
  int64_t width() const { return kp_ > 0 ? kp_ : k_; }
  /// out [rows, width()] = x [rows, d] . centres^T.
  void operator()(const T* x, int64_t rows, T* out) const {
    if constexpr (std::is_same_v<T, float>) {
      if (kp_ > 0) return detail::small_k_scores(x, rows, d_, k_, panel_.data(), out);
    }
    kmeans_scores<T>(x, rows, c_, k_, d_, out);
  }

 private:
  const T* c_;
  int64_t k_, d_, kp_ = 0;
  std::vector<float> panel_;
};

torch::Tensor assign(const torch::Tensor& x_in, const torch::Tensor& centers_in, int64_t chunk) {
  const int64_t n = x_in.size(0);
  const int64_t k = centers_in.size(0);
  const int64_t d = x_in.size(1);
  torch::Tensor labels = torch::empty({n}, x_in.options().dtype(torch::kInt64));
  if (x_in.device().type() != torch::kCPU) {
    const torch::Tensor c_sq = (centers_in * centers_in).sum(1);
    for (int64_t s = 0; s < n; s += chunk) {
      const int64_t e = std::min(n, s + chunk);
      labels.slice(0, s, e).copy_(
          torch::matmul(x_in.slice(0, s, e), centers_in.t()).mul_(-2.0).add_(c_sq).argmin(1));
    }
    return labels;
  }
  const torch::Tensor x = x_in.contiguous();
  const torch::Tensor centers = centers_in.contiguous();
  const torch::Tensor c_sq = (centers * centers).sum(1).contiguous();
  int64_t* lp = labels.data_ptr<int64_t>();
  const core::BlasThreadLimit one_blas_thread(1);
  const int64_t sub = std::min(kKMeansSubRows, chunk);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "kmeans_assign", [&] {
    const scalar_t* xp = x.data_ptr<scalar_t>();
    const scalar_t* cp = centers.data_ptr<scalar_t>();
    const scalar_t* cs = c_sq.data_ptr<scalar_t>();
    const BlockScores<scalar_t> scores(cp, k, d);
    const int64_t n_blocks = (n + sub - 1) / sub;
    std::atomic<int64_t> next{0};  // dynamic: see kmeans_lloyd_pass
    at::parallel_for(0, std::min<int64_t>(n_blocks, at::get_num_threads()), 1, [&](int64_t, int64_t) {
      std::vector<scalar_t> sc(sub * scores.width());
      for (int64_t b = next++; b < n_blocks; b = next++) {
        const int64_t s = b * sub;
        const int64_t rows = std::min(n, s + sub) - s;
        if (s + sub < n) prefetch_next(xp + (s + sub) * d, (std::min(n, s + 2 * sub) - s - sub) * d * sizeof(scalar_t));
        scores(xp + s * d, rows, sc.data());
        kmeans_assign_block<scalar_t>(sc.data(), scores.width(), cs, rows, k, lp + s);
      }
    });
  });
  return labels;
}

// |x - c|^2 in float64 (float32 rows: the vectorised kernel).
double row_sq_dist64(const float* x, const float* c, int64_t d) { return detail::sq_dist_f64(x, c, d); }
double row_sq_dist64(const double* x, const double* c, int64_t d) {
  double row = 0.0;
  for (int64_t j = 0; j < d; ++j) {
    const double t = x[j] - c[j];
    row += t * t;
  }
  return row;
}

// Sum over rows of |x_i - c_{labels_i}|^2 in float64 (fixed row blocks summed
// in order: the same value for any thread count).
double inertia_of(const torch::Tensor& x_in, const torch::Tensor& centers_in, const torch::Tensor& labels_in,
                  int64_t chunk) {
  if (x_in.device().type() != torch::kCPU) {
    double total = 0.0;
    const torch::Tensor c64 = centers_in.to(torch::kFloat64);
    for (int64_t s = 0; s < x_in.size(0); s += chunk) {
      const int64_t e = std::min(x_in.size(0), s + chunk);
      total += (x_in.slice(0, s, e).to(torch::kFloat64) - c64.index_select(0, labels_in.slice(0, s, e)))
                   .pow(2)
                   .sum()
                   .item<double>();
    }
    return total;
  }
  const torch::Tensor x = x_in.contiguous();
  const torch::Tensor centers = centers_in.contiguous();
  const torch::Tensor labels = labels_in.contiguous();
  const int64_t n = x.size(0);
  const int64_t d = x.size(1);
  constexpr int64_t kBlock = 1024;
  const int64_t n_blocks = (n + kBlock - 1) / kBlock;
  std::vector<double> partial(n_blocks, 0.0);
  const int64_t* lp = labels.data_ptr<int64_t>();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "kmeans_inertia", [&] {
    const scalar_t* xp = x.data_ptr<scalar_t>();
    const scalar_t* cp = centers.data_ptr<scalar_t>();
    at::parallel_for(0, n_blocks, 1, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) {
        double acc = 0.0;
        for (int64_t i = b * kBlock; i < std::min(n, (b + 1) * kBlock); ++i) {
          const scalar_t* xi = xp + i * d;
          const scalar_t* ci = cp + lp[i] * d;
          acc += row_sq_dist64(xi, ci, d);
        }
        partial[b] = acc;
      }
    });
  });
  double total = 0.0;
  for (double v : partial) total += v;
  return total;
}

// One Lloyd E+M pass on the CPU: labels (argmin as assign), float64 centre
// sums [k, d] and counts [k]. Rows are summed in fixed groups of
// kKMeansGroupRows whose partial sums are then added in order, so the result
// does not depend on the thread count. `part` holds n_groups * k * (d + 1).
template <typename T>
void kmeans_lloyd_pass(const torch::Tensor& x, const torch::Tensor& centers, int64_t chunk, torch::Tensor& labels,
                       torch::Tensor& sums, torch::Tensor& counts, std::vector<double>& part) {
  const int64_t n = x.size(0);
  const int64_t d = x.size(1);
  const int64_t k = centers.size(0);
  const torch::Tensor c_sq = (centers * centers).sum(1).contiguous();
  const T* cs = c_sq.data_ptr<T>();
  const T* cp = centers.data_ptr<T>();
  const T* xp = x.data_ptr<T>();
  int64_t* lp = labels.data_ptr<int64_t>();
  const int64_t n_groups = (n + kKMeansGroupRows - 1) / kKMeansGroupRows;
  const int64_t stride = k * (d + 1);
  part.resize(n_groups * stride);
  const int64_t sub = std::min(kKMeansSubRows, chunk);
  const BlockScores<T> scores(cp, k, d);
  // Groups are handed out dynamically: on a shared machine one thread's core
  // may be busy, and a static split would wait for it.
  std::atomic<int64_t> next{0};
  at::parallel_for(0, std::min<int64_t>(n_groups, at::get_num_threads()), 1, [&](int64_t, int64_t) {
    std::vector<T> sc(sub * scores.width());
    for (int64_t g = next++; g < n_groups; g = next++) {
      double* psum = part.data() + g * stride;
      double* pcnt = psum + k * d;
      std::fill(psum, psum + stride, 0.0);
      const int64_t end = std::min(n, (g + 1) * kKMeansGroupRows);
      for (int64_t s = g * kKMeansGroupRows; s < end; s += sub) {
        const int64_t rows = std::min(end, s + sub) - s;
        if (s + sub < end) prefetch_next(xp + (s + sub) * d, (std::min(end, s + 2 * sub) - s - sub) * d * sizeof(T));
        scores(xp + s * d, rows, sc.data());
        kmeans_assign_block<T>(sc.data(), scores.width(), cs, rows, k, lp + s);
        for (int64_t i = s; i < s + rows; ++i) {
          const T* xi = xp + i * d;
          double* si = psum + lp[i] * d;
          if constexpr (std::is_same_v<T, float>) {
            detail::add_row_f64(xi, d, si);
          } else {
            for (int64_t j = 0; j < d; ++j) si[j] += static_cast<double>(xi[j]);
          }
          pcnt[lp[i]] += 1.0;
        }
      }
    }
  });
  double* sp = sums.data_ptr<double>();
  double* cnt = counts.data_ptr<double>();
  std::copy(part.data(), part.data() + k * d, sp);
  std::copy(part.data() + k * d, part.data() + stride, cnt);
  for (int64_t g = 1; g < n_groups; ++g) {
    const double* psum = part.data() + g * stride;
    for (int64_t j = 0; j < k * d; ++j) sp[j] += psum[j];
    for (int64_t j = 0; j < k; ++j) cnt[j] += psum[k * d + j];
  }
}

// Column means of a CPU matrix in float64 (reduce::detail::pca_column_sums64),
// the centred copy x - mean (mean rounded to x's dtype), and when asked the
// mean per-feature variance (float64), without a float64 copy of x.
template <typename T>
void kmeans_center(const torch::Tensor& x, torch::Tensor& mean64, torch::Tensor& xc, double* mean_var) {
  const int64_t n = x.size(0);
  const int64_t d = x.size(1);
  xc = core::empty_hugepage({n, d}, x.options());
  const T* xp = x.data_ptr<T>();
  // The column sums as PCA's (fixed row blocks added in order: the same mean
  // for any thread count).
  mean64 = reduce::detail::pca_column_sums64(x) / static_cast<double>(n);
  const double* mp = mean64.data_ptr<double>();
  constexpr int64_t kRowBlock = 4096;
  const int64_t n_blocks = (n + kRowBlock - 1) / kRowBlock;
  if (mean_var != nullptr) {
    // The variance by the same fixed row blocks.
    std::vector<double> partial(static_cast<size_t>(n_blocks * d), 0.0);
    at::parallel_for(0, n_blocks, 1, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) {
        double* acc = partial.data() + b * d;
        for (int64_t i = b * kRowBlock; i < std::min(n, (b + 1) * kRowBlock); ++i) {
          const T* row = xp + i * d;
          for (int64_t j = 0; j < d; ++j) {
            const double t = static_cast<double>(row[j]) - mp[j];
            acc[j] += t * t;
          }
        }
      }
    });
    double total = 0.0;
    for (int64_t j = 0; j < d; ++j) {
      double var = 0.0;
      for (int64_t b = 0; b < n_blocks; ++b) var += partial[b * d + j];
      total += var / static_cast<double>(n);
    }
    *mean_var = total / static_cast<double>(d);
  }
  std::vector<T> m(d);
  for (int64_t j = 0; j < d; ++j) m[j] = static_cast<T>(mp[j]);
  T* cp = xc.data_ptr<T>();
  at::parallel_for(0, n, std::max<int64_t>(1, 16384 / d), [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      for (int64_t j = 0; j < d; ++j) cp[i * d + j] = xp[i * d + j] - m[j];
    }
  });
}

struct Run {
  torch::Tensor centers, labels;
  double inertia = 0.0;
  int n_iter = 0;
  bool converged = false;
};

// Lloyd's iterations over this rank's rows x (all rows in one process).
// With several ranks the per-cluster float64 sums, the counts and the number
// of changed labels are all-reduced in one collective, and an empty cluster
// takes the globally farthest row (each rank proposes its farthest ones;
// farthest first, ties to the lower global index `offset` + row).
Run lloyd(const torch::Tensor& x, torch::Tensor centers, const KMeansOptions& opts, double tol, int run_index,
          core::Collectives& comm, int64_t offset) {
  const int64_t n = x.size(0);
  const int64_t k = centers.size(0);
  const int64_t d = x.size(1);
  const int64_t chunk = opts.chunk_rows;
  const bool cpu = x.device().type() == torch::kCPU;
  const bool multi = comm.world_size() > 1;
  const auto t0 = std::chrono::steady_clock::now();
  const auto i64 = torch::TensorOptions().dtype(torch::kInt64).device(x.device());
  const auto f64 = x.options().dtype(torch::kFloat64);
  torch::Tensor labels_old = torch::full({n}, -1, i64);
  torch::Tensor labels = torch::empty({n}, i64);
  torch::Tensor sums = torch::zeros({k, d}, f64);
  torch::Tensor counts = torch::zeros({k}, f64);
  std::vector<double> part;
  const core::BlasThreadLimit one_blas_thread(1);  // GEMMs run inside at::parallel_for
  bool strict = false;
  Run r;
  int i = 0;
  for (; i < opts.max_iter; ++i) {
    if (cpu) {
      centers = centers.contiguous();
      AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "kmeans_lloyd",
                                 [&] { kmeans_lloyd_pass<scalar_t>(x, centers, chunk, labels, sums, counts, part); });
    } else {
      labels = assign(x, centers, chunk);
      std::tie(sums, counts) = detail::kmeans_cluster_sums(x, labels, k, chunk);
    }
    bool unchanged = false;
    if (multi) {
      const double changed_local = (labels != labels_old).sum().item<double>();
      torch::Tensor packed = torch::cat({sums.reshape(-1).to(torch::kCPU), counts.to(torch::kCPU),
                                         torch::tensor({changed_local}, torch::kFloat64)});
      comm.all_reduce_sum(packed);
      sums = packed.slice(0, 0, k * d).view({k, d}).to(x.device()).clone();
      counts = packed.slice(0, k * d, k * d + k).to(x.device()).clone();
      unchanged = packed[k * d + k].item<double>() == 0;
    } else {
      unchanged = torch::equal(labels, labels_old);
    }
    const torch::Tensor empty = (counts == 0).nonzero().view(-1);
    const int64_t n_empty = empty.numel();
    if (n_empty > 0) {
      // Relocate each empty cluster to one of the points farthest from their
      // centre (farthest first), as sklearn's _relocate_empty_clusters_dense.
      const torch::Tensor dist = detail::kmeans_row_sq_dist(x, centers, labels, chunk);
      if (!multi) {
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
      } else {
        // Each rank proposes its farthest rows: [dist, global index, label, row...].
        const int64_t m = std::min(n_empty, n);
        const torch::Tensor far = std::get<1>(dist.topk(m, 0, true, true));
        torch::Tensor cand = torch::cat({dist.index_select(0, far).unsqueeze(1),
                                         (far + offset).to(torch::kFloat64).unsqueeze(1),
                                         labels.index_select(0, far).to(torch::kFloat64).unsqueeze(1),
                                         x.index_select(0, far).to(torch::kFloat64)},
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
            const torch::Tensor row = all[c].slice(0, 3, w).to(x.device());
            sums[old_id].sub_(row);
            sums[new_id].copy_(row);
            counts[new_id] = 1.0;
            counts[old_id] -= 1.0;
          }
        }
      }
    }
    const double shift = detail::kmeans_update_centers(centers, sums, counts, opts, i, run_index, t0);
    if (unchanged) {
      strict = true;
      r.converged = true;
      break;
    }
    if (shift <= tol) {
      r.converged = true;
      break;
    }
    std::swap(labels_old, labels);
  }
  if (!strict) labels = assign(x, centers, chunk);
  r.n_iter = std::min(i + 1, opts.max_iter);
  r.centers = centers;
  r.labels = labels;
  r.inertia = inertia_of(x, centers, labels, chunk);
  if (multi) {
    torch::Tensor total = torch::tensor({r.inertia}, torch::kFloat64);
    comm.all_reduce_sum(total);
    r.inertia = total.item<double>();
  }
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

KMeansResult kmeans_fit(const torch::Tensor& x, const KMeansOptions& opts, core::Collectives& comm) {
  NumpyRandomState rng(opts.seed);
  return detail::kmeans_fit_with_rng(x, opts, rng, comm);
}

KMeansResult detail::kmeans_fit_with_rng(const torch::Tensor& x, const KMeansOptions& opts, NumpyRandomState& rng,
                                         core::Collectives& comm) {
  const bool multi = comm.world_size() > 1;
  int64_t n = 0, offset = 0;
  if (multi) {
    const auto layout = core::shard_layout(comm, x, "kmeans_fit");
    n = layout.n;
    offset = layout.offset;
  } else {
    core::check_matrix(x, "kmeans_fit: x");
    n = x.size(0);
  }
  const int64_t d = x.size(1);
  check_k(opts.k, n, "kmeans_fit");
  GRADLENS_CHECK(opts.n_init >= 1, "kmeans_fit: n_init must be >= 1, got ", opts.n_init);
  GRADLENS_CHECK(opts.max_iter >= 1, "kmeans_fit: max_iter must be >= 1, got ", opts.max_iter);
  GRADLENS_CHECK(opts.tol >= 0 && std::isfinite(opts.tol), "kmeans_fit: tol must be finite and >= 0, got ", opts.tol);
  GRADLENS_CHECK(opts.chunk_rows >= 1, "kmeans_fit: chunk_rows must be >= 1, got ", opts.chunk_rows);
  if (multi)
    GRADLENS_CHECK(opts.init == KMeansInit::kGiven || opts.init == KMeansInit::kKMeansPlusPlus,
                   "kmeans_fit: on ", comm.world_size(), " ranks only init = kGiven or kKMeansPlusPlus are "
                   "supported; seed the centres (e.g. on a sample) and pass them with kGiven");
  // kGiven: the centres in x's dtype (rank 0's, exactly, on every rank).
  torch::Tensor given;
  if (opts.init == KMeansInit::kGiven) {
    if (comm.is_root()) {
      GRADLENS_CHECK(opts.init_centroids.defined(), "kmeans_fit: init = kGiven needs init_centroids of shape [",
                     opts.k, ", ", d, "]");
      GRADLENS_CHECK(opts.init_centroids.dim() == 2 && opts.init_centroids.size(0) == opts.k &&
                         opts.init_centroids.size(1) == d,
                     "kmeans_fit: init_centroids has shape ", opts.init_centroids.sizes(), " but [k, d] = [", opts.k,
                     ", ", d, "] is needed");
      core::check_matrix(opts.init_centroids.to(torch::kFloat64), "kmeans_fit: init_centroids");
      given = opts.init_centroids.to(x.device(), x.scalar_type());
    }
    if (multi) {
      torch::Tensor init64 = comm.is_root() ? given.to(torch::kCPU, torch::kFloat64)
                                            : torch::empty({opts.k, d}, torch::kFloat64);
      comm.broadcast(init64, 0);
      given = init64.to(x.device(), x.scalar_type());
    }
  }

  // Centre the data (as sklearn) for accurate |c|^2 - 2 x.c distances.
  // sklearn's _tolerance: mean per-feature variance of x (float64) times tol.
  torch::Tensor mean64, xc;
  double tol = 0.0;
  if (multi) {
    const torch::Tensor x64 = x.to(torch::kFloat64);
    torch::Tensor sum64 = x64.sum(0).to(torch::kCPU);
    comm.all_reduce_sum(sum64);
    mean64 = (sum64 / static_cast<double>(n)).to(x.device());
    if (opts.tol != 0) {
      torch::Tensor ss = (x64 - mean64).pow(2).sum(0).to(torch::kCPU);
      comm.all_reduce_sum(ss);
      tol = (ss / static_cast<double>(n)).mean().item<double>() * opts.tol;
    }
    xc = (x - mean64.to(x.scalar_type())).contiguous();  // the fused pass reads rows in place
  } else if (x.device().type() == torch::kCPU) {
    const torch::Tensor xin = x.contiguous();
    double mean_var = 0.0;
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "kmeans_center", [&] {
      kmeans_center<scalar_t>(xin, mean64, xc, opts.tol == 0 ? nullptr : &mean_var);
    });
    tol = mean_var * opts.tol;
  } else {
    mean64 = x.to(torch::kFloat64).mean(0);
    xc = x - mean64.to(x.scalar_type());
    tol = opts.tol == 0 ? 0.0 : (x.to(torch::kFloat64) - mean64).pow(2).mean(0).mean().item<double>() * opts.tol;
  }
  const torch::Tensor mean = mean64.to(x.scalar_type());
  const int n_init = opts.init == KMeansInit::kGiven ? 1 : opts.n_init;
  auto squared_norms = [&](const torch::Tensor& rows) {
    std::vector<torch::Tensor> parts;
    for (int64_t s = 0; s < rows.size(0); s += opts.chunk_rows)
      parts.push_back(rows.slice(0, s, std::min(rows.size(0), s + opts.chunk_rows)).to(torch::kFloat64).pow(2).sum(1));
    return torch::cat(parts);
  };
  torch::Tensor x_sq64, all;
  if (opts.init == KMeansInit::kKMeansPlusPlus && !multi) x_sq64 = squared_norms(xc);
  if (opts.init == KMeansInit::kKMeansPlusPlus && multi) {
    // k-means++ over all ranks' centred rows, gathered once to rank 0 (the
    // seeds of every run drawn there, from one stream, as in one process).
    all = comm.gather_rows(xc.to(torch::kCPU));
    if (comm.is_root()) x_sq64 = squared_norms(all);
  }
  // sklearn's _is_same_clustering over all rows (every rank has the same
  // inertias, so all of them ask together).
  auto same_as_best = [&](const Run& r, const Run& best) {
    if (!multi) return same_clustering(r.labels, best.labels, opts.k);
    return same_clustering(comm.all_gather_rows(r.labels.to(torch::kCPU)),
                           comm.all_gather_rows(best.labels.to(torch::kCPU)), opts.k);
  };
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
    } else if (!multi) {
      const auto idx = plusplus(xc, x_sq64, opts.k, rng, opts.chunk_rows);
      init = xc.index_select(0, torch::tensor(idx, torch::kInt64).to(x.device()));
    } else {
      torch::Tensor init64 = torch::empty({opts.k, d}, torch::kFloat64);
      if (comm.is_root()) {
        const auto idx = plusplus(all, x_sq64, opts.k, rng, opts.chunk_rows);
        init64.copy_(all.index_select(0, torch::tensor(idx, torch::kInt64)).to(torch::kFloat64));
      }
      comm.broadcast(init64, 0);
      init = init64.to(x.device(), x.scalar_type());
    }
    Run r = lloyd(xc, init, opts, tol, run, comm, offset);
    if (best_init < 0 || (r.inertia < best.inertia && !same_as_best(r, best))) {
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
  core::check_matrix(x, "kmeans_predict: x");
  core::check_matrix(centroids, "kmeans_predict: centroids");
  GRADLENS_CHECK(centroids.size(1) == x.size(1), "kmeans_predict: centroids have ", centroids.size(1),
                 " columns but x has ", x.size(1), "; use the centroids fitted on data of this dimension");
  GRADLENS_CHECK(chunk_rows >= 1, "kmeans_predict: chunk_rows must be >= 1, got ", chunk_rows);
  return assign(x, centroids.to(x.device(), x.scalar_type()), chunk_rows);
}

torch::Tensor kmeans_plusplus_indices(const torch::Tensor& x, int64_t k, uint64_t seed) {
  core::check_matrix(x, "kmeans_plusplus_indices: x");
  check_k(k, x.size(0), "kmeans_plusplus_indices");
  NumpyRandomState rng(seed);
  const torch::Tensor x_sq64 = x.to(torch::kFloat64).pow(2).sum(1);
  return torch::tensor(plusplus(x, x_sq64, k, rng, 4096), torch::kInt64).to(x.device());
}

double detail::kmeans_inertia(const torch::Tensor& x, const torch::Tensor& centers, const torch::Tensor& labels,
                              int64_t chunk_rows) {
  return inertia_of(x, centers, labels, chunk_rows);
}

std::pair<torch::Tensor, torch::Tensor> detail::kmeans_cluster_sums(const torch::Tensor& x, const torch::Tensor& labels,
                                                                   int64_t k, int64_t chunk_rows) {
  torch::Tensor sums = torch::zeros({k, x.size(1)}, x.options().dtype(torch::kFloat64));
  for (int64_t s = 0; s < x.size(0); s += chunk_rows) {
    const int64_t e = std::min(x.size(0), s + chunk_rows);
    sums.index_add_(0, labels.slice(0, s, e), x.slice(0, s, e).to(torch::kFloat64));
  }
  return {sums, torch::bincount(labels, {}, k).to(torch::kFloat64)};
}

torch::Tensor detail::kmeans_row_sq_dist(const torch::Tensor& x, const torch::Tensor& centers,
                                         const torch::Tensor& labels, int64_t chunk_rows) {
  const torch::Tensor c64 = centers.to(torch::kFloat64);
  std::vector<torch::Tensor> parts;
  for (int64_t s = 0; s < x.size(0); s += chunk_rows) {
    const int64_t e = std::min(x.size(0), s + chunk_rows);
    parts.push_back((x.slice(0, s, e).to(torch::kFloat64) - c64.index_select(0, labels.slice(0, s, e))).pow(2).sum(1));
  }
  return torch::cat(parts);
}

double detail::kmeans_update_centers(torch::Tensor& centers, const torch::Tensor& sums, const torch::Tensor& counts,
                                     const KMeansOptions& opts, int iteration, int run_index,
                                     std::chrono::steady_clock::time_point t0) {
  const torch::Tensor denom = torch::where(counts > 0, counts, torch::ones_like(counts)).unsqueeze(1);
  const torch::Tensor new_centers = (sums / denom).to(centers.scalar_type());
  const double shift = (new_centers.to(torch::kFloat64) - centers.to(torch::kFloat64)).pow(2).sum().item<double>();
  centers = new_centers;
  if (opts.progress) {
    core::ProgressEvent ev;
    ev.stage = "kmeans";
    ev.done = iteration + 1;
    ev.total = opts.max_iter;
    ev.elapsed_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    ev.values = {{"run", run_index}, {"center_shift", shift}};
    core::report(opts.progress, ev);
  }
  return shift;
}

}  // namespace gradlens::cluster
