// Extraction against Debian's python3-torch (per-sample loops on torchvision's
// resnet18, loaded here as TorchScript) and a run directory read by numpy.
#include <torch/torch.h>

#include "extract/extract_test_util.h"
#include "gradlens/core/fs.h"
#include "gradlens/core/npy.h"
#include "gradlens/extract/representations.h"
#include "gradlens/extract/run.h"
#include "gradlens/models/torchscript.h"
#include "support/support.h"

namespace gradlens::extract {
namespace {

using testing::rel_diff;

TEST(ExtractPeer, TorchScriptResNetMatchesPythonTorchPerSampleLoops) {
  if (!test::python_has("torchvision")) GTEST_SKIP() << "python3-torchvision is not installed";
  test::TempDir dir;
  const auto r = test::run_command(std::string(test::kPython) + " " +
                                   test::source_path("tests/python/extract_torch_reference.py").string() +
                                   " " + dir.path().string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  models::TorchScriptClassifier model((dir / "model.pt").string(), torch::kCPU);
  const auto x = core::read_npy(dir / "x.npy");
  const auto y = core::read_npy(dir / "y.npy");
  double worst = 0;
  for (const std::string layer : {"layer3", "layer4"}) {
    ExtractOptions o;
    o.layer = layer;
    o.gradcam_targets = {"pred", "true", "loss"};
    o.grad_labels = {"pred", "true"};
    const auto out = extract_batch(model, x, y, o);
    EXPECT_EQ(out.backward_passes, 4);
    for (const std::string t : {"pred", "true", "loss"}) {
      const auto ref = core::read_npy(dir / ("gc_" + layer + "_" + t + ".npy"));
      const double d = rel_diff(out.get(t == "pred" ? "gradcam-weights" : "gradcam-weights." + t), ref);
      EXPECT_LT(d, 1e-4) << layer << " " << t;
      worst = std::max(worst, d);
    }
    if (layer == "layer4") {
      for (const std::string l : {"pred", "true"}) {
        const std::string suffix = l == "pred" ? "" : ".true";
        const double di = rel_diff(out.get("input-grad" + suffix), core::read_npy(dir / ("ig_" + l + ".npy")));
        const double dp = rel_diff(out.get("param-grad" + suffix), core::read_npy(dir / ("pg_" + l + ".npy")));
        EXPECT_LT(di, 1e-4) << l;
        EXPECT_LT(dp, 1e-4) << l;
        worst = std::max({worst, di, dp});
      }
      EXPECT_LT(rel_diff(out.get("features"), core::read_npy(dir / "features.npy")), 1e-5);
      EXPECT_LT(rel_diff(out.get("logits"), core::read_npy(dir / "logits.npy")), 1e-5);
    }
  }
  RecordProperty("max_rel_diff_vs_python_torch", std::to_string(worst));
}

// Any TorchScript classifier, at its CAM layer and an inner one: five
// torchvision CNNs (convolutional maps) and a ViT (token layers read as
// maps), against forward hooks on the same batch, as pytorch-grad-cam and
// Captum run; and the per-sample gradients of the convolution `conv`
// against one backward pass per image. One model per test, so that each writes only its own files.
void check_any_model(const std::string& arch, const std::vector<std::string>& layers,
                     const std::string& conv) {
  if (!test::python_has("torchvision")) GTEST_SKIP() << "python3-torchvision is not installed";
  test::TempDir dir;
  const auto r = test::run_command(std::string(test::kPython) + " " +
                                   test::source_path("tests/python/extract_any_model_reference.py").string() +
                                   " " + dir.path().string() + " " + arch);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto x = core::read_npy(dir / "x.npy");
  const auto y = core::read_npy(dir / "y.npy");
  double worst = 0;
  {
    models::TorchScriptClassifier model((dir / (arch + ".pt")).string(), torch::kCPU, {3, 64});
    for (size_t i = 0; i < layers.size(); ++i) {
      ExtractOptions o;
      o.layer = layers[i];
      o.gradcam_targets = {"pred", "true", "loss"};
      o.grad_labels = {"pred", "true"};
      const auto out = extract_batch(model, x, y, o);
      const auto ref = [&](const std::string& k) {
        const auto t = core::read_npy(dir / (arch + "_" + k + ".npy"));
        EXPECT_GT(t.abs().max().item<double>(), 0) << k << ": a reference of zeros proves nothing";
        return t;
      };
      for (const std::string t : {"pred", "true", "loss"}) {
        const double d = rel_diff(out.get(t == "pred" ? "gradcam-weights" : "gradcam-weights." + t),
                                  ref("gc_" + std::to_string(i) + "_" + t));
        EXPECT_LT(d, 1e-4) << layers[i] << " " << t;
        worst = std::max(worst, d);
      }
      for (const std::string l : {"pred", "true"}) {
        const std::string suffix = l == "pred" ? "" : ".true";
        const double di = rel_diff(out.get("input-grad" + suffix), ref("ig_" + l));
        const double dp = rel_diff(out.get("param-grad" + suffix), ref("pg_" + l));
        EXPECT_LT(di, 1e-4) << l;
        EXPECT_LT(dp, 1e-4) << l;
        worst = std::max({worst, di, dp});
      }
      EXPECT_LT(rel_diff(out.get("features"), ref("features")), 1e-5);
      EXPECT_LT(rel_diff(out.get("logits"), ref("logits")), 1e-5);
    }
  }
  // Per-sample gradients of an inner convolution, captured in the graph,
  // scripted and traced (whose geometry comes from the recorded convolution).
  for (const std::string& file : {arch + ".pt", arch + ".traced.pt"}) {
    SCOPED_TRACE(file);
    models::TorchScriptClassifier model((dir / file).string(), torch::kCPU, {3, 64});
    const auto names = param_layer_names(model);
    ASSERT_NE(std::find(names.begin(), names.end(), conv), names.end()) << conv;
    ExtractOptions o;
    o.representations = {"param-grad"};
    o.param_layer = conv;
    o.grad_labels = {"pred", "true"};
    const auto out = extract_batch(model, x, y, o);
    for (const std::string l : {"pred", "true"}) {
      const auto want = core::read_npy(dir / (arch + "_cg_" + l + ".npy"));
      ASSERT_GT(want.abs().max().item<double>(), 0) << "a reference of zeros proves nothing";
      const double d = rel_diff(out.get(l == "pred" ? "param-grad" : "param-grad.true"), want);
      EXPECT_LT(d, 1e-4) << conv << " " << l;
      worst = std::max(worst, d);
    }
  }
  ::testing::Test::RecordProperty("max_rel_diff_vs_python_torch", std::to_string(worst));
}

TEST(ExtractPeer, MobileNetV2MatchesForwardHooks) {
  check_any_model("mobilenet_v2", {"features", "features.14"}, "features.17.conv.2");
}
TEST(ExtractPeer, Vgg11BnMatchesForwardHooks) {
  check_any_model("vgg11_bn", {"features", "features.10"}, "features.8");
}
TEST(ExtractPeer, DenseNet121MatchesForwardHooks) {
  check_any_model("densenet121", {"features", "features.denseblock2.denselayer3"},
                  "features.denseblock4.denselayer16.conv2");
}
TEST(ExtractPeer, EfficientNetB0MatchesForwardHooks) {
  check_any_model("efficientnet_b0", {"features", "features.2.1.block"}, "features.0.0");
}
TEST(ExtractPeer, ConvNeXtTinyMatchesForwardHooks) {
  check_any_model("convnext_tiny", {"features", "features.3.1.block"}, "features.0.0");
}
TEST(ExtractPeer, VisionTransformerTokenLayersMatchForwardHooks) {
  check_any_model("vit", {"encoder.layers.encoder_layer_1.ln_1", "encoder.layers.encoder_layer_0"}, "conv_proj");
}

TEST(ExtractPeer, NumpyLoadsTheRunDirectory) {
  if (!test::python_has("numpy")) GTEST_SKIP() << "python3-numpy is not installed";
  torch::manual_seed(0);
  auto model = testing::tiny_resnet(3);
  auto ds = testing::tiny_dataset(10, 3);
  test::TempDir dir;
  ExtractConfig cfg;
  cfg.out = dir / "run";
  cfg.batch_size = 4;
  run_extract(*model, ds, cfg);
  const std::string script =
      "import json,sys,numpy as np\n"
      "d=sys.argv[1]; m=json.load(open(d+'/manifest.json'))\n"
      "for r in m['representations']:\n"
      "  a=np.load(d+'/'+r['file']); assert a.dtype==np.float32 and list(a.shape)==r['shape'], r\n"
      "  print(r['name'], a.shape[0], a.shape[1], repr(float(a.astype(np.float64).sum())))\n"
      "l=np.load(d+'/labels.npy'); p=np.load(d+'/preds.npy'); assert l.dtype==np.int64 and p.dtype==np.int64\n"
      "print('labels', int(l.sum()), 'preds', int(p.sum()))\n";
  const auto py = dir / "check.py";
  core::write_text_atomically(py, script);
  const auto r = test::run_command(std::string(test::kPython) + " " + py.string() + " " + cfg.out.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const char* name : {"gradcam-weights", "input-grad", "param-grad", "features", "activations", "logits", "probs"}) {
    const auto a = core::read_npy(cfg.out / (std::string(name) + ".npy")).to(torch::kDouble);
    const auto at = r.out.find(std::string(name) + " 10 ");
    ASSERT_NE(at, std::string::npos) << r.output;
    std::istringstream is(r.out.substr(at + std::string(name).size()));
    int64_t rows = 0, cols = 0;
    double sum = 0;
    is >> rows >> cols >> sum;
    EXPECT_EQ(cols, a.size(1)) << name;
    EXPECT_NEAR(sum, a.sum().item<double>(), 1e-9 * (1 + std::abs(sum))) << name;
  }
  EXPECT_NE(r.out.find("labels " + std::to_string(ds.labels.sum().item<int64_t>())), std::string::npos);
}

}  // namespace
}  // namespace gradlens::extract
