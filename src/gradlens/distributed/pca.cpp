#include "gradlens/distributed/pca.h"
#include <torch/types.h>

#include "gradlens/core/check.h"
#include "gradlens/distributed/context.h"
#include "gradlens/core/collectives.h"

namespace gradlens::distributed {

reduce::Pca pca_fit(Communicator& comm, const torch::Tensor& x_local, const reduce::PcaOptions& opts) {
  using reduce::PcaSolver;
  const core::ShardLayout layout = core::shard_layout(comm, x_local, "distributed::pca_fit");
  const int64_t n = layout.n;
  const int64_t d = layout.d;
  GRADLENS_CHECK(n >= 2, "distributed::pca_fit: the ranks hold ", n, " row; PCA needs at least 2 samples");
  const int64_t max_k = std::min(n, d);
  GRADLENS_CHECK(opts.n_components >= 0 && opts.n_components <= max_k, "distributed::pca_fit: n_components = ",
                 opts.n_components, " must be between 1 and min(n_samples, n_features) = ", max_k, " (0 keeps all)");
  GRADLENS_CHECK(opts.solver == PcaSolver::kExact || opts.solver == PcaSolver::kCovariance,
                 "distributed::pca_fit: only the covariance solver (kExact or kCovariance) is distributed; gather the "
                 "rows and call reduce::pca_fit for kFullSvd or kRandomized");
  const int64_t k = opts.n_components == 0 ? max_k : opts.n_components;

  reduce::Pca p;
  p.n_samples = n;
  p.whiten = opts.whiten;
  p.solver = PcaSolver::kCovariance;
  torch::Tensor sums = reduce::detail::pca_column_sums64(x_local).to(torch::kCPU);
  comm.all_reduce_sum(sums);
  p.mean = (sums / static_cast<double>(n)).to(x_local.device(), x_local.scalar_type());

  const torch::Tensor scratch = reduce::detail::pca_scratch(x_local, k);
  torch::Tensor gram = reduce::detail::pca_gram64(x_local, p.mean, scratch).to(torch::kCPU);
  comm.all_reduce_sum(gram);
  // svd_flip over all rows: each rank's (max |u|, u there) per component; the
  // first rank holding the global maximum (the lowest row index) decides.
  const auto signs_of = [&](const torch::Tensor& vk) {
    const torch::Tensor ext =
        reduce::detail::pca_column_extremes(x_local, p.mean, vk.to(x_local.device()), scratch).to(torch::kCPU);
    const torch::Tensor all = comm.all_gather_rows(ext.unsqueeze(0));  // [W, 2, k]
    torch::Tensor signs = torch::empty({vk.size(1)}, torch::kFloat64);
    for (int64_t j = 0; j < vk.size(1); ++j) {
      int64_t best = 0;
      for (int64_t r = 1; r < all.size(0); ++r)
        if (all[r][0][j].item<double>() > all[best][0][j].item<double>()) best = r;
      signs[j] = torch::sign(all[best][1][j]).item<double>();
    }
    return signs;
  };
  const auto f = reduce::detail::pca_factors_from_gram(gram.to(x_local.device()), signs_of, k, x_local.scalar_type());
  reduce::detail::pca_finish(p, f, k, max_k, torch::Tensor());  // f.all_s or f.total_ss is set
  return p;
}

}  // namespace gradlens::distributed
