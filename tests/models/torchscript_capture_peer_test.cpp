// Any-architecture capture against PyTorch forward hooks: torchvision's
// mobilenet_v2, vgg11_bn, densenet121, efficientnet_b0, convnext_tiny and a
// small VisionTransformer (seeded random weights, 64 px), scripted and
// traced. gradlens captures the CAM layer and the last Linear's input inside
// the TorchScript graph; the Python side uses hooks as pytorch-grad-cam does
// (with its reshape_transform for the ViT's token layers). Tuple and dict
// outputs are read with --output-index / --output-key.
#include <torch/script.h>
#include <torch/torch.h>

#include <algorithm>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>

#include "gradlens/models/torchscript.h"
#include "support/support.h"

namespace gradlens::models {
namespace {

// One suite per model, so that each test process writes only its model.
#define GRADLENS_CAPTURE_SUITE(Suite, names)                                         \
  struct Suite##Ref {                                                                \
    static constexpr const char* kScript = "tests/python/torchvision_capture_reference.py"; \
    static constexpr const char* kModule = "torchvision";                            \
    static constexpr const char* kArgs = names;                                      \
  };                                                                                 \
  class Suite : public test::PythonReferenceTest<Suite##Ref> {}

GRADLENS_CAPTURE_SUITE(CaptureMobileNetV2Peer, "mobilenet_v2");
GRADLENS_CAPTURE_SUITE(CaptureVgg11BnPeer, "vgg11_bn");
GRADLENS_CAPTURE_SUITE(CaptureDenseNet121Peer, "densenet121");
GRADLENS_CAPTURE_SUITE(CaptureEfficientNetB0Peer, "efficientnet_b0");
GRADLENS_CAPTURE_SUITE(CaptureConvNeXtTinyPeer, "convnext_tiny");
GRADLENS_CAPTURE_SUITE(CaptureVisionTransformerPeer, "vit");
GRADLENS_CAPTURE_SUITE(CaptureOutputsPeer, "outputs");

using test::rel_to_reference;

void check(const test::fs::path& dir, const std::string& arch, const std::string& head,
           const std::string& inner, const std::string& layer = "features",
           const std::string& default_layer = "features") {
  auto ref = torch::jit::load((dir / (arch + ".ref.pt")).string());
  const auto x = ref.attr("x").toTensor();
  for (const std::string& file : {arch + ".pt", arch + ".traced.pt"}) {
    SCOPED_TRACE(file);
    TorchScriptClassifier ts((dir / file).string(), torch::kCPU, {3, 64});
    EXPECT_EQ(ts.num_classes(), 10);
    EXPECT_EQ(ts.default_layer(), default_layer);
    EXPECT_EQ(ts.head_name(), head);
    auto c = ts.capture(x, layer, /*maps_leaf=*/true);
    const auto z = c.logits;
    EXPECT_LT(rel_to_reference(z.detach(), ref.attr("logits").toTensor()), 1e-4);
    EXPECT_LT(rel_to_reference(c.maps.detach(), ref.attr("maps").toTensor()), 1e-4);
    ASSERT_TRUE(c.features.defined());
    EXPECT_LT(rel_to_reference(c.features.detach(), ref.attr("features").toTensor()), 1e-4);
    const auto cls = z.detach().argmax(1);  // the reference's target
    const auto g = torch::autograd::grad({z.gather(1, cls.unsqueeze(1)).sum()}, {c.maps})[0];
    EXPECT_LT(rel_to_reference(g.mean({2, 3}), ref.attr("weights").toTensor()), 1e-4);
    // The head recomposes the logits from the captured features.
    EXPECT_LT(rel_to_reference(ts.classify(c.features).detach(), z.detach()), 1e-5);
    EXPECT_EQ(ts.fc_weight().size(0), 10);
    // An inner layer: inside an `if`, or reached through an overloaded forward.
    auto ci = ts.capture(x, inner, true);
    EXPECT_LT(rel_to_reference(ci.maps.detach(), ref.attr("inner_maps").toTensor()), 1e-4);
    const auto gi = torch::autograd::grad({ci.logits.gather(1, cls.unsqueeze(1)).sum()}, {ci.maps})[0];
    EXPECT_LT(rel_to_reference(gi.mean({2, 3}), ref.attr("inner_weights").toTensor()), 1e-4);
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
    ASSERT_GT(want.size(), 20u);
    size_t compared = 0;
    for (const auto& m : ts.modules()) {
      const auto w = want.find(m.name);
      if (w == want.end()) continue;
      // A traced graph has no call of a module that returned its input
      // unchanged (StochasticDepth, Dropout, Identity in eval mode).
      if (!m.called && file.find(".traced") != std::string::npos &&
          (m.type == "StochasticDepth" || m.type == "Dropout" || m.type == "Identity")) {
        ++compared;
        continue;
      }
      EXPECT_TRUE(m.called) << m.name;
      EXPECT_EQ(m.shape, w->second) << m.name;
      ++compared;
    }
    EXPECT_EQ(compared, want.size());
    try {
      ts.capture(x, layer + "x", true);
      ADD_FAILURE() << "unknown layer accepted";
    } catch (const c10::Error& e) {
      EXPECT_NE(std::string(e.what()).find("nearest: " + layer), std::string::npos) << e.what();
    }
  }
}

TEST_F(CaptureMobileNetV2Peer, MatchesForwardHooks) { check(dir(), "mobilenet_v2", "classifier.1", "features.3.conv");
}
TEST_F(CaptureVgg11BnPeer, MatchesForwardHooks) { check(dir(), "vgg11_bn", "classifier.6", "features.10"); }
TEST_F(CaptureDenseNet121Peer, MatchesForwardHooks) { check(dir(), "densenet121", "classifier", "features.denseblock2.denselayer3");
}
TEST_F(CaptureEfficientNetB0Peer, MatchesForwardHooks) {
  check(dir(), "efficientnet_b0", "classifier.1", "features.2.1.block");
}
TEST_F(CaptureConvNeXtTinyPeer, MatchesForwardHooks) { check(dir(), "convnext_tiny", "classifier.2", "features.3.1.block"); }

// Token layers [N, 1 + 8*8, 32] become maps [N, 32, 8, 8] (class token
// dropped), gradients included, as pytorch-grad-cam's reshape_transform.
TEST_F(CaptureVisionTransformerPeer, TokenLayersMatchReshapeTransform) {
  // The default layer is the last block's ln_1, pytorch-grad-cam's choice for ViTs.
  check(dir(), "vit", "heads.head", "encoder.layers.encoder_layer_0", "encoder.layers.encoder_layer_1.ln_1",
        "encoder.layers.encoder_layer_1.ln_1");
  const auto x = torch::jit::load((dir() / "vit.ref.pt").string()).attr("x").toTensor();
  // The same tokens read without dropping a class token are 65 = no square grid.
  TorchScriptOptions o;
  o.class_tokens = 0;
  TorchScriptClassifier ts((dir() / "vit.pt").string(), torch::kCPU, {3, 64}, o);
  GRADLENS_EXPECT_THROWS_WITH(ts.capture(x, "encoder.layers.encoder_layer_0", true), "--class-tokens");
  // Two leading tokens leave 63: no grid either.
  o.class_tokens = 2;
  TorchScriptClassifier ts2((dir() / "vit.pt").string(), torch::kCPU, {3, 64}, o);
  GRADLENS_EXPECT_THROWS_WITH(ts2.capture(x, "encoder.layers.encoder_layer_0", true), "do not form a square grid");
}

// forward() returning (logits, aux) or {"aux", "logits"}: refused with the
// flag to use, then served (logits, capture, head) once it is given.
void check_selected_output(const test::fs::path& dir, const std::string& net, const TorchScriptOptions& pick,
                           const std::string& flag) {
  auto ref = torch::jit::load((dir / (net + ".ref.pt")).string());
  const auto x = ref.attr("x").toTensor();
  for (const std::string& file : {net + ".pt", net + ".traced.pt"}) {
    SCOPED_TRACE(file);
    GRADLENS_EXPECT_THROWS_WITH(TorchScriptClassifier((dir / file).string(), torch::kCPU, {3, 32}), flag);
    TorchScriptClassifier ts((dir / file).string(), torch::kCPU, {3, 32}, pick);
    EXPECT_EQ(ts.num_classes(), 10);
    EXPECT_LT(rel_to_reference(ts.forward(x).detach(), ref.attr("logits").toTensor()), 1e-5);
    EXPECT_EQ(ts.default_layer(), "conv");
    auto c = ts.capture(x, "conv", true);
    const auto cls = c.logits.detach().argmax(1);
    const auto g = torch::autograd::grad({c.logits.gather(1, cls.unsqueeze(1)).sum()}, {c.maps})[0];
    EXPECT_LT(rel_to_reference(g.mean({2, 3}), ref.attr("weights").toTensor()), 1e-5);
    ASSERT_TRUE(c.features.defined());
    EXPECT_LT(rel_to_reference(ts.classify(c.features).detach(), c.logits.detach()), 1e-6);
  }
}

TEST_F(CaptureOutputsPeer, TupleOutputIsReadWithOutputIndex) {
  TorchScriptOptions pick;
  pick.output_index = 0;
  check_selected_output(dir(), "tuple_net", pick, "--output-index");
  pick.output_index = 2;
  GRADLENS_EXPECT_THROWS_WITH(TorchScriptClassifier((dir() / "tuple_net.pt").string(), torch::kCPU, {3, 32}, pick),
                              "give the index of a tensor, 0 to 1");
}

TEST_F(CaptureOutputsPeer, DictOutputIsReadWithOutputKey) {
  TorchScriptOptions pick;
  pick.output_key = "logits";
  check_selected_output(dir(), "dict_net", pick, "--output-key");
  pick.output_key = "scores";
  GRADLENS_EXPECT_THROWS_WITH(TorchScriptClassifier((dir() / "dict_net.pt").string(), torch::kCPU, {3, 32}, pick),
                              "keys are aux, logits");
  TorchScriptOptions wrong;
  wrong.output_index = 0;
  GRADLENS_EXPECT_THROWS_WITH(TorchScriptClassifier((dir() / "dict_net.pt").string(), torch::kCPU, {3, 32}, wrong),
                              "--output-key");
}

// Per-sample convolution gradients (--param-layer) refuse what they cannot
// serve, naming the flag: a grouped (depthwise) convolution, an unknown
// name, a convolution whose weights are used twice.
TEST_F(CaptureMobileNetV2Peer, ConvCaptureRefusesGroupedAndUnknownConvolutions) {
  const auto x = torch::jit::load((dir() / "mobilenet_v2.ref.pt").string()).attr("x").toTensor();
  TorchScriptClassifier ts((dir() / "mobilenet_v2.pt").string(), torch::kCPU, {3, 64});
  const auto names = ts.conv_layer_names();
  EXPECT_EQ(names.front(), "features.0.0");
  EXPECT_NE(std::find(names.begin(), names.end(), "features.1.conv.0.0"), names.end());
  GRADLENS_EXPECT_THROWS_WITH(ts.capture_conv(x, "features", "features.1.conv.0.0"),
                              "convolution features.1.conv.0.0: a grouped convolution (groups 32)");
  GRADLENS_EXPECT_THROWS_WITH(ts.capture_conv(x, "features", "features.1.conv"),
                              "unknown convolution 'features.1.conv'");
  // A served one: its output is the convolution of its kept input, in the logits' graph.
  const auto c = ts.capture_conv(x, "features", "features.18.0");
  torch::Tensor w;
  for (auto& [name, p] : ts.named_parameters())
    if (name == "features.18.0.weight") w = p;
  ASSERT_TRUE(w.defined());
  const auto& g = c.geometry;
  EXPECT_EQ(g.kernel, (std::vector<int64_t>{1, 1}));
  EXPECT_FALSE(g.has_bias);
  const auto expect = torch::conv2d(c.conv_input, w, {}, g.stride, g.padding, g.dilation);
  EXPECT_LT(rel_to_reference(c.conv_output.detach(), expect), 1e-6);
  EXPECT_LT(rel_to_reference(c.logits.detach(), ts.forward(x).detach()), 1e-6);
}

TEST_F(CaptureOutputsPeer, ConvCaptureRefusesAConvolutionCalledTwice) {
  TorchScriptClassifier ts((dir() / "twice_net.pt").string(), torch::kCPU, {3, 32});
  GRADLENS_EXPECT_THROWS_WITH(ts.capture_conv(torch::randn({2, 3, 32, 32}), "conv", "conv"),
                              "convolution conv: " + (dir() / "twice_net.pt").string() +
                                  "'s forward() calls it 2 times");
}

// An error raised inside the model's forward() names the file and the batch.
TEST_F(CaptureOutputsPeer, AnErrorInsideTheModelNamesTheFileAndTheBatch) {
  const auto file = (dir() / "picky_net.pt").string();
  TorchScriptClassifier ts(file, torch::kCPU, {3, 32});  // the probe batch of 2 passes
  const auto x = torch::randn({3, 3, 32, 32});
  const std::string want = file + ": the model's forward() failed on a batch of shape [3, 3, 32, 32]: ";
  GRADLENS_EXPECT_THROWS_WITH(ts.forward(x), want);
  GRADLENS_EXPECT_THROWS_WITH(ts.capture(x, "conv", true), want);
  GRADLENS_EXPECT_THROWS_WITH(ts.forward(x), "batches of at most 2 images, please");
  EXPECT_EQ(ts.forward(x.slice(0, 0, 2)).sizes(), (torch::IntArrayRef{2, 10}));
}

// `gradlens layers` prints those shapes with the default layer and the head.
TEST_F(CaptureMobileNetV2Peer, LayersCommandListsShapesDefaultAndHead) {
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
