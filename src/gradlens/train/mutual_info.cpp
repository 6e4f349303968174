#include "gradlens/train/mutual_info.h"
#include <torch/torch.h>

#include "gradlens/core/check.h"

namespace gradlens::train {

namespace {

torch::Tensor covariance(const torch::Tensor& z, double shrinkage) {
  auto c = z - z.mean(0, true);
  auto cov = c.t().matmul(c) / static_cast<double>(z.size(0) - 1);
  const int64_t d = cov.size(0);
  auto target = cov.diagonal().mean() * torch::eye(d, cov.options());
  return (1.0 - shrinkage) * cov + shrinkage * target;
}

torch::Tensor logdet_chol(const torch::Tensor& cov, const char* what) {
  auto res = torch::linalg_cholesky_ex(cov);
  const auto info = std::get<1>(res).item<int64_t>();
  GRADLENS_CHECK(info == 0, "the ", what,
                 " covariance of the gradients is not positive definite (too few samples for the "
                 "projection size, or constant gradients); raise --mi-shrinkage or lower --mi-dims");
  return 2.0 * std::get<0>(res).diagonal().log().sum();
}

}  // namespace

torch::Tensor gaussian_mi(const torch::Tensor& x, const torch::Tensor& y, double shrinkage) {
  GRADLENS_CHECK(x.dim() == 2 && y.dim() == 2 && x.size(0) == y.size(0),
                 "gaussian_mi: x and y must be [n, d] with the same n, got ", x.sizes(), " and ",
                 y.sizes());
  GRADLENS_CHECK(x.size(0) >= 2, "gaussian_mi needs at least 2 samples, got ", x.size(0));
  GRADLENS_CHECK(shrinkage >= 0 && shrinkage < 1, "--mi-shrinkage must be in [0, 1), got ",
                 shrinkage);
  auto lx = logdet_chol(covariance(x, shrinkage), "X");
  auto ly = logdet_chol(covariance(y, shrinkage), "Y");
  auto lxy = logdet_chol(covariance(torch::cat({x, y}, 1), shrinkage), "joint");
  return 0.5 * (lx + ly - lxy);
}

std::pair<torch::Tensor, torch::Tensor> same_class_pairs(const torch::Tensor& g,
                                                         const torch::Tensor& labels) {
  GRADLENS_CHECK(g.dim() == 2 && labels.dim() == 1 && labels.size(0) == g.size(0),
                 "same_class_pairs: g [B, P] and labels [B] expected, got ", g.sizes(), " and ",
                 labels.sizes());
  auto lab = labels.to(torch::kCPU);
  auto same = lab.unsqueeze(0).eq(lab.unsqueeze(1));
  same.fill_diagonal_(false);
  auto idx = same.nonzero();  // [M, 2], both orders
  auto i = idx.select(1, 0).to(g.device());
  auto j = idx.select(1, 1).to(g.device());
  return {g.index_select(0, i), g.index_select(0, j)};
}

torch::Tensor random_projection(int64_t p, int64_t k, uint64_t seed, const torch::Tensor& like) {
  GRADLENS_CHECK(k >= 1, "--mi-dims must be >= 1, got ", k);
  auto gen = at::detail::createCPUGenerator(seed);
  auto r = torch::randn({p, k}, gen, torch::TensorOptions().dtype(torch::kFloat64));
  return (r / std::sqrt(static_cast<double>(k))).to(like.options().requires_grad(false));
}

torch::Tensor pca_projection(const torch::Tensor& g, int64_t k) {
  torch::NoGradGuard ng;
  auto c = g - g.mean(0, true);
  auto svd = torch::linalg_svd(c, /*full_matrices=*/false);
  auto vh = std::get<2>(svd);
  GRADLENS_CHECK(k <= vh.size(0), "--mi-dims ", k, " exceeds the rank bound ", vh.size(0));
  return vh.slice(0, 0, k).t().contiguous();
}

struct MineEstimator::Impl {
  torch::nn::Sequential net;
  MineOptions opts;
  double ma = -1;  // moving average of E[e^T]
};

MineEstimator::MineEstimator(int64_t dx, int64_t dy, const MineOptions& opts)
    : impl_(std::make_unique<Impl>()) {
  impl_->opts = opts;
  impl_->net = torch::nn::Sequential(torch::nn::Linear(dx + dy, opts.hidden), torch::nn::ELU(),
                                     torch::nn::Linear(opts.hidden, opts.hidden), torch::nn::ELU(),
                                     torch::nn::Linear(opts.hidden, 1));
}
MineEstimator::~MineEstimator() = default;
MineEstimator::MineEstimator(MineEstimator&&) noexcept = default;

MineEstimator::Step MineEstimator::step(const torch::Tensor& x, const torch::Tensor& y,
                                        const torch::Tensor& perm) {
  auto tj = impl_->net->forward(torch::cat({x, y}, 1)).squeeze(1);
  auto tm = impl_->net->forward(torch::cat({x, y.index_select(0, perm)}, 1)).squeeze(1);
  // log-mean-exp for the DV value; exp-mean for the corrected gradient.
  const double n = static_cast<double>(tm.size(0));
  auto lme = torch::logsumexp(tm, 0) - std::log(n);
  Step s;
  s.mi = (tj.mean() - lme).item<double>();
  const double emt = std::exp(lme.item<double>());
  impl_->ma = impl_->ma < 0 ? emt : (1 - impl_->opts.ema) * impl_->ma + impl_->opts.ema * emt;
  // d/dφ [mean T_j − mean e^{T_m} / ma] = E_j[∇T] − E_m[e^T ∇T] / ma.
  s.loss = -(tj.mean() - torch::exp(tm).mean() / impl_->ma);
  return s;
}

double MineEstimator::estimate(const torch::Tensor& x, const torch::Tensor& y,
                               const torch::Tensor& perm) {
  torch::NoGradGuard ng;
  auto tj = impl_->net->forward(torch::cat({x, y}, 1)).squeeze(1);
  auto tm = impl_->net->forward(torch::cat({x, y.index_select(0, perm)}, 1)).squeeze(1);
  return (tj.mean() - (torch::logsumexp(tm, 0) - std::log(static_cast<double>(tm.size(0)))))
      .item<double>();
}

std::vector<torch::Tensor> MineEstimator::parameters() { return impl_->net->parameters(); }

void MineEstimator::to(torch::Device device, torch::Dtype dtype) { impl_->net->to(device, dtype); }

}  // namespace gradlens::train
