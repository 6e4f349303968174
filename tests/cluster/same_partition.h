// Test helper: are two labelings the same partition up to renaming the
// labels? (Cluster tests must pass whatever numbers the clusters get.)
#pragma once

#include <torch/types.h>

#include <map>

namespace gradlens::test {

inline bool same_partition(const torch::Tensor& a, const torch::Tensor& b) {
  const torch::Tensor ac = a.to(torch::kCPU, torch::kInt64).contiguous();
  const torch::Tensor bc = b.to(torch::kCPU, torch::kInt64).contiguous();
  if (ac.numel() != bc.numel()) return false;
  std::map<int64_t, int64_t> ab, ba;
  const int64_t* pa = ac.data_ptr<int64_t>();
  const int64_t* pb = bc.data_ptr<int64_t>();
  for (int64_t i = 0; i < ac.numel(); ++i) {
    const auto [ia, new_a] = ab.emplace(pa[i], pb[i]);
    const auto [ib, new_b] = ba.emplace(pb[i], pa[i]);
    if (ia->second != pb[i] || ib->second != pa[i]) return false;
  }
  return true;
}

}  // namespace gradlens::test
