#include "gradlens/saliency/road.h"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <Eigen/SparseCholesky>
#include <Eigen/SparseCore>

#include <cmath>

#include "gradlens/core/check.h"

namespace gradlens::saliency {

namespace {

struct Neighbour {
  int dy, dx;
  double w;
};
// ROAD's weights: 1/6 for the direct, 1/12 for the diagonal neighbours (sum 1).
constexpr Neighbour kNeighbours[8] = {{-1, -1, 1.0 / 12}, {-1, 0, 1.0 / 6}, {-1, 1, 1.0 / 12}, {0, -1, 1.0 / 6},
                                      {0, 1, 1.0 / 6},    {1, -1, 1.0 / 12}, {1, 0, 1.0 / 6},  {1, 1, 1.0 / 12}};

// One image [C, H, W] (float64, contiguous, CPU) imputed in place where
// removed [H, W] (bool) is set: (sum of in-image neighbour weights) x_i -
// sum over removed neighbours w x_j = sum over kept neighbours w v_k.
void impute_one(double* img, const bool* removed, int64_t c, int64_t h, int64_t w) {
  const int64_t p = h * w;
  std::vector<int64_t> var(static_cast<size_t>(p), -1);
  int64_t m = 0;
  for (int64_t q = 0; q < p; ++q)
    if (removed[q]) var[q] = m++;
  if (m == 0) return;
  std::vector<Eigen::Triplet<double>> entries;
  entries.reserve(static_cast<size_t>(m) * 9);
  Eigen::MatrixXd rhs = Eigen::MatrixXd::Zero(m, c);
  for (int64_t y = 0; y < h; ++y)
    for (int64_t x = 0; x < w; ++x) {
      const int64_t q = y * w + x;
      const int64_t i = var[q];
      if (i < 0) continue;
      double diag = 0;
      for (const auto& nb : kNeighbours) {
        const int64_t yy = y + nb.dy, xx = x + nb.dx;
        if (yy < 0 || yy >= h || xx < 0 || xx >= w) continue;
        diag += nb.w;
        const int64_t r = yy * w + xx;
        if (var[r] >= 0) {
          entries.emplace_back(i, var[r], -nb.w);
        } else {
          for (int64_t ch = 0; ch < c; ++ch) rhs(i, ch) += nb.w * img[ch * p + r];
        }
      }
      entries.emplace_back(i, i, diag);
    }
  Eigen::SparseMatrix<double> a(m, m);
  a.setFromTriplets(entries.begin(), entries.end());
  // Symmetric (the weights are) and positive definite: every connected set of
  // removed pixels borders a kept one unless all pixels are removed.
  Eigen::SimplicialLDLT<Eigen::SparseMatrix<double>> solver(a);
  GRADLENS_CHECK(solver.info() == Eigen::Success, "linear_imputation: the imputation system could not be factorised");
  const Eigen::MatrixXd sol = solver.solve(rhs);
  for (int64_t q = 0; q < p; ++q)
    if (var[q] >= 0)
      for (int64_t ch = 0; ch < c; ++ch) img[ch * p + q] = sol(var[q], ch);
}

}  // namespace

torch::Tensor linear_imputation(const torch::Tensor& images, const torch::Tensor& removed) {
  GRADLENS_CHECK(images.dim() == 4 && images.is_floating_point(), "linear_imputation: images must be a float [N, C, "
                 "H, W] tensor, got ", images.sizes());
  GRADLENS_CHECK(removed.dim() == 3 && removed.scalar_type() == torch::kBool && removed.size(0) == images.size(0) &&
                     removed.size(1) == images.size(2) && removed.size(2) == images.size(3),
                 "linear_imputation: removed must be bool [N, H, W] for images ", images.sizes(), ", got ",
                 removed.sizes());
  const int64_t n = images.size(0), c = images.size(1), h = images.size(2), w = images.size(3);
  const auto all = removed.reshape({n, h * w}).all(1);
  GRADLENS_CHECK(n == 0 || !all.any().item<bool>(), "linear_imputation: image ",
                 n == 0 ? 0 : all.nonzero()[0][0].item<int64_t>(),
                 " has every pixel removed; nothing is left to impute from");
  auto out = images.to(torch::kCPU, torch::kDouble).contiguous().clone();
  const auto mask = removed.to(torch::kCPU).contiguous();
  double* o = out.data_ptr<double>();
  const bool* r = mask.data_ptr<bool>();
  at::parallel_for(0, n, 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) impute_one(o + i * c * h * w, r + i * h * w, c, h, w);
  });
  return out.to(images.options());
}

