#include "gradlens/influence/projection.h"

#include <torch/torch.h>

#include "gradlens/data/dataset.h"
#include "gradlens/influence/tracin.h"
#include "gradlens/models/resnet.h"
#include "support/support.h"

namespace gradlens::influence {
namespace {

models::ResNetConfig tiny() {
  models::ResNetConfig c;
  c.stem = models::Stem::kSmall;
  c.width = 4;
  c.in_channels = 1;
  c.num_classes = 3;
  return c;
}

data::Dataset random_images(int64_t n) {
  torch::manual_seed(3);
  data::Dataset ds;
  ds.images = torch::randint(0, 256, {n, 1, 12, 12}, torch::kUInt8);
  ds.labels = torch::arange(n, torch::kInt64) % 3;
  ds.class_names = {"a", "b", "c"};
  ds.mean = {0.5};
  ds.std = {0.25};
  ds.name = "random";
  return ds;
}

// Exact per-sample gradients of the summed cross-entropy with respect to one
// convolution's weight, by autograd, one image at a time: [N, numel].
torch::Tensor exact_conv_gradients(models::ResNet& model, const data::Dataset& ds, const std::string& conv) {
  models::ModeGuard mode(model, false);
  torch::Tensor w;
  for (auto& [name, p] : model.named_parameters())
    if (name == conv + ".weight") w = p;
  std::vector<torch::Tensor> rows;
  for (int64_t i = 0; i < ds.size(); ++i) {
    const auto x = data::to_float(ds, ds.images.slice(0, i, i + 1));
    const auto loss = torch::nn::functional::cross_entropy(model.forward(x), ds.labels.slice(0, i, i + 1));
    rows.push_back(torch::autograd::grad({loss}, {w})[0].flatten().to(torch::kFloat64));
  }
  return torch::stack(rows);
}

TEST(Projection, InnerProductsApproachTheExactOnesAsTheDimensionGrows) {
  torch::manual_seed(0);
  models::ResNet model(tiny());
  const auto ds = random_images(24);
  const std::string conv = "layer4.1.conv2";
  const auto g = exact_conv_gradients(model, ds, conv);  // [24, 32*32*9]
  const auto exact = torch::mm(g, g.t());
  const auto norms = g.norm(2, {1});
  const auto scale = torch::outer(norms, norms);
  std::vector<double> errors;
  for (const int64_t dim : {16, 256, 4096, 9216}) {
    double worst_mean = 0;
    for (const auto kind : {ProjectionKind::kGaussian, ProjectionKind::kRademacher}) {
      ProjectionOptions o;
      o.layers = {conv};
      o.dim = dim;
      o.kind = kind;
      const auto p = make_projections(model, data::to_float(ds, ds.images.slice(0, 0, 1)), o);
      ASSERT_EQ(p.size(), 1u);
      EXPECT_EQ(p[0].gradient_size, g.size(1));
      const auto f = dataset_gradient_factors(model, ds, ds.labels, 10, p);
      ASSERT_EQ(f.projected.size(1), p[0].dim());
      const auto pf = f.projected.to(torch::kFloat64);
      const double err = ((torch::mm(pf, pf.t()) - exact).abs() / scale).mean().item<double>();
      worst_mean = std::max(worst_mean, err);
    }
    errors.push_back(worst_mean);
  }
  // The Johnson-Lindenstrauss error of an inner product is about
  // sqrt(2 / k) ||u|| ||v|| for k projected numbers: it falls as the
  // dimension grows; with both sides projected the two errors add, k =
  // k_out k_in / (k_out + k_in) (k_out x k_in = 4 x 4, 16 x 16, then 32 x 128
  // with the output side whole, of 32 x 288), and the whole dimension is exact.
  const double ks[] = {4.0 * 4.0 / (4.0 + 4.0), 16.0 * 16.0 / (16.0 + 16.0), 128.0};
  for (int i = 0; i < 3; ++i) {
    EXPECT_LT(errors[i], 1.5 * std::sqrt(2.0 / ks[i])) << i << ": " << errors[i];
    if (i > 0) {
      EXPECT_LT(errors[i], errors[i - 1]);
    }
  }
  EXPECT_LT(errors[3], 1e-5);
  RecordProperty("mean_relative_errors", std::to_string(errors[0]) + " " + std::to_string(errors[1]) + " " +
                                             std::to_string(errors[2]) + " " + std::to_string(errors[3]));
}

TEST(Projection, SeededAndDifferentPerSeedAndLayer) {
  torch::manual_seed(0);
  models::ResNet model(tiny());
  const auto probe = torch::randn({1, 1, 12, 12});
  ProjectionOptions o;
  o.layers = {"layer4.1.conv2", "layer4.1.conv1"};
  o.dim = 64;
  const auto a = make_projections(model, probe, o);
  const auto b = make_projections(model, probe, o);
  EXPECT_TRUE(torch::equal(a[0].p_in, b[0].p_in));
  EXPECT_TRUE(torch::equal(a[1].p_out, b[1].p_out));
  EXPECT_FALSE(torch::equal(a[0].p_out, a[1].p_out));
  o.seed = 1;
  EXPECT_FALSE(torch::equal(make_projections(model, probe, o)[0].p_out, a[0].p_out));
  // 64 = 8 x 8: k_out = 8 of 32 output channels, k_in = 8 of 288 patch values.
  EXPECT_EQ(a[0].p_out.sizes(), (std::vector<int64_t>{8, 32}));
  EXPECT_EQ(a[0].p_in.sizes(), (std::vector<int64_t>{8, 288}));
  EXPECT_NE(o.describe(), ProjectionOptions{}.describe());
}

TEST(Projection, TracInDoesNotDependOnTheThreadCount) {
  torch::manual_seed(0);
  models::ResNet model(tiny());
  const auto ds = random_images(40);
  ProjectionOptions o;
  o.layers = {"layer4.1.conv2"};
  o.dim = 256;
  const auto p = make_projections(model, data::to_float(ds, ds.images.slice(0, 0, 1)), o);
  const int before = at::get_num_threads();
  TracInOptions t;
  t.top_k = 5;
  t.keep_scores = true;
  std::vector<TracInResult> results;
  for (const int threads : {1, 2, 4}) {
    at::set_num_threads(threads);
    const auto f = dataset_gradient_factors(model, ds, ds.labels, 16, p);
    const auto q = f.rows(torch::arange(5, torch::kInt64));
    results.push_back(tracin({f, f}, {q, q}, {0.5, 0.25}, t));
  }
  at::set_num_threads(before);
  for (size_t i = 1; i < results.size(); ++i) {
    EXPECT_LT(test::rel_to_reference(results[i].scores, results[0].scores), 1e-5);
    EXPECT_TRUE(torch::equal(results[i].proponents, results[0].proponents));
    EXPECT_TRUE(torch::equal(results[i].opponents, results[0].opponents));
  }
}

TEST(Projection, BadLayersAndDimensionsAreClearErrors) {
  torch::manual_seed(0);
  models::ResNet model(tiny());
  const auto probe = torch::randn({1, 1, 12, 12});
  ProjectionOptions o;
  o.layers = {"layer9.conv1"};
  GRADLENS_EXPECT_THROWS_WITH(make_projections(model, probe, o), "--param-layers: unknown convolution 'layer9.conv1'");
  o.layers = {"layer4.1.conv2", "layer4.1.conv2"};
  GRADLENS_EXPECT_THROWS_WITH(make_projections(model, probe, o), "given twice");
  o.layers = {"layer4.1.conv2"};
  o.dim = 10000;
  GRADLENS_EXPECT_THROWS_WITH(make_projections(model, probe, o), "--proj-dim 10000 is larger than the gradient of "
                              "layer4.1.conv2 (9216 numbers)");
  o.dim = 0;
  GRADLENS_EXPECT_THROWS_WITH(make_projections(model, probe, o), "--proj-dim must be >= 1");
  GRADLENS_EXPECT_THROWS_WITH(parse_projection_kind("sparse"), "--projection");
}

}  // namespace
}  // namespace gradlens::influence
