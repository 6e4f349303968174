#include "gradlens/core/collectives.h"

#include "gradlens/core/check.h"
#include "gradlens/core/tensor_checks.h"

namespace gradlens::core {

namespace {

class SingleProcess final : public Collectives {
 public:
  int rank() const override { return 0; }
  int world_size() const override { return 1; }
  torch::Tensor& all_reduce_sum(torch::Tensor& t) override { return t; }
  torch::Tensor& broadcast(torch::Tensor& t, int root) override {
    GRADLENS_CHECK(root == 0, "broadcast: root ", root, " is outside [0, 1)");
    return t;
  }
  torch::Tensor all_gather_rows(const torch::Tensor& local) override { return local; }
  torch::Tensor gather_rows(const torch::Tensor& local, int root) override {
    GRADLENS_CHECK(root == 0, "gather_rows: root ", root, " is outside [0, 1)");
    return local;
  }
};

}  // namespace

Collectives& single_process() {
  static SingleProcess instance;  // stateless
  return instance;
}

std::pair<int64_t, int64_t> shard_range(int64_t n, int rank, int world_size, int64_t align) {
  GRADLENS_CHECK(n >= 0 && world_size >= 1 && rank >= 0 && rank < world_size && align >= 1,
                 "shard_range: bad arguments n=", n, " rank=", rank, " world_size=", world_size,
                 " align=", align);
  const int64_t groups = (n + align - 1) / align;
  const int64_t base = groups / world_size, extra = groups % world_size;
  const int64_t g0 = rank * base + std::min<int64_t>(rank, extra);
  const int64_t g1 = g0 + base + (rank < extra ? 1 : 0);
  return {std::min(n, g0 * align), std::min(n, g1 * align)};
}

ShardLayout shard_layout(Collectives& comm, const torch::Tensor& x_local, const std::string& fn) {
  check_matrix(x_local, fn + ": x_local (rank " + std::to_string(comm.rank()) + ")");
  const int64_t d = x_local.size(1);
  const auto dtype = x_local.scalar_type();
  auto shape_row = torch::tensor({x_local.size(0), d, static_cast<int64_t>(dtype)}, torch::kInt64).unsqueeze(0);
  const torch::Tensor shapes = comm.all_gather_rows(shape_row);
  ShardLayout l;
  l.d = d;
  for (int64_t r = 0; r < shapes.size(0); ++r) {
    GRADLENS_CHECK(shapes[r][1].item<int64_t>() == d && shapes[r][2].item<int64_t>() == static_cast<int64_t>(dtype),
                   fn, ": rank ", r, " has ", shapes[r][1].item<int64_t>(), " columns (",
                   c10::toString(static_cast<c10::ScalarType>(shapes[r][2].item<int64_t>())), ") but rank ",
                   comm.rank(), " has ", d, " (", c10::toString(dtype), "); every rank must pass the same features");
    if (r < comm.rank()) l.offset += shapes[r][0].item<int64_t>();
    l.n += shapes[r][0].item<int64_t>();
    l.rows.push_back(shapes[r][0].item<int64_t>());
  }
  return l;
}

}  // namespace gradlens::core
