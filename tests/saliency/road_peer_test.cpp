// ROAD's linear imputation and its MoRF/LeRF probabilities equal a scipy
// version set up pixel by pixel from the paper's definition (tests/python/
// road_reference.py), without the noise, on a linear softmax model.
#include <torch/torch.h>

#include "gradlens/core/npy.h"
#include "gradlens/saliency/road.h"
#include "support/support.h"

namespace gradlens::saliency {
namespace {

TEST(RoadPeer, ImputationAndProbabilitiesEqualScipy) {
  if (!test::python_has("scipy")) GTEST_SKIP() << "python3-scipy is not installed";
  test::TempDir dir;
  torch::manual_seed(8);
  const int64_t n = 4, c = 3, h = 9, w = 7, k = 5;
  const auto images = torch::randn({n, c, h, w}, torch::kDouble);
  const auto maps = torch::floor(torch::rand({n, h, w}, torch::kDouble) * 6) / 6;  // ties: row-major on both sides
  const auto targets = torch::randint(k, {n}, torch::kLong);
  const auto W = torch::randn({k, c * h * w}, torch::kDouble) * 0.3;
  const auto b = torch::randn({k}, torch::kDouble);
  RoadOptions o;
  o.fractions = {0.1, 0.35, 0.5, 0.9};
  o.noise = 0;
  o.batch_size = 5;  // chunks of less than one image's 8 imputations
  for (const auto& [name, t] : std::vector<std::pair<std::string, torch::Tensor>>{
           {"images", images}, {"maps", maps}, {"targets", targets}, {"W", W}, {"b", b},
           {"fractions", torch::tensor(o.fractions, torch::kDouble)}})
    core::write_npy(dir / (name + ".npy"), t);
  const auto r = test::run_command(std::string(test::kPython) + " " +
                                   test::source_path("tests/python/road_reference.py").string() + " " +
                                   dir.path().string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto ref = [&](const std::string& name) { return core::read_npy(dir / ("ref_" + name + ".npy")); };

  const auto removed = core::read_npy(dir / "removed.npy").to(torch::kBool);
  const auto imputed = linear_imputation(images[0].unsqueeze(0).expand({2, c, h, w}), removed);
  EXPECT_LT(test::max_abs_diff(imputed, ref("imputed")), 1e-12);

  const LogitsFn model = [&](const torch::Tensor& x) { return x.flatten(1).matmul(W.t()) + b; };
  const auto res = road(model, images, maps, targets, o);
  EXPECT_LT(test::max_abs_diff(res.morf, ref("morf")), 1e-12);
  EXPECT_LT(test::max_abs_diff(res.lerf, ref("lerf")), 1e-12);
  EXPECT_LT(test::max_abs_diff(res.combined, (ref("lerf").mean(1) - ref("morf").mean(1)) / 2), 1e-12);
}

}  // namespace
}  // namespace gradlens::saliency
