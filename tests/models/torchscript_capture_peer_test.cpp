// Any-architecture capture against PyTorch forward hooks: torchvision's
// mobilenet_v2, vgg11_bn and densenet121 (seeded random weights, 64 px),
// scripted and traced. gradlens captures `features` and the last Linear's
// input inside the TorchScript graph; the Python side uses hooks as
// pytorch-grad-cam does.
#include <torch/script.h>
#include <torch/torch.h>

#include <fstream>
#include <map>
#include <sstream>

#include "gradlens/models/torchscript.h"
#include "support/support.h"

namespace gradlens::models {
namespace {

struct CapturePeerRef {
  static constexpr const char* kScript = "tests/python/torchvision_capture_reference.py";
  static constexpr const char* kModule = "torchvision";
};
class CapturePeer : public test::PythonReferenceTest<CapturePeerRef> {};

double rel(const torch::Tensor& a, const torch::Tensor& b) {
  return (a - b).abs().max().item<double>() / std::max(b.abs().max().item<double>(), 1e-12);
}

void check(const test::fs::path& dir, const std::string& arch, const std::string& head,
           const std::string& inner) {
  auto ref = torch::jit::load((dir / (arch + ".ref.pt")).string());
  const auto x = ref.attr("x").toTensor();
  for (const std::string& file : {arch + ".pt", arch + ".traced.pt"}) {
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
    const auto cls = z.detach().argmax(1);  // the reference's target
    const auto g = torch::autograd::grad({z.gather(1, cls.unsqueeze(1)).sum()}, {c.maps})[0];
    EXPECT_LT(rel(g.mean({2, 3}), ref.attr("weights").toTensor()), 1e-4);
    // The head recomposes the logits from the captured features.
    EXPECT_LT(rel(ts.classify(c.features).detach(), z.detach()), 1e-5);
    EXPECT_EQ(ts.fc_weight().size(0), 10);
    // An inner layer: inside an `if`, or reached through an overloaded forward.
    auto ci = ts.capture(x, inner, true);
    EXPECT_LT(rel(ci.maps.detach(), ref.attr("inner_maps").toTensor()), 1e-4);
    const auto gi = torch::autograd::grad({ci.logits.gather(1, cls.unsqueeze(1)).sum()}, {ci.maps})[0];
    EXPECT_LT(rel(gi.mean({2, 3}), ref.attr("inner_weights").toTensor()), 1e-4);
    // Every module whose hook saw a tensor has that shape in modules() (the
    // probe batch is 2 images, the reference's 3).
    std::map<std::string, std::vector<int64_t>> want;
    std::ifstream f(dir / (arch + ".shapes.txt"));
    for (std::string line; std::getline(f, line);) {
      std::istringstream ss(line);
      std::string name;
      ss >> name;
      std::vector<int64_t> shape;
      for (int64_t d; ss >> d;) shape.push_back(d);
      shape[0] = 2;
      want[name] = shape;
    }
    ASSERT_GT(want.size(), 30u);
    size_t compared = 0;
    for (const auto& m : ts.modules()) {
      const auto w = want.find(m.name);
      if (w == want.end()) continue;
      EXPECT_TRUE(m.called) << m.name;
      EXPECT_EQ(m.shape, w->second) << m.name;
      ++compared;
    }
    EXPECT_EQ(compared, want.size());
    try {
      ts.capture(x, "feature", true);
      ADD_FAILURE() << "unknown layer accepted";
    } catch (const c10::Error& e) {
      EXPECT_NE(std::string(e.what()).find("nearest: features"), std::string::npos) << e.what();
    }
  }
}

TEST_F(CapturePeer, MobileNetV2MatchesForwardHooks) { check(dir(), "mobilenet_v2", "classifier.1", "features.3.conv");
}
TEST_F(CapturePeer, Vgg11BnMatchesForwardHooks) { check(dir(), "vgg11_bn", "classifier.6", "features.10"); }
TEST_F(CapturePeer, DenseNet121MatchesForwardHooks) { check(dir(), "densenet121", "classifier", "features.denseblock2.denselayer3");
}

// `gradlens layers` prints those shapes with the default layer and the head.
TEST_F(CapturePeer, LayersCommandListsShapesDefaultAndHead) {
  const auto gradlens = test::binary_path("gradlens");
  if (!test::fs::exists(gradlens)) GTEST_SKIP() << "build the gradlens target first";
  const auto r = test::run_command(gradlens.string() + " layers --model " +
                                   (dir() / "mobilenet_v2.pt").string() + " --image-size 64");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto has = [&](const std::string& s) { return r.output.find(s) != std::string::npos; };
  EXPECT_TRUE(has("(3 input channel(s), 10 classes)")) << r.output;
  EXPECT_TRUE(has("features              Sequential              [N, 1280, 2, 2]  <- default layer")) << r.output;
  EXPECT_TRUE(has("features.3.conv       Sequential              [N, 24, 16, 16]\n")) << r.output;
  EXPECT_TRUE(has("classifier.1          Linear                  [N, 10]  <- head")) << r.output;
  EXPECT_FALSE(has("not captured")) << r.output;
  const auto bad = test::run_command(gradlens.string() + " layers --model " +
                                     (dir() / "missing.pt").string());
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.output.find("missing.pt"), std::string::npos) << bad.output;
}

}  // namespace
}  // namespace gradlens::models
