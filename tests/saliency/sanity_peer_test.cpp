// Spearman rank correlation equals scipy.stats.spearmanr and SSIM equals
// scikit-image's structural_similarity, on maps with ties.
#include "gradlens/saliency/sanity.h"

#include <torch/torch.h>

#include "gradlens/core/npy.h"
#include "support/support.h"

namespace gradlens::saliency {
namespace {

TEST(SanityPeer, SpearmanAndSsimEqualScipyAndScikitImage) {
  if (!test::python_has("scipy") || !test::python_has("skimage"))
    GTEST_SKIP() << "python3-scipy / python3-skimage are not installed";
  torch::manual_seed(4);
  test::TempDir dir;
  const auto a = torch::rand({5, 12, 10}, torch::kDouble);
  // b: a noisy copy, quantised so that both maps have many ties.
  const auto b = torch::clamp(torch::round((a + 0.3 * torch::randn_like(a)) * 6) / 6, 0, 1);
  const auto aq = torch::round(a * 10) / 10;
  core::write_npy(dir / "a.npy", aq);
  core::write_npy(dir / "b.npy", b);
  const auto r = test::run_command(std::string(test::kPython) + " " +
                                   test::source_path("tests/python/sanity_reference.py").string() + " " +
                                   dir.path().string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_LT(test::max_abs_diff(spearman_rank_correlation(aq, b), core::read_npy(dir / "ref_spearman.npy")), 1e-12);
  EXPECT_LT(test::max_abs_diff(ssim(aq, b), core::read_npy(dir / "ref_ssim.npy")), 1e-12);
}

}  // namespace
}  // namespace gradlens::saliency
