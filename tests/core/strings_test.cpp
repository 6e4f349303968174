#include "gradlens/core/strings.h"

#include <gtest/gtest.h>

namespace gradlens::core {
namespace {

TEST(Strings, JoinsWithSeparator) {
  EXPECT_EQ(join({}), "");
  EXPECT_EQ(join({"a"}), "a");
  EXPECT_EQ(join({"a", "b", "c"}), "a, b, c");
  EXPECT_EQ(join({"a", "b"}, "|"), "a|b");
}

TEST(Strings, EditDistanceClassicCases) {
  EXPECT_EQ(edit_distance("", ""), 0u);
  EXPECT_EQ(edit_distance("abc", ""), 3u);
  EXPECT_EQ(edit_distance("", "ab"), 2u);
  EXPECT_EQ(edit_distance("kitten", "sitting"), 3u);  // k->s, e->i, +g
  EXPECT_EQ(edit_distance("flaw", "lawn"), 2u);       // -f, +n
  EXPECT_EQ(edit_distance("layer4", "layer4"), 0u);
  EXPECT_EQ(edit_distance("layer4", "layer5"), 1u);
}

TEST(Strings, NearestPrefersRelatedThenClosest) {
  const std::vector<std::string> names = {"features", "features.0", "features.18", "classifier",
                                          "classifier.1"};
  // "feature.18" is one deletion from features.18 and unrelated by substring.
  EXPECT_EQ(nearest(names, "feature.18", 1), std::vector<std::string>({"features.18"}));
  // "classifier" is contained in "classifier.1" and equal to "classifier".
  EXPECT_EQ(nearest(names, "classifier", 2),
            std::vector<std::string>({"classifier", "classifier.1"}));
  EXPECT_EQ(nearest(names, "x", 10).size(), names.size());
  EXPECT_TRUE(nearest({}, "x", 3).empty());
}

TEST(Strings, SafeFileStemsKeepPlainNamesAndReplaceTheRest) {
  EXPECT_TRUE(is_safe_file_stem("gradcam-weights.true"));
  EXPECT_TRUE(is_safe_file_stem("model_2"));
  for (const char* bad : {"", ".", "..", ".hidden", "a/b", "a b", "x\n"}) EXPECT_FALSE(is_safe_file_stem(bad)) << bad;
  EXPECT_EQ(safe_file_stem("x y.pt", '_'), "x_y.pt");
  EXPECT_EQ(safe_file_stem("runs/a:b"), "runs-a-b");
  EXPECT_EQ(safe_file_stem("..hidden"), "--hidden");
  EXPECT_EQ(safe_file_stem(""), "model");
  EXPECT_EQ(safe_file_stem("..", '.'), "model");
  EXPECT_EQ(safe_file_stem("", '-', "x"), "x");
}

}  // namespace
}  // namespace gradlens::core
