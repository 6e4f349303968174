#include "gradlens/metrics/internal.h"
#include <torch/types.h>
#include <ATen/Parallel.h>

#include "gradlens/core/blas.h"
#include "gradlens/core/check.h"
#include "gradlens/core/collectives.h"
#include "gradlens/core/hugepage.h"
#include "gradlens/core/numpy_random.h"

#include <atomic>

#include <limits>
#include <random>

namespace gradlens::metrics {

namespace {

void check_x_labels(const torch::Tensor& x, const torch::Tensor& labels, const char* fn) {
  GRADLENS_CHECK(x.defined() && x.dim() == 2, fn, ": x must be a 2-D [N, d] matrix, got shape ",
                 x.defined() ? x.sizes() : c10::IntArrayRef{});
  GRADLENS_CHECK(x.size(0) > 0 && x.size(1) > 0, fn, ": x is empty (shape ", x.sizes(),
                 "); it needs at least one row and one column");
  GRADLENS_CHECK(x.scalar_type() == torch::kFloat32 || x.scalar_type() == torch::kFloat64, fn,
                 ": x must be float32 or float64, got ", x.scalar_type());
  const torch::Tensor row_ok = torch::isfinite(x).all(1);
  if (!row_ok.all().item<bool>()) {
    GRADLENS_CHECK(false, fn, ": x row ", (~row_ok).nonzero().min().item<int64_t>(), " (of ", x.size(0),
                   ") contains NaN or Inf; remove or repair non-finite samples first");
  }
  GRADLENS_CHECK(labels.defined() && labels.dim() == 1, fn, ": labels must be a 1-D vector");
  GRADLENS_CHECK(!at::isFloatingType(labels.scalar_type()) && labels.scalar_type() != torch::kBool, fn,
                 ": labels must be an integer tensor (int64), got ", labels.scalar_type());
  GRADLENS_CHECK(labels.size(0) == x.size(0), fn, ": ", labels.size(0), " labels for ", x.size(0),
                 " rows of x; pass exactly one label per row");
}

std::pair<torch::Tensor, int64_t> encode_checked(const torch::Tensor& labels, int64_t n, const char* fn) {
  return detail::silhouette_codes(labels, n, fn);
}

// float32 products: a pair is re-done in float64 when its squared distance
// is below this fraction of the rows' squared norms (after centring). The
// other pairs' distances are then within ~sqrt(d) * 6e-8 / 0.05 relative
// (d = 512: ~3e-5) before averaging over whole clusters.
constexpr double kSilhouetteRecheck = 0.05;
// A tile with more than this fraction of such pairs is computed in float64
// (GEMM) instead: the scalar re-checks would cost more.
constexpr double kSilhouetteTile64 = 0.02;
// Rows from which float32 data gets float32 products (below, the float64
// GEMM costs little anyway).
constexpr int64_t kSilhouetteF32Rows = 4096;

// CPU silhouette: rows sorted by cluster (contiguous segments), distances by
// blocks of the upper triangle only (D is symmetric), each block's GEMM on
// its own thread, then per-cluster sums of its rows and of its columns in
// task-local buffers added in a fixed order (the same result for any thread
// count). Returns the per-row cluster sums [N, k] in the original row order.
torch::Tensor silhouette_cluster_sums(const torch::Tensor& x, const torch::Tensor& codes, int64_t k, bool cosine,
                                      bool f32_products) {
  const int64_t n = x.size(0);
  const int64_t d = x.size(1);
  const auto f64 = x.options().dtype(torch::kFloat64);
  const torch::Tensor order = std::get<1>(codes.sort(/*stable=*/true, 0, false));
  const torch::Tensor sorted_codes = codes.index_select(0, order).contiguous();
  // Sorted float64 rows (cosine: unit rows) and their squared norms, by a
  // plain pass: no float64 copy of x or N x d temporaries.
  torch::Tensor xs = core::empty_hugepage({n, d}, f64);
  torch::Tensor sq = torch::empty({n}, f64);
  {
    const torch::Tensor xin = x.contiguous();
    const int64_t* opp = order.data_ptr<int64_t>();
    double* dst = xs.data_ptr<double>();
    double* sqw = sq.data_ptr<double>();
    AT_DISPATCH_FLOATING_TYPES(xin.scalar_type(), "silhouette_sort_rows", [&] {
      const scalar_t* src = xin.data_ptr<scalar_t>();
      at::parallel_for(0, n, 64, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) {
          double* row = dst + i * d;
          const scalar_t* in = src + opp[i] * d;
          double acc = 0.0;
          for (int64_t j = 0; j < d; ++j) {
            row[j] = static_cast<double>(in[j]);
            acc += row[j] * row[j];
          }
          if (cosine) {
            const double norm = std::sqrt(acc);
            if (norm > 0) {
              for (int64_t j = 0; j < d; ++j) row[j] /= norm;
            }
            acc = 0.0;
            for (int64_t j = 0; j < d; ++j) acc += row[j] * row[j];
          }
          sqw[i] = acc;
        }
      });
    });
  }
  // float32 products: the sorted rows centred (in float64) and rounded to
  // float32, with the squared norms of the rounded rows; the float64 rows
  // (uncentred, exact) stay for the pairs that need them.
  torch::Tensor xs32;
  std::vector<double> sq32;  // squared norms of the centred float32 rows
  if (f32_products) {
    // A plain pass: torch expressions here would allocate N x d temporaries,
    // and on a virtual machine every fresh 4 KiB page costs ~40 us.
    const torch::Tensor mean = xs.mean(0);
    xs32 = core::empty_hugepage({n, d}, x.options().dtype(torch::kFloat32));
    const double* mp = mean.data_ptr<double>();
    const double* src = xs.data_ptr<double>();
    float* dst = xs32.data_ptr<float>();
    sq32.resize(static_cast<size_t>(n));
    double* sqw = sq32.data();
    at::parallel_for(0, n, 64, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        double acc = 0.0;
        for (int64_t j = 0; j < d; ++j) {
          const float v = static_cast<float>(src[i * d + j] - mp[j]);
          dst[i * d + j] = v;
          acc += static_cast<double>(v) * static_cast<double>(v);
        }
        sqw[i] = acc;
      }
    });
  }
  const float* x32 = f32_products ? xs32.data_ptr<float>() : nullptr;
  const double* xp = xs.data_ptr<double>();
  const double* sqp = sq.data_ptr<double>();
  const int64_t* cp = sorted_codes.data_ptr<int64_t>();
  std::vector<int64_t> seg(k + 1, 0);  // cluster c holds sorted rows [seg[c], seg[c+1])
  for (int64_t i = 0; i < n; ++i) seg[cp[i] + 1] += 1;
  for (int64_t c = 0; c < k; ++c) seg[c + 1] += seg[c];

  constexpr int64_t kB = 512;
  const int64_t nb = (n + kB - 1) / kB;
  std::vector<std::pair<int64_t, int64_t>> tasks;
  for (int64_t bi = 0; bi < nb; ++bi) {
    for (int64_t bj = bi; bj < nb; ++bj) tasks.emplace_back(bi, bj);
  }
  const int64_t n_tasks = static_cast<int64_t>(tasks.size());
  // Per task: row sums [kB, k] for block bi, column sums [kB, k] for bj.
  torch::Tensor out = core::empty_hugepage({n_tasks, 2, kB, k}, f64);
  double* op = out.data_ptr<double>();
  std::atomic<int64_t> next{0};
  const core::BlasThreadLimit one_blas_thread(1);
  at::parallel_for(0, std::min<int64_t>(n_tasks, at::get_num_threads()), 1, [&](int64_t, int64_t) {
    std::vector<double> g(kB * kB);
    std::vector<float> g32(f32_products ? kB * kB : 0);
    for (int64_t t = next++; t < n_tasks; t = next++) {
      const int64_t r0 = tasks[t].first * kB, r1 = std::min(n, r0 + kB);
      const int64_t c0 = tasks[t].second * kB, c1 = std::min(n, c0 + kB);
      const int64_t nr = r1 - r0, nc = c1 - c0;
      double* gp = g.data();
      // float32 products first; a tile goes the float64 way below when too
      // many of its pairs would need re-checking (tight, well-separated
      // clusters), since each re-check is a scalar pass over d features.
      bool tile64 = !f32_products;
      if (f32_products) {
        float* hp = g32.data();
        if (!core::blas_gemm(false, true, nr, nc, d, 1.0F, x32 + r0 * d, d, x32 + c0 * d, d, 0.0F, hp, nc)) {
          torch::Tensor ht = torch::from_blob(hp, {nr, nc}, torch::kFloat32);
          const auto f32 = torch::TensorOptions().dtype(torch::kFloat32);
          torch::mm_out(ht, torch::from_blob(const_cast<float*>(x32 + r0 * d), {nr, d}, f32),
                        torch::from_blob(const_cast<float*>(x32 + c0 * d), {nc, d}, f32).t());
        }
        // Squared distances from the float32 products; where |x_i - x_j|^2
        // is below kSilhouetteRecheck of |x_i|^2 + |x_j|^2 the products'
        // rounding would dominate: such a pair is marked (-1) and summed
        // exactly in float64 from the original rows instead.
        int64_t marked = 0;
        for (int64_t i = 0; i < nr; ++i) {
          const double si = sq32[r0 + i];
          double* row = gp + i * nc;
          const float* hrow = hp + i * nc;
          for (int64_t j = 0; j < nc; ++j) {
            const double sj = sq32[c0 + j];
            const double d2 = si + sj - 2.0 * static_cast<double>(hrow[j]);
            const bool recheck = d2 < kSilhouetteRecheck * (si + sj);
            row[j] = recheck ? -1.0 : d2;
            marked += recheck ? 1 : 0;
          }
        }
        if (static_cast<double>(marked) > kSilhouetteTile64 * static_cast<double>(nr * nc)) {
          tile64 = true;
        } else {
          for (int64_t i = 0; i < nr; ++i) {
            double* row = gp + i * nc;
            for (int64_t j = 0; j < nc; ++j) {
              double d2 = row[j];
              if (d2 < 0.0) {
                const double* a = xp + (r0 + i) * d;
                const double* b = xp + (c0 + j) * d;
                d2 = 0.0;
                for (int64_t q = 0; q < d; ++q) d2 += (a[q] - b[q]) * (a[q] - b[q]);
              }
              row[j] = std::sqrt(d2);
            }
            if (r0 == c0) row[i] = 0.0;  // the diagonal, as sklearn
          }
        }
      }
      if (tile64) {
        if (!core::blas_gemm(false, true, nr, nc, d, 1.0, xp + r0 * d, d, xp + c0 * d, d, 0.0, gp, nc)) {
          torch::Tensor gt = torch::from_blob(gp, {nr, nc}, f64);
          torch::mm_out(gt, torch::from_blob(const_cast<double*>(xp + r0 * d), {nr, d}, f64),
                        torch::from_blob(const_cast<double*>(xp + c0 * d), {nc, d}, f64).t());
        }
        for (int64_t i = 0; i < nr; ++i) {
          double* row = gp + i * nc;
          if (cosine) {
            for (int64_t j = 0; j < nc; ++j) row[j] = std::min(2.0, std::max(0.0, 1.0 - row[j]));
          } else {
            const double si = sqp[r0 + i];
            for (int64_t j = 0; j < nc; ++j) row[j] = std::sqrt(std::max(0.0, si - 2.0 * row[j] + sqp[c0 + j]));
          }
          if (r0 == c0) row[i] = 0.0;  // the diagonal, as sklearn
        }
      }
      double* rs = op + t * 2 * kB * k;
      double* cs = rs + kB * k;
      std::fill(rs, rs + 2 * kB * k, 0.0);
      for (int64_t c = 0; c < k; ++c) {
        const int64_t a = std::max(seg[c], c0), b = std::min(seg[c + 1], c1);
        if (a >= b) continue;
        for (int64_t i = 0; i < nr; ++i) {
          const double* row = gp + i * nc;
          double acc = 0.0;
          for (int64_t j = a - c0; j < b - c0; ++j) acc += row[j];
          rs[i * k + c] = acc;
        }
      }
      if (r0 != c0) {
        std::vector<double> colacc(nc);
        for (int64_t c = 0; c < k; ++c) {
          const int64_t a = std::max(seg[c], r0), b = std::min(seg[c + 1], r1);
          if (a >= b) continue;
          std::fill(colacc.begin(), colacc.end(), 0.0);
          for (int64_t i = a - r0; i < b - r0; ++i) {
            const double* row = gp + i * nc;
            for (int64_t j = 0; j < nc; ++j) colacc[j] += row[j];
          }
          for (int64_t j = 0; j < nc; ++j) cs[j * k + c] = colacc[j];
        }
      }
    }
  });
  // Add the task buffers in task order.
  torch::Tensor sums = torch::zeros({n, k}, f64);
  double* sp = sums.data_ptr<double>();
  for (int64_t t = 0; t < n_tasks; ++t) {
    const int64_t r0 = tasks[t].first * kB, r1 = std::min(n, r0 + kB);
    const int64_t c0 = tasks[t].second * kB, c1 = std::min(n, c0 + kB);
    const double* rs = op + t * 2 * kB * k;
    for (int64_t i = 0; i < (r1 - r0) * k; ++i) sp[r0 * k + i] += rs[i];
    if (r0 != c0) {
      const double* cs = rs + kB * k;
      for (int64_t i = 0; i < (c1 - c0) * k; ++i) sp[c0 * k + i] += cs[i];
    }
  }
  torch::Tensor unsorted = torch::empty_like(sums);
  unsorted.index_copy_(0, order, sums);
  return unsorted;
}

}  // namespace

