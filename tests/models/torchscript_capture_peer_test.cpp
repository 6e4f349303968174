// Any-architecture capture against PyTorch forward hooks: torchvision's
// mobilenet_v2, vgg11_bn and densenet121 (seeded random weights, 64 px),
// scripted and traced. gradlens captures `features` and the last Linear's
// input inside the TorchScript graph; the Python side uses hooks as
// pytorch-grad-cam does.
#include <torch/script.h>
#include <torch/torch.h>

#include "gradlens/models/torchscript.h"
#include "support/support.h"

namespace gradlens::models {
namespace {

class CapturePeer : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new test::TempDir();
    if (!test::python_has("torchvision")) return;
    const auto r = test::run_command(
        std::string(test::kPython) + " " +
        test::source_path("tests/python/torchvision_capture_reference.py").string() + " " +
        dir_->path().string());
    ok_ = r.exit_code == 0;
    log_ = r.output;
  }
  static void TearDownTestSuite() { delete dir_; }
  void SetUp() override {
    if (!test::python_has("torchvision")) GTEST_SKIP() << "python3-torchvision not installed";
    ASSERT_TRUE(ok_) << log_;
  }
  static test::TempDir* dir_;
  static bool ok_;
  static std::string log_;
};
test::TempDir* CapturePeer::dir_ = nullptr;
bool CapturePeer::ok_ = false;
std::string CapturePeer::log_;

double rel(const torch::Tensor& a, const torch::Tensor& b) {
  return (a - b).abs().max().item<double>() / std::max(b.abs().max().item<double>(), 1e-12);
}

void check(const test::fs::path& dir, const std::string& arch, const std::string& head) {
  auto ref = torch::jit::load((dir / (arch + ".ref.pt")).string());
  const auto x = ref.attr("x").toTensor();
  for (const std::string file : {arch + ".pt", arch + ".traced.pt"}) {
    SCOPED_TRACE(file);
    TorchScriptClassifier ts((dir / file).string(), torch::kCPU, {3, 64});
    EXPECT_EQ(ts.num_classes(), 10);
    EXPECT_EQ(ts.default_layer(), "features");
    EXPECT_EQ(ts.head_name(), head);
    auto c = ts.capture(x, "features", /*maps_leaf=*/true);
    const auto z = c.logits;
    EXPECT_LT(rel(z.detach(), ref.attr("logits").toTensor()), 1e-4);
    EXPECT_LT(rel(c.maps.detach(), ref.attr("maps").toTensor()), 1e-4);
    ASSERT_TRUE(c.features.defined());
    EXPECT_LT(rel(c.features.detach(), ref.attr("features").toTensor()), 1e-4);
    const auto cls = z.detach().argmax(1);
    const auto g = torch::autograd::grad({z.gather(1, cls.unsqueeze(1)).sum()}, {c.maps})[0];
    EXPECT_LT(rel(g.mean({2, 3}), ref.attr("weights").toTensor()), 1e-4);
    // The head recomposes the logits from the captured features.
    EXPECT_LT(rel(ts.classify(c.features).detach(), z.detach()), 1e-5);
    EXPECT_EQ(ts.fc_weight().size(0), 10);
    // An inner layer is captured too and is on the path to the logits.
    const std::string inner = ts.layers()[3];
    bool found = false;
    for (const auto& m : ts.modules())
      if (m.name == inner) found = m.called;
    if (found) {
      auto ci = ts.capture(x, inner, true);
      if (ci.maps.dim() == 4) {
        const auto gi = torch::autograd::grad({ci.logits.sum()}, {ci.maps})[0];
        EXPECT_EQ(gi.sizes(), ci.maps.sizes());
      }
    }
    try {
      ts.capture(x, "feature", true);
      ADD_FAILURE() << "unknown layer accepted";
    } catch (const c10::Error& e) {
      EXPECT_NE(std::string(e.what()).find("nearest: features"), std::string::npos) << e.what();
    }
  }
}

TEST_F(CapturePeer, MobileNetV2MatchesForwardHooks) { check(dir_->path(), "mobilenet_v2", "classifier.1"); }
TEST_F(CapturePeer, Vgg11BnMatchesForwardHooks) { check(dir_->path(), "vgg11_bn", "classifier.6"); }
TEST_F(CapturePeer, DenseNet121MatchesForwardHooks) { check(dir_->path(), "densenet121", "classifier"); }

}  // namespace
}  // namespace gradlens::models
