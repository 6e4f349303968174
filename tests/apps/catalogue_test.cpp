// The catalogue of bad inputs: every command, run as a user runs it (the
// binary, in a shell), with bad flags, values and files. Each row: the
// arguments, the exit code (2 usage error, 1 data or runtime error) and a
// substring the one-line message must hold (the flag or file it concerns,
// and what is wrong). A crash (signal), a hang (timeout: exit 124) or a
// wrong success (exit 0) fails the row.
#include <fmt/format.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "gradlens/core/fs.h"
#include "gradlens/core/zip.h"
#include "gradlens/models/checkpoint.h"
#include "support/support.h"

namespace gradlens {
namespace {

namespace fs = std::filesystem;

struct Row {
  const char* args;  ///< "{d}" stands for the fixture directory
  int code;
  const char* message;
};

// clang-format off
const Row kRows[] = {
    // Global flags and commands.
    {"", 2, "subcommand is required"},
    {"frobnicate", 2, "unknown command 'frobnicate'"},
    {"--threads 2 frobnicate --x", 2, "unknown command 'frobnicate'"},
    {"--threads 100000 models", 2, "--threads: must be a whole number from 0 to"},
    {"--threads -1 models", 2, "--threads: must be a whole number"},
    {"--threads abc models", 2, "not 'abc'"},
    {"--blas-threads 99999 models", 2, "--blas-threads"},
    {"--device cuda:7 models", 1, "--device"},
    {"--device tpu models", 2, "--device"},
    {"--seed -3 models", 2, "--seed: must be a whole number >= 0"},
    {"--conv-algorithm fft models", 2, "--conv-algorithm"},
    {"--output-index -1 models", 2, "--output-index"},
    {"--class-tokens x models", 2, "--class-tokens"},
    {"--output-index 0 --output-key logits models", 2, "--output-key"},
    // models
    {"models --classes 1", 2, "--classes: must be a whole number from 2"},
    {"models --channels 0", 2, "--channels"},
    {"models --width 0", 2, "--width"},
    {"models --width 5000", 2, "--width: must be a whole number from 1 to 1024"},
    {"models --stem giant", 2, "giant"},
    // train: values
    {"train --epochs 0", 2, "--epochs: must be a whole number from 1"},
    {"train --epochs 1.5", 2, "--epochs: must be a whole number from 1 to 100000, not '1.5'"},
    {"train --lr 0", 2, "--lr: must be a finite number > 0, not 0"},
    {"train --lr nan", 2, "--lr: must be a finite number > 0, not nan"},
    {"train --lr inf", 2, "--lr"},
    {"train --lr -1", 2, "--lr"},
    {"train --lr 1e400", 2, "--lr"},
    {"train --gamma nan", 2, "--gamma"},
    {"train --warmup-steps -5", 2, "--warmup-steps"},
    {"train --step-size 0", 2, "--step-size"},
    {"train --momentum 1", 2, "--momentum: must be a finite number in [0, 1)"},
    {"train --weight-decay -0.1", 2, "--weight-decay"},
    {"train --batch-size 0", 2, "--batch-size"},
    {"train --batch-size 1e9", 2, "--batch-size"},
    {"train --time-budget -1", 2, "--time-budget"},
    {"train --lambda-grad -1", 2, "--lambda-grad"},
    {"train --lambda-mi nan", 2, "--lambda-mi"},
    {"train --mi-shrinkage 2", 2, "--mi-shrinkage"},
    {"train --mi-dims 0", 2, "--mi-dims"},
    {"train --nesterov maybe", 2, "--nesterov"},
    // train: choices
    {"train --model resnet19 --out {d}/t", 2, "resnet19"},
    {"train --schedule linear", 2, "linear"},
    {"train --optimizer rmsprop --epochs 1 --out {d}/t", 2, "rmsprop"},
    {"train --grad-form manhattan", 2, "manhattan"},
    {"train --grad-reduction max", 2, "max"},
    {"train --mi-estimator knn --lambda-mi 1 --epochs 1 --out {d}/t", 2, "knn"},
    {"train --stem giant --out {d}/t", 2, "giant"},
    // data flags
    {"train --data /nonexistent/dir --out {d}/t", 1, "/nonexistent/dir"},
    {"train --data {d}/one_class --out {d}/t", 1, "at least two classes"},
    {"train --data {d}/empty --out {d}/t", 1, "{d}/empty"},
    {"train --data {d}/file.txt --out {d}/t", 1, "file.txt"},
    {"train --image-size 100000", 2, "--image-size: must be a whole number from 0 to 4096"},
    {"train --resize -1", 2, "--resize"},
    {"train --test-fraction 0.95", 2, "--test-fraction"},
    {"extract --data . --test-fraction 0 --out x", 2, "not 0 (0 would leave no test images)"},
    {"train --mean 0.5,nan", 2, "--mean: must be a finite number, not nan"},
    {"train --std 0", 2, "--std"},
    {"train --channels 2", 2, "--channels"},
    {"train --input-range 0-2", 2, "--input-range"},
    {"train --train-per-class -1", 2, "--train-per-class"},
    {"train --subset sometimes --epochs 1 --out {d}/t", 2, "--subset"},
    {"train --data-dir /nonexistent --out {d}/t", 1, "/nonexistent"},
    // train: outputs and checkpoints
    {"train --out /proc/gradlens-cannot-write", 1, "/proc/gradlens-cannot-write"},
    {"train --resume --out {d}/empty", 1, "--resume: checkpoint"},
    {"train --resume --out {d}/resume_corrupt", 1, "is corrupt"},
    {"train --resume --out {d}/resume_junk", 1, "is not a PyTorch file"},
    // evaluate
    {"evaluate --per-class 0", 2, "--per-class"},
    {"evaluate --k -1", 2, "--k"},
    {"evaluate --flip-fraction 0.5", 2, "--flip-fraction: must be a finite number in [0, 0.5)"},
    {"evaluate --neighbors 0", 2, "--neighbors"},
    {"evaluate --pca-dims -2", 2, "--pca-dims"},
    {"evaluate --batch-size 0", 2, "--batch-size"},
    {"evaluate --models {d}/corrupt.ckpt --per-class 2 --out {d}/e", 1, "corrupt.ckpt is corrupt"},
    {"evaluate --models {d}/trunc.ckpt --per-class 2 --out {d}/e", 1, "is truncated"},
    {"evaluate --models {d}/junk.pt --per-class 2 --out {d}/e", 1, "junk.pt is not a PyTorch file"},
    {"evaluate --models {d}/missing.pt --per-class 2 --out {d}/e", 1, "missing.pt"},
    {"evaluate --models {d}/tiny.ckpt --per-class 2 --target maybe --out {d}/e", 2, "--target"},
    {"evaluate --models {d}/tiny.ckpt --per-class 2 --gmm-covariance round --out {d}/e", 2, "round"},
    {"evaluate --models {d}/tiny.ckpt --per-class 2 --normalize l3 --out {d}/e", 2, "l3"},
    {"evaluate --models {d}/tiny.ckpt --per-class 2 --label-error-embedding pixels --out {d}/e", 2, "pixels"},
    {"evaluate --models {d}/tiny.ckpt --per-class 2 --out {d}/file.txt", 1, "file.txt"},
    {"evaluate --models {d}/tiny.ckpt --per-class 2 --data {d}/one_class --out {d}/e", 1, "at least two classes"},
    {"evaluate --models {d}/tiny.ckpt --per-class 2 --layer layer9 --out {d}/e", 1, "layer9"},
    // extract
    {"extract --model {d}/tiny.ckpt", 2, "--out is required"},
    {"extract --model {d}/corrupt.ckpt --out {d}/x", 1, "corrupt.ckpt is corrupt"},
    {"extract --model {d}/tiny.ckpt --representations foo --per-class 1 --out {d}/x", 2, "foo"},
    {"extract --model {d}/tiny.ckpt --split val --out {d}/x", 2, "--split"},
    {"extract --model {d}/tiny.ckpt --pool median --per-class 1 --out {d}/x", 2, "median"},
    {"extract --model {d}/tiny.ckpt --targets banana --per-class 1 --out {d}/x", 2, "banana"},
    {"extract --model {d}/tiny.ckpt --layer layer9 --per-class 1 --out {d}/x", 1, "layer9"},
    {"extract --model {d}/tiny.ckpt --per-class 1 --out {d}/run", 1, "--out"},
    {"extract --model {d}/tiny.ckpt --per-class 1 --out {d}/file.txt", 1, "file.txt"},
    {"extract --model {d}/tiny.ckpt --batch-size 0 --out {d}/x", 2, "--batch-size"},
    {"extract --model {d}/tiny.ckpt --per-class -1 --out {d}/x", 2, "--per-class"},
    // train's record, attribute, label-errors
    {"train --noisy-labels 1", 2, "--noisy-labels: must be a finite number in [0, 1), not 1"},
    {"train --noisy-labels -0.1", 2, "--noisy-labels"},
    {"train --noisy-labels 0.1 --epochs 1", 2, "give --out DIR"},
    {"train --permute-labels --epochs 1", 2, "--permute-labels trains a model on random labels: give --out DIR"},
    {"train --permute-labels --noisy-labels 0.1 --out {d}/t", 2, "--permute-labels and --noisy-labels: give one"},
    {"train --record-dynamics --resume --out {d}/resume_junk", 2, "--resume cannot continue a training record"},
    {"train --aum-threshold-samples --out {d}/aum", 2, "--aum-threshold-samples needs --record-dynamics"},
    {"attribute --out {d}/a", 2, "--run is required"},
    {"attribute --run {d}/empty --out {d}/a", 1, "has no record.json"},
    {"attribute --run {d}/file.txt --out {d}/a", 1, "is not a directory"},
    {"attribute --run {d}/empty --top-k 0 --out {d}/a", 2, "--top-k"},
    {"attribute --run {d}/empty --query-label both --out {d}/a", 2, "--query-label"},
    {"label-errors --run {d}/empty --el2n-epoch -1", 2, "--el2n-epoch"},
    {"label-errors --run {d}/empty --neighbors 0", 2, "--neighbors"},
    {"label-errors --run {d}/empty --scores aum,bogus", 2, "--scores: unknown score 'bogus'"},
    // saliency
    {"saliency --method lime --out {d}/s", 2, "lime"},
    {"saliency --ig-steps 1000000 --out {d}/s", 2, "--ig-steps: must be a whole number from 1 to 100000"},
    {"saliency --smoothgrad-samples 0 --out {d}/s", 2, "--smoothgrad-samples"},
    {"saliency --smoothgrad-sigma nan --out {d}/s", 2, "--smoothgrad-sigma"},
    {"saliency --alpha 2 --out {d}/s", 2, "--alpha"},
    {"saliency --colormap rainbow --out {d}/s", 2, "rainbow"},
    {"saliency --fixation-threshold -0.5 --out {d}/s", 2, "--fixation-threshold"},
    {"saliency --models {d}/junk.pt --per-class 1 --out {d}/s", 1, "junk.pt is not a PyTorch file"},
    {"saliency --models {d}/tiny.ckpt --per-class 1 --metrics pointing --out {d}/s", 1, "has no object masks"},
    {"saliency --models {d}/tiny.ckpt --per-class 1 --metrics accuracy --out {d}/s", 2, "unknown metric 'accuracy'"},
    {"saliency --steps 0 --out {d}/s", 2, "--steps"},
    {"saliency --patch-size 0 --out {d}/s", 2, "--patch-size"},
    {"saliency --models {d}/tiny.ckpt --per-class 1 --metrics deletion --patch-size 5 --out {d}/s", 2,
     "--patch-size 5 must divide the image size 28 x 28"},
    {"evaluate --compare-methods gradcam,lime --out {d}/e", 2, "--compare-methods: unknown attribution method 'lime'"},
    {"saliency --road-fractions 0.5,1 --out {d}/s", 2, "--road-fractions"},
    {"saliency --road-noise -0.1 --out {d}/s", 2, "--road-noise"},
    {"saliency --randomisation partial --out {d}/s", 2, "--randomisation"},
    {"saliency --perturbation-baseline noise --out {d}/s", 2, "noise"},
    // analyze
    {"analyze {d}/nonexistent", 1, "nonexistent"},
    {"analyze {d}/empty", 1, "manifest.json"},
    {"analyze {d}/run --pca-solver magic", 2, "magic"},
    {"analyze {d}/run --gmm-covariance round", 2, "round"},
    {"analyze {d}/run --reg-covar nan", 2, "--reg-covar"},
    {"analyze {d}/run --k 100000", 2, "--k"},
    {"analyze {d}/run_badlabels", 1, "labels.npy: labels must lie in [0, 10)"},
    {"analyze {d}/run_corrupt", 1, "features.npy is corrupt"},
    {"analyze {d}/run_truncated", 1, "logits.npy"},
    // hessian
    {"hessian --tol nan", 2, "--tol"},
    {"hessian --trace-tol 0", 2, "--trace-tol"},
    {"hessian --top-k 0", 2, "--top-k"},
    {"hessian --model {d}/junk.pt", 1, "junk.pt is not a PyTorch file"},
    {"hessian --model {d}/corrupt.ckpt", 1, "corrupt.ckpt is corrupt"},
    {"hessian --model {d}/tiny.ckpt --wrt weights --per-class 1", 2, "--wrt"},
    // layers and import
    {"layers --model {d}/tiny.ckpt", 1, "is a gradlens checkpoint"},
    {"layers --model {d}/missing.pt", 1, "missing.pt"},
    {"layers --model {d}/junk.pt", 1, "junk.pt is not a PyTorch file"},
    {"layers --channels 0 --model {d}/junk.pt", 2, "--channels"},
    {"import {d}/junk.pt --out {d}/i.ckpt", 1, "junk.pt is not a PyTorch file"},
    {"import {d}/tiny.ckpt --out {d}/i.ckpt", 1, "is a gradlens checkpoint"},
    {"import {d}/trunc.ckpt --out {d}/i.ckpt", 1, "is truncated"},
    // make-shapes
    {"make-shapes --classes 9 --out {d}/m", 2, "--classes"},
    {"make-shapes --size 8 --out {d}/m", 2, "--size"},
    {"make-shapes --per-class 0 --out {d}/m", 2, "--per-class"},
    {"make-shapes --classes 2", 2, "--out is required"},
    {"make-shapes --classes 2 --per-class 2 --out {d}/run", 1, "--out"},
    // launch
    {"launch -n 0 -- models", 2, "--nproc"},
    {"launch -n 100000 -- models", 2, "--nproc: must be a whole number from 1 to"},
    {"launch --port 70000 -- models", 2, "--port"},
    {"launch --timeout 0 -- models", 2, "--timeout"},
};
// clang-format on

class Catalogue : public ::testing::TestWithParam<Row> {
 public:
  static void SetUpTestSuite() {
    dir_ = new test::TempDir;
    const fs::path d = dir_->path();
    fs::create_directories(d / "empty");
    std::ofstream(d / "file.txt") << "a plain file\n";
    std::ofstream(d / "junk.pt") << "not a model, just text that is long enough to be read";
    models::ResNetConfig cfg;
    cfg.stem = models::Stem::kSmall;
    cfg.width = 4;
    cfg.in_channels = 1;
    cfg.num_classes = 10;
    models::ResNet model(cfg);
    models::save_checkpoint(d / "tiny.ckpt", model, "{}");
    std::string bytes = core::read_file(d / "tiny.ckpt");
    core::write_text_atomically(d / "trunc.ckpt", bytes.substr(0, bytes.size() / 2));
    for (const auto& e : core::zip_entries(d / "tiny.ckpt"))
      if (e.name.size() > 7 && e.name.compare(e.name.size() - 7, 7, "/data/0") == 0)
        bytes[e.header_offset + 30 + e.name.size() + 64 + e.size / 2] ^= 0x10;
    core::write_text_atomically(d / "corrupt.ckpt", bytes);
    fs::create_directories(d / "resume_corrupt");
    fs::copy_file(d / "corrupt.ckpt", d / "resume_corrupt" / "model.ckpt");
    fs::create_directories(d / "resume_junk");
    fs::copy_file(d / "junk.pt", d / "resume_junk" / "model.ckpt");
    ASSERT_EQ(gradlens("make-shapes --classes 1 --per-class 3 --size 16 --out {d}/one_class").exit_code, 0);
    if (test::fashion_mnist_dir().empty()) return;
    const auto r = gradlens("extract --model {d}/tiny.ckpt --per-class 2 --representations logits,features --out {d}/run");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    fs::copy(d / "run", d / "run_badlabels");
    core::write_text_atomically(d / "run_badlabels" / "labels.npy",
                                core::read_file(d / "run" / "labels.npy").substr(0, 128 + 8) +
                                    std::string("\x63\0\0\0\0\0\0\0", 8) +
                                    core::read_file(d / "run" / "labels.npy").substr(128 + 16));
    {  // the labels' checksum made to match, so that the range check is reached
      auto manifest = nlohmann::json::parse(core::read_file(d / "run_badlabels" / "manifest.json"));
      manifest["crc32"]["labels.npy"] = core::file_crc32(d / "run_badlabels" / "labels.npy");
      core::write_text_atomically(d / "run_badlabels" / "manifest.json", manifest.dump());
    }
    fs::copy(d / "run", d / "run_corrupt");
    std::string features = core::read_file(d / "run" / "features.npy");
    features[features.size() - 5] ^= 0x04;
    core::write_text_atomically(d / "run_corrupt" / "features.npy", features);
    fs::copy(d / "run", d / "run_truncated");
    const auto logits = core::read_file(d / "run" / "logits.npy");
    core::write_text_atomically(d / "run_truncated" / "logits.npy", logits.substr(0, logits.size() - 40));
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }

