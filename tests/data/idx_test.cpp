#include "gradlens/data/idx.h"

#include <torch/types.h>

#include "data/data_test_util.h"
#include "support/support.h"

namespace gradlens::data {
namespace {

using testutil::gzip;
using testutil::idx_bytes;
using testutil::ramp;

TEST(Idx, ParsesRawImages) {
  const auto t = idx_parse(idx_bytes(kIdxImagesMagic, {2, 3, 4}, ramp(24)), "mem", 3);
  EXPECT_EQ(t.scalar_type(), torch::kUInt8);
  ASSERT_EQ(t.sizes(), (std::vector<int64_t>{2, 3, 4}));
  EXPECT_EQ(t[0][0][0].item<int>(), 0);
  EXPECT_EQ(t[0][1][0].item<int>(), 4);   // row-major
  EXPECT_EQ(t[1][2][3].item<int>(), 23);
}

TEST(Idx, ParsesGzipLikeRaw) {
  const std::string raw = idx_bytes(kIdxLabelsMagic, {300}, ramp(300, 7));
  const auto a = idx_parse(raw, "raw", 1);
  const auto b = idx_parse(gzip(raw), "gz", 1);
  EXPECT_TRUE(torch::equal(a, b));
  EXPECT_EQ(b[299].item<int>(), static_cast<uint8_t>(7 + 299));
  // Concatenated gzip members (as `cat a.gz b.gz`) decompress to one file.
  const auto c = idx_parse(gzip(raw.substr(0, 100)) + gzip(raw.substr(100)), "cat", 1);
  EXPECT_TRUE(torch::equal(a, c));
}

TEST(Idx, AnyRankWhenNotConstrained) {
  EXPECT_EQ(idx_parse(idx_bytes(0x00000802, {2, 5}, ramp(10)), "m").sizes(),
            (std::vector<int64_t>{2, 5}));
  EXPECT_EQ(idx_parse(idx_bytes(0x00000804, {1, 1, 2, 2}, ramp(4)), "m").dim(), 4);
  // Zero-size dimensions give an empty tensor.
  EXPECT_EQ(idx_parse(idx_bytes(kIdxImagesMagic, {0, 28, 28}, {}), "m", 3).numel(), 0);
}

TEST(Idx, WrongMagicNamesFileAndValues) {
  GRADLENS_EXPECT_THROWS_WITH(idx_parse(idx_bytes(0x00000901, {3}, ramp(3)), "lab.idx", 1),
                              "lab.idx: wrong magic number 0x00000901, expected 0x00000801");
  GRADLENS_EXPECT_THROWS_WITH(idx_parse(idx_bytes(0x00000901, {3}, ramp(3)), "x", 1),
                              "only the unsigned-byte element type 0x08");
  // A labels file passed where images were expected.
  GRADLENS_EXPECT_THROWS_WITH(idx_parse(idx_bytes(kIdxLabelsMagic, {3}, ramp(3)), "img", 3),
                              "looks like a labels file where an images file was expected");
  GRADLENS_EXPECT_THROWS_WITH(idx_parse(idx_bytes(kIdxImagesMagic, {1, 1, 1}, ramp(1)), "l", 1),
                              "looks like an images file");
  GRADLENS_EXPECT_THROWS_WITH(idx_parse("\x89PNG\r\n\x1a\n....", "pic.png", 3),
                              "pic.png: wrong magic number 0x89504e47");
  GRADLENS_EXPECT_THROWS_WITH(idx_parse(idx_bytes(0x00000800, {}, {}), "r0"), "wrong magic");
  GRADLENS_EXPECT_THROWS_WITH(idx_parse(idx_bytes(0x00000809, {}, {}), "r9"), "wrong magic");
}

TEST(Idx, TruncatedSaysExpectedAndGot) {
  std::string raw = idx_bytes(kIdxImagesMagic, {2, 3, 4}, ramp(24));
  GRADLENS_EXPECT_THROWS_WITH(idx_parse(raw.substr(0, raw.size() - 5), "t.idx", 3),
                              "t.idx: truncated: expected 40 bytes got 35");
  GRADLENS_EXPECT_THROWS_WITH(idx_parse(raw.substr(0, 9), "t.idx", 3),
                              "truncated: expected 16 bytes of header got 9");
  GRADLENS_EXPECT_THROWS_WITH(idx_parse("", "empty.idx", 3),
                              "empty.idx: truncated: expected at least 4 bytes");
  // Decompressed data shorter than the header says.
  GRADLENS_EXPECT_THROWS_WITH(idx_parse(gzip(raw.substr(0, 30)), "t.gz", 3),
                              "t.gz: truncated: expected 40 bytes of decompressed data got 30");
  // A gzip stream cut in the middle.
  const std::string big = idx_bytes(kIdxLabelsMagic, {5000}, ramp(5000));
  std::string gz = gzip(big);
  GRADLENS_EXPECT_THROWS_WITH(idx_parse(gz.substr(0, gz.size() / 2), "cut.gz", 1),
                              "cut.gz: truncated");
}

TEST(Idx, TrailingBytesAreAnError) {
  const std::string raw = idx_bytes(kIdxLabelsMagic, {3}, ramp(5));
  GRADLENS_EXPECT_THROWS_WITH(idx_parse(raw, "tr.idx", 1),
                              "tr.idx: 2 trailing bytes after the 11 bytes declared");
  GRADLENS_EXPECT_THROWS_WITH(idx_parse(gzip(raw), "tr.gz", 1), "2 trailing bytes");
  GRADLENS_EXPECT_THROWS_WITH(idx_parse(gzip(idx_bytes(kIdxLabelsMagic, {3}, ramp(3))) + "xyz",
                                        "junk.gz", 1),
                              "junk.gz: 3 trailing bytes after the gzip stream");
}

TEST(Idx, CorruptGzipAndOverflow) {
  std::string gz = gzip(idx_bytes(kIdxLabelsMagic, {100}, ramp(100)));
  for (size_t i = 12; i < gz.size() - 8; ++i) gz[i] = static_cast<char>(gz[i] ^ 0x5a);
  GRADLENS_EXPECT_THROWS_WITH(idx_parse(gz, "bad.gz", 1), "bad.gz:");
  // Sizes whose product overflows 64 bits.
  GRADLENS_EXPECT_THROWS_WITH(
      idx_parse(idx_bytes(0x00000804, {0xffffffffu, 0xffffffffu, 0xffffffffu, 2}, {}), "o"),
      "overflows");
  // A huge declared size behind a tiny gzip input is rejected before any
  // allocation.
  GRADLENS_EXPECT_THROWS_WITH(
      idx_parse(gzip(idx_bytes(kIdxImagesMagic, {100000, 1000, 1000}, {})), "bomb.gz", 3),
      "cannot hold that many");
}

TEST(Idx, ReadsFilesAndConvertsLabels) {
  test::TempDir dir;
  testutil::write_bytes(dir / "l.gz", gzip(idx_bytes(kIdxLabelsMagic, {4}, {9, 0, 3, 255})));
  const auto l = read_idx_labels((dir / "l.gz").string());
  EXPECT_EQ(l.scalar_type(), torch::kInt64);
  EXPECT_TRUE(torch::equal(l, torch::tensor({9, 0, 3, 255}, torch::kInt64)));
  GRADLENS_EXPECT_THROWS_WITH(read_idx_images((dir / "missing").string()), "missing");
  GRADLENS_EXPECT_THROWS_WITH(read_idx_images((dir / "l.gz").string()), "l.gz: wrong magic");
}

}  // namespace
}  // namespace gradlens::data
