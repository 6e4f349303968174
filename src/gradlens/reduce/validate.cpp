#include "gradlens/reduce/validate.h"
#include <torch/torch.h>

#include "gradlens/core/check.h"

namespace gradlens::reduce {

void check_matrix(const torch::Tensor& x, const std::string& name) {
  GRADLENS_CHECK(x.defined(), name, ": the tensor is undefined; pass a [n, d] float matrix");
  GRADLENS_CHECK(x.dim() == 2, name, ": expected a 2-D [n, d] matrix, got ", x.dim(),
                 " dimensions ", x.sizes(), "; flatten each sample to one row");
  GRADLENS_CHECK(x.size(0) > 0 && x.size(1) > 0, name, ": the matrix is empty (shape ", x.sizes(),
                 "); it needs at least one row and one column");
  GRADLENS_CHECK(x.scalar_type() == torch::kFloat32 || x.scalar_type() == torch::kFloat64, name,
                 ": expected float32 or float64, got ", x.scalar_type(), "; convert with .to(torch::kFloat32)");
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

}  // namespace gradlens::reduce
