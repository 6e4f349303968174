// Mutual-information estimators for gradients (the seed's L_MI = −I):
// a Gaussian closed form on projected gradients, and MINE (Belghazi et al.
// 2018) with the Donsker–Varadhan bound and its moving-average correction.
#pragma once

#include <torch/types.h>

#include <memory>
#include <string>
#include <vector>

namespace gradlens::train {

/// I(X;Y) = ½ ln(|Σ_X| |Σ_Y| / |Σ_XY|) for jointly Gaussian X [n, dx] and
/// Y [n, dy] (rows are samples), in nats. Covariances are shrunk towards
/// their scaled identity: Σ ← (1−s)Σ + s·(tr Σ / d)·I, then log-determinants
/// come from Cholesky factors. Differentiable. Throws c10::Error (naming
/// --mi-shrinkage) when a covariance is not positive definite, and when
/// n < 2 or the shapes disagree.
torch::Tensor gaussian_mi(const torch::Tensor& x, const torch::Tensor& y, double shrinkage = 1e-3);

/// Rows i<j of `g` with equal labels, as two aligned matrices (both orders
/// of every pair, so X and Y have the same marginal): ([M, P], [M, P]).
std::pair<torch::Tensor, torch::Tensor> same_class_pairs(const torch::Tensor& g,
                                                         const torch::Tensor& labels);

/// A seeded Gaussian random projection [P, k] scaled by 1/sqrt(k)
/// (Johnson–Lindenstrauss), on `like`'s device and dtype.
torch::Tensor random_projection(int64_t p, int64_t k, uint64_t seed, const torch::Tensor& like);

/// The top-k principal directions [P, k] of the rows of `g` (no grad), for
/// projecting gradients before the Gaussian estimate.
torch::Tensor pca_projection(const torch::Tensor& g, int64_t k);

struct MineOptions {
  int64_t hidden = 64;
  /// Moving-average rate of E[e^T] for the bias-corrected gradient.
  double ema = 0.01;
};

/// MINE: a statistics network T_φ(x, y) (MLP, ELU) trained jointly with the
/// model. The estimate is the Donsker–Varadhan bound
///   I ≥ E_p(x,y)[T] − log E_p(x)p(y)[e^T],
/// marginals by shuffling y within the batch. loss() returns a surrogate
/// whose gradient is the MINE bias-corrected gradient of −I.
class MineEstimator {
 public:
  MineEstimator(int64_t dim_x, int64_t dim_y, const MineOptions& opts = {});
  ~MineEstimator();
  MineEstimator(MineEstimator&&) noexcept;

  struct Step {
    torch::Tensor loss;  ///< minimise this (surrogate for −I, with the EMA correction)
    double mi = 0;       ///< the DV lower bound on this batch, in nats
  };
  /// x [n, dim_x], y [n, dim_y]; `perm` shuffles y for the marginal (a seeded
  /// permutation of [0, n)).
  Step step(const torch::Tensor& x, const torch::Tensor& y, const torch::Tensor& perm);

  /// The DV bound without gradients (for evaluation).
  double estimate(const torch::Tensor& x, const torch::Tensor& y, const torch::Tensor& perm);

  std::vector<torch::Tensor> parameters();
  void to(torch::Device device, torch::Dtype dtype);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace gradlens::train
