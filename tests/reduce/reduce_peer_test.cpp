// gradlens::reduce (PCA, core::NumpyRandomState) against numpy / sklearn 1.2, run
// by tests/python/sk_reduce.py on the same data.
#include "gradlens/core/numpy_random.h"
#include "gradlens/reduce/pca.h"
#include "gradlens/reduce/range_finder.h"

#include "analysis/sk_peer.h"
#include "support/support.h"

#include <torch/types.h>

namespace gradlens::reduce {
namespace {

using test::SeededTest;
class ReducePeer : public SeededTest {};

struct Case {
  torch::Tensor x;
  PcaOptions opts;
  std::string sk_solver;
  std::string sk_normalizer = "auto";
};

TEST_F(ReducePeer, PcaAndRandomStateMatchNumpyAndScikitLearn) {
  if (!test::python_has("sklearn")) GTEST_SKIP() << "scikit-learn is not installed for /usr/bin/python3";
  auto data = [](int64_t n, int64_t d) {
    // A decaying spectrum with distinct gaps, mixed by a random rotation.
    const auto q = std::get<0>(torch::linalg_qr(torch::randn({d, d}, torch::kFloat64)));
    const auto scale = torch::pow(0.8, torch::arange(d, torch::kFloat64)) * 5;
    return torch::matmul(torch::randn({n, d}, torch::kFloat64) * scale, q) + torch::randn({d}, torch::kFloat64);
  };
  std::vector<Case> cases;
  auto add = [&cases](torch::Tensor x, int64_t k, PcaSolver solver, const char* sk, bool whiten, uint64_t seed) {
    Case c;
    c.x = x;
    c.opts.n_components = k;
    c.opts.solver = solver;
    c.opts.whiten = whiten;
    c.opts.seed = seed;
    c.sk_solver = sk;
    cases.push_back(c);
  };
  const auto tall = data(500, 20);
  const auto wide = data(80, 200);
  add(tall, 5, PcaSolver::kExact, "full", false, 0);          // covariance route
  add(tall, 5, PcaSolver::kFullSvd, "full", false, 0);
  add(wide, 10, PcaSolver::kExact, "full", false, 0);         // row-Gram route (n < d)
  add(wide, 10, PcaSolver::kFullSvd, "full", false, 0);
  add(wide.to(torch::kFloat32), 6, PcaSolver::kExact, "full", true, 0);  // row-Gram, float32, whitened
  add(data(1000, 50), 5, PcaSolver::kRandomized, "randomized", false, 0);
  add(data(60, 300), 4, PcaSolver::kRandomized, "randomized", false, 3);  // transposed
  add(data(300, 10), 3, PcaSolver::kExact, "full", true, 0);
  add(data(400, 30).to(torch::kFloat32), 4, PcaSolver::kExact, "full", false, 0);
  add(data(400, 30).to(torch::kFloat32), 4, PcaSolver::kRandomized, "randomized", false, 5);
  // Few power iterations on a flat spectrum: the sketch has not converged to
  // the exact components, so only the same test matrix and the same products
  // give sklearn's answer (a normaliser keeps the span: it changes rounding
  // only).
  const size_t first_flat = cases.size();
  const auto flat = torch::randn({3000, 120}, torch::kFloat64);
  add(flat, 5, PcaSolver::kRandomized, "randomized", false, 7);                  // n_iter 2: no normaliser
  add(flat, 5, PcaSolver::kRandomized, "randomized", false, 8);                  // n_iter 3: LU
  add(flat, 5, PcaSolver::kRandomized, "randomized", false, 9);                  // n_iter 3: QR
  add(flat.to(torch::kFloat32), 8, PcaSolver::kRandomized, "randomized", true, 10);  // n_iter 4: LU, whitened
  add(torch::randn({90, 500}, torch::kFloat64), 6, PcaSolver::kRandomized, "randomized", false, 11);  // wide, LU
  const int n_iters[] = {2, 3, 3, 4, 3};
  const char* normalizers[] = {"auto", "auto", "QR", "auto", "LU"};
  for (size_t i = first_flat; i < cases.size(); ++i) {
    cases[i].opts.n_iter = n_iters[i - first_flat];
    const std::string norm = normalizers[i - first_flat];
    cases[i].sk_normalizer = norm;
    cases[i].opts.power_iteration_normalizer = norm == "QR"   ? PowerIterationNormalizer::kQR
                                               : norm == "LU" ? PowerIterationNormalizer::kLU
                                                              : PowerIterationNormalizer::kAuto;
  }

  test::TempDir dir;
  nlohmann::json spec = nlohmann::json::array();
  for (size_t i = 0; i < cases.size(); ++i) {
    test::save_npy(dir / ("x_" + std::to_string(i) + ".npy"), cases[i].x);
    nlohmann::json c = {{"n_components", cases[i].opts.n_components}, {"solver", cases[i].sk_solver},
                        {"whiten", cases[i].opts.whiten}, {"seed", cases[i].opts.seed},
                        {"power_iteration_normalizer", cases[i].sk_normalizer}};
    if (cases[i].opts.n_iter >= 0) c["iterated_power"] = cases[i].opts.n_iter;
    spec.push_back(c);
  }
  std::ofstream(dir / "cases.json") << spec.dump();
  // The range finder's Q itself (not only its span) for each normaliser.
  // They differ in rounding only: each normalised sketch is the plain
  // product times an upper-triangular matrix (P L = Y U^-1, Q = Y R^-1), so
  // the final QR returns the same Q up to float error.
  const auto range_a = data(400, 40);
  test::save_npy(dir / "range_a.npy", range_a);
  struct RangeCase {
    int n_iter;
    const char* name;
    PowerIterationNormalizer norm;
  };
  const std::vector<RangeCase> range_cases = {{3, "LU", PowerIterationNormalizer::kLU},
                                              {3, "QR", PowerIterationNormalizer::kQR},
                                              {2, "none", PowerIterationNormalizer::kNone},
                                              {2, "auto", PowerIterationNormalizer::kAuto},
                                              {3, "auto", PowerIterationNormalizer::kAuto}};
  nlohmann::json range_spec = nlohmann::json::array();
  for (const auto& rc : range_cases) {
    range_spec.push_back({{"size", 8}, {"n_iter", rc.n_iter}, {"normalizer", rc.name}, {"seed", 4}});
  }
  std::ofstream(dir / "range.json") << range_spec.dump();
  const auto ref = test::run_peer_script("sk_reduce.py", dir.path().string());
  double worst64 = 0, worst32 = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    const auto& c = cases[i];
    const auto& r = ref["pca"][i];
    const Pca p = pca_fit(c.x, c.opts);
    const bool f32 = c.x.scalar_type() == torch::kFloat32;
    const double tol = f32 ? 2e-4 : 1e-8;
    auto vec = [](const nlohmann::json& j) { return torch::tensor(j.get<std::vector<double>>(), torch::kFloat64); };
    auto rel = [](const torch::Tensor& a, const torch::Tensor& b) {
      return test::max_abs_diff(a, b) / std::max(1e-300, b.abs().max().item<double>());
    };
    const double dev = std::max(
        {test::max_abs_diff(p.components, test::load_npy(dir / ("components_" + std::to_string(i) + ".npy"))),
         rel(p.explained_variance, vec(r["explained_variance"])),
         rel(p.explained_variance_ratio, vec(r["explained_variance_ratio"])),
         rel(p.singular_values, vec(r["singular_values"])), rel(p.mean, vec(r["mean"])),
         rel(pca_transform(p, c.x), test::load_npy(dir / ("scores_" + std::to_string(i) + ".npy"))),
         std::abs(p.noise_variance - r["noise_variance"].get<double>()) /
             std::max(1e-12, std::abs(r["noise_variance"].get<double>()))});
    (f32 ? worst32 : worst64) = std::max(f32 ? worst32 : worst64, dev);
    EXPECT_LT(dev, tol) << "PCA case " << i << " (" << c.sk_solver << ")";
  }
  std::cout << "[ pca peer ] max deviation from sklearn (components abs, others relative): float64 " << worst64
            << ", float32 " << worst32 << "\n";

