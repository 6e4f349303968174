// The distributed context: rendezvous through c10d's TCPStore and collectives
// on c10d's ProcessGroupGloo (CPU) or ProcessGroupNCCL (CUDA), PyTorch's own
// engines. Without torchrun-style
// environment variables (or explicit options) a Communicator is a single
// process: rank 0, world size 1, and every collective is an identity, so
// library code calls the collectives unconditionally. c10d stays behind a
// pimpl: this header includes only <torch/types.h> and core::Collectives,
// which Communicator implements.
#pragma once

#include <torch/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "gradlens/core/collectives.h"

namespace gradlens::distributed {

/// The c10d engine that carries a multi-rank run's collectives.
enum class Backend {
  kAuto,  ///< GRADLENS_DIST_BACKEND when set, else NCCL for a CUDA device and Gloo for the CPU
  kGloo,  ///< ProcessGroupGloo: CPU tensors, any machine
  kNccl,  ///< ProcessGroupNCCL: tensors on each rank's GPU; needs a CUDA LibTorch
};

/// "gloo" or "nccl" for a resolved backend ("auto" for kAuto).
const char* backend_name(Backend b);

/// Parses "gloo" or "nccl"; throws c10::Error naming `what` (a flag or
/// variable) and the accepted values otherwise.
Backend parse_backend(const std::string& name, const std::string& what);

/// Where the ranks meet. Unset fields (-1 / "") are read from the
/// environment torchrun and `gradlens launch` set: RANK, WORLD_SIZE,
/// LOCAL_RANK, MASTER_ADDR, MASTER_PORT, and GRADLENS_DIST_TIMEOUT (seconds).
struct DistOptions {
  int rank = -1;
  int world_size = -1;  ///< -1: WORLD_SIZE, and 1 (no set-up) when that is unset
  int local_rank = -1;  ///< -1: LOCAL_RANK, else `rank`
  std::string master_addr;  ///< "": MASTER_ADDR
  int master_port = -1;     ///< -1: MASTER_PORT
  /// Rendezvous and per-collective timeout; 0: GRADLENS_DIST_TIMEOUT, else 300 s.
  std::chrono::milliseconds timeout{0};
  /// Read the environment for unset fields (false: only these options).
  bool use_environment = true;
  /// kAuto is resolved from GRADLENS_DIST_BACKEND and `device`.
  Backend backend = Backend::kAuto;
  /// The device this rank computes on: decides kAuto, and NCCL's collectives
  /// run on it (a bare cuda is cuda:local_rank).
  c10::Device device{c10::kCPU};
};

/// The options with every field resolved (environment applied, defaults
/// filled, values validated). Throws c10::Error naming the variable or field
/// and the fix: a non-integer RANK/WORLD_SIZE/LOCAL_RANK/MASTER_PORT; WORLD_SIZE
/// > 1 without RANK, MASTER_ADDR or MASTER_PORT; rank outside [0, world_size);
/// a port outside 1..65535; a timeout <= 0; an unknown GRADLENS_DIST_BACKEND;
/// with WORLD_SIZE > 1, NCCL without a CUDA LibTorch or on a CPU device.
/// `backend` is never kAuto afterwards.
DistOptions resolve_options(const DistOptions& opts = {});

/// A group of `world_size` processes. Collectives take tensors of any dtype
/// torch supports (float32, float64, int64, ...); each one blocks until done or throws within the
/// timeout. Every rank must call the same collectives in the same order.
/// Movable, not copyable.
class Communicator final : public core::Collectives {
 public:
  /// A single process (rank 0, world size 1): collectives are identities.
  Communicator();
  /// Joins the group described by resolve_options(opts): rank 0 hosts the
  /// TCPStore at MASTER_ADDR:MASTER_PORT (unless torchrun's agent store is
  /// used, TORCHELASTIC_USE_AGENT_STORE=True), the others connect; then a
  /// the process group of opts.backend is built over it. world_size 1 sets up
  /// nothing.
  /// Throws c10::Error naming MASTER_ADDR:MASTER_PORT and the fix when the
  /// port is in use or the master cannot be reached within the timeout.
  explicit Communicator(const DistOptions& opts);
  ~Communicator();
  Communicator(Communicator&&) noexcept;
  Communicator& operator=(Communicator&&) noexcept;
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

  int rank() const override;
  int world_size() const override;
  int local_rank() const;
  std::chrono::milliseconds timeout() const;
  Backend backend() const;
  /// "rank r of w (gloo, MASTER_ADDR:MASTER_PORT)" or "single process".
  std::string describe() const;

  /// Collectives take tensors on any device and return CPU tensors (NCCL
  /// moves them to the rank's GPU and back).
  /// In place: t becomes the element-wise sum over ranks. Returns t.
  torch::Tensor& all_reduce_sum(torch::Tensor& t) override;
  /// In place: every rank's t becomes root's t (same shape and dtype on all ranks).
  torch::Tensor& broadcast(torch::Tensor& t, int root = 0) override;
  /// Row blocks of possibly different lengths ([n_r, ...], same trailing shape
  /// and dtype; a rank with no rows may pass [0] or [0, 0]) concatenated in
  /// rank order, on every rank.
  torch::Tensor all_gather_rows(const torch::Tensor& local) override;
  /// As all_gather_rows, but only `root` gets the result; the others get an
  /// undefined tensor.
  torch::Tensor gather_rows(const torch::Tensor& local, int root = 0) override;
  /// Blocks until every rank has arrived.
  void barrier();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// This process's communicator and the device its rank computes on.
struct RankSetup {
  Communicator comm;
  c10::Device device{c10::kCPU};
};

/// Joins the ranks described by the environment (as Communicator(DistOptions{}))
/// for a command's device (core::parse_device of --device): a CUDA device
/// without an index in a multi-rank run made cuda:LOCAL_RANK (one GPU per
/// rank on a host; checked against the GPUs visible), and
/// the backend chosen for that device (NCCL on CUDA, Gloo on the CPU, unless
/// GRADLENS_DIST_BACKEND says otherwise).
RankSetup join_ranks(c10::Device device);

using core::shard_range;

}  // namespace gradlens::distributed
