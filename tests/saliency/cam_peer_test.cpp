// Grad-CAM and Grad-CAM++ maps against the same computation in Debian's
// python3-torch on torchvision's resnet18 with the same weights, hooked the
// way pytorch-grad-cam hooks it (tests/python/cam_reference.py; pytorch-grad-
// cam itself is not packaged for Debian and is not installed, so the script
// re-creates its code path, with torch's bilinear interpolate in place of
// cv2.resize).
#include <torch/torch.h>

#include "gradlens/core/npy.h"
#include "gradlens/models/resnet.h"
#include "gradlens/saliency/cam.h"
#include "support/support.h"

namespace gradlens::saliency {
namespace {

TEST(CamPeer, GradCamAndGradCamPlusPlusMatchPytorchGradCamOnTorchvisionResNet18) {
  if (!test::python_has("torchvision")) GTEST_SKIP() << "python3-torchvision is not installed";
  torch::manual_seed(0);
  models::ResNetConfig cfg;
  cfg.num_classes = 10;
  cfg.in_channels = 1;
  cfg.stem = models::Stem::kSmall;
  cfg.width = 64;  // torchvision's width, so that torchvision's resnet18 holds the weights
  models::ResNet model(cfg);
  {
    // BatchNorm statistics away from (0, 1) and a larger head, so that eval
    // mode and the classes matter.
    torch::NoGradGuard ng;
    model.train(true);
    for (int i = 0; i < 3; ++i) model.forward(torch::randn({8, 1, 28, 28}) * 2 + 0.3);
    model.fc_weight().mul_(4);
    model.fc_bias().copy_(torch::randn({10}));
  }
  model.train(false);
  test::TempDir dir;
  for (auto& [name, p] : model.named_parameters()) core::write_npy(dir / "params" / (name + ".npy"), p.detach());
  for (auto& [name, b] : model.named_buffers()) core::write_npy(dir / "params" / (name + ".npy"), b.detach());
  const auto x = torch::randn({5, 1, 28, 28});
  const auto y = torch::tensor({3, 1, 4, 1, 5}, torch::kLong);
  core::write_npy(dir / "x.npy", x);
  core::write_npy(dir / "y.npy", y);
  {
    torch::NoGradGuard ng;
    core::write_npy(dir / "logits.npy", model.forward(x));
  }
  const auto r = test::run_command(std::string(test::kPython) + " " +
                                   test::source_path("tests/python/cam_reference.py").string() + " " +
                                   dir.path().string());
  ASSERT_EQ(r.exit_code, 0) << r.output;

  double worst_map = 0, worst_w = 0;
  int64_t constant = 0;
  for (const std::string method : {"gradcam", "gradcampp"}) {
    for (const std::string layer : {"layer3", "layer4"}) {
      for (const std::string target : {"pred", "true", "loss"}) {
        AttributionOptions o;
        o.method = method == "gradcam" ? AttributionMethod::kGradCam : AttributionMethod::kGradCamPlusPlus;
        o.layer = layer;
        o.target = extract::parse_gradient_target(target, "--target");
        const auto a = compute_attribution(model, x, y, o);
        const std::string key = method + "_" + layer + "_" + target;
        const auto ref = core::read_npy(dir / ("ref_" + key + ".npy"));
        const auto refw = core::read_npy(dir / ("refw_" + key + ".npy"));
        ASSERT_EQ(ref.sizes(), a.maps.sizes()) << key;
        const double dm = test::max_abs_diff(a.maps, ref);
        const double dw = test::max_abs_diff(a.weights, refw) / refw.abs().max().item<double>();
        EXPECT_LT(dm, 1e-4) << key;
        EXPECT_LT(dw, 1e-4) << key;
        // Mostly non-trivial maps (an all-negative CAM is all zero here and in
        // pytorch-grad-cam alike, which the map comparison covers).
        EXPECT_LE(a.num_constant, 1) << key;
        constant += a.num_constant;
        worst_map = std::max(worst_map, dm);
        worst_w = std::max(worst_w, dw);
      }
    }
  }
  EXPECT_LE(constant, 2) << "of 12 x 5 maps";
  RecordProperty("max_abs_map_diff_vs_python", std::to_string(worst_map));
  RecordProperty("max_rel_weight_diff_vs_python", std::to_string(worst_w));
}

}  // namespace
}  // namespace gradlens::saliency