namespace {

// silhouette_samples of this rank's rows among the rows of all ranks.
torch::Tensor silhouette_samples_sharded(const torch::Tensor& x_local, const torch::Tensor& labels_local,
                                         const SilhouetteOptions& opts, core::Collectives& comm) {
  const core::ShardLayout layout = core::shard_layout(comm, x_local, "silhouette_samples");
  GRADLENS_CHECK(labels_local.defined() && labels_local.dim() == 1 && labels_local.size(0) == x_local.size(0) &&
                     !at::isFloatingType(labels_local.scalar_type()) && labels_local.scalar_type() != torch::kBool,
                 "silhouette_samples: rank ", comm.rank(), " needs one integer label per row of its x (",
                 x_local.size(0), " rows)");
  GRADLENS_CHECK(opts.chunk_rows >= 0, "silhouette_samples: chunk_rows must be >= 0, got ", opts.chunk_rows);
  GRADLENS_CHECK(opts.sample_size == 0, "silhouette_samples: sample_size does not run over several ranks; subsample "
                                        "the rows first (or gather them and score them in one process)");
  const torch::Tensor x = comm.all_gather_rows(x_local.to(torch::kCPU).contiguous()).to(x_local.device());
  const torch::Tensor labels = comm.all_gather_rows(labels_local.to(torch::kCPU, torch::kInt64));
  auto [codes, k] = detail::silhouette_codes(labels, layout.n, "silhouette_samples");
  codes = codes.to(x.device());
  const torch::Tensor freq = torch::bincount(codes, {}, k).to(torch::kFloat64);
  const int64_t b = layout.offset, e = layout.offset + x_local.size(0);
  const torch::Tensor sums = detail::silhouette_block_sums(x, codes, k, opts.metric == SilhouetteMetric::kCosine, b,
                                                           e, opts.chunk_rows);
  return detail::silhouette_from_sums(sums, codes.slice(0, b, e), freq);
}

}  // namespace

