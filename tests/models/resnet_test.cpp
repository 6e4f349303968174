#include "gradlens/models/resnet.h"

#include <torch/torch.h>

#include "gradlens/core/fs.h"
#include "gradlens/models/checkpoint.h"
#include "gradlens/models/winograd_kernel.h"

#include <algorithm>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include "support/support.h"

namespace gradlens::models {
namespace {

using test::SeededTest;

class ResNetTest : public SeededTest {};

TEST_F(ResNetTest, ParameterCountsEqualTorchvisionWith1000Classes) {
  // torchvision's published parameter counts for the ImageNet models.
  const std::vector<std::pair<std::string, int64_t>> expected = {
      {"resnet18", 11689512}, {"resnet34", 21797672}, {"resnet50", 25557032},
      {"resnet101", 44549160}, {"resnet152", 60192808}};
  for (const auto& [arch, n] : expected) {
    ResNetConfig cfg;
    cfg.arch = arch;
    ResNet m(cfg);
    EXPECT_EQ(count_parameters(m), n) << arch;
  }
}

TEST_F(ResNetTest, SubmoduleNamesFollowTorchvision) {
  ResNetConfig cfg;
  cfg.arch = "resnet50";
  cfg.num_classes = 10;
  ResNet m(cfg);
  std::set<std::string> names;
  for (auto& [n, p] : m.named_parameters()) names.insert(n);
  for (auto& [n, p] : m.named_buffers()) names.insert(n);
  for (const char* n : {"conv1.weight", "bn1.weight", "bn1.running_mean", "bn1.num_batches_tracked",
                        "layer1.0.conv3.weight", "layer1.0.downsample.0.weight",
                        "layer1.0.downsample.1.running_var", "layer4.2.bn3.bias", "fc.weight",
                        "fc.bias"})
    EXPECT_EQ(names.count(n), 1u) << n;
  EXPECT_EQ(names.count("layer1.1.downsample.0.weight"), 0u);
}

TEST_F(ResNetTest, SmallStemKeepsA4x4MapAtLayer4On28Pixels) {
  ResNetConfig cfg;
  cfg.stem = Stem::kSmall;
  cfg.in_channels = 1;
  cfg.num_classes = 10;
  cfg.width = 8;
  ResNet m(cfg);
  m.train(false);
  auto x = torch::randn({2, 1, 28, 28});
  EXPECT_EQ(m.body(x, "layer4").sizes(), (std::vector<int64_t>{2, 64, 4, 4}));
  EXPECT_EQ(m.body(x, "layer1").sizes(), (std::vector<int64_t>{2, 8, 28, 28}));
  EXPECT_EQ(m.forward(x).sizes(), (std::vector<int64_t>{2, 10}));
}

TEST_F(ResNetTest, ForwardEqualsHeadOfBodyAtEveryLayer) {
  ResNetConfig cfg;
  cfg.arch = "resnet34";
  cfg.num_classes = 5;
  cfg.width = 8;
  ResNet m(cfg);
  m.train(false);
  auto x = torch::randn({2, 3, 64, 64});
  auto ref = m.forward(x);
  for (const auto& layer : m.layers()) {
    auto y = m.head(m.body(x, layer), layer);
    EXPECT_LT(test::max_abs_diff(y, ref), 1e-5) << layer;
  }
  // features() is the global average of layer4's maps.
  auto maps = m.body(x, "layer4");
  EXPECT_LT(test::max_abs_diff(m.features(maps, "layer4"), maps.mean({2, 3})), 1e-7);
}

TEST_F(ResNetTest, ZeroInitResidualMakesBlocksIdentityOnTheirInput) {
  ResNetConfig cfg;
  cfg.zero_init_residual = true;
  cfg.width = 8;
  ResNet m(cfg);
  int zeroed = 0;
  for (auto& [n, p] : m.named_parameters()) {
    if (n.size() > 11 && n.compare(n.size() - 11, 11, ".bn2.weight") == 0) {
      EXPECT_EQ(p.abs().sum().item<double>(), 0.0) << n;
      ++zeroed;
    }
  }
  EXPECT_EQ(zeroed, 8) << "resnet18 has 8 basic blocks, each with a zero-initialised bn2";
}

// Random BN statistics and affine parameters, so folding has work to do.
void randomise_batchnorm(ResNet& m) {
  torch::NoGradGuard ng;
  for (auto& [name, t] : m.named_parameters()) {
    if (name.find("bn") == std::string::npos && name.find("downsample.1") == std::string::npos) continue;
    const bool gamma = name.find("weight") != std::string::npos;
    t.uniform_(gamma ? 0.5 : -0.3, gamma ? 1.5 : 0.3);
  }
  for (auto& [name, t] : m.named_buffers()) {
    if (name.find("running_mean") != std::string::npos) t.uniform_(-0.3, 0.3);
    if (name.find("running_var") != std::string::npos) t.uniform_(0.5, 2.0);
  }
}

// A small-stem, width-4 ResNet in eval mode with random BN statistics.
std::unique_ptr<ResNet> small_eval_resnet(const std::string& arch, int64_t classes, int64_t channels) {
  ResNetConfig cfg;
  cfg.arch = arch;
  cfg.num_classes = classes;
  cfg.in_channels = channels;
  cfg.stem = Stem::kSmall;
  cfg.width = 4;
  auto m = std::make_unique<ResNet>(cfg);
  randomise_batchnorm(*m);
  m->train(false);
  return m;
}

bool winograd_cpu_supported_for_tests() { return detail::winograd_cpu_supported(); }

double rel_l2(const torch::Tensor& a, const torch::Tensor& b) {
  return ((a - b).norm() / b.norm()).item<double>();
}

TEST_F(ResNetTest, FoldedBatchNormMatchesTheUnfoldedNetworkAndItsGradients) {
  for (const std::string arch : {"resnet18", "resnet50"}) {
    auto model = small_eval_resnet(arch, 5, 2);
    ResNet& m = *model;
    EXPECT_TRUE(m.folds_batchnorm());
    const auto x = torch::randn({6, 2, 16, 16});
    // Values and gradients with respect to the input and to parameters of a
    // convolution and of a BN, folded and not.
    auto run = [&](bool fold) {
      m.set_fold_batchnorm(fold);
      for (auto& [name, p] : m.named_parameters())
        if (p.grad().defined()) p.mutable_grad() = torch::Tensor();
      auto xg = x.clone().requires_grad_(true);
      auto z = m.forward(xg);
      (z * torch::arange(1, 6, z.options())).sum().backward();
      std::map<std::string, torch::Tensor> g;
      for (auto& [name, p] : m.named_parameters())
        if (name == "layer1.0.conv1.weight" || name == "layer1.0.bn1.weight" || name == "layer2.0.bn2.bias" ||
            name == "layer2.0.downsample.1.weight")
          g[name] = p.grad().clone();
      g["x"] = xg.grad().clone();
      g["z"] = z.detach();
      return g;
    };
    const auto unfolded = run(false);
    const auto folded = run(true);
    ASSERT_EQ(folded.size(), 6u) << arch;
    for (const auto& [name, ref] : unfolded) {
      const double err = rel_l2(folded.at(name), ref);
      EXPECT_LT(err, 1e-5) << arch << " " << name;
      EXPECT_GT(ref.abs().max().item<double>(), 0.0) << name;
    }
    // Training mode never folds: bit for bit the unfolded network.
    m.train(true);
    m.set_fold_batchnorm(true);
    const auto train_folded = m.forward(x).detach();
    m.set_fold_batchnorm(false);
    EXPECT_TRUE(torch::equal(train_folded, m.forward(x).detach())) << arch;
  }
}

TEST_F(ResNetTest, CaptureConvKeepsTheNamedConvolutionsInputAndOutputInTheModelsOwnPass) {
  for (const std::string arch : {"resnet18", "resnet50"}) {
    auto model = small_eval_resnet(arch, 5, 2);
    ResNet& m = *model;
    const auto x = torch::randn({3, 2, 16, 16});
    const auto names = m.conv_layer_names();
    EXPECT_EQ(names.front(), "conv1");
    EXPECT_NE(std::find(names.begin(), names.end(), "layer2.0.downsample.0"), names.end()) << arch;
    for (const std::string conv : {"conv1", "layer2.0.downsample.0", "layer3.1.conv2"}) {
      const auto c = m.capture_conv(x, "layer3", conv);
      EXPECT_LT(rel_l2(c.logits, m.forward(x)), 1e-5) << arch << " " << conv;
      EXPECT_LT(rel_l2(c.maps, m.body(x, "layer3")), 1e-5) << arch << " " << conv;
      // The output is that convolution applied to the kept input, before its BN.
      torch::Tensor w;
      for (auto& [name, p] : m.named_parameters())
        if (name == conv + ".weight") w = p;
      ASSERT_TRUE(w.defined()) << conv;
      const auto& g = c.geometry;
      const auto expect = torch::conv2d(c.conv_input, w, {}, g.stride, g.padding, g.dilation);
      EXPECT_LT(rel_l2(c.conv_output.detach(), expect), 1e-6) << arch << " " << conv;
      // ... and in the graph of the logits.
      EXPECT_TRUE(torch::autograd::grad({c.logits.sum()}, {c.conv_output})[0].abs().sum().item<double>() > 0);
    }
    GRADLENS_EXPECT_THROWS_WITH(m.capture_conv(x, "layer4", "layer1.0.bn1"), "unknown convolution 'layer1.0.bn1'");
  }
}

TEST_F(ResNetTest, WinogradConvolutionsMatchLibTorchsAndLeaveTrainingAlone) {
  for (const std::string arch : {"resnet18", "resnet50"}) {
    ResNetConfig cfg;
    cfg.arch = arch;
    cfg.num_classes = 10;
    cfg.in_channels = 1;
    cfg.stem = Stem::kSmall;
    cfg.width = 16;  // channel counts the Winograd kernel takes
    ResNet m(cfg);
    randomise_batchnorm(m);
    m.to_channels_last();
    m.train(false);
    EXPECT_TRUE(m.uses_winograd());
    const auto x = at::empty({5, 1, 20, 20}, at::MemoryFormat::ChannelsLast).copy_(torch::randn({5, 1, 20, 20}));
    auto run = [&](bool winograd) {
      m.set_winograd(winograd);
      for (auto& [name, p] : m.named_parameters())
        if (p.grad().defined()) p.mutable_grad() = torch::Tensor();
      auto xg = x.clone().requires_grad_(true);
      auto z = m.forward(xg);
      (z * torch::arange(1, 11, z.options())).sum().backward();
      std::map<std::string, torch::Tensor> g;
      g["z"] = z.detach();
      g["x"] = xg.grad().clone();
      for (auto& [name, p] : m.named_parameters())
        if (name == "layer1.0.conv2.weight" || name == "layer3.1.bn2.weight") g[name] = p.grad().clone();
      return g;
    };
    const auto direct = run(false);
    const auto winograd = run(true);
    ASSERT_EQ(winograd.size(), 4u);
    for (const auto& [name, ref] : direct) {
      EXPECT_LT(rel_l2(winograd.at(name), ref), 1e-4) << arch << " " << name;
      EXPECT_GT(ref.abs().max().item<double>(), 0.0) << name;
    }
    // The Winograd path did run where the CPU has it (its rounding differs).
    if (winograd_cpu_supported_for_tests()) {
      EXPECT_FALSE(torch::equal(winograd.at("z"), direct.at("z"))) << arch;
    }
    // Training mode never folds, so never uses Winograd: the same bits.
    m.train(true);
    m.set_winograd(true);
    const auto a = m.forward(x).detach();
    m.set_winograd(false);
    EXPECT_TRUE(torch::equal(a, m.forward(x).detach())) << arch;
  }
}

TEST_F(ResNetTest, WinogradKernelsFollowRunningStatisticsUpdatedInTraining) {
  // LibTorch 1.13's training-mode BN updates running_mean/var without
  // bumping their versions; eval after a train-mode forward (no optimizer
  // step, as in BN recalibration) must still fold the new statistics.
  ResNetConfig cfg;
  cfg.arch = "resnet18";
  cfg.num_classes = 10;
  cfg.in_channels = 1;
  cfg.stem = Stem::kSmall;
  cfg.width = 16;
  ResNet m(cfg);
  m.to_channels_last();
  const auto x = at::empty({4, 1, 12, 12}, at::MemoryFormat::ChannelsLast).copy_(torch::randn({4, 1, 12, 12}));
  torch::NoGradGuard ng;
  m.train(false);
  const auto before = m.forward(x);
  m.train(true);
  m.forward(x * 3 + 1);  // new running statistics
  m.train(false);
  const auto after = m.forward(x);
  m.set_winograd(false);
  const auto reference = m.forward(x);
  EXPECT_GT(test::max_abs_diff(after, before), 1e-3);
  EXPECT_LT(rel_l2(after, reference), 1e-5);
}

TEST_F(ResNetTest, FoldedBatchNormSeesParameterChangesAtOnce) {
  auto model = small_eval_resnet("resnet18", 3, 1);
  ResNet& m = *model;
  torch::NoGradGuard ng;
  const auto x = torch::randn({2, 1, 12, 12});
  const auto before = m.forward(x);
  for (auto& [name, t] : m.named_buffers())
    if (name == "layer1.0.bn1.running_var") t.mul_(4.0);
  const auto after = m.forward(x);
  m.set_fold_batchnorm(false);
  const auto reference = m.forward(x);
  EXPECT_GT(test::max_abs_diff(after, before), 1e-3);
  EXPECT_LT(rel_l2(after, reference), 1e-6);
}

TEST_F(ResNetTest, ChannelsLastReachesTheStemOfA1ChannelNetwork) {
  // A stem weight [C, 1, 3, 3] in NCHW strides also satisfies channels-last,
  // so it must be restrided for the stem's convolution to write channels-last;
  // otherwise layer1 mixes layouts (NCHW identity, channels-last branch).
  auto model = small_eval_resnet("resnet18", 3, 1);
  ResNet& m = *model;
  const auto x = torch::randn({4, 1, 16, 16});
  // The input gradient only, as extraction takes it: the parameters'
  // gradients in channels-last are what LibTorch 1.13's oneDNN corrupts the
  // heap computing on AVX2-only CPUs (train/trainer.cpp).
  auto run = [&] {
    auto xg = x.clone().requires_grad_(true);
    auto z = m.forward(xg);
    const auto gx = torch::autograd::grad({z.sum()}, {xg})[0];
    return std::make_pair(z.detach(), gx.clone());
  };
  const auto [z_nchw, gx_nchw] = run();
  m.to_channels_last();
  int checked = 0;
  for (auto& [name, p] : m.named_parameters()) {
    if (p.dim() != 4) continue;
    EXPECT_EQ(p.suggest_memory_format(), at::MemoryFormat::ChannelsLast) << name;
    ++checked;
  }
  EXPECT_EQ(checked, 20);  // stem + 16 block convolutions + 3 downsamples
  torch::Tensor stem_w;
  for (auto& [name, p] : m.named_parameters())
    if (name == "conv1.weight") stem_w = p;
  ASSERT_TRUE(stem_w.defined());
  EXPECT_EQ(torch::conv2d(x, stem_w, {}, 1, 1).suggest_memory_format(), at::MemoryFormat::ChannelsLast);
  for (const auto& layer : m.layers()) {
    torch::NoGradGuard ng;
    EXPECT_EQ(m.body(x, layer).suggest_memory_format(), at::MemoryFormat::ChannelsLast) << layer;
  }
  const auto [z_cl, gx_cl] = run();
  EXPECT_LT(rel_l2(z_cl, z_nchw), 1e-5);
  EXPECT_LT(rel_l2(gx_cl, gx_nchw), 1e-5);
}

TEST_F(ResNetTest, UnknownModelAndLayerAreClearErrors) {
  ResNetConfig cfg;
  cfg.arch = "resnet19";
  GRADLENS_EXPECT_THROWS_WITH(ResNet{cfg}, "unknown model 'resnet19'");
  cfg.arch = "resnet18";
  cfg.width = 4;
  ResNet m(cfg);
  GRADLENS_EXPECT_THROWS_WITH(m.body(torch::zeros({1, 3, 32, 32}), "layer5"), "layer5");
}

TEST_F(ResNetTest, WrongInputChannelsNamesTheModelAndChannels) {
  ResNetConfig cfg;
  cfg.width = 4;
  cfg.in_channels = 1;
  ResNet m(cfg);
  GRADLENS_EXPECT_THROWS_WITH(m.forward(torch::zeros({1, 3, 32, 32})), "1 input channel");
}

TEST_F(ResNetTest, CheckpointRoundTripsWeightsAndConfig) {
  test::TempDir dir;
  ResNetConfig cfg;
  cfg.stem = Stem::kSmall;
  cfg.width = 4;
  cfg.in_channels = 1;
  cfg.num_classes = 7;
  ResNet m(cfg);
  m.train(false);
  auto x = torch::randn({2, 1, 28, 28});
  auto y = m.forward(x);
  save_checkpoint(dir / "m.ckpt", m, R"({"note":"hi"})");
  EXPECT_TRUE(is_checkpoint(dir / "m.ckpt"));
  auto ck = load_checkpoint(dir / "m.ckpt", torch::kCPU);
  ck.model->train(false);
  EXPECT_EQ(ck.model->config().num_classes, 7);
  EXPECT_EQ(ck.model->config().stem, Stem::kSmall);
  EXPECT_EQ(ck.meta_json, R"({"note":"hi"})");
  EXPECT_LT(test::max_abs_diff(ck.model->forward(x), y), 1e-6);
}

TEST_F(ResNetTest, CorruptOrMissingCheckpointIsAClearError) {
  test::TempDir dir;
  GRADLENS_EXPECT_THROWS_WITH(load_checkpoint(dir / "none.ckpt", torch::kCPU), "does not exist");
  {
    std::ofstream(dir / "bad.ckpt") << "this is not a zip archive";
  }
  GRADLENS_EXPECT_THROWS_WITH(load_checkpoint(dir / "bad.ckpt", torch::kCPU), "is not a PyTorch file");
  EXPECT_FALSE(is_checkpoint(dir / "bad.ckpt"));
  // A truncated real checkpoint.
  ResNetConfig cfg;
  cfg.width = 4;
  ResNet m(cfg);
  save_checkpoint(dir / "t.ckpt", m, "{}");
  const auto full = core::read_file(dir / "t.ckpt");
  core::write_text_atomically(dir / "t.ckpt", full.substr(0, full.size() / 2));
  GRADLENS_EXPECT_THROWS_WITH(load_checkpoint(dir / "t.ckpt", torch::kCPU), "is truncated, damaged");
  // Damage that hides the checkpoint's marker is corruption, not another kind of file.
  std::string marked = full;
  const auto at = marked.find("gradlens-checkpoint-v");
  ASSERT_NE(at, std::string::npos);
  marked[at] = 'G';
  core::write_text_atomically(dir / "m.ckpt", marked);
  GRADLENS_EXPECT_THROWS_WITH(load_checkpoint(dir / "m.ckpt", torch::kCPU), "m.ckpt is corrupt");
}

}  // namespace
}  // namespace gradlens::models
