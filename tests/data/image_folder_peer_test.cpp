// Cross-checks load_image_folder() against torchvision's ImageFolder with
// Resize(S) + CenterCrop(S) (+ Grayscale) on PIL images, run by Debian's
// /usr/bin/python3 (tests/python/data_image_folder_peer.py).
//
// Tolerance: class lists, sample order and labels must be identical. Pixels:
// gradlens reimplements Pillow's bilinear resampling (same filter, 22-bit
// fixed-point coefficients, horizontal-then-vertical passes with uint8
// rounding), so the images are expected to be bit-identical; the test allows
// a maximum absolute difference of 1 grey level, and all test images are
// lossless (PNG/BMP) so that decoder differences (stb vs libjpeg) cannot enter.
#include <stb_image_write.h>
#include <torch/types.h>

#include <nlohmann/json.hpp>

#include "data/data_test_util.h"
#include "gradlens/data/image_folder.h"
#include "gradlens/data/shapes.h"
#include "support/support.h"

namespace gradlens::data {
namespace {

namespace fs = std::filesystem;

nlohmann::json run_peer(const fs::path& root, int64_t size, int channels, int64_t resize) {
  const std::string cmd = std::string(test::kPython) + " " +
                          test::source_path("tests/python/data_image_folder_peer.py").string() +
                          " '" + root.string() + "' " + std::to_string(size) + " " +
                          std::to_string(channels) + " " + std::to_string(resize > 0 ? resize : size);
  const auto r = test::run_command(cmd);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  // The JSON is the last line; warnings may precede it.
  const auto pos = r.out.rfind("\n{");
  const std::string json = pos == std::string::npos ? r.out : r.out.substr(pos + 1);
  return nlohmann::json::parse(json);
}

torch::Tensor from_hex(const nlohmann::json& img) {
  const auto shape = img["shape"].get<std::vector<int64_t>>();
  const auto hex = img["hex"].get<std::string>();
  auto t = torch::empty(shape, torch::kUInt8);
  uint8_t* p = t.data_ptr<uint8_t>();
  for (size_t i = 0; i + 1 < hex.size(); i += 2) p[i / 2] = static_cast<uint8_t>(std::stoi(hex.substr(i, 2), nullptr, 16));
  return t;
}

class ImageFolderPeer : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!test::python_has("torchvision")) return;
    dir_ = new test::TempDir();
    const fs::path root = dir_->path() / "data";
    ShapesOptions o;
    o.classes = 3;
    o.per_class = 3;
    o.size = 40;
    o.seed = 9;
    o.out = root.string();
    make_shapes(o);
    // Odd sizes and formats in an upper-case class (sorts first in byte order).
    torch::manual_seed(1);
    auto rnd = [](int64_t h, int64_t w, int64_t c) {
      return torch::randint(0, 256, {h, w, c}, torch::kInt64).to(torch::kUInt8);
    };
    testutil::write_png(root / "Zebra" / "a_rgb.png", rnd(37, 53, 3));
    testutil::write_png(root / "Zebra" / "b_gray.png", rnd(45, 29, 1));
    testutil::write_png(root / "Zebra" / "c_rgba.png", rnd(30, 30, 4));
    testutil::write_png(root / "Zebra" / "nested" / "d.png", rnd(24, 100, 3));
    const auto bmp = rnd(31, 33, 3);
    stbi_write_bmp((root / "Zebra" / "e.bmp").c_str(), 33, 31, 3, bmp.data_ptr<uint8_t>());
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  void SetUp() override {
    if (dir_ == nullptr) GTEST_SKIP() << "/usr/bin/python3 has no torchvision";
  }
  void compare(int64_t size, int channels, int64_t resize = 0) {
    const fs::path root = dir_->path() / "data";
    const auto peer = run_peer(root, size, channels, resize);
    ImageFolderOptions o;
    o.size = size;
    o.resize = resize;
    o.channels = channels;
    o.load_masks = false;  // the hand-made Zebra images have none
    const auto res = load_image_folder(root.string(), o);
    const Dataset& ds = res.dataset;
    EXPECT_EQ(ds.class_names, peer["classes"].get<std::vector<std::string>>());
    ASSERT_EQ(ds.size(), static_cast<int64_t>(peer["samples"].size()));
    for (int64_t i = 0; i < ds.size(); ++i) {
      const auto& s = peer["samples"][static_cast<size_t>(i)];
      EXPECT_EQ(ds.paths[static_cast<size_t>(i)], s[0].get<std::string>());
      EXPECT_EQ(ds.labels[i].item<int64_t>(), s[1].get<int64_t>());
      const auto theirs = from_hex(peer["images"][static_cast<size_t>(i)]).permute({2, 0, 1});
      ASSERT_EQ(theirs.sizes(), ds.images[i].sizes()) << ds.paths[static_cast<size_t>(i)];
      const double diff = test::max_abs_diff(ds.images[i], theirs);
      EXPECT_LE(diff, 1.0) << ds.paths[static_cast<size_t>(i)];
      max_diff_ = std::max(max_diff_, diff);
    }
    RecordProperty("max_abs_diff", std::to_string(max_diff_));
  }
  static test::TempDir* dir_;
  double max_diff_ = 0;
};

test::TempDir* ImageFolderPeer::dir_ = nullptr;

TEST_F(ImageFolderPeer, RgbResizeCrop) { compare(24, 3); }
TEST_F(ImageFolderPeer, GrayResizeCrop) { compare(24, 1); }
TEST_F(ImageFolderPeer, Upscale) { compare(64, 3); }
// torchvision's evaluation transform: Resize(R) then CenterCrop(S < R).
TEST_F(ImageFolderPeer, ResizeThenSmallerCrop) { compare(24, 3, 32); }

}  // namespace
}  // namespace gradlens::data