  static std::string expand(std::string s) {
    for (size_t at; (at = s.find("{d}")) != std::string::npos;) s.replace(at, 3, dir_->path().string());
    return s;
  }
  /// Runs the binary as a user would, with a private cache and a time limit.
  static test::CommandResult gradlens(const std::string& args) {
    const fs::path d = dir_->path();
    return test::run_command(fmt::format("cd '{}' && GRADLENS_CACHE='{}' timeout 300 '{}' {}", d.string(),
                                         (d / "cache").string(), test::binary_path("gradlens").string(),
                                         expand(args)));
  }

 private:
  static test::TempDir* dir_;
};

test::TempDir* Catalogue::dir_ = nullptr;

TEST_P(Catalogue, ClearErrorAndExitCode) {
  const Row& row = GetParam();
  const std::string args = row.args;
  const bool needs_data = args.find("--data ") == std::string::npos &&
                          (args.rfind("train", 0) == 0 || args.rfind("evaluate", 0) == 0 ||
                           args.rfind("extract", 0) == 0 || args.rfind("saliency", 0) == 0 ||
                           args.rfind("hessian", 0) == 0 || args.find("{d}/run") != std::string::npos);
  if (needs_data && test::fashion_mnist_dir().empty() && row.code == 1)
    GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  const auto r = gradlens(args);
  const std::string err = expand(row.message);
  EXPECT_NE(r.exit_code, 124) << "hang: " << args;
  EXPECT_LT(r.exit_code, 128) << "crash (signal " << r.exit_code - 128 << "): " << args << "\n" << r.output;
  EXPECT_EQ(r.exit_code, row.code) << args << "\n" << r.output;
  EXPECT_NE(r.output.find(err), std::string::npos) << args << "\nexpected: " << err << "\n" << r.output;
  // One message, starting with the program's name, not a LibTorch backtrace.
  EXPECT_NE(r.output.find("gradlens: "), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("Exception raised from"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("frame #"), std::string::npos) << r.output;
}

std::string row_name(const ::testing::TestParamInfo<Row>& info) {
  std::string name = fmt::format("{:03d}_", info.index);
  for (const char c : std::string(info.param.args).substr(0, 40))
    name += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  return name;
}

INSTANTIATE_TEST_SUITE_P(BadInputs, Catalogue, ::testing::ValuesIn(kRows), row_name);

TEST(CatalogueSize, CoversEveryCommandWithAtLeast80Rows) {
  EXPECT_GE(std::size(kRows), 80u);
  for (const char* cmd : {"models", "train", "evaluate", "extract", "saliency", "analyze", "hessian", "layers",
                          "import", "make-shapes", "launch"}) {
    bool found = false;
    for (const auto& r : kRows) found |= std::string(r.args).find(cmd) != std::string::npos;
    EXPECT_TRUE(found) << cmd;
  }
}

}  // namespace
}  // namespace gradlens
