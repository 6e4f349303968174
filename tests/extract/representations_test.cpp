#include "gradlens/extract/representations.h"

#include <torch/torch.h>

#include "extract/extract_test_util.h"
#include "gradlens/extract/audit.h"
#include "support/support.h"

namespace gradlens::extract {
namespace {

using testing::rel_diff;
using testing::tiny_resnet;

class ExtractTest : public test::SeededTest {
 protected:
  void SetUp() override {
    SeededTest::SetUp();
    model = tiny_resnet(kClasses);
    x = torch::randn({6, 1, 12, 12});
    y = torch::tensor({0, 1, 2, 3, 4, 1}, torch::kLong);
  }
  static constexpr int64_t kClasses = 5;
  std::unique_ptr<models::ResNet> model;
  torch::Tensor x, y;

  torch::Tensor param(const std::string& name) {
    for (auto& [n, p] : model->named_parameters())
      if (n == name) return p;
    ADD_FAILURE() << "no parameter " << name;
    return {};
  }
};

ExtractOptions only(std::vector<std::string> reps) {
  ExtractOptions o;
  o.representations = std::move(reps);
  return o;
}

TEST(ExtractPlan, NamesVariantsAndCountsBackwardPasses) {
  ExtractOptions all;
  all.gradcam_targets = {"pred", "true", "loss"};
  all.grad_labels = {"pred", "true"};
  std::vector<std::string> names;
  for (const auto& s : plan_outputs(all)) names.push_back(s.name);
  EXPECT_EQ(names, (std::vector<std::string>{"gradcam-weights", "gradcam-weights.true",
                                             "gradcam-weights.loss", "input-grad", "input-grad.true",
                                             "param-grad", "param-grad.true", "features",
                                             "activations", "logits", "probs"}));
  EXPECT_EQ(plan_backward_seeds(all),
            (std::vector<std::string>{"logit-pred", "logit-true", "ce-true", "ce-pred"}));
  // Defaults: 2 backward passes (Grad-CAM pred, input-grad pred); the head's
  // param-grad is closed form.
  EXPECT_EQ(plan_backward_seeds(ExtractOptions{}), (std::vector<std::string>{"logit-pred", "ce-pred"}));
  // gradcam loss and input-grad true share the CE(true) seed: one pass.
  ExtractOptions shared = only({"gradcam-weights", "input-grad"});
  shared.gradcam_targets = {"loss"};
  shared.grad_labels = {"true"};
  EXPECT_EQ(plan_backward_seeds(shared).size(), 1u);
  EXPECT_TRUE(plan_backward_seeds(only({"features", "logits", "probs", "activations", "param-grad"})).empty());
  ExtractOptions conv = only({"param-grad"});
  conv.param_layer = "layer4.1.conv2";
  EXPECT_EQ(plan_backward_seeds(conv), (std::vector<std::string>{"ce-pred"}));
  const auto specs = plan_outputs(all);
  EXPECT_FALSE(specs[0].uses_true_labels);
  EXPECT_TRUE(specs[1].uses_true_labels);
  EXPECT_TRUE(specs[2].uses_true_labels);
  EXPECT_FALSE(specs[3].uses_true_labels);
  EXPECT_TRUE(specs[4].uses_true_labels);
}

TEST(ExtractPlan, RejectsUnknownNames) {
  GRADLENS_EXPECT_THROWS_WITH(plan_outputs(only({"gradcam"})), "unknown value 'gradcam'");
  GRADLENS_EXPECT_THROWS_WITH(plan_outputs(only({"features", "features"})), "listed twice");
  ExtractOptions o;
  o.gradcam_targets = {"logit"};
  GRADLENS_EXPECT_THROWS_WITH(plan_outputs(o), "--targets");
  o = ExtractOptions{};
  o.grad_labels = {"loss"};
  GRADLENS_EXPECT_THROWS_WITH(plan_outputs(o), "--grad-labels");
  o = ExtractOptions{};
  // The pooling is typed; its name is checked where it is parsed.
  GRADLENS_EXPECT_THROWS_WITH(parse_activation_pool("sum"), "--pool");
}

TEST_F(ExtractTest, GradcamWeightsAtLayer4EqualTheHeadWeightIdentity) {
  ExtractOptions o = only({"gradcam-weights"});
  o.gradcam_targets = {"pred", "true"};
  const auto out = extract_batch(*model, x, y, o);
  EXPECT_EQ(out.layer, "layer4");
  ASSERT_EQ(out.map_height * out.map_width, 4);  // 12 px -> 2x2 at layer4
  const auto w = model->fc_weight().detach();
  const auto e_pred = w.index_select(0, out.preds) / 4.0;
  const auto e_true = w.index_select(0, y) / 4.0;
  EXPECT_LT(rel_diff(out.get("gradcam-weights"), e_pred), 1e-6);
  EXPECT_LT(rel_diff(out.get("gradcam-weights.true"), e_true), 1e-6);
  // The audit sees it too.
  auto a = audit_representation(out.get("gradcam-weights.true"), y, kClasses,
                                {"gradcam-weights.true", true,
                                 gradcam_head_identity(w, torch::one_hot(y, kClasses).to(torch::kDouble), 4)});
  EXPECT_TRUE(a.equals_head_identity);
  EXPECT_LT(a.identity_rel_diff, 1e-6);
  EXPECT_EQ(a.distinct_rows, 5);  // one row per class; y has 5 distinct labels
  EXPECT_TRUE(a.degenerate);
  EXPECT_TRUE(a.label_informed);
  EXPECT_DOUBLE_EQ(a.ncm_accuracy, 1.0);
}

TEST_F(ExtractTest, GradcamWeightsMatchAPerSampleLoopAtEveryTarget) {
  ExtractOptions o = only({"gradcam-weights"});
  o.layer = "layer3";
  o.gradcam_targets = {"pred", "true", "loss"};
  const auto out = extract_batch(*model, x, y, o);
  EXPECT_EQ(out.backward_passes, 3);
  for (int64_t i = 0; i < x.size(0); ++i) {
    auto a = model->body(x.slice(0, i, i + 1), "layer3").detach().requires_grad_(true);
    auto z = model->head(a, "layer3");
    const int64_t pred = z.argmax(1).item<int64_t>();
    EXPECT_EQ(pred, out.preds[i].item<int64_t>());
    auto g_pred = torch::autograd::grad({z[0][pred]}, {a}, {}, true)[0].mean({2, 3});
    auto g_true = torch::autograd::grad({z[0][y[i].item<int64_t>()]}, {a}, {}, true)[0].mean({2, 3});
    auto g_loss = torch::autograd::grad({torch::cross_entropy_loss(z, y.slice(0, i, i + 1))}, {a})[0].mean({2, 3});
    EXPECT_LT(rel_diff(out.get("gradcam-weights")[i], g_pred[0]), 1e-5) << i;
    EXPECT_LT(rel_diff(out.get("gradcam-weights.true")[i], g_true[0]), 1e-5) << i;
    EXPECT_LT(rel_diff(out.get("gradcam-weights.loss")[i], g_loss[0]), 1e-5) << i;
  }
}

TEST_F(ExtractTest, InputGradMatchesAPerSampleLoop) {
  ExtractOptions o = only({"input-grad"});
  o.grad_labels = {"pred", "true"};
  const auto out = extract_batch(*model, x, y, o);
  EXPECT_EQ(out.backward_passes, 2);
  ASSERT_EQ(out.get("input-grad").sizes(), (std::vector<int64_t>{6, 144}));
  double worst = 0;
  for (int64_t i = 0; i < x.size(0); ++i) {
    auto xi = x.slice(0, i, i + 1).clone().requires_grad_(true);
    auto z = model->forward(xi);
    auto pred = z.argmax(1);
    auto gp = torch::autograd::grad({torch::cross_entropy_loss(z, pred)}, {xi}, {}, true)[0].flatten();
    auto gt = torch::autograd::grad({torch::cross_entropy_loss(z, y.slice(0, i, i + 1))}, {xi})[0].flatten();
    worst = std::max({worst, rel_diff(out.get("input-grad")[i], gp), rel_diff(out.get("input-grad.true")[i], gt)});
  }
  EXPECT_LT(worst, 1e-5);
  RecordProperty("input_grad_max_rel_diff", std::to_string(worst));
}

TEST_F(ExtractTest, HeadParamGradClosedFormMatchesAPerSampleLoop) {
  ExtractOptions o = only({"param-grad"});
  o.grad_labels = {"pred", "true"};
  const auto out = extract_batch(*model, x, y, o);
  EXPECT_EQ(out.backward_passes, 0);
  const int64_t d = model->fc_weight().size(1);
  ASSERT_EQ(out.get("param-grad").size(1), kClasses * d + kClasses);
  double worst = 0;
  for (int64_t i = 0; i < x.size(0); ++i) {
    auto z = model->forward(x.slice(0, i, i + 1));
    for (const bool use_true : {false, true}) {
      auto lab = use_true ? y.slice(0, i, i + 1) : z.argmax(1);
      auto g = torch::autograd::grad({torch::cross_entropy_loss(z, lab)},
                                     {model->fc_weight(), model->fc_bias()}, {}, true);
      auto expect = torch::cat({g[0].flatten(), g[1]});
      worst = std::max(worst, rel_diff(out.get(use_true ? "param-grad.true" : "param-grad")[i], expect));
    }
  }
  EXPECT_LT(worst, 1e-5);
}

TEST_F(ExtractTest, ConvParamGradMatchesAPerSampleLoop) {
  for (const std::string layer : {"layer4.1.conv2", "conv1", "layer2.0.downsample.0", "layer3.0.conv1"}) {
    ExtractOptions o = only({"param-grad", "logits", "gradcam-weights", "input-grad"});
    o.param_layer = layer;
    o.grad_labels = {"pred", "true"};
    const auto out = extract_batch(*model, x, y, o);
    EXPECT_EQ(out.backward_passes, 3);  // logit-pred, ce-true, ce-pred
    // The capture pass gives the model's own logits.
    EXPECT_LT(rel_diff(out.logits, model->forward(x)), 1e-6) << layer;
    const auto w = param(layer + ".weight");
    ASSERT_EQ(out.get("param-grad").size(1), w.numel()) << layer;
    double worst = 0;
    for (int64_t i = 0; i < x.size(0); ++i) {
      auto z = model->forward(x.slice(0, i, i + 1));
      auto gp = torch::autograd::grad({torch::cross_entropy_loss(z, z.argmax(1))}, {w}, {}, true)[0];
      auto gt = torch::autograd::grad({torch::cross_entropy_loss(z, y.slice(0, i, i + 1))}, {w})[0];
      worst = std::max({worst, rel_diff(out.get("param-grad")[i], gp.flatten()),
                        rel_diff(out.get("param-grad.true")[i], gt.flatten())});
    }
    EXPECT_LT(worst, 1e-5) << layer;
    // Input gradients through the capture pass are the same as without it.
    ExtractOptions plain = only({"input-grad"});
    EXPECT_LT(rel_diff(out.get("input-grad"), extract_batch(*model, x, y, plain).get("input-grad")), 1e-5);
  }
}

TEST_F(ExtractTest, Conv2dParamGradHandlesStrideAndBias) {
  auto conv = torch::nn::Conv2d(torch::nn::Conv2dOptions(3, 4, 3).stride(2).padding(1).bias(true));
  auto in = torch::randn({3, 3, 7, 7});
  auto outp = conv(in);
  auto seed = torch::randn_like(outp);
  auto gout = seed;  // gradient of sum(seed * out) wrt out
  auto per = conv2d_param_grad(in, gout, {3, 3}, {2, 2}, {1, 1}, {1, 1}, true);
  for (int64_t i = 0; i < 3; ++i) {
    auto o = conv(in.slice(0, i, i + 1));
    auto g = torch::autograd::grad({(o * seed.slice(0, i, i + 1)).sum()}, {conv->weight, conv->bias});
    EXPECT_LT(rel_diff(per[i], torch::cat({g[0].flatten(), g[1]})), 1e-5);
  }
}

TEST_F(ExtractTest, FeaturesActivationsLogitsProbsEqualDirectComputation) {
  ExtractOptions o = only({"features", "activations", "logits", "probs"});
  o.layer = "layer3";
  torch::NoGradGuard no_grad;  // extract_batch turns gradients on where needed
  const auto out = extract_batch(*model, x, y, o);
  EXPECT_EQ(out.backward_passes, 0);
  const auto maps = model->body(x, "layer3");
  const auto f = model->features(maps, "layer3");
  EXPECT_LT(rel_diff(out.get("features"), f), 1e-6);
  EXPECT_LT(rel_diff(out.get("activations"), maps.flatten(1)), 1e-6);
  EXPECT_LT(rel_diff(out.get("logits"), model->forward(x)), 1e-6);
  EXPECT_LT(rel_diff(out.get("probs"), torch::softmax(model->forward(x), 1)), 1e-6);
  EXPECT_TRUE(torch::equal(out.preds, model->forward(x).argmax(1)));
  o.pool = ActivationPool::kAvg;
  EXPECT_LT(rel_diff(extract_batch(*model, x, y, o).get("activations"), maps.mean({2, 3})), 1e-6);
  o.pool = ActivationPool::kMax;
  EXPECT_LT(rel_diff(extract_batch(*model, x, y, o).get("activations"), maps.amax({2, 3})), 1e-6);
}

TEST_F(ExtractTest, RunsInEvalModeAndRestoresTheMode) {
  ExtractOptions o = only({"logits", "input-grad"});
  const auto ref = extract_batch(*model, x, y, o);
  model->train(true);
  const auto out = extract_batch(*model, x, y, o);
  EXPECT_TRUE(model->is_training());
  model->train(false);
  EXPECT_LT(rel_diff(out.logits, ref.logits), 1e-6);
  EXPECT_LT(rel_diff(out.get("input-grad"), ref.get("input-grad")), 1e-6);
  // Parameter .grad fields are untouched.
  for (auto& p : model->parameters()) EXPECT_FALSE(p.grad().defined());
}

TEST_F(ExtractTest, BadInputErrors) {
  auto bad = x.clone();
  bad[3][0][5][5] = std::numeric_limits<float>::quiet_NaN();
  bad[4][0][1][1] = std::numeric_limits<float>::infinity();
  GRADLENS_EXPECT_THROWS_WITH(extract_batch(*model, bad, y, ExtractOptions{}), "input image 3 (row 3");
  GRADLENS_EXPECT_THROWS_WITH(check_finite_rows(bad, 100), "input image 103");
  ExtractOptions o;
  o.layer = "layer9";
  GRADLENS_EXPECT_THROWS_WITH(extract_batch(*model, x, y, o), "unknown layer 'layer9'");
  GRADLENS_EXPECT_THROWS_WITH(extract_batch(*model, x, y, only({"saliency"})), "unknown value 'saliency'");
  GRADLENS_EXPECT_THROWS_WITH(extract_batch(*model, x, y.slice(0, 0, 4), ExtractOptions{}),
                              "got 4 labels for 6 images");
  GRADLENS_EXPECT_THROWS_WITH(extract_batch(*model, x, y + 3, ExtractOptions{}), "labels must lie in [0, 5)");
  o = only({"param-grad"});
  o.param_layer = "layer4.1.bn2";
  GRADLENS_EXPECT_THROWS_WITH(extract_batch(*model, x, y, o), "unknown layer 'layer4.1.bn2'");
  ExtractOptions t;
  t.gradcam_targets = {"true"};
  GRADLENS_EXPECT_THROWS_WITH(extract_batch(*model, x, torch::Tensor(), t), "true labels are needed");
  GRADLENS_EXPECT_THROWS_WITH(extract_batch(*model, x.squeeze(1), y, ExtractOptions{}), "[N, C, H, W]");
}

TEST(ExtractBottleneck, ConvParamGradWorksForResNet50Blocks) {
  torch::manual_seed(1);
  auto model = tiny_resnet(3, "resnet50");
  auto x = torch::randn({3, 1, 12, 12});
  auto y = torch::tensor({0, 1, 2}, torch::kLong);
  ExtractOptions o;
  o.representations = {"param-grad", "logits"};
  o.param_layer = "layer2.0.conv3";
  const auto out = extract_batch(*model, x, y, o);
  EXPECT_LT(rel_diff(out.logits, model->forward(x)), 1e-6);
  torch::Tensor w;
  for (auto& [n, p] : model->named_parameters())
    if (n == "layer2.0.conv3.weight") w = p;
  for (int64_t i = 0; i < 3; ++i) {
    auto z = model->forward(x.slice(0, i, i + 1));
    auto g = torch::autograd::grad({torch::cross_entropy_loss(z, z.argmax(1))}, {w})[0];
    EXPECT_LT(rel_diff(out.get("param-grad")[i], g.flatten()), 1e-5);
  }
}

}  // namespace
}  // namespace gradlens::extract
