// A model file's kind is told by its content (gradlens checkpoint,
// TorchScript from Python torch, torch.save of a state_dict, anything else),
// and a flipped byte inside a tensor is caught before the model is used.
#include "gradlens/models/model_file.h"

#include <torch/torch.h>

#include <fstream>

#include "gradlens/core/check.h"
#include "gradlens/core/zip.h"
#include "gradlens/models/checkpoint.h"
#include "support/support.h"

namespace gradlens::models {
namespace {

using test::TempDir;

void make_python_files(const TempDir& dir) {
  const auto r = test::run_command(std::string(test::kPython) + " " +
                                   test::source_path("tests/python/zip_peer.py").string() + " " +
                                   dir.path().string() + " torch");
  ASSERT_EQ(r.exit_code, 0) << r.output;
}

std::unique_ptr<ResNet> tiny_resnet() {
  ResNetConfig cfg;
  cfg.stem = Stem::kSmall;
  cfg.width = 4;
  cfg.in_channels = 1;
  cfg.num_classes = 3;
  auto m = std::make_unique<ResNet>(cfg);
  m->train(false);
  return m;
}

ResNetConfig one_channel() {
  ResNetConfig cfg;
  cfg.in_channels = 1;
  return cfg;
}

/// Flips one byte in the middle of the archive entry called `suffix`.
void damage_entry(const std::filesystem::path& path, const std::string& suffix) {
  for (const auto& e : core::zip_entries(path)) {
    if (e.name.size() < suffix.size() || e.name.compare(e.name.size() - suffix.size(), suffix.size(), suffix) != 0)
      continue;
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    const auto at = static_cast<std::streamoff>(e.header_offset + 30 + e.name.size() + e.size / 2);
    // The local header's extra field (PyTorch pads entries to 64 bytes) is
    // not in the central directory; find the data from the local header.
    char h[30];
    f.seekg(static_cast<std::streamoff>(e.header_offset));
    f.read(h, 30);
    const auto extra = static_cast<unsigned char>(h[28]) | (static_cast<unsigned char>(h[29]) << 8);
    const auto pos = at + extra;
    char c = 0;
    f.seekg(pos);
    f.read(&c, 1);
    c = static_cast<char>(c ^ 0x01);
    f.seekp(pos);
    f.write(&c, 1);
    return;
  }
  FAIL() << "no entry ending in " << suffix << " in " << path;
}

TEST(ModelFilePeer, KindsAreToldByContent) {
  TempDir dir;
  make_python_files(dir);
  save_checkpoint(dir / "m.ckpt", *tiny_resnet(), "{}");
  {
    std::ofstream(dir / "notes.txt") << "a model? no";
  }
  EXPECT_EQ(inspect_model_file(dir / "m.ckpt").kind, ModelFileKind::kCheckpoint);
  EXPECT_EQ(inspect_model_file(dir / "scripted.pt").kind, ModelFileKind::kTorchScript);
  EXPECT_EQ(inspect_model_file(dir / "traced.pt").kind, ModelFileKind::kTorchScript);
  EXPECT_EQ(inspect_model_file(dir / "state_dict.pt").kind, ModelFileKind::kTorchSave);
  EXPECT_EQ(inspect_model_file(dir / "notes.txt").kind, ModelFileKind::kOther);
  EXPECT_EQ(inspect_model_file(dir / "deflated.zip").kind, ModelFileKind::kOther);
  // Every entry of Python's archives (stored tensors, deflated code) is verified.
  const auto check = inspect_model_file(dir / "scripted.pt").check;
  EXPECT_GT(check.verified, 3);
  EXPECT_EQ(check.verified, check.entries);
  // Opening a file that is not a model says what it is and what to do.
  GRADLENS_EXPECT_THROWS_WITH(open_classifier((dir / "state_dict.pt").string(), torch::kCPU, one_channel()),
                              "torch.save() file of Python objects");
  GRADLENS_EXPECT_THROWS_WITH(open_classifier((dir / "state_dict.pt").string(), torch::kCPU, one_channel()),
                              "torch.jit.save(torch.jit.script(model)");
  GRADLENS_EXPECT_THROWS_WITH(open_classifier((dir / "notes.txt").string(), torch::kCPU, one_channel()),
                              "is not a PyTorch file");
  GRADLENS_EXPECT_THROWS_WITH(load_checkpoint(dir / "scripted.pt", torch::kCPU),
                              "is a TorchScript model, not a gradlens checkpoint");
}

TEST(ModelFilePeer, AFlippedTensorByteIsCaughtUnlessVerificationIsOff) {
  TempDir dir;
  make_python_files(dir);
  auto model = tiny_resnet();
  save_checkpoint(dir / "m.ckpt", *model, "{}");
  damage_entry(dir / "m.ckpt", "/data/0");  // the stem convolution's weights
  GRADLENS_EXPECT_THROWS_WITH(load_checkpoint(dir / "m.ckpt", torch::kCPU), "m.ckpt is corrupt");
  GRADLENS_EXPECT_THROWS_WITH(load_checkpoint(dir / "m.ckpt", torch::kCPU), "'");
  // Without the check the damaged weights load silently: what the check is for.
  auto damaged = load_checkpoint(dir / "m.ckpt", torch::kCPU, {}, /*verify=*/false);
  damaged.model->train(false);
  const auto x = torch::randn({2, 1, 28, 28});
  EXPECT_GT(test::max_abs_diff(damaged.model->forward(x), model->forward(x)), 0.0);

  damage_entry(dir / "traced.pt", "/data/0");
  ModelOptions options;
  GRADLENS_EXPECT_THROWS_WITH(open_classifier((dir / "traced.pt").string(), torch::kCPU, one_channel(), 28, options),
                              "traced.pt is corrupt");
  options.verify_files = false;
  EXPECT_NO_THROW(open_classifier((dir / "traced.pt").string(), torch::kCPU, one_channel(), 28, options));
}

}  // namespace
}  // namespace gradlens::models