torch::Tensor silhouette_samples(const torch::Tensor& x, const torch::Tensor& labels, const SilhouetteOptions& opts,
                                 core::Collectives& comm) {
  if (comm.world_size() > 1) return silhouette_samples_sharded(x, labels, opts, comm);
  check_x_labels(x, labels, "silhouette_samples");
  GRADLENS_CHECK(opts.chunk_rows >= 0, "silhouette_samples: chunk_rows must be >= 0, got ", opts.chunk_rows);
  const int64_t n = x.size(0);
  auto [codes, k] = encode_checked(labels.to(x.device()), n, "silhouette_samples");
  const bool cosine = opts.metric == SilhouetteMetric::kCosine;
  const torch::Tensor freq = torch::bincount(codes, {}, k).to(torch::kFloat64);
  const torch::Tensor sums = x.device().type() == torch::kCPU
                                 ? silhouette_cluster_sums(x, codes, k, cosine,
                                                           !cosine && !opts.float64_products &&
                                                               x.scalar_type() == torch::kFloat32 &&
                                                               n >= kSilhouetteF32Rows)
                                 : detail::silhouette_block_sums(x, codes, k, cosine, 0, n, opts.chunk_rows);
  return detail::silhouette_from_sums(sums, codes, freq);
}

namespace detail {

std::pair<torch::Tensor, int64_t> silhouette_codes(const torch::Tensor& labels, int64_t n, const char* fn) {
  torch::Tensor uniq, inverse;
  std::tie(uniq, inverse, std::ignore) = at::_unique2(labels.to(torch::kInt64), true, true);
  const int64_t k = uniq.size(0);
  GRADLENS_CHECK(k >= 2 && k <= n - 1, fn, ": the number of distinct labels is ", k,
                 "; valid values are 2 to n_samples - 1 = ", n - 1, " (inclusive)");
  return {inverse, k};
}

torch::Tensor silhouette_from_sums(const torch::Tensor& sums, const torch::Tensor& own_codes,
                                   const torch::Tensor& freq) {
  const torch::Tensor own = own_codes.unsqueeze(1);
  const torch::Tensor a = sums.gather(1, own).squeeze(1) / (freq.index_select(0, own_codes) - 1.0);  // 0/0 -> NaN
  const torch::Tensor b = (sums / freq).scatter_(1, own, std::numeric_limits<double>::infinity()).amin(1);
  return torch::nan_to_num((b - a) / torch::maximum(a, b), 0.0, 0.0, 0.0);
}

torch::Tensor silhouette_block_sums(const torch::Tensor& x, const torch::Tensor& codes, int64_t k, bool cosine,
                                    int64_t begin, int64_t end, int64_t chunk_rows) {
  const int64_t n = x.size(0);
  torch::Tensor x64 = x.to(torch::kFloat64);
  torch::Tensor sq;
  if (cosine) {
    const torch::Tensor norm = x64.norm(2, 1, true);
    x64 = x64 / torch::where(norm > 0, norm, torch::ones_like(norm));
  } else {
    sq = (x64 * x64).sum(1);
  }
  const torch::Tensor onehot = torch::one_hot(codes, k).to(torch::kFloat64);  // [N, k]
  const int64_t chunk = chunk_rows > 0 ? chunk_rows : std::max<int64_t>(1, (int64_t{1} << 23) / n);
  std::vector<torch::Tensor> parts;
  for (int64_t start = begin; start < end; start += chunk) {
    const int64_t stop = std::min(end, start + chunk);
    const torch::Tensor rows = torch::arange(start, stop, codes.options());
    torch::Tensor d = torch::matmul(x64.slice(0, start, stop), x64.t());  // [b, N]
    if (cosine) {
      d = (1.0 - d).clamp(0.0, 2.0);
    } else {
      d = (sq.slice(0, start, stop).unsqueeze(1) - 2.0 * d + sq.unsqueeze(0)).clamp_min(0.0).sqrt();
    }
    d.index_put_({torch::arange(stop - start, codes.options()), rows}, 0.0);
    parts.push_back(torch::matmul(d, onehot));  // [b, k]
  }
  return parts.empty() ? torch::zeros({0, k}, x64.options()) : torch::cat(parts);
}

}  // namespace detail

