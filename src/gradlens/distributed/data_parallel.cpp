#include "gradlens/distributed/data_parallel.h"
#include <torch/types.h>

#include <cmath>

#include "gradlens/core/check.h"
#include "gradlens/distributed/context.h"

namespace gradlens::distributed {

namespace {

// Flattens tensors[idx] into one CPU buffer (each scaled by `scale`), runs
// `collective` on it, and copies the slices back.
template <typename Collective>
void dp_flat_roundtrip(std::vector<torch::Tensor>& tensors, const std::vector<size_t>& idx, double scale,
                       Collective&& collective) {
  std::vector<torch::Tensor> flat;
  flat.reserve(idx.size());
  for (size_t i : idx) flat.push_back(tensors[i].detach().to(torch::kCPU).reshape(-1));
  auto buf = torch::cat(flat);
  if (scale != 1.0) buf.mul_(scale);
  collective(buf);
  int64_t off = 0;
  for (size_t i : idx) {
    auto& t = tensors[i];
    const int64_t n = t.numel();
    torch::NoGradGuard ng;
    t.copy_(buf.slice(0, off, off + n).view(t.sizes()));
    off += n;
  }
}

}  // namespace

GradReduceStats all_reduce_gradients(Communicator& comm, std::vector<torch::Tensor>& grads, double weight,
                                     int64_t bucket_bytes) {
  GRADLENS_CHECK(bucket_bytes >= 1, "all_reduce_gradients: the bucket size must be >= 1 byte, got ", bucket_bytes);
  GRADLENS_CHECK(std::isfinite(weight), "all_reduce_gradients: the gradient weight is ", weight,
                 "; pass local batch size / global batch size");
  GradReduceStats st;
  std::vector<size_t> bucket;
  int64_t bucket_size = 0;
  auto flush = [&] {
    if (bucket.empty()) return;
    dp_flat_roundtrip(grads, bucket, weight, [&](torch::Tensor& buf) { comm.all_reduce_sum(buf); });
    ++st.buckets;
    st.bytes += bucket_size;
    bucket.clear();
    bucket_size = 0;
  };
  for (size_t i = 0; i < grads.size(); ++i) {
    const auto& g = grads[i];
    if (!g.defined()) continue;
    const int64_t bytes = g.numel() * static_cast<int64_t>(g.element_size());
    if (!bucket.empty() &&
        (grads[bucket.front()].scalar_type() != g.scalar_type() || bucket_size + bytes > bucket_bytes))
      flush();
    bucket.push_back(i);
    bucket_size += bytes;
  }
  flush();
  return st;
}

void broadcast_tensors(Communicator& comm, std::vector<torch::Tensor>& tensors, int root) {
  std::vector<std::vector<size_t>> by_dtype;
  for (size_t i = 0; i < tensors.size(); ++i) {
    if (!tensors[i].defined()) continue;
    auto it = std::find_if(by_dtype.begin(), by_dtype.end(), [&](const std::vector<size_t>& g) {
      return tensors[g.front()].scalar_type() == tensors[i].scalar_type();
    });
    if (it == by_dtype.end())
      by_dtype.push_back({i});
    else
      it->push_back(i);
  }
  for (const auto& group : by_dtype)
    dp_flat_roundtrip(tensors, group, 1.0, [&](torch::Tensor& buf) { comm.broadcast(buf, root); });
}

}  // namespace gradlens::distributed
