#include "gradlens/core/tensor_checks.h"
#include <torch/types.h>
#include <ATen/Parallel.h>

#include "gradlens/core/check.h"

#include <atomic>
#include <cmath>

namespace gradlens::core {

namespace {

// First row of a CPU matrix with a NaN or Inf entry, or -1: a plain pass with
// no temporaries (isfinite(x).all(1) allocates an N x d bool mask).
template <typename T>
int64_t validate_first_bad_row(const torch::Tensor& x) {
  const int64_t n = x.size(0);
  const int64_t d = x.size(1);
  const int64_t s0 = x.stride(0);
  const int64_t s1 = x.stride(1);
  const T* p = x.data_ptr<T>();
  std::atomic<int64_t> first{n};
  at::parallel_for(0, n, std::max<int64_t>(1, 65536 / d), [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e && i < first.load(std::memory_order_relaxed); ++i) {
      const T* row = p + i * s0;
      T acc = 0;  // finite iff every entry is: x - x is 0 for finite x, NaN otherwise
      for (int64_t j = 0; j < d; ++j) acc += row[j * s1] - row[j * s1];
      if (acc != 0) {
        int64_t cur = first.load();
        while (i < cur && !first.compare_exchange_weak(cur, i)) {
        }
        return;
      }
    }
  });
  return first.load() == n ? -1 : first.load();
}

}  // namespace

void check_matrix(const torch::Tensor& x, const std::string& name) {
  GRADLENS_CHECK(x.defined(), name, ": the tensor is undefined; pass a [n, d] float matrix");
  GRADLENS_CHECK(x.dim() == 2, name, ": expected a 2-D [n, d] matrix, got ", x.dim(),
                 " dimensions ", x.sizes(), "; flatten each sample to one row");
  GRADLENS_CHECK(x.size(0) > 0 && x.size(1) > 0, name, ": the matrix is empty (shape ", x.sizes(),
                 "); it needs at least one row and one column");
  GRADLENS_CHECK(x.scalar_type() == torch::kFloat32 || x.scalar_type() == torch::kFloat64, name,
                 ": expected float32 or float64, got ", x.scalar_type(), "; convert with .to(torch::kFloat32)");
  if (x.device().type() == torch::kCPU) {
    const int64_t bad = x.scalar_type() == torch::kFloat32 ? validate_first_bad_row<float>(x)
                                                            : validate_first_bad_row<double>(x);
    GRADLENS_CHECK(bad < 0, name, ": row ", bad, " (of ", x.size(0),
                   ") contains NaN or Inf; remove or repair non-finite samples first");
    return;
  }
  const torch::Tensor row_ok = torch::isfinite(x).all(1);
  if (!row_ok.all().item<bool>()) {
    const int64_t bad = (~row_ok).nonzero().min().item<int64_t>();
    GRADLENS_CHECK(false, name, ": row ", bad, " (of ", x.size(0),
                   ") contains NaN or Inf; remove or repair non-finite samples first");
  }
}

void check_labels(const torch::Tensor& labels, int64_t n_rows, const std::string& name) {
  GRADLENS_CHECK(labels.defined(), name, ": the label tensor is undefined");
  GRADLENS_CHECK(labels.dim() == 1, name, ": expected a 1-D label vector, got shape ", labels.sizes());
  GRADLENS_CHECK(!at::isFloatingType(labels.scalar_type()) && labels.scalar_type() != torch::kBool, name,
                 ": labels must be an integer tensor (int64), got ", labels.scalar_type());
  GRADLENS_CHECK(labels.size(0) == n_rows, name, ": ", labels.size(0), " labels for ", n_rows,
                 " rows; pass exactly one label per row");
}

}  // namespace gradlens::core
