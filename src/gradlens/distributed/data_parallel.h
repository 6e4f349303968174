// Data-parallel collectives for training: the bucketed gradient all-reduce
// (as PyTorch DDP's reducer, without overlap with backward) and the
// broadcast of model buffers. train::DataParallelOptions' hooks call these
// (wired in pipeline/train.cpp); the trainer itself does not depend on dist.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <vector>

namespace gradlens::distributed {

class Communicator;

/// Default bucket size of all_reduce_gradients: 4 MiB (DDP: 25 MiB).
constexpr int64_t kGradBucketBytes = int64_t{4} << 20;

/// What one all_reduce_gradients call sent.
struct GradReduceStats {
  int64_t buckets = 0;  ///< all-reduce calls
  int64_t bytes = 0;    ///< bytes all-reduced (the sum of the buckets' sizes)
};

/// In place: every defined grads[i] becomes sum over ranks of weight_r *
/// grads[i]_r, where weight_r is each rank's own `weight` (local batch size /
/// global batch size gives the gradient of the mean loss over the global
/// batch, also when local batch sizes differ). Gradients are flattened in
/// order into buckets of at most `bucket_bytes` (a larger gradient is a bucket
/// of its own; a new bucket starts when the dtype changes), each bucket is one
/// all-reduce of a CPU buffer, and the results are copied back (any device,
/// any memory format). Undefined entries are skipped: every rank must pass
/// the same list (same shapes, dtypes and defined entries), as all ranks do
/// when they run the same model. Throws c10::Error on a non-positive
/// bucket_bytes or a non-finite weight, and as Communicator::all_reduce_sum.
GradReduceStats all_reduce_gradients(Communicator& comm, std::vector<torch::Tensor>& grads, double weight,
                                     int64_t bucket_bytes = kGradBucketBytes);

/// In place: every rank's tensors become rank `root`'s (same list on every
/// rank), one broadcast per dtype. Throws as Communicator::broadcast.
void broadcast_tensors(Communicator& comm, std::vector<torch::Tensor>& tensors, int root = 0);

}  // namespace gradlens::distributed