double silhouette_score(const torch::Tensor& x, const torch::Tensor& labels, const SilhouetteOptions& opts,
                        core::Collectives& comm) {
  if (comm.world_size() > 1) {
    const torch::Tensor s = silhouette_samples_sharded(x, labels, opts, comm);
    torch::Tensor total = torch::tensor({s.sum().item<double>(), static_cast<double>(s.size(0))}, torch::kFloat64);
    comm.all_reduce_sum(total);
    return total[0].item<double>() / total[1].item<double>();
  }
  check_x_labels(x, labels, "silhouette_score");
  GRADLENS_CHECK(opts.sample_size >= 0, "silhouette_score: sample_size must be >= 0 (0 = all), got ",
                 opts.sample_size);
  if (opts.sample_size > 0 && opts.sample_size < x.size(0)) {
    std::vector<int64_t> perm = core::NumpyRandomState(opts.seed).permutation(x.size(0));
    perm.resize(opts.sample_size);
    const torch::Tensor idx = torch::tensor(perm, torch::kInt64).to(x.device());
    return silhouette_samples(x.index_select(0, idx), labels.to(x.device()).index_select(0, idx), opts)
        .mean()
        .item<double>();
  }
  return silhouette_samples(x, labels, opts).mean().item<double>();
}

namespace {

struct ClusterStats {
  torch::Tensor x64, codes, counts, centroids;  // counts [k], centroids [k, d]
  int64_t k = 0;
};

ClusterStats cluster_stats(const torch::Tensor& x, const torch::Tensor& labels, const char* fn) {
  check_x_labels(x, labels, fn);
  ClusterStats s;
  std::tie(s.codes, s.k) = encode_checked(labels.to(x.device()), x.size(0), fn);
  s.x64 = x.to(torch::kFloat64);
  s.counts = torch::bincount(s.codes, {}, s.k).to(torch::kFloat64);
  s.centroids = torch::zeros({s.k, x.size(1)}, s.x64.options()).index_add_(0, s.codes, s.x64) /
                s.counts.unsqueeze(1);
  return s;
}

}  // namespace