  for (size_t i = 0; i < range_cases.size(); ++i) {
    const auto& rc = range_cases[i];
    const auto q = randomized_range_finder(range_a, core::NumpyRandomState(4).normal(40, 8), rc.n_iter, rc.norm);
    const auto want = test::load_npy(dir / ("range_q_" + std::to_string(i) + ".npy"));
    EXPECT_LT(test::max_abs_diff(q, want), 1e-10) << "range finder, normalizer " << rc.name << ", n_iter "
                                                   << rc.n_iter;
  }

  core::NumpyRandomState rs(12345);
  const auto& g = ref["rng"];
  for (const auto& v : g["randint"]) EXPECT_EQ(rs.randint(1000), v.get<int64_t>());
  for (const auto& v : g["uniform"]) EXPECT_EQ(rs.random_double(), v.get<double>());
  EXPECT_EQ(rs.permutation(20), g["permutation"].get<std::vector<int64_t>>());
  const auto normal = rs.normal(3, 3);
  for (int64_t k = 0; k < 9; ++k) EXPECT_DOUBLE_EQ(normal.view(-1)[k].item<double>(), g["normal"][k].get<double>());
  for (const auto& v : g["big"]) EXPECT_EQ(rs.randint(5000000000LL), v.get<int64_t>());
}

}  // namespace
}  // namespace gradlens::reduce
