#include "gradlens/core/hugepage.h"
#include <torch/types.h>

#include <sys/mman.h>

#include <cstdlib>

namespace gradlens::core {

torch::Tensor empty_hugepage(c10::IntArrayRef sizes, const torch::TensorOptions& options) {
  constexpr size_t kHugePage = size_t{1} << 21;
  constexpr size_t kThreshold = size_t{1} << 22;
  if (options.device().type() != torch::kCPU) return torch::empty(sizes, options);
  size_t numel = 1;
  for (const int64_t s : sizes) numel *= static_cast<size_t>(s);
  const size_t bytes = numel * c10::elementSize(c10::typeMetaToScalarType(options.dtype()));
  if (bytes < kThreshold) return torch::empty(sizes, options);
  const size_t rounded = (bytes + kHugePage - 1) / kHugePage * kHugePage;
  void* p = std::aligned_alloc(kHugePage, rounded);
  if (p == nullptr) return torch::empty(sizes, options);
  ::madvise(p, rounded, MADV_HUGEPAGE);  // advice only: failure leaves 4 KiB pages
  return torch::from_blob(p, sizes, [](void* q) { std::free(q); }, options);
}

}  // namespace gradlens::core
