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

TEST_F(ReadRunTest, ChecksumsAreRecordedAndAFlippedByteIsNamed) {
  ASSERT_EQ(written.manifest.checksums.size(), written.values.size() + 2);  // + labels, preds
  for (const auto& [file, crc] : written.manifest.checksums) EXPECT_EQ(crc, core::file_crc32(dir / "run" / file));
  const auto& name = written.values.begin()->first;
  const auto path = dir / "run" / written.manifest.find(name)->file;
  std::string bytes = core::read_file(path);
  bytes[bytes.size() - 1] ^= 0x01;
  core::write_text_atomically(path, bytes);
  const auto run = read_run(dir / "run");
  GRADLENS_EXPECT_THROWS_WITH(run.load(name), path.filename().string() + " is corrupt");
}

TEST_F(ReadRunTest, DamagedDirectoriesAreNamedWithTheFix) {
  GRADLENS_EXPECT_THROWS_WITH(read_run(dir / "nope"), "no such directory");
  core::write_text_atomically(dir / "run" / "manifest.json", "{not json");
  GRADLENS_EXPECT_THROWS_WITH(read_run(dir / "run"), "manifest.json: not valid JSON");
  core::write_text_atomically(dir / "run" / "manifest.json", R"({"format": "gradlens-analyze"})");
  GRADLENS_EXPECT_THROWS_WITH(read_run(dir / "run"), "not a gradlens-extract manifest");
  core::write_text_atomically(dir / "run" / "manifest.json", nlohmann::json(written.manifest).dump());
  core::write_npy(dir / "run" / "labels.npy", torch::zeros({11}));
  GRADLENS_EXPECT_THROWS_WITH(read_run(dir / "run"), "labels.npy is corrupt");
  // A run written before checksums were recorded: read unverified, with a warning.
  auto old = written.manifest;
  old.checksums.clear();
  core::write_text_atomically(dir / "run" / "manifest.json", nlohmann::json(old).dump());
  GRADLENS_EXPECT_THROWS_WITH(read_run(dir / "run"), "expected int64 [N] labels");
  core::write_npy(dir / "run" / "labels.npy", written.labels);
  const auto unverified = read_run(dir / "run");
  ASSERT_FALSE(unverified.manifest.warnings.empty());
  EXPECT_NE(unverified.manifest.warnings.back().find("read unverified"), std::string::npos);
  core::write_npy(dir / "run" / "labels.npy", torch::full({11}, 7, torch::kLong));
  GRADLENS_EXPECT_THROWS_WITH(read_run(dir / "run"), "labels must lie in [0, 4)");
  fs::remove(dir / "run" / "labels.npy");
  GRADLENS_EXPECT_THROWS_WITH(read_run(dir / "run"), "the run directory is damaged");
  fs::remove(dir / "run" / "manifest.json");
  GRADLENS_EXPECT_THROWS_WITH(read_run(dir / "run"), "no manifest.json");
}

}  // namespace
}  // namespace gradlens::io
