// Parity with torchvision: Debian's python3-torchvision builds resnet18 and
// resnet50 with seeded random weights; we import them into the native
// ResNets and must reproduce the logits.
#include "gradlens/models/torchscript.h"

#include <torch/script.h>
#include <torch/types.h>

#include <fstream>

#include "support/support.h"

namespace gradlens::models {
namespace {

struct TorchvisionParityPeerRef {
  static constexpr const char* kScript = "tests/python/models_torchvision_reference.py";
  static constexpr const char* kModule = "torchvision";
};
class TorchvisionParityPeer : public test::PythonReferenceTest<TorchvisionParityPeerRef> {};

void check_arch(const test::fs::path& dir, const std::string& arch) {
  TorchScriptClassifier ts((dir / (arch + ".pt")).string(), torch::kCPU, {0, 64});
  EXPECT_TRUE(ts.resnet_style());
  EXPECT_EQ(ts.num_classes(), 10);
  EXPECT_EQ(ts.in_channels(), 3);
  auto ref = torch::jit::load((dir / (arch + ".ref.pt")).string());
  auto x = ref.attr("x").toTensor();
  auto logits = ref.attr("logits").toTensor();

  const ResNetConfig cfg = infer_resnet_config(ts.named_parameters());
  EXPECT_EQ(cfg.arch, arch);
  EXPECT_EQ(cfg.num_classes, 10);
  EXPECT_EQ(cfg.stem, Stem::kImageNet);
  ResNet native(cfg);
  const auto rep = import_weights(ts, native);
  EXPECT_TRUE(rep.complete()) << rep.missing.size() << " missing, " << rep.mismatched.size()
                              << " mismatched";
  EXPECT_TRUE(rep.unexpected.empty());
  native.train(false);
  torch::NoGradGuard ng;
  // Tolerances are relative to the logits' scale: the random BatchNorm
  // statistics make them large (ResNet50: ~460), and float32 results differ
  // from the float64 ones by up to 1e-6 of that scale with any backend
  // (oneDNN or native convolutions) and thread count, in PyTorch 1.13 and
  // 2.6 alike, because each sums the convolutions in another order.
  const double scale_z = logits.abs().max().item<double>();
  const auto close = [&](const torch::Tensor& z) { return test::max_abs_diff(z, logits) / scale_z; };
  // Unfolded, the native network computes torchvision's ops in its order.
  native.set_fold_batchnorm(false);
  EXPECT_LT(close(native.forward(x)), 5e-6) << arch << ": logits up to " << scale_z;
  const auto unfolded3 = native.body(x, "layer3");
  // Folded (the default), it agrees to float rounding relative to the
  // values' scale (the random BN statistics make layer3's maps large):
  // measured up to 1.2e-6 with AVX-512 kernels and 2.1e-6 with AVX2 ones
  // after ResNet50's 40 convolutions; a wrong fold (e.g. without BN's eps)
  // is off by more than 1e-4.
  native.set_fold_batchnorm(true);
  const double scale_a = unfolded3.abs().max().item<double>();
  EXPECT_LT(close(native.forward(x)), 5e-6) << arch << ": logits up to " << scale_z;
  EXPECT_LT(test::max_abs_diff(native.body(x, "layer3"), unfolded3) / scale_a, 5e-6)
      << arch << ": layer3 maps up to " << scale_a;
  native.set_fold_batchnorm(false);
  // The TorchScript model served through the Classifier interface agrees too,
  // and its split at each layer recomposes to the same logits.
  ts.train(false);
  EXPECT_LT(close(ts.forward(x)), 5e-6);
  for (const auto& layer : resnet_stage_names()) EXPECT_LT(close(ts.head(ts.body(x, layer), layer)), 5e-6) << layer;
  EXPECT_LT(test::max_abs_diff(native.body(x, "layer3"), ts.body(x, "layer3")) / scale_a, 5e-6);
}

TEST_F(TorchvisionParityPeer, ResNet18LogitsMatchTorchvision) { check_arch(dir(), "resnet18"); }
TEST_F(TorchvisionParityPeer, ResNet50LogitsMatchTorchvision) { check_arch(dir(), "resnet50"); }

TEST_F(TorchvisionParityPeer, AModuleThatIsNotAClassifierIsRejected) {
  GRADLENS_EXPECT_THROWS_WITH(
      TorchScriptClassifier((dir() / "not_a_classifier.pt").string(), torch::kCPU, {3, 32}),
      "is not a classifier");
}

TEST(TorchScriptLoadPeer, AFileThatIsNotTorchScriptNamesThePath) {
  test::TempDir dir;
  { std::ofstream(dir / "junk.pt") << "junk"; }
  GRADLENS_EXPECT_THROWS_WITH(TorchScriptClassifier((dir / "junk.pt").string(), torch::kCPU),
                              "junk.pt");
}

}  // namespace
}  // namespace gradlens::models
