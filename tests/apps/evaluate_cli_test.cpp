// gradlens evaluate through run_cli(): the exit codes and one-line messages
// of bad input (the full protocol is tested in tests/pipeline/evaluate_test.cpp).
#include "apps/cli_run.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "gradlens/core/fs.h"
#include "gradlens/core/npy.h"
#include "support/support.h"

namespace gradlens::cli {
namespace {

TEST(EvaluateCli, BadInputExitsWithOneLineNamingTheFlag) {
  if (test::fashion_mnist_dir().empty()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  test::TempDir dir;
  auto missing = cli_run({"--quiet", "evaluate", "--models", (dir / "nope.ckpt").string(), "--out",
                               (dir / "r").string()});
  EXPECT_EQ(missing.code, 1);
  EXPECT_NE(missing.err.find("--models: '" + (dir / "nope.ckpt").string() + "' is neither"), std::string::npos)
      << missing.err;
  EXPECT_EQ(std::count(missing.err.begin(), missing.err.end(), '\n'), 1) << missing.err;
  EXPECT_FALSE(std::filesystem::exists(dir / "r"));

  core::write_text_atomically(dir / "file.txt", "x");
  auto not_report = cli_run({"--quiet", "evaluate", "--out", (dir / "file.txt").string()});
  EXPECT_EQ(not_report.code, 1);
  EXPECT_NE(not_report.err.find("is not a gradlens report"), std::string::npos) << not_report.err;

  auto bad_target = cli_run({"--quiet", "evaluate", "--target", "max", "--out", (dir / "r").string()});
  EXPECT_EQ(bad_target.code, 2);
  EXPECT_NE(bad_target.err.find("--target: unknown target 'max'"), std::string::npos) << bad_target.err;

  auto zero = cli_run({"--quiet", "evaluate", "--per-class", "0"});
  EXPECT_EQ(zero.code, 2);
  EXPECT_NE(zero.err.find("--per-class"), std::string::npos) << zero.err;

  auto help = cli_run({"evaluate", "--help"});
  EXPECT_EQ(help.code, 0);
  EXPECT_NE(help.out.find("--label-error-embedding"), std::string::npos);
}

// End to end on a model that is not a ResNet: a vision transformer whose
// gradlens.json gives its normalisation and a token layer for Grad-CAM. Its
// predictions and confidences equal the eager PyTorch model's on every image
// (torchvision's ToTensor + Normalize); the token layer [N, 1 + 4*4, 32] is
// read as maps [N, 32, 4, 4].
TEST(EvaluateCli, AVisionTransformerEndToEndMatchesPyTorch) {
  if (!test::python_has("torchvision")) GTEST_SKIP() << "python3-torchvision is not installed";
  test::TempDir dir;
  const std::string ref = std::string(test::kPython) + " " +
                          test::source_path("tests/python/evaluate_any_model_reference.py").string() + " ";
  const auto exported = test::run_command(ref + "export " + dir.path().string());
  ASSERT_EQ(exported.exit_code, 0) << exported.output;
  ASSERT_EQ(cli_run({"--quiet", "make-shapes", "--classes", "4", "--per-class", "20", "--size", "32", "--out",
                          (dir / "shapes").string()}).code, 0);
  setenv("GRADLENS_CACHE", (dir / "cache").c_str(), 1);
  const auto r = cli_run({"--quiet", "evaluate", "--models", (dir / "vit.pt").string(), "--data",
                               (dir / "shapes").string(), "--channels", "3", "--per-class", "4", "--pca-dims", "8",
                               "--compare-methods", "gradcam,gradient", "--out", (dir / "report").string()});
  unsetenv("GRADLENS_CACHE");
  ASSERT_EQ(r.code, 0) << r.err;
  std::ifstream f(dir / "report" / "report.json");
  const auto j = nlohmann::json::parse(f);
  const auto& m = j.at("models").at(0);
  EXPECT_EQ(m.at("layer").get<std::string>(), "encoder.layers.encoder_layer_1.ln_1");
  EXPECT_EQ(m.at("representations").at("activations").at("dims").get<int64_t>(), 32 * 4 * 4);
  EXPECT_EQ(m.at("representations").at("gradcam-weights").at("dims").get<int64_t>(), 32);
  EXPECT_NE(j.at("protocol").at("text").get<std::string>().find("gradlens.json in"), std::string::npos);
  // The extraction's manifest names each row's image file: one of its class.
  {
    std::ifstream mf(test::fs::path(m.at("run_dir").get<std::string>()) / "manifest.json");
    const auto manifest = nlohmann::json::parse(mf);
    const auto files = manifest.at("files").get<std::vector<std::string>>();
    const auto labels = core::read_npy(test::fs::path(m.at("run_dir").get<std::string>()) / "labels.npy");
    ASSERT_EQ(files.size(), 16u);
    const auto classes = manifest.at("class_names").get<std::vector<std::string>>();
    for (size_t i = 0; i < files.size(); ++i) {
      EXPECT_TRUE(test::fs::is_regular_file(files[i])) << files[i];
      EXPECT_EQ(test::fs::path(files[i]).parent_path().filename().string(),
                classes.at(static_cast<size_t>(labels[static_cast<int64_t>(i)].item<int64_t>())))
          << files[i];
    }
  }
  // make-shapes has object masks: the Grad-CAM maps are scored against them,
  // with the values `gradlens saliency --metrics` gives on the same images.
  const auto& loc = m.at("grad_cam").at("localisation");
  EXPECT_DOUBLE_EQ(loc.at("pointing_tolerance_px").get<double>(), 15.0 * 32 / 224);
  const auto s = cli_run({"--quiet", "saliency", "--models", (dir / "vit.pt").string(), "--data",
                               (dir / "shapes").string(), "--channels", "3", "--per-class", "4", "--metrics",
                               "energy,rank,deletion,road", "--out", (dir / "saliency").string()});
  ASSERT_EQ(s.code, 0) << s.err;
  std::ifstream sf(dir / "saliency" / "summary.json");
  const auto sj = nlohmann::json::parse(sf).at("models").at(0).at("faithfulness");
  for (const char* metric : {"pointing_game", "energy_pointing_game", "relevance_rank_accuracy"}) {
    EXPECT_EQ(loc.at("metrics").at(metric).at("n").get<int64_t>(), 16) << metric;
    const double v = loc.at("metrics").at(metric).at("mean").get<double>();
    EXPECT_TRUE(v >= 0 && v <= 1) << metric << " " << v;
  }
  EXPECT_NEAR(loc.at("metrics").at("energy_pointing_game").at("mean").get<double>(),
              sj.at("energy_pointing_game").at("mean").get<double>(), 1e-5);
  EXPECT_NEAR(loc.at("metrics").at("relevance_rank_accuracy").at("mean").get<double>(),
              sj.at("relevance_rank_accuracy").at("mean").get<double>(), 1e-9);
  // The method comparison: Grad-CAM's row equals `saliency --metrics` on the same maps.
  const auto& methods = m.at("attribution_methods");
  ASSERT_EQ(methods.size(), 2u);
  EXPECT_EQ(methods[0].at("method"), "gradcam");
  EXPECT_EQ(methods[1].at("method"), "gradient");
  EXPECT_NEAR(methods[0].at("deletion_auc").get<double>(), sj.at("deletion_auc").at("mean").get<double>(), 1e-5);
  EXPECT_NEAR(methods[0].at("road_combined").get<double>(), sj.at("road_combined").at("mean").get<double>(), 1e-5);
  // Its mean deletion curve too, drawn with the insertion curves and the
  // cascading-randomisation maps in figures the report shows.
  const auto curve = methods[0].at("deletion_curve").get<std::vector<double>>();
  const auto want = sj.at("deletion_curve").get<std::vector<double>>();
  ASSERT_EQ(curve.size(), 21u);
  ASSERT_EQ(want.size(), 21u);
  for (size_t i = 0; i < curve.size(); ++i) EXPECT_NEAR(curve[i], want[i], 1e-5) << i;
  EXPECT_EQ(methods[0].at("curve_fractions").get<std::vector<double>>().back(), 1.0);
  const std::string md = core::read_file(dir / "report" / "report.md");
  for (const std::string fig : {"-deletion-curves.png", "-insertion-curves.png", "-cascading-randomisation.png"}) {
    std::string found;
    for (const auto& e : test::fs::directory_iterator(dir / "report" / "figures")) {
      const auto name = e.path().filename().string();
      if (name.size() > fig.size() && name.compare(name.size() - fig.size(), fig.size(), fig) == 0) found = name;
    }
    ASSERT_FALSE(found.empty()) << fig;
    EXPECT_GT(test::fs::file_size(dir / "report" / "figures" / found), 1000u) << found;
    EXPECT_NE(md.find("figures/" + found), std::string::npos) << fig;
  }
  for (const auto& f : methods) {
    for (const char* key : {"deletion_auc", "insertion_auc", "average_drop", "pointing_game"}) {
      const double v = f.at(key).get<double>();
      EXPECT_TRUE(v >= 0 && v <= 1) << key << " " << v;
    }
    EXPECT_LE(std::abs(f.at("randomisation_spearman").get<double>()), 1.0);
    EXPECT_EQ(f.at("randomised_groups"), "heads.head,encoder.ln");  // saliency::parameter_groups
  }
  const auto check = test::run_command(ref + "check " + dir.path().string() + " " + (dir / "report").string());
  EXPECT_EQ(check.exit_code, 0) << check.output;
  EXPECT_NE(check.output.find("ok 16"), std::string::npos) << check.output;
  // By default, on data with masks, all five methods are compared; --quick
  // skips the comparison and the scoring against the masks.
  setenv("GRADLENS_CACHE", (dir / "cache").c_str(), 1);
  const std::vector<std::string> base = {"--quiet", "evaluate", "--models", (dir / "vit.pt").string(), "--data",
                                         (dir / "shapes").string(), "--channels", "3", "--per-class", "4",
                                         "--pca-dims", "8", "--out"};
  auto args = base;
  args.push_back((dir / "default").string());
  const auto d = cli_run(args);
  args = base;
  args.insert(args.end(), {(dir / "quick").string(), "--quick"});
  const auto q = cli_run(args);
  unsetenv("GRADLENS_CACHE");
  ASSERT_EQ(d.code, 0) << d.err;
  ASSERT_EQ(q.code, 0) << q.err;
  std::ifstream df(dir / "default" / "report.json"), qf(dir / "quick" / "report.json");
  const auto dm = nlohmann::json::parse(df).at("models").at(0);
  const auto qm = nlohmann::json::parse(qf).at("models").at(0);
  std::vector<std::string> names;
  for (const auto& f : dm.at("attribution_methods")) names.push_back(f.at("method"));
  EXPECT_EQ(names, (std::vector<std::string>{"gradcam", "gradcam++", "gradient", "smoothgrad", "ig"}));
  EXPECT_NEAR(dm.at("attribution_methods")[0].at("deletion_auc").get<double>(),
              methods[0].at("deletion_auc").get<double>(), 1e-12);
  EXPECT_FALSE(qm.contains("attribution_methods"));
  EXPECT_FALSE(qm.at("grad_cam").contains("localisation"));
  EXPECT_EQ(qm.at("grad_cam").at("metrics"), m.at("grad_cam").at("metrics"));
}

}  // namespace
}  // namespace gradlens::cli
