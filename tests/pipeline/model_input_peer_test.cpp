// The model's own preprocessing against torchvision: gradlens.json in a
// TorchScript file (mean/std, input range, Resize + CenterCrop) gives the
// logits torchvision's evaluation transform gives; flags override the file;
// a bad gradlens.json or a class-count mismatch is an error naming the file.
#include <torch/types.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "gradlens/data/dataset.h"
#include "gradlens/models/metadata.h"
#include "gradlens/models/torchscript.h"
#include "gradlens/pipeline/data_source.h"
#include "support/support.h"

namespace gradlens::pipeline {
namespace {

struct ModelInputRef {
  static constexpr const char* kScript = "tests/python/model_input_reference.py";
  static constexpr const char* kModule = "torchvision";
};
class ModelInputPeer : public test::PythonReferenceTest<ModelInputRef> {
 protected:
  DataConfig folder() const {
    DataConfig d;
    d.data = (dir() / "data").string();
    d.test_fraction = 0.5;
    return d;
  }
  std::string model(const std::string& name) const { return (dir() / name).string(); }
};

nlohmann::json read_json(const test::fs::path& p) {
  std::ifstream f(p);
  return nlohmann::json::parse(f);
}

// Every image of both splits through the model: the logits torchvision's
// transform gives (model.pt: x/255, model255.pt: raw pixels).
void expect_torchvision_logits(const test::fs::path& dir, const std::string& file, const ModelData& md) {
  const auto want = read_json(dir / "logits.json");
  models::TorchScriptClassifier ts((dir / file).string(), torch::kCPU, {3, 24});
  int64_t compared = 0;
  for (const bool train : {true, false}) {
    const auto ds = load_split(md.data, 0, train);
    EXPECT_EQ(ds.images.size(2), 24);
    torch::NoGradGuard ng;
    const auto z = ts.forward(data::to_float(ds, ds.images));
    for (int64_t i = 0; i < ds.size(); ++i) {
      const auto w = want.at(ds.paths[static_cast<size_t>(i)]).at(file).get<std::vector<float>>();
      const auto wt = torch::tensor(w);
      EXPECT_LT(test::max_abs_diff(z[i], wt), 1e-5 * std::max(1.0, wt.abs().max().item<double>()))
          << ds.paths[static_cast<size_t>(i)];
      ++compared;
    }
  }
  EXPECT_EQ(compared, 6);
}

TEST_F(ModelInputPeer, GradlensJsonGivesTorchvisionsTransform) {
  const auto md = data_for_models(folder(), {model("model.pt")});
  EXPECT_EQ(md.data.mean, (std::vector<double>{0.4, 0.5, 0.6}));
  EXPECT_EQ(md.data.std, (std::vector<double>{0.2, 0.25, 0.3}));
  EXPECT_EQ(md.data.image_size, 24);
  EXPECT_EQ(md.data.resize, 32);
  EXPECT_EQ(md.source, "gradlens.json in " + model("model.pt"));
  EXPECT_TRUE(md.assumed.empty());
  expect_torchvision_logits(dir(), "model.pt", md);
  const auto ds = load_split(md.data, 0, false);
  EXPECT_NO_THROW(check_model_classes(md, ds));
  EXPECT_EQ(data::describe_input(ds),
            "24x24, (x/255 - [0.4, 0.5, 0.6]) / [0.2, 0.25, 0.3] (mean/std of gradlens.json in " +
                model("model.pt") + ", inputs in [0, 1])");
  // Its "layer" is the model's default layer.
  models::TorchScriptClassifier ts(model("model.pt"), torch::kCPU, {3, 24});
  EXPECT_EQ(ts.default_layer(), "0");
}

TEST_F(ModelInputPeer, InputRange0To255) {
  const auto md = data_for_models(folder(), {model("model255.pt")});
  EXPECT_EQ(md.data.input_range, "0-255");
  expect_torchvision_logits(dir(), "model255.pt", md);
  EXPECT_EQ(data::input_range_name(load_split(md.data, 0, true)), "0-255");
}

TEST_F(ModelInputPeer, FlagsOverrideTheFile) {
  auto flags = folder();
  flags.mean = {0.5, 0.5, 0.5};
  flags.std = {0.5, 0.5, 0.5};
  flags.image_size = 20;
  const auto md = data_for_models(flags, {model("model.pt")});
  EXPECT_EQ(md.data.mean, flags.mean);
  EXPECT_EQ(md.data.image_size, 20);
  EXPECT_EQ(md.data.resize, 32);  // not given: the file's
  const auto ds = load_split(md.data, 0, false);
  EXPECT_EQ(ds.images.size(3), 20);
  // (x/255 - 0.5) / 0.5 of the first pixel.
  const double x = ds.images[0][0][0][0].item<double>();
  EXPECT_NEAR(data::to_float(ds, ds.images.slice(0, 0, 1))[0][0][0][0].item<double>(), (x / 255 - 0.5) / 0.5, 1e-6);
}

TEST_F(ModelInputPeer, WithoutGradlensJsonTheAssumptionIsSaid) {
  const auto md = data_for_models(folder(), {model("plain.pt")});
  EXPECT_TRUE(md.source.empty());
  EXPECT_NE(md.assumed.find("no --mean/--std/--input-range and no gradlens.json"), std::string::npos);
  const auto ds = load_split(md.data, 0, false);
  EXPECT_EQ(ds.normalization, "training-split statistics");
  // Two files asking for different inputs cannot share one data set.
  GRADLENS_EXPECT_THROWS_WITH(data_for_models(folder(), {model("model.pt"), model("model255.pt")}),
                              "ask for different inputs");
}

TEST_F(ModelInputPeer, BadFilesAreClearErrors) {
  GRADLENS_EXPECT_THROWS_WITH(models::read_model_metadata(model("broken.pt")), "broken.pt (its gradlens.json) is not valid JSON");
  const auto md = data_for_models(folder(), {model("three.pt")});
  GRADLENS_EXPECT_THROWS_WITH(check_model_classes(md, load_split(md.data, 0, false)),
                              "three.pt: its gradlens.json names 3 classes but the data has 2");
  auto flags = folder();
  flags.mean = {0.5};
  flags.std = {0.5};
  GRADLENS_EXPECT_THROWS_WITH(load_split(flags, 0, false), "--mean/--std have 1 value(s) but the data has 3 channel(s)");
  flags.std = {};
  GRADLENS_EXPECT_THROWS_WITH(load_split(flags, 0, false), "--mean and --std come together");
  flags = folder();
  flags.image_size = 24;
  flags.resize = 20;
  GRADLENS_EXPECT_THROWS_WITH(load_split(flags, 0, false), "--resize 20 needs --image-size");
}

// The CLI: extract records the input in the manifest; a TorchScript model
// without gradlens.json gets a warning on stderr.
TEST_F(ModelInputPeer, ExtractRecordsTheInputAndWarnsWhenAssumed) {
  const auto g = test::binary_path("gradlens");
  if (!test::fs::exists(g)) GTEST_SKIP() << "build the gradlens target first";
  const std::string data = (dir() / "data").string();
  const auto r = test::run_command(g.string() + " --quiet extract --model " + model("model.pt") + " --data " + data +
                                   " --test-fraction 0.5 --per-class 0 --out " + (dir() / "run").string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output.find("warning: no --mean"), std::string::npos) << r.output;
  const auto m = read_json(dir() / "run" / "manifest.json");
  EXPECT_EQ(m.at("input").at("mean"), nlohmann::json({0.4, 0.5, 0.6}));
  EXPECT_EQ(m.at("input").at("image_size"), nlohmann::json({24, 24}));
  EXPECT_EQ(m.at("input").at("input_range"), "0-1");
  EXPECT_EQ(m.at("layer"), "0");
  const auto p = test::run_command(g.string() + " --quiet extract --model " + model("plain.pt") + " --data " + data +
                                   " --test-fraction 0.5 --per-class 0 --image-size 24 --out " + (dir() / "run2").string());
  ASSERT_EQ(p.exit_code, 0) << p.output;
  EXPECT_NE(p.output.find("warning: no --mean/--std/--input-range and no gradlens.json"), std::string::npos)
      << p.output;
  const auto bad = test::run_command(g.string() + " --quiet extract --model " + model("broken.pt") + " --data " +
                                     data + " --out " + (dir() / "run3").string());
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.output.find("is not valid JSON"), std::string::npos) << bad.output;
  EXPECT_FALSE(test::fs::exists(dir() / "run3"));
  // `layers` probes at the file's image_size and marks its layer as the default.
  const auto l = test::run_command(g.string() + " layers --model " + model("model.pt"));
  ASSERT_EQ(l.exit_code, 0) << l.output;
  EXPECT_NE(l.output.find("probe batch [2, 3, 24, 24]"), std::string::npos) << l.output;
  EXPECT_NE(l.output.find("[N, 4, 22, 22]  <- default layer"), std::string::npos) << l.output;
}

}  // namespace
}  // namespace gradlens::pipeline
