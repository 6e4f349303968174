// The collectives the algorithms need, as an interface with a single-process
// instance (every collective the identity), so that one implementation of
// each algorithm serves one process and many: cluster::kmeans_fit takes an
// optional Collectives; distributed::Communicator implements it over
// c10d/Gloo.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace gradlens::core {

class Collectives {
 public:
  virtual ~Collectives() = default;
  virtual int rank() const = 0;
  virtual int world_size() const = 0;
  bool is_root() const { return rank() == 0; }
  /// In place: t becomes the element-wise sum over ranks (CPU tensors). Returns t.
  virtual torch::Tensor& all_reduce_sum(torch::Tensor& t) = 0;
  /// In place: every rank's t becomes root's t. Returns t.
  virtual torch::Tensor& broadcast(torch::Tensor& t, int root = 0) = 0;
  /// Row blocks of every rank ([n_r, ...], same trailing shape and dtype),
  /// concatenated in rank order, on every rank.
  virtual torch::Tensor all_gather_rows(const torch::Tensor& local) = 0;
  /// As all_gather_rows, but only `root` gets the result (the others an
  /// undefined tensor).
  virtual torch::Tensor gather_rows(const torch::Tensor& local, int root = 0) = 0;
};

/// The single-process instance: rank 0 of 1, every collective the identity
/// (gather_rows and all_gather_rows return `local`). Stateless.
Collectives& single_process();

/// Rows [begin, end) of rank `rank` when `n` rows are split into contiguous
/// blocks of whole `align`-row groups (the last group may be short), as
/// evenly as possible: the first (groups % world) ranks get one group more.
std::pair<int64_t, int64_t> shard_range(int64_t n, int rank, int world_size, int64_t align = 1);

/// Where this rank's rows sit among all ranks' rows (rank order = row order).
struct ShardLayout {
  int64_t n = 0;       ///< rows over all ranks
  int64_t offset = 0;  ///< global index of this rank's first row
  int64_t d = 0;       ///< columns (the same on every rank)
  std::vector<int64_t> rows;  ///< rows of each rank
};

/// Checks x_local with check_matrix (a finite float [n_r, d] matrix, n_r >= 1;
/// the message names `fn` and the rank), then all-gathers every rank's
/// (n_r, d, dtype). Throws c10::Error naming `fn` and both ranks when widths
/// or dtypes differ.
ShardLayout shard_layout(Collectives& comm, const torch::Tensor& x_local, const std::string& fn);

}  // namespace gradlens::core