double calinski_harabasz_score(const torch::Tensor& x, const torch::Tensor& labels) {
  const ClusterStats s = cluster_stats(x, labels, "calinski_harabasz_score");
  const int64_t n = x.size(0);
  const torch::Tensor mean = s.x64.mean(0);
  const double extra = (s.counts * (s.centroids - mean).pow(2).sum(1)).sum().item<double>();
  const double intra = (s.x64 - s.centroids.index_select(0, s.codes)).pow(2).sum().item<double>();
  if (intra == 0.0) return 1.0;
  return extra * static_cast<double>(n - s.k) / (intra * (static_cast<double>(s.k) - 1.0));
}

double davies_bouldin_score(const torch::Tensor& x, const torch::Tensor& labels) {
  const ClusterStats s = cluster_stats(x, labels, "davies_bouldin_score");
  const torch::Tensor dist = (s.x64 - s.centroids.index_select(0, s.codes)).norm(2, 1);
  const torch::Tensor intra = torch::zeros({s.k}, dist.options()).index_add_(0, s.codes, dist) / s.counts;
  torch::Tensor cdist = (s.centroids.unsqueeze(1) - s.centroids.unsqueeze(0)).norm(2, 2);  // [k, k]
  if (intra.abs().max().item<double>() <= 1e-8 || cdist.abs().max().item<double>() <= 1e-8) return 0.0;
  cdist = torch::where(cdist == 0, torch::full_like(cdist, std::numeric_limits<double>::infinity()), cdist);
  const torch::Tensor combined = intra.unsqueeze(1) + intra.unsqueeze(0);
  return (combined / cdist).amax(1).mean().item<double>();
}

}  // namespace gradlens::metrics
