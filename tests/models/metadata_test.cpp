// gradlens.json: values read, and every bad value an error naming the file.
#include "gradlens/models/metadata.h"

#include "gradlens/core/check.h"
#include "support/support.h"

namespace gradlens::models {
namespace {

TEST(ModelMetadata, ReadsEveryKey) {
  const auto m = parse_model_metadata(
      R"({"mean": [0.5, 0.25, 0.125], "std": [0.2, 0.3, 0.4], "input_range": "0-1", "image_size": 224,
          "resize": 256, "channels": 3, "class_names": ["cat", "dog"], "layer": "layer4.1",
          "output_index": 0, "class_tokens": 1})",
      "m.pt");
  EXPECT_TRUE(m.present);
  EXPECT_EQ(m.mean, (std::vector<double>{0.5, 0.25, 0.125}));
  EXPECT_EQ(m.std, (std::vector<double>{0.2, 0.3, 0.4}));
  EXPECT_EQ(m.input_range, "0-1");
  EXPECT_EQ(m.image_size, 224);
  EXPECT_EQ(m.resize, 256);
  EXPECT_EQ(m.channels, 3);
  EXPECT_EQ(m.class_names, (std::vector<std::string>{"cat", "dog"}));
  EXPECT_EQ(m.layer, "layer4.1");
  EXPECT_EQ(m.output_index, 0);
  EXPECT_EQ(m.class_tokens, 1);
}

TEST(ModelMetadata, BadValuesNameTheFile) {
  // Found by json_fuzz: a number too large for a double escaped as an
  // uncaught nlohmann::json::out_of_range.
  GRADLENS_EXPECT_THROWS_WITH(parse_model_metadata(R"({"image_size": 7E66666666666})", "m.pt"),
                              "m.pt (its gradlens.json) is not valid JSON");
  GRADLENS_EXPECT_THROWS_WITH(parse_model_metadata(R"({"image_size": 100000})", "m.pt"),
                              "image_size and resize must be from 0 to 4096");
  GRADLENS_EXPECT_THROWS_WITH(parse_model_metadata(R"({"mean": [0.5], "std": [0]})", "m.pt"), "std > 0");
  GRADLENS_EXPECT_THROWS_WITH(parse_model_metadata(R"({"mean": "0.5"})", "m.pt"), "a value has the wrong type");
  GRADLENS_EXPECT_THROWS_WITH(parse_model_metadata(R"({"colour": 1})", "m.pt"), "unknown key 'colour'");
  GRADLENS_EXPECT_THROWS_WITH(parse_model_metadata(R"({"class_tokens": 5000})", "m.pt"), "at most 1000");
  GRADLENS_EXPECT_THROWS_WITH(parse_model_metadata("[1, 2]", "m.pt"), "must be a JSON object");
}

}  // namespace
}  // namespace gradlens::models
