#include "gradlens/distributed/silhouette.h"
#include <torch/types.h>

#include "gradlens/core/check.h"
#include "gradlens/distributed/context.h"
#include "gradlens/core/collectives.h"

namespace gradlens::distributed {

torch::Tensor silhouette_samples(Communicator& comm, const torch::Tensor& x_local, const torch::Tensor& labels_local,
                                 const metrics::SilhouetteOptions& opts) {
  const core::ShardLayout layout = core::shard_layout(comm, x_local, "distributed::silhouette_samples");
  GRADLENS_CHECK(labels_local.defined() && labels_local.dim() == 1 && labels_local.size(0) == x_local.size(0) &&
                     !at::isFloatingType(labels_local.scalar_type()) && labels_local.scalar_type() != torch::kBool,
                 "distributed::silhouette_samples: rank ", comm.rank(), " needs one integer label per row of x_local (",
                 x_local.size(0), " rows)");
  GRADLENS_CHECK(opts.chunk_rows >= 0, "distributed::silhouette_samples: chunk_rows must be >= 0, got ", opts.chunk_rows);
  GRADLENS_CHECK(opts.sample_size == 0, "distributed::silhouette_samples: sample_size is not distributed; subsample the "
                                        "rows first (or gather them and call metrics::silhouette_score)");
  const torch::Tensor x = comm.all_gather_rows(x_local.to(torch::kCPU).contiguous()).to(x_local.device());
  const torch::Tensor labels = comm.all_gather_rows(labels_local.to(torch::kCPU, torch::kInt64));
  auto [codes, k] = metrics::detail::silhouette_codes(labels, layout.n, "distributed::silhouette_samples");
  codes = codes.to(x.device());
  const torch::Tensor freq = torch::bincount(codes, {}, k).to(torch::kFloat64);
  const int64_t b = layout.offset, e = layout.offset + x_local.size(0);
  const torch::Tensor sums = metrics::detail::silhouette_block_sums(
      x, codes, k, opts.metric == metrics::SilhouetteMetric::kCosine, b, e, opts.chunk_rows);
  return metrics::detail::silhouette_from_sums(sums, codes.slice(0, b, e), freq);
}

double silhouette_score(Communicator& comm, const torch::Tensor& x_local, const torch::Tensor& labels_local,
                        const metrics::SilhouetteOptions& opts) {
  const torch::Tensor s = silhouette_samples(comm, x_local, labels_local, opts);
  torch::Tensor total = torch::tensor({s.sum().item<double>(), static_cast<double>(s.size(0))}, torch::kFloat64);
  comm.all_reduce_sum(total);
  return total[0].item<double>() / total[1].item<double>();
}

}  // namespace gradlens::distributed
