#include "gradlens/data/image_folder.h"

#include <torch/types.h>

#include "data/data_test_util.h"
#include "gradlens/core/fs.h"
#include "support/support.h"

namespace gradlens::data {
namespace {

using testutil::solid;
using testutil::write_bytes;
using testutil::write_png;

TEST(ImageFolder, ClassAndFileOrderAsTorchvision) {
  test::TempDir dir;
  const auto& r = dir.path();
  // Byte order: "B" < "a" < "a b" < "ab"; files sorted inside each folder,
  // sub-folders walked recursively in path order.
  write_png(r / "a" / "2.png", solid(4, 4, 3, 1));
  write_png(r / "a" / "10.png", solid(4, 4, 3, 2));
  write_png(r / "a" / "sub" / "0.png", solid(4, 4, 3, 3));
  write_png(r / "B" / "x.PNG", solid(4, 4, 3, 4));
  write_png(r / "ab" / "y.png", solid(4, 4, 3, 5));
  write_png(r / "a b" / "z.png", solid(4, 4, 3, 6));
  write_bytes(r / "a" / "notes.txt", "not an image");
  write_bytes(r / "stray.png", "top-level files are not classes");
  const auto idx = scan_image_folder(r.string());
  EXPECT_EQ(idx.class_names, (std::vector<std::string>{"B", "a", "a b", "ab"}));
  std::vector<std::string> rel;
  for (const auto& p : idx.paths) rel.push_back(test::fs::relative(p, r).string());
  EXPECT_EQ(rel, (std::vector<std::string>{"B/x.PNG", "a/10.png", "a/2.png", "a/sub/0.png",
                                           "a b/z.png", "ab/y.png"}));
  EXPECT_EQ(idx.labels, (std::vector<int64_t>{0, 1, 1, 1, 2, 3}));

  const auto res = load_image_folder(r.string());
  const Dataset& ds = res.dataset;
  ASSERT_EQ(ds.images.sizes(), (std::vector<int64_t>{6, 3, 4, 4}));
  EXPECT_EQ(ds.images[0][0][0][0].item<int>(), 4);
  EXPECT_EQ(ds.images[1][2][3][3].item<int>(), 2);
  EXPECT_EQ(ds.images[3][1][0][0].item<int>(), 3);
  EXPECT_TRUE(torch::equal(ds.labels, torch::tensor({0, 1, 1, 1, 2, 3}, torch::kInt64)));
  EXPECT_FALSE(ds.has_masks());
  EXPECT_EQ(ds.paths.size(), 6u);
  EXPECT_EQ(ds.name, r.filename().string());
  // Mean of values 4, 2, 1, 3, 6, 5 over equal-size images: 3.5 / 255.
  ASSERT_EQ(ds.mean.size(), 3u);
  EXPECT_NEAR(ds.mean[0], 3.5 / 255, 1e-12);
  EXPECT_NEAR(ds.std[0], std::sqrt(17.5 / 6) / 255, 1e-12);
  EXPECT_NO_THROW(validate(ds));
}

TEST(ImageFolder, ResizeCropChannelsAndMasks) {
  test::TempDir dir;
  const auto& r = dir.path();
  // A 20x10 (h x w) image: left half 0, right half 200.
  auto img = torch::zeros({20, 10, 3}, torch::kUInt8);
  img.narrow(1, 5, 5).fill_(200);
  write_png(r / "c0" / "a.png", img);
  auto mask = torch::zeros({20, 10, 1}, torch::kUInt8);
  mask.narrow(0, 0, 10).fill_(255);  // top half
  write_png(r / "c0" / "a.mask.png", mask);
  write_png(r / "c1" / "b.png", solid(10, 20, 3, 90));
  write_png(r / "c1" / "b.mask.png", solid(10, 20, 1, 255));
  ImageFolderOptions o;
  o.size = 6;
  o.channels = 1;
  const auto res = load_image_folder(r.string(), o);
  const Dataset& ds = res.dataset;
  ASSERT_EQ(ds.images.sizes(), (std::vector<int64_t>{2, 1, 6, 6}));
  ASSERT_TRUE(ds.has_masks());
  ASSERT_EQ(ds.masks.sizes(), (std::vector<int64_t>{2, 1, 6, 6}));
  EXPECT_EQ(res.masks_loaded, 2);
  // Resize 20x10 -> 12x6, crop rows 3..8: left columns 0, right 200, and the
  // luminance of grey 200 is 200.
  EXPECT_EQ(ds.images[0][0][0][0].item<int>(), 0);
  EXPECT_EQ(ds.images[0][0][0][5].item<int>(), 200);
  EXPECT_EQ(ds.images[1][0][3][3].item<int>(), 90);
  // Mask rows: resized 20 -> 12 (nearest), crop from row 3: rows 3..5 of
  // the resized mask come from source rows < 10 (255), rows 6..8 from >= 10.
  EXPECT_EQ(ds.masks[0][0][0][0].item<int>(), 255);
  EXPECT_EQ(ds.masks[0][0][2][0].item<int>(), 255);
  EXPECT_EQ(ds.masks[0][0][3][0].item<int>(), 0);
  EXPECT_TRUE((ds.masks[1] == 255).all().item<bool>());
  EXPECT_NO_THROW(validate(ds));
  // Loading without masks leaves them undefined.
  o.load_masks = false;
  EXPECT_FALSE(load_image_folder(r.string(), o).dataset.has_masks());
}

TEST(ImageFolder, GrayConversionIsPilsAndRgbReplicatesGray) {
  test::TempDir dir;
  auto px = torch::tensor({255, 0, 0}, torch::kUInt8).view({1, 1, 3}).expand({2, 2, 3}).contiguous();
  write_png(dir / "k" / "red.png", px);
  write_png(dir / "k" / "zgray.png", solid(2, 2, 1, 77));
  ImageFolderOptions o;
  o.channels = 1;
  auto ds = load_image_folder(dir.path().string(), o).dataset;
  EXPECT_EQ(ds.images[0][0][0][0].item<int>(), 76);  // (19595*255 + 32768) >> 16
  EXPECT_EQ(ds.images[1][0][0][0].item<int>(), 77);
  o.channels = 3;
  ds = load_image_folder(dir.path().string(), o).dataset;
  EXPECT_TRUE(torch::equal(ds.images[1], torch::full({3, 2, 2}, 77, torch::kUInt8)));
  EXPECT_EQ(ds.images[0][0][1][1].item<int>(), 255);
  EXPECT_EQ(ds.images[0][1][1][1].item<int>(), 0);
}

TEST(ImageFolder, EmptyClassAndNoClassesNameTheFolder) {
  test::TempDir dir;
  write_png(dir / "full" / "a.png", solid(3, 3, 3, 1));
  test::fs::create_directories(dir / "empty");
  write_bytes(dir / "empty" / "readme.txt", "x");
  GRADLENS_EXPECT_THROWS_WITH(load_image_folder(dir.path().string()),
                              "class folder '" + (dir / "empty").string() +
                                  "' contains no image files");
  test::TempDir none;
  write_png(none / "flat.png", solid(3, 3, 3, 1));
  GRADLENS_EXPECT_THROWS_WITH(load_image_folder(none.path().string()), "has no class sub-folders");
  GRADLENS_EXPECT_THROWS_WITH(load_image_folder((none / "nope").string()),
                              "does not exist or is not a directory");
  GRADLENS_EXPECT_THROWS_WITH(load_image_folder((none / "nope").string()), "--data");
}

TEST(ImageFolder, UnreadableImageErrorsOrIsSkipped) {
  test::TempDir dir;
  write_png(dir / "a" / "good.png", solid(3, 3, 3, 9));
  write_bytes(dir / "a" / "bad.png", "this is not a PNG");
  write_png(dir / "b" / "good.png", solid(3, 3, 3, 8));
  const std::string bad = (dir / "a" / "bad.png").string();
  GRADLENS_EXPECT_THROWS_WITH(load_image_folder(dir.path().string()), bad + ": cannot decode image");
  GRADLENS_EXPECT_THROWS_WITH(load_image_folder(dir.path().string()), "skip");
  ImageFolderOptions o;
  o.skip_bad_images = true;
  const auto res = load_image_folder(dir.path().string(), o);
  EXPECT_EQ(res.skipped, 1);
  EXPECT_EQ(res.skipped_paths, std::vector<std::string>{bad});
  EXPECT_EQ(res.dataset.size(), 2);
  EXPECT_TRUE(torch::equal(res.dataset.labels, torch::tensor({0, 1}, torch::kInt64)));
  EXPECT_EQ(res.dataset.images[0][0][0][0].item<int>(), 9);
  // Truncated PNG: also reported with its path.
  test::TempDir scratch, dir2;
  write_png(scratch / "x.png", torch::randint(0, 256, {16, 16, 3}, torch::kInt64).to(torch::kUInt8));
  const std::string good = core::read_file(scratch / "x.png");
  write_bytes(dir2 / "c" / "cut.png", good.substr(0, good.size() / 2));
  GRADLENS_EXPECT_THROWS_WITH(load_image_folder(dir2.path().string()), "cut.png: cannot decode");
}

// Found by image_fuzz: a 54-byte BMP whose header claims a huge image made
// stb allocate and fill it.
TEST(ImageFolder, AHeaderClaimingAHugeImageIsRefusedBeforeDecoding) {
  test::TempDir dir;
  std::string bmp(54, '\0');
  const auto put32 = [&](size_t at, uint32_t v) {
    for (int k = 0; k < 4; ++k) bmp[at + k] = static_cast<char>((v >> (8 * k)) & 0xFF);
  };
  bmp[0] = 'B';
  bmp[1] = 'M';
  put32(2, 54);
  put32(10, 54);       // pixel data offset
  put32(14, 40);       // BITMAPINFOHEADER
  put32(18, 100000);   // width
  put32(22, 100000);   // height
  bmp[26] = 1;         // planes
  bmp[28] = 24;        // bits per pixel
  write_bytes(dir / "a" / "huge.bmp", bmp);
  GRADLENS_EXPECT_THROWS_WITH(decode_image((dir / "a" / "huge.bmp").string(), 3), "claims 100000x100000 pixels");
  // A top-down BMP (negative height), whose height stb's info reports negative.
  put32(18, 2621445);
  put32(22, static_cast<uint32_t>(-256));
  write_bytes(dir / "a" / "huge.bmp", bmp);
  GRADLENS_EXPECT_THROWS_WITH(decode_image((dir / "a" / "huge.bmp").string(), 3), "claims 2621445x256 pixels");
}

TEST(ImageFolder, DifferentSizesNeedSize) {
  test::TempDir dir;
  write_png(dir / "a" / "1.png", solid(3, 3, 3, 9));
  write_png(dir / "a" / "2.png", solid(4, 3, 3, 9));
  GRADLENS_EXPECT_THROWS_WITH(load_image_folder(dir.path().string()), "--size");
  ImageFolderOptions o;
  o.size = 3;
  EXPECT_EQ(load_image_folder(dir.path().string(), o).dataset.size(), 2);
}

TEST(ImageFolder, PartialMasksAreAnError) {
  test::TempDir dir;
  write_png(dir / "a" / "1.png", solid(3, 3, 3, 9));
  write_png(dir / "a" / "1.mask.png", solid(3, 3, 1, 255));
  write_png(dir / "a" / "2.png", solid(3, 3, 3, 9));
  write_png(dir / "a" / "orphan.mask.png", solid(3, 3, 1, 255));
  const auto idx = scan_image_folder(dir.path().string());
  EXPECT_EQ(idx.paths.size(), 2u);
  EXPECT_EQ(idx.orphan_masks, 1);
  GRADLENS_EXPECT_THROWS_WITH(load_image_folder(dir.path().string()),
                              (dir / "a" / "2.png").string() + " has none");
  ImageFolderOptions o;
  o.load_masks = false;
  EXPECT_EQ(load_image_folder(dir.path().string(), o).dataset.size(), 2);
}

TEST(ImageFolder, MaskOfWrongSizeIsNamed) {
  test::TempDir dir;
  write_png(dir / "a" / "1.png", solid(3, 3, 3, 9));
  write_png(dir / "a" / "1.mask.png", solid(4, 3, 1, 255));
  GRADLENS_EXPECT_THROWS_WITH(load_image_folder(dir.path().string()), "1.mask.png: mask is 3x4");
}

TEST(ImageFolder, ProgressReportsEveryImage) {
  test::TempDir dir;
  for (int i = 0; i < 5; ++i) write_png(dir / "a" / (std::to_string(i) + ".png"), solid(2, 2, 3, i));
  int64_t last = 0;
  bool ended = false;
  load_image_folder(dir.path().string(), {}, [&](const core::ProgressEvent& e) {
    EXPECT_EQ(e.stage, "load-images");
    EXPECT_EQ(e.total, 5);
    last = e.done;
    ended = e.stage_end;
  });
  EXPECT_EQ(last, 5);
  EXPECT_TRUE(ended);
}

}  // namespace
}  // namespace gradlens::data
