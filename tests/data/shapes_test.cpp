#include "gradlens/data/shapes.h"

#include <torch/types.h>
#include <unistd.h>
#include <zlib.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "gradlens/core/fs.h"
#include "gradlens/data/image_folder.h"
#include "support/support.h"

namespace gradlens::data {
namespace {

namespace fs = std::filesystem;

/// CRC-32 over every file's relative path and bytes, in sorted path order.
std::string tree_hash(const fs::path& root) {
  std::vector<fs::path> files;
  for (const auto& e : fs::recursive_directory_iterator(root))
    if (e.is_regular_file()) files.push_back(fs::relative(e.path(), root));
  std::sort(files.begin(), files.end());
  uLong crc = crc32(0L, Z_NULL, 0);
  for (const auto& f : files) {
    const std::string name = f.string();
    const std::string bytes = core::read_file(root / f);
    crc = crc32(crc, reinterpret_cast<const Bytef*>(name.data()), static_cast<uInt>(name.size()));
    crc = crc32(crc, reinterpret_cast<const Bytef*>(bytes.data()), static_cast<uInt>(bytes.size()));
  }
  return std::to_string(files.size()) + ":" + std::to_string(crc);
}

ShapesOptions small(const fs::path& out, uint64_t seed = 3) {
  ShapesOptions o;
  o.classes = 3;
  o.per_class = 4;
  o.size = 32;
  o.seed = seed;
  o.out = out.string();
  return o;
}

TEST(Shapes, DeterministicGivenSeed) {
  test::TempDir dir;
  const auto a = make_shapes(small(dir / "a"));
  const auto b = make_shapes(small(dir / "b"));
  const auto c = make_shapes(small(dir / "c", 4));
  EXPECT_EQ(a.images, 12);
  const std::string ha = tree_hash(dir / "a");
  EXPECT_EQ(ha.substr(0, ha.find(':')), "25");  // 12 images + 12 masks + shapes.json
  EXPECT_EQ(ha, tree_hash(dir / "b"));
  EXPECT_NE(ha, tree_hash(dir / "c"));
  EXPECT_TRUE(fs::exists(dir / "a" / "circle" / "00000.png"));
  EXPECT_TRUE(fs::exists(dir / "a" / "triangle" / "00003.mask.png"));
  EXPECT_FALSE(fs::exists(dir / "a" / "star"));
  // Nothing but the three outputs is left next to them (no temporary dirs).
  int entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir.path())) ++entries;
  EXPECT_EQ(entries, 3);
  // The in-memory renderer reproduces the files.
  const auto im = render_shape(0, 32, 3, 2);
  EXPECT_EQ(im.info.mask_area, a.samples[2].mask_area);
  EXPECT_DOUBLE_EQ(im.info.cx, a.samples[2].cx);
}

TEST(Shapes, MaskAreaMatchesGeometry) {
  // Circles: area pi r^2 within 3% (pixel-centre sampling error).
  for (int64_t i = 0; i < 20; ++i) {
    const auto im = render_shape(0, 64, 11, i);
    const double r = im.info.radius;
    const double expect = M_PI * r * r;
    EXPECT_NEAR(static_cast<double>(im.info.mask_area), expect, 0.03 * expect) << "image " << i;
    EXPECT_EQ((im.mask == 255).sum().item<int64_t>(), im.info.mask_area);
    EXPECT_EQ(((im.mask != 0) & (im.mask != 255)).sum().item<int64_t>(), 0);
    // The object (and so the mask) lies inside the image, away from the border.
    EXPECT_GE(im.info.cx - r, 1.0);
    EXPECT_LE(im.info.cx + r, 63.0);
    EXPECT_EQ(im.mask.select(0, 0).sum().item<int64_t>(), 0);
    EXPECT_EQ(im.mask.select(1, 63).sum().item<int64_t>(), 0);
  }
  // Square with half side 0.70 r: area (1.4 r)^2; ring: pi r^2 (1 - 0.55^2).
  const auto sq = render_shape(1, 64, 5, 0);
  const double sq_area = 1.96 * sq.info.radius * sq.info.radius;
  EXPECT_NEAR(sq.info.mask_area, sq_area, 0.05 * sq_area);
  const auto ring = render_shape(5, 64, 5, 0);
  const double ring_area = M_PI * ring.info.radius * ring.info.radius * (1 - 0.55 * 0.55);
  EXPECT_NEAR(ring.info.mask_area, ring_area, 0.05 * ring_area);
}

