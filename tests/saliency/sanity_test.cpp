// The random-logit test on heads whose answer is known in closed form; the
// randomisation test's kept maps.
#include "gradlens/saliency/sanity.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "gradlens/models/resnet.h"
#include "saliency/saliency_test_util.h"

namespace gradlens::saliency {
namespace {

using testing::SmoothNet;

// Sets the head's class rows (fc.weight) and zeroes its bias.
void set_head(SmoothNet& net, const torch::Tensor& rows) {
  torch::NoGradGuard ng;
  for (auto& [name, p] : net.named_parameters()) {
    if (name == "fc.weight") p.copy_(rows);
    if (name == "fc.bias") p.zero_();
  }
}

AttributionOptions method(AttributionMethod m) {
  AttributionOptions o;
  o.method = m;
  return o;
}

TEST(RandomLogit, EqualClassRowsGiveIdenticalMaps) {
  torch::manual_seed(3);
  SmoothNet net(1, 4, 3);
  set_head(net, torch::randn({1, 4}).expand({3, 4}).contiguous());
  const auto x = torch::randn({8, 1, 12, 12});
  const auto classes = torch::tensor({0, 1, 2, 0, 1, 2, 0, 1}, torch::kInt64);
  for (const auto m : {AttributionMethod::kGradCam, AttributionMethod::kGradient}) {
    const auto r = random_logit_test(net, x, classes, method(m));
    EXPECT_TRUE(r.other_classes.ne(classes).all().item<bool>());
    EXPECT_TRUE(torch::allclose(r.ssim, torch::ones({8}, torch::kFloat64), 0, 1e-9)) << r.ssim;
    for (int64_t i = 0; i < 8; ++i)
      if (std::isfinite(r.spearman[i].item<double>())) {
        EXPECT_NEAR(r.spearman[i].item<double>(), 1.0, 1e-12);
      }
  }
}

TEST(RandomLogit, OppositeClassRowsSeparateGradCamButNotTheAbsoluteGradient) {
  torch::manual_seed(4);
  SmoothNet net(1, 4, 2);
  const auto w = torch::randn({1, 4});
  set_head(net, torch::cat({w, -w}));
  const auto x = torch::randn({8, 1, 12, 12});
  const auto classes = torch::tensor({0, 1, 0, 1, 0, 1, 0, 1}, torch::kInt64);
  const auto cam = random_logit_test(net, x, classes, method(AttributionMethod::kGradCam));
  // Two classes: the other class is the only other one.
  EXPECT_TRUE(cam.other_classes.eq(1 - classes).all().item<bool>());
  // relu(s) and relu(-s) have disjoint supports: their ranks disagree.
  const auto finite = torch::isfinite(cam.spearman);
  ASSERT_GE(finite.sum().item<int64_t>(), 4);
  EXPECT_LT(cam.spearman.masked_select(finite).max().item<double>(), 0.0) << cam.spearman;
  EXPECT_LT(cam.ssim.mean().item<double>(), 0.5);
  // |d(-z)/dx| = |dz/dx|: the gradient map cannot tell the classes apart.
  const auto grad = random_logit_test(net, x, classes, method(AttributionMethod::kGradient));
  EXPECT_TRUE(torch::allclose(grad.spearman, torch::ones({8}, torch::kFloat64), 0, 1e-9)) << grad.spearman;
  EXPECT_TRUE(torch::allclose(grad.ssim, torch::ones({8}, torch::kFloat64), 0, 1e-9));
}

TEST(RandomLogit, OtherClassesAreSeededUniformDrawsAmongTheRest) {
  torch::manual_seed(5);
  SmoothNet net(1, 2, 4);
  const auto x = torch::randn({400, 1, 8, 8});
  const auto classes = torch::arange(400, torch::kInt64) % 4;
  RandomLogitOptions o;
  o.seed = 11;
  o.batch_size = 128;
  const auto a = random_logit_test(net, x, classes, method(AttributionMethod::kGradient), o);
  const auto b = random_logit_test(net, x, classes, method(AttributionMethod::kGradient), o);
  EXPECT_TRUE(a.other_classes.equal(b.other_classes));
  EXPECT_TRUE(a.spearman.equal(b.spearman));
  EXPECT_TRUE(a.other_classes.ne(classes).all().item<bool>());
  // Each of the 3 other classes about a third of the time (400/4 = 100 images per class).
  for (int64_t c = 0; c < 4; ++c)
    for (int64_t d = 0; d < 4; ++d) {
      if (c == d) continue;
      const int64_t k = (classes.eq(c) & a.other_classes.eq(d)).sum().item<int64_t>();
      EXPECT_GT(k, 15) << c << "->" << d;
      EXPECT_LT(k, 55) << c << "->" << d;
    }
  o.seed = 12;
  EXPECT_FALSE(random_logit_test(net, x, classes, method(AttributionMethod::kGradient), o)
                   .other_classes.equal(a.other_classes));
}

TEST(RandomLogit, BadClassesAreRefused) {
  SmoothNet net(1, 2, 3);
  const auto x = torch::randn({2, 1, 8, 8});
  EXPECT_THROW(random_logit_test(net, x, torch::tensor({0, 3}, torch::kInt64), {}), c10::Error);
  EXPECT_THROW(random_logit_test(net, x, torch::tensor({0}, torch::kInt64), {}), c10::Error);
  EXPECT_THROW(random_logit_test(net, x, torch::tensor({0.0, 1.0}), {}), c10::Error);
  SmoothNet one(1, 2, 1);
  EXPECT_THROW(random_logit_test(one, x, torch::tensor({0, 0}, torch::kInt64), {}), c10::Error);
}

TEST(ParameterGroups, BlocksOfSequencesElseModulesHeadFirst) {
  models::ResNetConfig cfg;
  cfg.width = 4;
  models::ResNet net(cfg);
  const auto g = parameter_groups(net);
  ASSERT_GE(g.size(), 6u);
  EXPECT_EQ(std::vector<std::string>(g.begin(), g.begin() + 4),
            (std::vector<std::string>{"fc", "layer4.1", "layer4.0", "layer3.1"}));
  EXPECT_EQ(std::vector<std::string>(g.end() - 2, g.end()), (std::vector<std::string>{"bn1", "conv1"}));
  // Every layer4.0 parameter (its downsample too) falls in its block.
  for (const auto& [name, p] : net.named_parameters())
    if (name.rfind("layer4.0.", 0) == 0) {
      EXPECT_EQ(std::count(g.begin(), g.end(), name), 0) << name;
    }
}

// Kept maps are the maps the step's similarities were computed from, and the
// weights come back as trained.
TEST(ModelRandomisation, KeptMapsAreThoseTheSimilaritiesComeFrom) {
  torch::manual_seed(3);
  models::ResNetConfig cfg;
  cfg.width = 4;
  cfg.in_channels = 1;
  cfg.num_classes = 3;
  cfg.stem = models::Stem::kSmall;
  models::ResNet net(cfg);
  net.train(false);
  const auto x = torch::randn({5, 1, 16, 16});
  const auto y = torch::tensor({0, 1, 2, 0, 1}, torch::kLong);
  std::vector<torch::Tensor> before;
  for (const auto& [name, p] : net.named_parameters()) before.push_back(p.clone());
  RandomisationOptions ro;
  ro.max_groups = 3;
  ro.keep_rows = {3, 1};
  const auto trained = attribution_maps(net, x, y, method(AttributionMethod::kGradient), ro.batch_size);
  const auto steps = model_randomisation_test(net, x, y, method(AttributionMethod::kGradient), ro);
  ASSERT_EQ(steps.size(), 3u);
  for (const auto& st : steps) {
    ASSERT_EQ(st.maps.sizes(), (torch::IntArrayRef{2, 16, 16}));
    const auto rho = spearman_rank_correlation(trained.index_select(0, torch::tensor({3, 1})), st.maps);
    EXPECT_NEAR(rho[0].item<double>(), st.spearman[3].item<double>(), 1e-9) << st.group;
    EXPECT_NEAR(rho[1].item<double>(), st.spearman[1].item<double>(), 1e-9) << st.group;
  }
  const auto after = net.named_parameters();
  for (size_t i = 0; i < after.size(); ++i) EXPECT_TRUE(torch::equal(after[i].second, before[i])) << after[i].first;
  ro.keep_rows = {5};
  EXPECT_THROW(model_randomisation_test(net, x, y, method(AttributionMethod::kGradient), ro), c10::Error);
}

}  // namespace
}  // namespace gradlens::saliency
