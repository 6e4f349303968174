// io::read_run: a stored run directory read back, and its errors.
#include "gradlens/io/run_dir.h"

#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "extract/extract_test_util.h"
#include "gradlens/core/fs.h"
#include "gradlens/core/npy.h"
#include "gradlens/data/dataset.h"
#include "support/support.h"

namespace gradlens::io {
namespace {

namespace fs = std::filesystem;

class ReadRunTest : public test::SeededTest {
 protected:
  void SetUp() override {
    SeededTest::SetUp();
    model = extract::testing::tiny_resnet(4);
    ds = extract::testing::tiny_dataset(11, 4);
    extract::ExtractConfig cfg;
    cfg.out = dir / "run";
    cfg.batch_size = 4;
    cfg.keep_in_memory = true;
    written = extract::run_extract(*model, ds, cfg).run;
  }
  std::unique_ptr<models::ResNet> model;
  data::Dataset ds;
  test::TempDir dir;
  extract::ExtractRun written;
};

TEST_F(ReadRunTest, ReadsTheManifestLabelsAndPredictionsAndLoadsOutputsFromTheFiles) {
  const auto run = read_run(dir / "run");
  EXPECT_EQ(run.dir, dir / "run");
  EXPECT_TRUE(run.values.empty());  // outputs stay on disk until loaded
  EXPECT_EQ(nlohmann::json(run.manifest), nlohmann::json(written.manifest));
  EXPECT_TRUE(torch::equal(run.labels, written.labels));
  EXPECT_TRUE(torch::equal(run.preds, written.preds));
  for (const auto& [name, value] : written.values) EXPECT_TRUE(torch::equal(run.load(name), value)) << name;
  for (const auto& [name, audit] : run.manifest.audits) EXPECT_EQ(audit.name, name);
}

TEST_F(ReadRunTest, DamagedDirectoriesAreNamedWithTheFix) {
  GRADLENS_EXPECT_THROWS_WITH(read_run(dir / "nope"), "no such directory");
  core::write_text_atomically(dir / "run" / "manifest.json", "{not json");
  GRADLENS_EXPECT_THROWS_WITH(read_run(dir / "run"), "manifest.json: not valid JSON");
  core::write_text_atomically(dir / "run" / "manifest.json", R"({"format": "gradlens-analyze"})");
  GRADLENS_EXPECT_THROWS_WITH(read_run(dir / "run"), "not a gradlens-extract manifest");
  core::write_text_atomically(dir / "run" / "manifest.json", nlohmann::json(written.manifest).dump());
  core::write_npy(dir / "run" / "labels.npy", torch::zeros({11}));
  GRADLENS_EXPECT_THROWS_WITH(read_run(dir / "run"), "expected int64 [N] labels");
  fs::remove(dir / "run" / "labels.npy");
  GRADLENS_EXPECT_THROWS_WITH(read_run(dir / "run"), "the run directory is damaged");
  fs::remove(dir / "run" / "manifest.json");
  GRADLENS_EXPECT_THROWS_WITH(read_run(dir / "run"), "no manifest.json");
}

}  // namespace
}  // namespace gradlens::io