RoadResult road(const LogitsFn& model, const torch::Tensor& images, const torch::Tensor& maps,
                const torch::Tensor& targets, const RoadOptions& opts) {
  detail::check_faithfulness_inputs(images, maps, targets);
  GRADLENS_CHECK_OPTION(!opts.fractions.empty(), "road: give at least one removal fraction");
  for (const double f : opts.fractions)
    GRADLENS_CHECK_OPTION(f > 0 && f < 1, "road: removal fractions must lie in (0, 1), got ", f);
  GRADLENS_CHECK_OPTION(std::isfinite(opts.noise) && opts.noise >= 0, "road: noise must be >= 0, got ", opts.noise);
  GRADLENS_CHECK_OPTION(opts.batch_size >= 1, "--batch-size must be >= 1, got ", opts.batch_size);
  const int64_t n = images.size(0), c = images.size(1), h = images.size(2), w = images.size(3), p = h * w;
  const int64_t nf = static_cast<int64_t>(opts.fractions.size());
  const auto device = images.device();
  const auto cpu_images = images.to(torch::kCPU);
  const auto flat = maps.to(torch::kCPU, torch::kDouble).reshape({n, p});
  // Pixel order: descending (MoRF) and ascending (LeRF), ties in row-major order.
  const auto morf_order = std::get<1>(torch::sort(-flat, /*stable=*/true, 1, false));
  const auto lerf_order = std::get<1>(torch::sort(flat, /*stable=*/true, 1, false));
  auto gen = at::make_generator<at::CPUGeneratorImpl>(opts.seed);

  RoadResult r;
  r.fractions = torch::tensor(opts.fractions, torch::kDouble);
  r.morf = torch::empty({n, nf}, torch::kDouble);
  r.lerf = torch::empty({n, nf}, torch::kDouble);
  const int64_t per_image = 2 * nf;
  const int64_t chunk = std::max<int64_t>(1, opts.batch_size / per_image);
  const auto tgt_cpu = targets.to(torch::kCPU, torch::kLong);
  for (int64_t i0 = 0; i0 < n; i0 += chunk) {
    const int64_t i1 = std::min(n, i0 + chunk), m = i1 - i0;
    auto removed = torch::zeros({m, per_image, p}, torch::kBool);
    for (int64_t i = 0; i < m; ++i)
      for (int64_t o = 0; o < 2; ++o) {
        const auto& order = o == 0 ? morf_order : lerf_order;
        for (int64_t f = 0; f < nf; ++f) {
          const auto k = static_cast<int64_t>(std::llround(opts.fractions[f] * static_cast<double>(p)));
          removed[i][o * nf + f].index_fill_(0, order[i0 + i].slice(0, 0, k), true);
        }
      }
    const auto base = cpu_images.slice(0, i0, i1).unsqueeze(1).expand({m, per_image, c, h, w}).reshape(
        {m * per_image, c, h, w});
    const auto flat_removed = removed.reshape({m * per_image, h, w});
    auto imputed = linear_imputation(base, flat_removed);
    if (opts.noise > 0) {
      // One draw per image (its MoRF fractions, then LeRF), so the chunking does not matter.
      std::vector<torch::Tensor> noise;
      for (int64_t i = 0; i < m; ++i)
        noise.push_back(at::normal(0.0, opts.noise, {per_image, c, h, w}, gen, torch::TensorOptions(torch::kDouble)));
      imputed = imputed + (torch::cat(noise) * flat_removed.unsqueeze(1)).to(imputed.dtype());
    }
    const auto tgt = tgt_cpu.slice(0, i0, i1).repeat_interleave(per_image);
    const auto probs = detail::target_probs(model, imputed.to(device), tgt, opts.batch_size).reshape({m, per_image});
    r.morf.slice(0, i0, i1) = probs.slice(1, 0, nf);
    r.lerf.slice(0, i0, i1) = probs.slice(1, nf, per_image);
  }
  r.morf_mean = r.morf.mean(1);
  r.lerf_mean = r.lerf.mean(1);
  r.combined = (r.lerf_mean - r.morf_mean) / 2;
  return r;
}

}  // namespace gradlens::saliency
