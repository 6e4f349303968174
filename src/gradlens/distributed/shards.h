// Row shards of one matrix spread over ranks: validation and layout, shared
// by the distributed stages (KMeans, PCA, GMM, silhouette).
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace gradlens::distributed {

class Communicator;

/// Where this rank's rows sit among all ranks' rows (rank order = row order).
struct ShardLayout {
  int64_t n = 0;       ///< rows over all ranks
  int64_t offset = 0;  ///< global index of this rank's first row
  int64_t d = 0;       ///< columns (the same on every rank)
  std::vector<int64_t> rows;  ///< rows of each rank
};

/// Checks x_local with core::check_matrix (a finite float [n_r, d] matrix,
/// n_r >= 1; the message names `fn` and the rank), then all-gathers every
/// rank's (n_r, d, dtype). Throws c10::Error naming `fn` and both ranks when
/// widths or dtypes differ.
ShardLayout shard_layout(Communicator& comm, const torch::Tensor& x_local, const std::string& fn);

}  // namespace gradlens::distributed
