// Attribution maps (saliency/cam.h) against independent computations: a
// per-sample autograd call on the full forward pass with the weighted sum done
// by hand, the head identity of Grad-CAM at the last layer, IG's completeness
// axiom, SmoothGrad with no noise, and bilinear upsampling in closed form.
#include "gradlens/saliency/cam.h"

#include "gradlens/extract/representations.h"

#include <torch/torch.h>

#include "extract/extract_test_util.h"
#include "saliency/saliency_test_util.h"
#include "gradlens/saliency/compare.h"
#include "support/support.h"

namespace gradlens::saliency {
namespace {

using extract::testing::tiny_resnet;

/// Min-max normalisation of one map, written out.
torch::Tensor normalise_by_hand(const torch::Tensor& m) {
  const double lo = m.min().item<double>(), hi = m.max().item<double>();
  if (hi == lo) return torch::zeros_like(m);
  return (m - lo) / (hi - lo);
}

/// Bilinear upsampling of one [h, w] map to [H, W] with half-pixel centres
/// (align_corners = false, edge clamping), written out.
torch::Tensor bilinear_by_hand(const torch::Tensor& m, int64_t out_h, int64_t out_w) {
  const auto a = m.to(torch::kDouble).contiguous();
  const int64_t h = a.size(0), w = a.size(1);
  auto out = torch::zeros({out_h, out_w}, torch::kDouble);
  auto src = [](int64_t i, int64_t in, int64_t outn, int64_t* i0, int64_t* i1, double* l) {
    double s = (i + 0.5) * static_cast<double>(in) / static_cast<double>(outn) - 0.5;
    if (s < 0) s = 0;
    *i0 = static_cast<int64_t>(s);
    if (*i0 > in - 1) *i0 = in - 1;
    *i1 = std::min(*i0 + 1, in - 1);
    *l = s - static_cast<double>(*i0);
  };
  auto acc = a.accessor<double, 2>();
  auto o = out.accessor<double, 2>();
  for (int64_t y = 0; y < out_h; ++y) {
    int64_t y0, y1;
    double ly;
    src(y, h, out_h, &y0, &y1, &ly);
    for (int64_t x = 0; x < out_w; ++x) {
      int64_t x0, x1;
      double lx;
      src(x, w, out_w, &x0, &x1, &lx);
      o[y][x] = (1 - ly) * ((1 - lx) * acc[y0][x0] + lx * acc[y0][x1]) +
                ly * ((1 - lx) * acc[y1][x0] + lx * acc[y1][x1]);
    }
  }
  return out;
}

class CamTest : public test::SeededTest {};

TEST_F(CamTest, GradCamEqualsPerSampleAutogradAndAHandWeightedSum) {
  auto model = tiny_resnet(5);
  const auto x = torch::randn({3, 1, 12, 12});
  const auto y = torch::tensor({4, 0, 2}, torch::kLong);
  for (const std::string layer : {"layer3", "layer4"}) {
    for (const std::string target : {"pred", "true", "loss"}) {
      AttributionOptions o;
      o.layer = layer;
      o.target = extract::parse_gradient_target(target, "--target");
      const auto r = compute_attribution(*model, x, y, o);
      EXPECT_EQ(r.layer, layer);
      EXPECT_EQ(r.forward_passes, 1);
      EXPECT_EQ(r.backward_passes, 1);
      ASSERT_EQ(r.maps.sizes(), (std::vector<int64_t>{3, 12, 12}));
      for (int64_t i = 0; i < 3; ++i) {
        // Independent: the whole forward pass with the graph through the body,
        // one image at a time, and the gradient of its own target.
        const auto xi = x.slice(0, i, i + 1);
        const auto a = model->body(xi, layer);
        const auto z = model->head(a, layer);
        const int64_t pred = z.argmax(1).item<int64_t>();
        torch::Tensor t;
        if (target == "pred") t = z[0][pred];
        if (target == "true") t = z[0][y[i].item<int64_t>()];
        if (target == "loss") t = torch::nn::functional::cross_entropy(z, y.slice(0, i, i + 1));
        const auto g = torch::autograd::grad({t}, {a})[0][0];  // [C, h, w]
        const auto act = a.detach()[0];
        const int64_t c = act.size(0);
        auto cam = torch::zeros({act.size(1), act.size(2)});
        std::vector<float> alpha(c);
        for (int64_t ch = 0; ch < c; ++ch) {
          alpha[ch] = g[ch].mean().item<float>();
          cam += alpha[ch] * act[ch];
        }
        cam = cam.clamp_min(0);
        EXPECT_EQ(r.preds[i].item<int64_t>(), pred);
        EXPECT_LT(test::max_abs_diff(r.weights[i], torch::tensor(alpha)), 1e-6) << layer << target;
        EXPECT_LT(test::max_abs_diff(r.raw[i], cam), 1e-5 * (1 + cam.abs().max().item<double>()))
            << layer << " " << target << " image " << i;
        const bool constant = cam.max().item<double>() == cam.min().item<double>();
        EXPECT_EQ(r.constant[i].item<bool>(), constant);
        const auto expected = normalise_by_hand(bilinear_by_hand(cam, 12, 12));
        EXPECT_LT(test::max_abs_diff(r.maps[i], expected), 1e-5) << layer << " " << target;
        if (!constant) {
          EXPECT_NEAR(r.maps[i].max().item<double>(), 1.0, 1e-6);
          EXPECT_NEAR(r.maps[i].min().item<double>(), 0.0, 1e-6);
        }
      }
    }
  }
}

TEST_F(CamTest, MapsFromExtractedWeightsAndActivationsEqualAGradCamPass) {
  auto model = tiny_resnet(5);
  const auto x = torch::randn({6, 1, 12, 12});
  const auto y = torch::tensor({4, 0, 2, 1, 3, 0}, torch::kLong);
  for (const std::string target : {"pred", "true", "loss"}) {
    extract::ExtractOptions eo;
    eo.representations = {"gradcam-weights", "activations"};
    eo.layer = "layer3";
    eo.gradcam_targets = {target};
    const auto ex = extract::extract_batch(*model, x, y, eo);
    const auto w = ex.values[0];
    const auto a = ex.values[1].view({6, w.size(1), ex.map_height, ex.map_width});
    const auto got = cam_maps_from(w, a, 12, 12);
    AttributionOptions o;
    o.layer = "layer3";
    o.target = extract::parse_gradient_target(target, "--target");
    const auto ref = compute_attribution(*model, x, y, o);
    EXPECT_LT(test::max_abs_diff(got.maps, ref.maps), 1e-6) << target;
    EXPECT_TRUE(torch::equal(got.constant, ref.constant)) << target;
    EXPECT_EQ(got.num_constant, ref.num_constant);
  }
  GRADLENS_EXPECT_THROWS_WITH(cam_maps_from(torch::zeros({2, 3}), torch::zeros({2, 4, 2, 2}), 8, 8),
                              "class_activation_map");
}

TEST_F(CamTest, ResNetLayer4GradCamWeightsAreTheHeadRowOverTheMapArea) {
  // z = W mean_ij(A) + b, so dz_c/dA_kij = W[c, k] / (H W) at every pixel and
  // alpha_k = W[c, k] / (H W) for the logit of class c.
  models::ResNetConfig cfg;
  cfg.num_classes = 6;
  cfg.in_channels = 3;
  cfg.stem = models::Stem::kSmall;
  cfg.width = 8;
  models::ResNet model(cfg);
  const auto x = torch::randn({4, 3, 20, 20});  // layer4: 3x3
  const auto w = model.fc_weight().detach();
  for (int64_t c = 0; c < 6; ++c) {
    AttributionOptions o;
    o.target = extract::GradientTarget::kTrue;
    const auto r = compute_attribution(model, x, torch::full({4}, c, torch::kLong), o);
    EXPECT_EQ(r.layer, "layer4");
    ASSERT_EQ(r.weights.sizes(), (std::vector<int64_t>{4, 64}));
    const auto expected = (w[c] / 9.0).unsqueeze(0).expand({4, 64});
    EXPECT_LT(test::max_abs_diff(r.weights, expected), 1e-7 * (1 + w.abs().max().item<double>()))
        << "class " << c;
    EXPECT_TRUE(torch::equal(r.target_classes, torch::full({4}, c, torch::kLong)));
  }
}

TEST_F(CamTest, GradCamPlusPlusWeightsInClosedForm) {
  // One channel, two pixels: g = (2, -1), A = (1, 3), sum A = 4.
  // a = g^2 / (2 g^2 + 4 g^3 + 1e-6): (4 / (8 + 32 + 1e-6), 1 / (2 - 4 + 1e-6));
  // w = sum a * relu(g) = 2 * 4 / (40 + 1e-6).
  const auto g = torch::tensor({2.0, -1.0}, torch::kDouble).view({1, 1, 1, 2});
  const auto a = torch::tensor({1.0, 3.0}, torch::kDouble).view({1, 1, 1, 2});
  const auto w = grad_cam_plus_plus_weights(g, a);
  EXPECT_NEAR(w.item<double>(), 8.0 / (40.0 + 1e-6), 1e-15);
  // A zero gradient contributes nothing (pytorch-grad-cam's np.where).
  const auto g0 = torch::zeros({1, 1, 1, 2}, torch::kDouble);
  EXPECT_EQ(grad_cam_plus_plus_weights(g0, a).item<double>(), 0.0);
  // Grad-CAM weights: the mean gradient.
  EXPECT_NEAR(grad_cam_weights(g).item<double>(), 0.5, 1e-15);
  // The CAM: ReLU(sum_k w_k A_k).
  const auto cam = class_activation_map(torch::tensor({{1.0, -2.0}}, torch::kDouble),
                                        torch::tensor({1.0, 5.0, 1.0, 1.0}, torch::kDouble).view({1, 2, 1, 2}));
  EXPECT_TRUE(torch::allclose(cam, torch::tensor({0.0, 3.0}, torch::kDouble).view({1, 1, 2})));
}

TEST_F(CamTest, GradCamPlusPlusMatchesAHandComputationOnTheNetwork) {
  auto model = tiny_resnet(4);
  const auto x = torch::randn({2, 1, 12, 12});
  AttributionOptions o;
  o.method = AttributionMethod::kGradCamPlusPlus;
  o.layer = "layer3";
  const auto r = compute_attribution(*model, x, {}, o);
  for (int64_t i = 0; i < 2; ++i) {
    const auto a = model->body(x.slice(0, i, i + 1), "layer3");
    const auto z = model->head(a, "layer3");
    const auto g = torch::autograd::grad({z[0][z.argmax(1).item<int64_t>()]}, {a})[0][0].to(torch::kDouble);
    const auto act = a.detach()[0].to(torch::kDouble);
    const int64_t c = act.size(0);
    auto cam = torch::zeros({act.size(1), act.size(2)}, torch::kDouble);
    for (int64_t ch = 0; ch < c; ++ch) {
      const double s = act[ch].sum().item<double>();
      double wk = 0;
      for (int64_t p = 0; p < g[ch].numel(); ++p) {
        const double gv = g[ch].flatten()[p].item<double>();
        if (gv == 0) continue;
        wk += gv * gv / (2 * gv * gv + s * gv * gv * gv + 1e-6) * std::max(gv, 0.0);
      }
      EXPECT_NEAR(r.weights[i][ch].item<double>(), wk, 1e-5 * (1 + std::abs(wk))) << ch;
      cam += wk * act[ch];
    }
    cam = cam.clamp_min(0);
    EXPECT_LT(test::max_abs_diff(r.raw[i], cam), 1e-4 * (1 + cam.max().item<double>()));
  }
}

TEST_F(CamTest, GradientSaliencyIsTheMaxOverChannelsOfTheAbsoluteInputGradient) {
  models::ResNetConfig cfg;
  cfg.num_classes = 3;
  cfg.in_channels = 3;
  cfg.stem = models::Stem::kSmall;
  cfg.width = 4;
  models::ResNet model(cfg);
  model.train(false);
  const auto x = torch::randn({2, 3, 10, 10});
  AttributionOptions o;
  o.method = AttributionMethod::kGradient;
  o.target = extract::GradientTarget::kLoss;
  const auto y = torch::tensor({2, 1}, torch::kLong);
  const auto r = compute_attribution(model, x, y, o);
  EXPECT_FALSE(r.weights.defined());
  EXPECT_EQ(r.layer, "");
  for (int64_t i = 0; i < 2; ++i) {
    const auto xi = x.slice(0, i, i + 1).clone().requires_grad_(true);
    const auto loss = torch::nn::functional::cross_entropy(model.forward(xi), y.slice(0, i, i + 1));
    const auto g = torch::autograd::grad({loss}, {xi})[0][0];
    const auto expected = std::get<0>(g.abs().max(0));
    EXPECT_LT(test::max_abs_diff(r.raw[i], expected), 1e-6 * (1 + expected.max().item<double>()));
    EXPECT_LT(test::max_abs_diff(r.maps[i], normalise_by_hand(expected)), 1e-5);
  }
}

TEST_F(CamTest, SmoothGradWithZeroNoiseIsThePlainGradient) {
  auto model = tiny_resnet(5);
  const auto x = torch::randn({3, 1, 12, 12});
  AttributionOptions o;
  o.method = AttributionMethod::kGradient;
  const auto plain = compute_attribution(*model, x, {}, o);
  o.method = AttributionMethod::kSmoothGrad;
  o.smoothgrad_sigma = 0;
  o.smoothgrad_samples = 4;
  const auto sg = compute_attribution(*model, x, {}, o);
  EXPECT_EQ(sg.forward_passes, 5);
  EXPECT_EQ(sg.backward_passes, 4);
  EXPECT_LT(test::max_abs_diff(sg.raw, plain.raw), 1e-6 * plain.raw.abs().max().item<double>());
  EXPECT_LT(test::max_abs_diff(sg.maps, plain.maps), 1e-5);
}

TEST_F(CamTest, SmoothGradIsSeededPerImageAndIndependentOfTheBatch) {
  auto model = tiny_resnet(5);
  const auto x = torch::randn({4, 1, 12, 12});
  AttributionOptions o;
  o.method = AttributionMethod::kSmoothGrad;
  o.smoothgrad_samples = 3;
  o.seed = 7;
  const auto all = compute_attribution(*model, x, {}, o, /*first_index=*/10);
  const auto head = compute_attribution(*model, x.slice(0, 0, 1), {}, o, 10);
  const auto tail = compute_attribution(*model, x.slice(0, 1, 4), {}, o, 11);
  EXPECT_LT(test::max_abs_diff(all.raw, torch::cat({head.raw, tail.raw})), 1e-6 * all.raw.max().item<double>());
  const auto again = compute_attribution(*model, x, {}, o, 10);
  EXPECT_TRUE(torch::equal(all.raw, again.raw));
  o.seed = 8;
  const auto other = compute_attribution(*model, x, {}, o, 10);
  EXPECT_GT(test::max_abs_diff(all.raw, other.raw), 1e-6);
  // The noise moves the map away from the plain gradient.
  o.method = AttributionMethod::kGradient;
  EXPECT_GT(test::max_abs_diff(all.raw, compute_attribution(*model, x, {}, o).raw), 1e-6);
}

TEST_F(CamTest, IntegratedGradientsAreCompleteOnASmoothNetwork) {
  // Completeness: the attributions sum to t(x) - t(x'), up to the quadrature
  // error (O(1/m^2) for the trapezoid rule on a smooth network, O(1/m) for the
  // Riemann sum).
  testing::SmoothNet model(2, 6, 4);
  const auto x = torch::randn({3, 2, 9, 9}) * 2;
  const auto y = torch::tensor({1, 2, 3}, torch::kLong);
  for (const std::string target : {"pred", "true", "loss"}) {
    for (const std::string rule : {"trapezoid", "riemann"}) {
      AttributionOptions o;
      o.method = AttributionMethod::kIntegratedGradients;
      o.target = extract::parse_gradient_target(target, "--target");
      o.ig_rule = parse_ig_rule(rule);
      o.ig_steps = rule == "trapezoid" ? 256 : 4096;
      const auto r = compute_attribution(model, x, y, o);
      EXPECT_EQ(r.backward_passes, rule == "trapezoid" ? 257 : 4096);
      ASSERT_EQ(r.attributions.sizes(), x.sizes());
      for (int64_t i = 0; i < 3; ++i) {
        const double sum = r.attributions[i].sum().item<double>();
        const double delta = r.target_values[i].item<double>() - r.baseline_values[i].item<double>();
        ASSERT_GT(std::abs(delta), 0.02) << "the test needs t(x) != t(x')";
        EXPECT_NEAR(sum, delta, (rule == "trapezoid" ? 1e-3 : 1e-2) * std::abs(delta))
            << target << " " << rule << " image " << i;
        EXPECT_NEAR(r.completeness_gap[i].item<double>(), sum - delta, 1e-5 * (1 + std::abs(delta)));
      }
      // The raw map is the channel sum in absolute value.
      EXPECT_LT(test::max_abs_diff(r.raw, r.attributions.sum(1).abs()), 1e-6);
    }
  }
}

TEST_F(CamTest, IntegratedGradientsOnAResNetConvergeAsTheStepsGrow) {
  // A ReLU network is piecewise linear along the path, with many kinks: the
  // quadrature error shrinks like 1/m (and the gap is reported per image).
  auto model = tiny_resnet(5);
  const auto x = torch::randn({3, 1, 12, 12}) * 2 + 1;
  AttributionOptions o;
  o.method = AttributionMethod::kIntegratedGradients;
  o.ig_baseline = torch::full({1, 12, 12}, -0.5);
  o.ig_steps = 16;
  const auto coarse = compute_attribution(*model, x, {}, o);
  o.ig_steps = 512;
  const auto fine = compute_attribution(*model, x, {}, o);
  const auto delta = fine.target_values - fine.baseline_values;
  const double rel_coarse = (coarse.completeness_gap / delta).abs().mean().item<double>();
  const double rel_fine = (fine.completeness_gap / delta).abs().mean().item<double>();
  EXPECT_LT(rel_fine, 0.25 * rel_coarse) << rel_coarse << " -> " << rel_fine;
  EXPECT_LT(rel_fine, 0.1);
  EXPECT_NEAR(fine.attributions.sum().item<double>(),
              (delta + fine.completeness_gap).sum().item<double>(), 1e-4);
}

TEST_F(CamTest, GradCamOfTheSmoothNetInClosedForm) {
  // z = W mean_ij(A) + b with A = tanh(conv(x)): alpha_k = W[c, k] / (H W) and
  // the CAM is ReLU(sum_k alpha_k tanh(conv(x))_k), at the input size.
  testing::SmoothNet model(1, 5, 3);
  const auto x = torch::randn({2, 1, 7, 7});
  const auto y = torch::tensor({2, 0}, torch::kLong);
  AttributionOptions o;
  o.target = extract::GradientTarget::kTrue;
  const auto r = compute_attribution(model, x, y, o);
  EXPECT_EQ(r.layer, "conv");
  const auto a = torch::tanh(torch::conv2d(x, model.conv_weight(), model.conv_bias(), 1, 1));
  for (int64_t i = 0; i < 2; ++i) {
    const auto alpha = model.fc_weight()[y[i].item<int64_t>()] / 49.0;
    EXPECT_LT(test::max_abs_diff(r.weights[i], alpha), 1e-7);
    const auto cam = (alpha.view({5, 1, 1}) * a[i]).sum(0).clamp_min(0);
    EXPECT_LT(test::max_abs_diff(r.raw[i], cam), 1e-6);
    EXPECT_LT(test::max_abs_diff(r.maps[i], normalise_by_hand(cam)), 1e-5);
  }
}

TEST_F(CamTest, OneRiemannStepFromTheDefaultZeroBaselineIsInputTimesGradient) {
  // With the default baseline x' = 0 and one right-Riemann step (a = 1),
  // IG is x * dt/dx(x), the "gradient * input" attribution.
  auto model = tiny_resnet(3);
  const auto x = torch::randn({2, 1, 12, 12});
  AttributionOptions o;
  o.method = AttributionMethod::kIntegratedGradients;
  o.ig_rule = IgRule::kRiemann;
  o.ig_steps = 1;
  const auto r = compute_attribution(*model, x, {}, o);
  const auto xg = x.clone().requires_grad_(true);
  const auto z = model->forward(xg);
  const auto seed = torch::one_hot(z.argmax(1), 3).to(torch::kFloat);
  const auto g = torch::autograd::grad({z}, {xg}, {seed})[0];
  EXPECT_LT(test::max_abs_diff(r.attributions, x * g), 1e-6);
}

TEST_F(CamTest, UpsamplingIsBilinearWithHalfPixelCentresAndConstantMapsBecomeZero) {
  // A 2x2 map to 4x4: rows/columns at source positions -0.25 (clamped to 0),
  // 0.25, 0.75, 1.25 (clamped to 1): a, (3a + b)/4, (a + 3b)/4, b.
  const auto raw = torch::tensor({0.0, 4.0, 8.0, 12.0}).view({1, 2, 2});
  auto norm = upsample_and_normalize(raw, 4, 4);
  const auto row = torch::tensor({0.0, 1.0, 3.0, 4.0});
  const auto expected = (row.view({1, 4}) + 2 * row.view({4, 1})) / 12.0;
  EXPECT_LT(test::max_abs_diff(norm.maps[0], expected), 1e-6);
  EXPECT_LT(test::max_abs_diff(norm.maps[0], normalise_by_hand(bilinear_by_hand(raw[0], 4, 4))), 1e-6);
  EXPECT_EQ(norm.num_constant, 0);
  // A constant map: zeros, flagged, never NaN.
  const auto two = torch::stack({torch::zeros({3, 3}), torch::rand({3, 3})});
  norm = upsample_and_normalize(two, 7, 5);
  EXPECT_EQ(norm.num_constant, 1);
  EXPECT_TRUE(norm.constant[0].item<bool>());
  EXPECT_FALSE(norm.constant[1].item<bool>());
  EXPECT_EQ(norm.maps[0].abs().sum().item<double>(), 0.0);
  EXPECT_TRUE(torch::isfinite(norm.maps).all().item<bool>());
  EXPECT_NEAR(norm.maps[1].max().item<double>(), 1.0, 1e-6);
  GRADLENS_EXPECT_THROWS_WITH(upsample_and_normalize(torch::full({1, 2, 2}, NAN), 4, 4), "NaN");
}

TEST_F(CamTest, AnAllNegativeCamIsCountedAsConstant) {
  // Flip the head so that every Grad-CAM weight of the true class is negative
  // at layer4 while the activations (after a ReLU) are non-negative: the CAM
  // is all zero.
  auto model = tiny_resnet(3);
  {
    torch::NoGradGuard ng;
    model->fc_weight()[1].copy_(-model->fc_weight()[1].abs() - 0.1);
  }
  AttributionOptions o;
  o.target = extract::GradientTarget::kTrue;
  const auto r = compute_attribution(*model, torch::randn({2, 1, 12, 12}), torch::tensor({1, 1}), o);
  EXPECT_EQ(r.num_constant, 2);
  EXPECT_EQ(r.maps.abs().sum().item<double>(), 0.0);
  EXPECT_EQ(r.raw.abs().sum().item<double>(), 0.0);
}

TEST_F(CamTest, BadInputIsRejectedWithAClearMessage) {
  auto model = tiny_resnet(5);
  const auto x = torch::randn({2, 1, 12, 12});
  AttributionOptions o;
  o.layer = "layer9";
  GRADLENS_EXPECT_THROWS_WITH(compute_attribution(*model, x, {}, o),
                              "--layer: unknown layer 'layer9'");
  GRADLENS_EXPECT_THROWS_WITH(compute_attribution(*model, x, {}, o), "layer1, layer2, layer3, layer4");
  o.layer = "";
  o.target = extract::GradientTarget::kTrue;
  GRADLENS_EXPECT_THROWS_WITH(compute_attribution(*model, x, torch::tensor({1, 5}), o),
                              "the label of image 1 is 5, outside [0, 5)");
  GRADLENS_EXPECT_THROWS_WITH(compute_attribution(*model, x, {}, o), "needs the true labels");
  GRADLENS_EXPECT_THROWS_WITH(compute_attribution(*model, x, torch::tensor({1, 2, 3}), o),
                              "3 labels");
  // The target and the IG rule are typed; their names are checked where they are parsed.
  GRADLENS_EXPECT_THROWS_WITH(extract::parse_gradient_target("logit", "--target"), "--target: unknown target 'logit'");
  o.target = extract::GradientTarget::kPred;
  GRADLENS_EXPECT_THROWS_WITH(parse_attribution_method("cam"), "gradcam, gradcam++, gradient, smoothgrad, ig");
  auto bad = x.clone();
  bad[1][0][3][3] = NAN;
  GRADLENS_EXPECT_THROWS_WITH(compute_attribution(*model, bad, {}, o, 40), "image 41");
  GRADLENS_EXPECT_THROWS_WITH(compute_attribution(*model, torch::randn({2, 3, 12, 12}), {}, o),
                              "3 channel(s)");
  o.method = AttributionMethod::kIntegratedGradients;
  o.ig_baseline = torch::zeros({1, 10, 10});
  GRADLENS_EXPECT_THROWS_WITH(compute_attribution(*model, x, {}, o), "IG baseline must be");
  o.ig_baseline = torch::Tensor();
  GRADLENS_EXPECT_THROWS_WITH(parse_ig_rule("simpson"), "--ig-rule");
  o.method = AttributionMethod::kSmoothGrad;
  o.smoothgrad_samples = 0;
  GRADLENS_EXPECT_THROWS_WITH(compute_attribution(*model, x, {}, o), "--smoothgrad-samples");
  // Maps of different shapes passed to a comparison.
  GRADLENS_EXPECT_THROWS_WITH(compare_models(torch::rand({2, 8, 8}), torch::rand({2, 8, 9})),
                              "have shape [2, 8, 8] but maps of model B have shape [2, 8, 9]");
}

TEST_F(CamTest, MethodNamesRoundTrip) {
  for (const auto& name : attribution_method_names())
    EXPECT_EQ(attribution_method_name(parse_attribution_method(name)), name);
  EXPECT_TRUE(is_cam_method(parse_attribution_method("gradcam++")));
  EXPECT_FALSE(is_cam_method(parse_attribution_method("ig")));
}

}  // namespace
}  // namespace gradlens::saliency