TEST(Shapes, ObjectContrastsWithBackground) {
  for (int label = 0; label < 8; ++label) {
    const auto im = render_shape(label, 48, 1, 0);
    const auto m = (im.mask.squeeze(2) == 255);
    const auto img = im.image.to(torch::kFloat64);
    const auto luma = img.select(2, 0) * 0.299 + img.select(2, 1) * 0.587 + img.select(2, 2) * 0.114;
    const double in = luma.masked_select(m).mean().item<double>();
    const double out = luma.masked_select(m.logical_not()).mean().item<double>();
    EXPECT_GT(std::abs(in - out), 20.0) << shape_class_names()[static_cast<size_t>(label)];
  }
}

TEST(Shapes, LoadsAsImageFolderWithMasks) {
  test::TempDir dir;
  const auto sum = make_shapes(small(dir / "ds"));
  const auto res = load_image_folder((dir / "ds").string());
  const Dataset& ds = res.dataset;
  EXPECT_EQ(ds.size(), 12);
  // ImageFolder sorts the class folders.
  EXPECT_EQ(ds.class_names, (std::vector<std::string>{"circle", "square", "triangle"}));
  ASSERT_TRUE(ds.has_masks());
  EXPECT_EQ(ds.images.sizes(), (std::vector<int64_t>{12, 3, 32, 32}));
  EXPECT_EQ((ds.masks[0] == 255).sum().item<int64_t>(), sum.samples[0].mask_area);
  const auto meta = nlohmann::json::parse(core::read_file(dir / "ds" / "shapes.json"));
  EXPECT_EQ(meta["samples"].size(), 12u);
  EXPECT_EQ(meta["samples"][5]["path"], "square/00001.png");
  EXPECT_EQ(meta["samples"][5]["mask_area"].get<int64_t>(), sum.samples[5].mask_area);
}

TEST(Shapes, BadOutputsAndOptions) {
  test::TempDir dir;
  // A regular file where the parent directory should be: cannot be created
  // (works even when the tests run as root).
  std::ofstream(dir / "file").put('x');
  GRADLENS_EXPECT_THROWS_WITH(make_shapes(small(dir / "file" / "out")), "--out");
  GRADLENS_EXPECT_THROWS_WITH(make_shapes(small(dir / "file" / "out")), "choose a writable location");
  if (::geteuid() != 0) {
    fs::create_directory(dir / "ro");
    fs::permissions(dir / "ro", fs::perms::owner_read | fs::perms::owner_exec);
    GRADLENS_EXPECT_THROWS_WITH(make_shapes(small(dir / "ro" / "out")), "not writable");
    fs::permissions(dir / "ro", fs::perms::owner_all);
  }
  // An existing non-empty directory is kept unless --overwrite.
  fs::create_directories(dir / "full");
  std::ofstream(dir / "full" / "keep.txt").put('x');
  GRADLENS_EXPECT_THROWS_WITH(make_shapes(small(dir / "full")), "already exists and is not empty");
  EXPECT_TRUE(fs::exists(dir / "full" / "keep.txt"));
  auto o = small(dir / "full");
  o.overwrite = true;
  make_shapes(o);
  EXPECT_FALSE(fs::exists(dir / "full" / "keep.txt"));
  EXPECT_TRUE(fs::exists(dir / "full" / "shapes.json"));
  // An existing empty directory is fine.
  fs::create_directories(dir / "empty");
  EXPECT_EQ(make_shapes(small(dir / "empty")).images, 12);
  auto bad = small(dir / "x");
  bad.classes = 9;
  GRADLENS_EXPECT_THROWS_WITH(make_shapes(bad), "--classes must be in [1, 8], got 9");
  bad = small(dir / "x");
  bad.size = 8;
  GRADLENS_EXPECT_THROWS_WITH(make_shapes(bad), "--size must be in [16, 1024]");
  bad = small(dir / "x");
  bad.per_class = 0;
  GRADLENS_EXPECT_THROWS_WITH(make_shapes(bad), "--per-class");
  EXPECT_FALSE(fs::exists(dir / "x"));
}

}  // namespace
}  // namespace gradlens::data
