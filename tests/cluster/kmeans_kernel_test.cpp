#include "gradlens/cluster/kmeans_kernel.h"

#include <torch/types.h>

#include "support/support.h"

#include <vector>

namespace gradlens::cluster::detail {
namespace {

// The instruction sets this CPU can run: the best, and AVX2 below AVX-512.
std::vector<SimdIsa> runnable_isas() {
  std::vector<SimdIsa> out;
  if (simd_isa() == SimdIsa::kAvx512) out.push_back(SimdIsa::kAvx512);
  if (simd_isa() != SimdIsa::kNone) out.push_back(SimdIsa::kAvx2);
  return out;
}

// Scores against float64 dot products of the same float32 numbers, for k
// from 1 to 33 and d with and without a tail (d % 16 != 0), on an odd number
// of rows (the row-group remainder). Where the kernel does not apply
// (small_k_width 0) it must say so, and the callers use the BLAS.
TEST(KMeansKernelTest, ScoresEqualFloat64DotProducts) {
  if (simd_isa() == SimdIsa::kNone) GTEST_SKIP() << "no AVX2/AVX-512 on this CPU: the BLAS path is used instead";
  torch::manual_seed(11);
  int checked = 0;
  for (const SimdIsa isa : runnable_isas()) {
    for (const int64_t d : {1, 16, 37, 512}) {
      for (int64_t k = 1; k <= 33; ++k) {
        const int64_t ld = small_k_width(k, isa);
        if (ld == 0) continue;
        ASSERT_GE(ld, k);
        const int64_t rows = 7;
        const auto x = torch::randn({rows, d});
        const auto c = torch::randn({k, d});
        std::vector<float> panel(small_k_panel_size(k, d, isa)), out(rows * ld, -1.0F);
        small_k_pack(c.data_ptr<float>(), k, d, panel.data(), isa);
        small_k_scores(x.data_ptr<float>(), rows, d, k, panel.data(), out.data(), isa);
        const auto want = torch::matmul(x.to(torch::kFloat64), c.to(torch::kFloat64).t());
        const auto got = torch::from_blob(out.data(), {rows, ld}).slice(1, 0, k).to(torch::kFloat64);
        // float32 rounding of a d-term dot product of unit normals.
        EXPECT_LT(test::max_abs_diff(got, want), 2e-6 * d) << "k " << k << " d " << d << " isa " << int(isa);
        ++checked;
      }
    }
  }
  std::cout << "[ kmeans kernel ] " << checked << " (isa, k, d) cases on this CPU; width for k = 10: "
            << small_k_width(10) << "\n";
  if (simd_isa() == SimdIsa::kAvx512) {
    EXPECT_EQ(checked, 4 * 16 + 4 * 32);  // 4 values of d; AVX-512: k <= 16; AVX2: k <= 32
  }
  EXPECT_EQ(small_k_width(0), 0);
  EXPECT_EQ(small_k_width(1000), 0);
  EXPECT_EQ(small_k_width(3, SimdIsa::kNone), 0);
  EXPECT_THROW(small_k_scores(nullptr, 0, 1, 1, nullptr, nullptr, SimdIsa::kNone), c10::Error);
}

TEST(KMeansKernelTest, RowSumsAndDistancesInFloat64) {
  torch::manual_seed(12);
  for (const int64_t d : {1, 8, 13, 512}) {
    const auto x = torch::randn({d}) * 3;
    const auto c = torch::randn({d});
    // add_row_f64: exactly the scalar float64 loop.
    std::vector<double> want(d, 0.25);
    for (int64_t t = 0; t < d; ++t) want[t] += static_cast<double>(x.data_ptr<float>()[t]);
    std::vector<SimdIsa> isas = runnable_isas();
    isas.push_back(SimdIsa::kNone);
    for (const SimdIsa isa : isas) {
      std::vector<double> s(d, 0.25);
      add_row_f64(x.data_ptr<float>(), d, s.data(), isa);
      EXPECT_EQ(s, want) << "d " << d;
    }
    // sq_dist_f64: |x - c|^2 of the float32 numbers in float64.
    const double ref = (x.to(torch::kFloat64) - c.to(torch::kFloat64)).pow(2).sum().item<double>();
    EXPECT_NEAR(sq_dist_f64(x.data_ptr<float>(), c.data_ptr<float>(), d), ref, 1e-13 * ref) << "d " << d;
  }
}

}  // namespace
}  // namespace gradlens::cluster::detail
