// TorchScript files written by PyTorch 2.6 (Debian 13's python3-torch; the
// fixtures in tests/fixtures/torch2 and how they are made:
// scripts/torch2-fixtures.sh) load and give PyTorch 2.6's logits and Grad-CAM
// weights: a CIFAR-style ResNet (maxpool = nn.Identity) traced and scripted,
// a small MobileNetV2 scripted and traced. A ViT whose attention needs an
// operator LibTorch 1.13 lacks is refused with a message naming it.
#include <torch/script.h>
#include <torch/torch.h>

#include "gradlens/core/torch_compat.h"
#include "gradlens/models/torchscript.h"
#include "support/support.h"

namespace gradlens::models {
namespace {

test::fs::path fixture(const std::string& name) { return test::source_path("tests/fixtures/torch2/" + name); }

using test::rel_to_reference;

void check(const std::string& file, const std::string& name, int64_t classes, const std::string& layer) {
  SCOPED_TRACE(file);
  auto ref = torch::jit::load(fixture("reference.pt").string());
  const auto x = ref.attr("x").toTensor();
  TorchScriptClassifier ts(fixture(file).string(), torch::kCPU, {3, 32});
  EXPECT_EQ(ts.num_classes(), classes);
  EXPECT_EQ(ts.default_layer(), layer);
  auto c = ts.capture(x, layer, /*maps_leaf=*/true);
  EXPECT_LT(rel_to_reference(c.logits.detach(), ref.attr(name + "_logits").toTensor()), 1e-5);
  const auto cls = c.logits.detach().argmax(1);
  const auto g = torch::autograd::grad({c.logits.gather(1, cls.unsqueeze(1)).sum()}, {c.maps})[0];
  EXPECT_LT(rel_to_reference(g.mean({2, 3}), ref.attr(name + "_weights").toTensor()), 1e-4);
  ASSERT_TRUE(c.features.defined());
  EXPECT_LT(rel_to_reference(ts.classify(c.features).detach(), c.logits.detach()), 1e-5);
  torch::NoGradGuard ng;
  EXPECT_LT(rel_to_reference(ts.forward(x), ref.attr(name + "_logits").toTensor()), 1e-5);
}

TEST(Torch2Fixture, ACifarResNetTracedAndScriptedByPyTorch2Loads) {
  check("cifar_resnet.traced.pt", "resnet", 10, "layer4");
  check("cifar_resnet.scripted.pt", "resnet", 10, "layer4");
  // The ResNet-style path (stage by stage from layer3's maps) on a trace
  // whose maxpool is an nn.Identity.
  auto ref = torch::jit::load(fixture("reference.pt").string());
  const auto x = ref.attr("x").toTensor();
  TorchScriptClassifier ts(fixture("cifar_resnet.traced.pt").string(), torch::kCPU, {3, 32});
  torch::NoGradGuard ng;
  EXPECT_LT(rel_to_reference(ts.head(ts.body(x, "layer3"), "layer3"), ref.attr("resnet_logits").toTensor()), 1e-5);
}

TEST(Torch2Fixture, AMobileNetScriptedAndTracedByPyTorch2Loads) {
  check("mobilenet.scripted.pt", "mobilenet", 4, "features");
  check("mobilenet.traced.pt", "mobilenet", 4, "features");
}

TEST(Torch2Fixture, AnOperatorLibTorchLacksIsNamedWithTheFix) {
  if (compat::kHasScaledDotProductAttention) GTEST_SKIP() << "LibTorch " << TORCH_VERSION << " has the operator";
  const auto f = fixture("vit.scripted.pt").string();
  GRADLENS_EXPECT_THROWS_WITH(TorchScriptClassifier(f, torch::kCPU, {3, 32}),
                              "it calls the operator aten::scaled_dot_product_attention, which this build's "
                              "LibTorch");
  GRADLENS_EXPECT_THROWS_WITH(TorchScriptClassifier(f, torch::kCPU, {3, 32}), f);
  GRADLENS_EXPECT_THROWS_WITH(TorchScriptClassifier(f, torch::kCPU, {3, 32}), "build gradlens against a LibTorch");
}

}  // namespace
}  // namespace gradlens::models
