#include "gradlens/distributed/gmm.h"
#include <torch/types.h>

#include <cmath>

#include "gradlens/core/check.h"
#include "gradlens/distributed/context.h"
#include "gradlens/core/collectives.h"

namespace gradlens::distributed {

cluster::GaussianMixture gmm_fit(Communicator& comm, const torch::Tensor& x_local, const cluster::GmmOptions& opts) {
  const core::ShardLayout layout = core::shard_layout(comm, x_local, "distributed::gmm_fit");
  const int64_t n = layout.n;
  GRADLENS_CHECK(n >= 2, "distributed::gmm_fit: the ranks hold ", n, " row; a mixture needs at least 2 samples");
  GRADLENS_CHECK(opts.n_components >= 1, "distributed::gmm_fit: n_components must be >= 1, got ", opts.n_components);
  GRADLENS_CHECK(opts.n_components <= n, "distributed::gmm_fit: n_components = ", opts.n_components,
                 " is larger than the number of rows (", n, ") over all ranks; use fewer components");
  GRADLENS_CHECK(opts.tol >= 0 && std::isfinite(opts.tol), "distributed::gmm_fit: tol must be finite and >= 0, got ",
                 opts.tol);
  GRADLENS_CHECK(opts.reg_covar >= 0 && std::isfinite(opts.reg_covar),
                 "distributed::gmm_fit: reg_covar must be >= 0, got ", opts.reg_covar);
  GRADLENS_CHECK(opts.max_iter >= 1, "distributed::gmm_fit: max_iter must be >= 1, got ", opts.max_iter);
  GRADLENS_CHECK(opts.n_init >= 1, "distributed::gmm_fit: n_init must be >= 1, got ", opts.n_init);
  GRADLENS_CHECK(opts.init == cluster::GmmInit::kGiven,
                 "distributed::gmm_fit: only init = kGiven is distributed (with init_resp = this rank's rows' "
                 "responsibilities); seed with cluster::kmeans_fit over the Communicator and pass its labels one-hot");
  const cluster::detail::GmmRowSum sum_rows = [&comm](torch::Tensor& t) { comm.all_reduce_sum(t); };
  return cluster::detail::gmm_em(x_local.to(torch::kFloat64), opts, sum_rows, n);
}

}  // namespace gradlens::distributed
