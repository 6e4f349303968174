// Deletion/insertion curves, average drop / increase in confidence and the
// localisation metrics equal a numpy re-implementation that follows the
// papers image by image and pixel by pixel (tests/python/
// faithfulness_reference.py), on a linear softmax model in float64.
#include <torch/torch.h>

#include "gradlens/core/npy.h"
#include "gradlens/saliency/faithfulness.h"
#include "gradlens/saliency/localisation.h"
#include "support/support.h"

namespace gradlens::saliency {
namespace {

class FaithfulnessPeer : public test::SeededTest {
 protected:
  void SetUp() override {
    SeededTest::SetUp();
    if (!test::python_has("numpy")) GTEST_SKIP() << "python3-numpy is not installed";
    const int64_t n = 6, c = 2, h = 8, w = 8, k = 4;
    images = torch::randn({n, c, h, w}, torch::kDouble);
    // Quantised maps: many ties, broken in row-major order on both sides.
    maps = torch::floor(torch::rand({n, h, w}, torch::kDouble) * 8) / 8;
    masks = torch::zeros({n, h, w}, torch::kDouble);
    for (int64_t i = 0; i < n - 1; ++i) masks[i].slice(0, i % 3, i % 3 + 3).slice(1, 1 + i % 4, 5 + i % 4).fill_(1);
    // The last image has an empty mask: NaN for the localisation metrics.
    targets = torch::randint(k, {n}, torch::kLong);
    W = torch::randn({k, c * h * w}, torch::kDouble) * 0.3;
    b = torch::randn({k}, torch::kDouble);
    for (const auto& [name, t] : std::vector<std::pair<std::string, torch::Tensor>>{
             {"images", images}, {"maps", maps}, {"masks", masks}, {"targets", targets}, {"W", W}, {"b", b}})
      core::write_npy(dir / (name + ".npy"), t);
    const auto r = test::run_command(std::string(test::kPython) + " " +
                                     test::source_path("tests/python/faithfulness_reference.py").string() + " " +
                                     dir.path().string());
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  torch::Tensor ref(const std::string& name) const { return core::read_npy(dir / ("ref_" + name + ".npy")); }
  LogitsFn model() const {
    return [this](const torch::Tensor& x) { return x.flatten(1).matmul(W.t()) + b; };
  }
  test::TempDir dir;
  torch::Tensor images, maps, masks, targets, W, b;
};

TEST_F(FaithfulnessPeer, DeletionAndInsertionCurvesEqualThePixelByPixelLoop) {
  for (const auto baseline : {Baseline::kZero, Baseline::kMean, Baseline::kBlur}) {
    PerturbationOptions o;
    o.steps = 7;  // 64 pixels: uneven counts per step
    o.baseline = baseline;
    o.blur_sigma = 1.0;
    o.batch_size = 5;  // several chunks, a partial last batch
    const std::string kind = baseline_name(baseline);
    const auto del = deletion_curve(model(), images, maps, targets, o);
    const auto ins = insertion_curve(model(), images, maps, targets, o);
    EXPECT_LT(test::max_abs_diff(del.probs, ref("deletion_" + kind + "_probs")), 1e-12) << kind;
    EXPECT_LT(test::max_abs_diff(del.auc, ref("deletion_" + kind + "_auc")), 1e-12) << kind;
    EXPECT_LT(test::max_abs_diff(ins.probs, ref("insertion_" + kind + "_probs")), 1e-12) << kind;
    EXPECT_LT(test::max_abs_diff(ins.auc, ref("insertion_" + kind + "_auc")), 1e-12) << kind;
    // Deletion ends at the baseline, insertion at the image.
    EXPECT_LT(test::max_abs_diff(del.probs.select(1, 7), ins.probs.select(1, 0)), 1e-12) << kind;
  }
}

TEST_F(FaithfulnessPeer, PatchCurvesEqualThePatchByPatchLoop) {
  for (const auto baseline : {Baseline::kZero, Baseline::kMean}) {
    PerturbationOptions o;
    o.steps = 7;       // 16 patches of 2 x 2: uneven counts per step
    o.patch_size = 2;  // quantised maps: ties between patch sums too
    o.baseline = baseline;
    o.batch_size = 5;
    const std::string kind = baseline_name(baseline);
    const auto del = deletion_curve(model(), images, maps, targets, o);
    const auto ins = insertion_curve(model(), images, maps, targets, o);
    EXPECT_LT(test::max_abs_diff(del.probs, ref("deletion_patch2_" + kind + "_probs")), 1e-12) << kind;
    EXPECT_LT(test::max_abs_diff(del.auc, ref("deletion_patch2_" + kind + "_auc")), 1e-12) << kind;
    EXPECT_LT(test::max_abs_diff(ins.probs, ref("insertion_patch2_" + kind + "_probs")), 1e-12) << kind;
    EXPECT_LT(test::max_abs_diff(ins.auc, ref("insertion_patch2_" + kind + "_auc")), 1e-12) << kind;
    // Patches are not pixels: the curves differ from the pixel ones.
    EXPECT_GT(test::max_abs_diff(del.probs, ref("deletion_" + kind + "_probs")), 1e-6) << kind;
  }
  PerturbationOptions bad;
  bad.patch_size = 3;
  GRADLENS_EXPECT_THROWS_WITH(deletion_curve(model(), images, maps, targets, bad),
                              "--patch-size 3 must divide the image size 8 x 8");
}

TEST_F(FaithfulnessPeer, ConfidenceChangeEqualsTheReference) {
  const auto r = confidence_change(model(), images, maps, targets, 4);
  EXPECT_LT(test::max_abs_diff(r.drop, ref("drop")), 1e-12);
  EXPECT_TRUE(torch::equal(r.increase, ref("increase")));
}

TEST_F(FaithfulnessPeer, LocalisationEqualsTheReference) {
  const auto same_with_nan = [](const torch::Tensor& a, const torch::Tensor& e) {
    return torch::equal(torch::isnan(a), torch::isnan(e)) &&
           test::max_abs_diff(torch::nan_to_num(a), torch::nan_to_num(e)) < 1e-12;
  };
  const auto pointing = ref("pointing");
  const double tolerances[] = {0.0, 1.0, 1.5, 2.0, 3.0};
  for (int64_t t = 0; t < 5; ++t)
    EXPECT_TRUE(same_with_nan(pointing_game(maps, masks, tolerances[t]), pointing[t])) << tolerances[t];
  // The tolerances give different answers on these images: the test can tell.
  EXPECT_FALSE(torch::equal(torch::nan_to_num(pointing[0]), torch::nan_to_num(pointing[4])));
  EXPECT_TRUE(same_with_nan(energy_pointing_game(maps, masks), ref("energy")));
  EXPECT_TRUE(same_with_nan(relevance_rank_accuracy(maps, masks), ref("rank")));
}

}  // namespace
}  // namespace gradlens::saliency
