#include "gradlens/pipeline/analyze.h"

#include "extract/extract_test_util.h"
#include "pipeline/analyze_test_util.h"
#include "support/support.h"

#include <torch/types.h>

#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>

#include "gradlens/core/check.h"
#include "gradlens/core/fs.h"
#include "gradlens/core/npy.h"
#include "gradlens/extract/run.h"
#include "gradlens/models/checkpoint.h"

namespace gradlens::pipeline {
namespace {

namespace afs = std::filesystem;
namespace an = test::analyze;
using json = nlohmann::json;

json an_test_json(const afs::path& dir) { return json::parse(core::read_file(dir / "analysis.json")); }

// Mean silhouette by the definition (Euclidean).
double an_test_silhouette(const torch::Tensor& x, const torch::Tensor& y) {
  const auto d = torch::cdist(x.to(torch::kFloat64), x.to(torch::kFloat64));
  const int64_t n = x.size(0);
  double total = 0;
  for (int64_t i = 0; i < n; ++i) {
    const auto same = y == y[i];
    const double a = (d[i] * same).sum().item<double>() / (same.sum().item<double>() - 1);
    double b = INFINITY;
    for (int64_t c = 0; c <= y.max().item<int64_t>(); ++c) {
      if (c == y[i].item<int64_t>()) continue;
      const auto in = y == c;
      b = std::min(b, (d[i] * in).sum().item<double>() / in.sum().item<double>());
    }
    total += (b - a) / std::max(a, b);
  }
  return total / static_cast<double>(n);
}

TEST(Analyze, WritesEveryFileAndTheJsonHoldsTheValues) {
  test::TempDir dir;
  an::write_run(dir.path());
  AnalyzeConfig cfg;
  cfg.run_dir = dir.path();
  RunContext ctx;
  ctx.seed = 5;
  int64_t events = 0;
  ctx.progress = [&](const core::ProgressEvent& ev) {
    EXPECT_EQ(ev.stage, "analyze");
    EXPECT_EQ(ev.total, 8);
    ++events;
  };
  const auto r = run_analyze(cfg, ctx);
  EXPECT_EQ(events, 8);
  EXPECT_EQ(r.n, 30);
  EXPECT_EQ(r.num_classes, 3);
  EXPECT_EQ(r.k, 3);
  ASSERT_EQ(r.representations.size(), 2u);
  EXPECT_EQ(r.representations[0].name, "blobs");
  EXPECT_EQ(r.representations[1].name, "informed.true");
  EXPECT_EQ(r.representations[0].audit_source, "computed");

  for (const char* f : {"analysis.json", "analysis.csv", "analysis.md", "clusters/blobs.kmeans.npy",
                        "clusters/blobs.gmm.npy", "clusters/informed.true.kmeans.npy",
                        "clusters/informed.true.gmm.npy", "pca2/blobs.npy", "pca2/informed.true.npy"})
    EXPECT_TRUE(afs::exists(dir / f)) << f;
  // No temporary file is left behind.
  for (const auto& e : afs::recursive_directory_iterator(dir.path()))
    EXPECT_EQ(e.path().filename().string().find(".tmp-"), std::string::npos) << e.path();

  const auto x = an::blobs();
  const auto y = an::labels();
  const auto km = core::read_npy(dir / "clusters/blobs.kmeans.npy");
  EXPECT_EQ(km.scalar_type(), torch::kLong);
  EXPECT_EQ(km.sizes(), torch::IntArrayRef({30}));
  // Blob c is one cluster: the cluster of row i is a function of y[i].
  for (int64_t i = 3; i < 30; ++i) EXPECT_EQ(km[i].item<int64_t>(), km[i % 3].item<int64_t>());
  const auto p2 = core::read_npy(dir / "pca2/blobs.npy");
  EXPECT_EQ(p2.scalar_type(), torch::kFloat);
  EXPECT_EQ(p2.sizes(), torch::IntArrayRef({30, 2}));

  const json j = an_test_json(dir.path());
  ASSERT_TRUE(j.contains("blobs") && j.contains("informed.true") && j.contains("protocol"));
  EXPECT_EQ(j.size(), 3u);  // the representations and the protocol only
  const auto& b = j["blobs"];
  // Hand value of Cos_Sim: by the definition, pairs i < j within each class.
  double cs = 0;
  for (int64_t c = 0; c < 3; ++c) {
    const auto v = x.index({y == c}).to(torch::kFloat64);
    const auto u = v / v.norm(2, 1, true);
    const auto g = torch::matmul(u, u.t());
    cs += (g.sum().item<double>() - g.trace().item<double>()) / (10.0 * 9.0) / 3.0;
  }
  EXPECT_NEAR(b["cos_sim"].get<double>(), cs, 1e-12);
  EXPECT_NEAR(b["cos_sim_within"]["beta"].get<double>(), r.representations[0].analysis.cosine.within[1].item<double>(),
              1e-15);
  const double sil = an_test_silhouette(x, y);  // PCA to 6 = D dims keeps distances
  for (const char* m : {"kmeans", "gmm"}) {
    SCOPED_TRACE(m);
    EXPECT_DOUBLE_EQ(b[m]["ari"].get<double>(), 1.0);
    EXPECT_NEAR(b[m]["nmi"].get<double>(), 1.0, 1e-12);
    EXPECT_NEAR(b[m]["ami"].get<double>(), 1.0, 1e-12);
    EXPECT_DOUBLE_EQ(b[m]["accuracy"].get<double>(), 1.0);
    EXPECT_NEAR(b[m]["silhouette"].get<double>(), sil, 1e-6);
    EXPECT_TRUE(b[m]["error"].is_null());
    EXPECT_EQ(b[m]["labels"], std::string("clusters/blobs.") + m + ".npy");
  }
  EXPECT_TRUE(b["kmeans"].contains("inertia"));
  EXPECT_TRUE(b["gmm"].contains("lower_bound"));
  EXPECT_EQ(b["pca"]["dims"], 6);
  EXPECT_EQ(b["clustering_input"], "pca6");
  EXPECT_EQ(b["pca"]["explained_variance_ratio"].size(), 6u);
  EXPECT_NEAR(b["pca"]["cumulative_ratio"].get<double>(), 1.0, 1e-6);
  EXPECT_EQ(b["audit_source"], "computed");
  EXPECT_EQ(b["audit"]["distinct_rows"], 30);
  EXPECT_EQ(b["degenerate"], false);
  EXPECT_EQ(b["label_informed"], false);
  // The label-informed representation is flagged.
  EXPECT_EQ(j["informed.true"]["label_informed"], true);
  bool warned = false;
  for (const auto& w : r.warnings) warned = warned || w.find("informed.true: label-informed") == 0;
  EXPECT_TRUE(warned);
  const auto& p = j["protocol"];
  EXPECT_EQ(p["format"], "gradlens-analyze");
  EXPECT_EQ(p["k"], 3);
  EXPECT_EQ(p["pca_dims"], 50);
  EXPECT_EQ(p["normalize"], "none");
  EXPECT_EQ(p["seed"], 5);
  EXPECT_EQ(p["kmeans"]["n_init"], 10);
  EXPECT_EQ(p["gmm"]["covariance"], "full");
  EXPECT_EQ(p["representations"], json({"blobs", "informed.true"}));

  const std::string csv = core::read_file(dir / "analysis.csv");
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 5);  // header + 2 x 2 rows
  EXPECT_EQ(csv.rfind("representation,method,input,dims,k,ari,nmi,ami,silhouette,accuracy,cos_sim,degenerate,"
                      "label_informed\n",
                      0),
            0u);
  EXPECT_NE(csv.find("blobs,kmeans,pca6,6,3,1,1,1,"), std::string::npos) << csv;
  EXPECT_NE(csv.find(",false,true\n"), std::string::npos) << csv;  // informed.true
  const std::string md = core::read_file(dir / "analysis.md");
  EXPECT_NE(md.find("| blobs | kmeans | pca6 | 1.0000 |"), std::string::npos) << md;
  EXPECT_NE(md.find("label-informed"), std::string::npos);
  EXPECT_NE(md.find("## Protocol"), std::string::npos);
}

TEST(Analyze, ReusesTheManifestAuditAndHonoursNoAudit) {
  test::TempDir dir;
  auto m = an::write_run(dir.path());
  m["audit"]["blobs"] = {{"name", "blobs"},       {"rows", 30},          {"cols", 6},
                         {"distinct_rows", 3},    {"zero_rows", 0},      {"rank", 3},
                         {"identity_checked", false}, {"ncm_accuracy", nullptr},
                         {"degenerate", true},    {"label_informed", false},
                         {"warnings", {"blobs: degenerate: only 3 distinct rows among 30 (<= 3 classes)"}}};
  an::write_manifest(dir.path(), m);
  AnalyzeConfig cfg;
  cfg.run_dir = dir.path();
  cfg.representations = {"blobs"};
  auto r = run_analyze(cfg);
  ASSERT_EQ(r.representations.size(), 1u);
  EXPECT_EQ(r.representations[0].audit_source, "manifest");
  EXPECT_TRUE(r.representations[0].degenerate);
  EXPECT_EQ(r.representations[0].audit.distinct_rows, 3);
  EXPECT_TRUE(std::isnan(r.representations[0].audit.ncm_accuracy));
  ASSERT_EQ(r.warnings.size(), 1u);
  EXPECT_NE(r.warnings[0].find("degenerate"), std::string::npos);
  auto j = an_test_json(dir.path());
  EXPECT_EQ(j.size(), 2u);
  EXPECT_EQ(j["blobs"]["degenerate"], true);
  EXPECT_EQ(j["blobs"]["audit"]["distinct_rows"], 3);
  EXPECT_TRUE(j["blobs"]["audit"]["ncm_accuracy"].is_null());
  EXPECT_NE(core::read_file(dir / "analysis.csv").find(",true,false\n"), std::string::npos);

  cfg.audit = false;
  cfg.representations = {};
  r = run_analyze(cfg);
  j = an_test_json(dir.path());
  EXPECT_TRUE(j["blobs"]["audit"].is_null());
  EXPECT_TRUE(j["blobs"]["degenerate"].is_null());
  EXPECT_EQ(j["blobs"]["audit_source"], "none");
  // Without the audit the manifest's uses_true_labels still flags the representation.
  ASSERT_EQ(r.warnings.size(), 1u);
  EXPECT_EQ(r.warnings[0].find("informed.true: label-informed"), 0u);
}

TEST(Analyze, AFailedGmmIsAWarningAndTheRestIsWritten) {
  test::TempDir dir;
  auto m = an::write_run(dir.path());
  // Two groups of identical rows: with reg_covar 0 the GMM covariance is 0.
  auto dup = torch::zeros({an::kRows, 2});
  dup.slice(0, 0, 15).fill_(1.0);
  core::write_npy(dir / "dup.npy", dup);
  m["representations"].push_back(an::entry("dup", 2));
  an::write_manifest(dir.path(), m);
  // A stale label file of an earlier analysis must not survive.
  afs::create_directories(dir / "clusters");
  core::write_npy(dir / "clusters/dup.gmm.npy", torch::zeros({an::kRows}, torch::kLong));
  AnalyzeConfig cfg;
  cfg.run_dir = dir.path();
  cfg.representations = {"dup"};
  cfg.options.k = 2;
  cfg.options.pca_dims = 0;
  cfg.options.reg_covar = 0;
  const auto r = run_analyze(cfg);
  bool warned = false;
  for (const auto& w : r.warnings) warned = warned || w.find("dup: gmm failed: ") == 0;
  EXPECT_TRUE(warned);
  const auto j = an_test_json(dir.path());
  EXPECT_NE(j["dup"]["gmm"]["error"].get<std::string>().find("reg_covar"), std::string::npos);
  EXPECT_TRUE(j["dup"]["gmm"]["ari"].is_null());
  EXPECT_TRUE(j["dup"]["gmm"]["labels"].is_null());
  EXPECT_FALSE(afs::exists(dir / "clusters/dup.gmm.npy"));
  EXPECT_TRUE(afs::exists(dir / "clusters/dup.kmeans.npy"));
  EXPECT_DOUBLE_EQ(j["dup"]["kmeans"]["silhouette"].get<double>(), 1.0);
}

TEST(Analyze, ComputesTheAuditWithTheHeadIdentityFromTheCheckpoint) {
  // A real extraction without audit: analyze must recognise layer-4 Grad-CAM
  // weights of a GAP + linear head as the head identity, from the checkpoint
  // the manifest names.
  torch::manual_seed(0);
  test::TempDir dir;
  auto model = extract::testing::tiny_resnet(4);
  models::save_checkpoint(dir / "m.ckpt", *model, "{}");
  const auto ds = extract::testing::tiny_dataset(24, 4);
  extract::ExtractConfig ec;
  ec.out = dir / "run";
  ec.options.representations = {"gradcam-weights", "logits"};
  ec.audit = false;
  ec.model_spec = (dir / "m.ckpt").string();
  extract::run_extract(*model, ds, ec);
  AnalyzeConfig cfg;
  cfg.run_dir = dir / "run";
  const auto r = run_analyze(cfg);
  ASSERT_EQ(r.representations.size(), 2u);
  const auto& g = r.representations[0];
  EXPECT_EQ(g.name, "gradcam-weights");
  EXPECT_EQ(g.audit_source, "computed");
  EXPECT_TRUE(g.audit.identity_checked);
  EXPECT_TRUE(g.audit.equals_head_identity);
  EXPECT_TRUE(g.degenerate);
  EXPECT_FALSE(r.representations[1].audit.identity_checked);  // logits: not applicable
  bool warned = false;
  for (const auto& w : r.warnings) warned = warned || w.find("head-weight identity") != std::string::npos;
  EXPECT_TRUE(warned);
  // A changed checkpoint (CRC mismatch) disables the identity check.
  models::save_checkpoint(dir / "m.ckpt", *extract::testing::tiny_resnet(4), "{\"other\": 1}");
  const auto r2 = run_analyze(cfg);
  EXPECT_FALSE(r2.representations[0].audit.identity_checked);
}

// --- bad inputs: each a one-line error naming the file or flag, and no
// analysis.json left behind.

struct AnBadCase {
  test::TempDir dir;
  AnalyzeConfig cfg;
  json manifest;
  AnBadCase() {
    manifest = an::write_run(dir.path());
    cfg.run_dir = dir.path();
  }
  void expect_error(const std::string& what) {
    try {
      run_analyze(cfg);
      ADD_FAILURE() << "expected an error containing " << what;
    } catch (const std::exception& e) {
      const std::string msg = error_message(e);
      EXPECT_NE(msg.find(what), std::string::npos) << msg;
      EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    }
    EXPECT_FALSE(afs::exists(dir / "analysis.json"));
  }
};

TEST(Analyze, NanRowNamesTheRepresentationAndTheRow) {
  AnBadCase c;
  auto x = an::blobs();
  x[17][3] = NAN;
  core::write_npy(c.dir / "blobs.npy", x);
  c.expect_error("representation 'blobs'");
  c.expect_error("row 17 ");
  EXPECT_FALSE(afs::exists(c.dir / "clusters"));  // nothing was written
}

TEST(Analyze, KLargerThanTheSamplesIsAUsageError) {
  AnBadCase c;
  c.cfg.options.k = 31;
  EXPECT_THROW(run_analyze(c.cfg), UsageError);
  c.expect_error("--k 31 is larger than the 30 samples");
}

TEST(Analyze, LabelCountMismatchNamesBothFiles) {
  AnBadCase c;
  core::write_npy(c.dir / "labels.npy", an::labels().slice(0, 0, 29));
  c.expect_error("blobs.npy: 30 rows but ");
  c.expect_error("labels.npy has 29 labels");
}

TEST(Analyze, TruncatedNpyIsNamed) {
  AnBadCase c;
  const auto p = c.dir / "informed.true.npy";
  afs::resize_file(p, afs::file_size(p) - 10);
  c.expect_error("informed.true.npy");
  c.expect_error("truncated");
  c.expect_error("re-run 'gradlens extract'");
}

TEST(Analyze, UnknownRepresentationListsTheAvailableOnes) {
  AnBadCase c;
  c.cfg.representations = {"blobs", "gradcam-weights"};
  EXPECT_THROW(run_analyze(c.cfg), UsageError);
  c.expect_error("--representations: 'gradcam-weights' is not in ");
  c.expect_error("available: blobs, informed.true");
}

TEST(Analyze, NonFloatZeroWidthAndMissingFilesAreNamed) {
  {
    AnBadCase c;
    core::write_npy(c.dir / "blobs.npy", torch::zeros({30, 6}, torch::kLong));
    c.expect_error("blobs.npy: holds <i8 data, not float");
  }
  {
    AnBadCase c;
    core::write_npy(c.dir / "blobs.npy", torch::zeros({30, 0}));
    c.expect_error("has zero features per row (shape [30, 0])");
  }
  {
    AnBadCase c;
    afs::remove(c.dir / "informed.true.npy");
    c.expect_error("informed.true.npy listed in manifest.json is missing");
  }
  {
    AnBadCase c;
    afs::remove(c.dir / "manifest.json");
    c.expect_error("no manifest.json");
  }
  {
    AnBadCase c;
    c.cfg.run_dir = c.dir / "nope";
    c.expect_error("no such directory");
  }
}

TEST(Analyze, AFailedRerunLeavesThePreviousAnalysisAsItWas) {
  AnBadCase c;
  run_analyze(c.cfg);
  const std::string before = core::read_file(c.dir / "analysis.json");
  auto x = an::blobs();
  x[2][0] = INFINITY;
  core::write_npy(c.dir / "blobs.npy", x);
  GRADLENS_EXPECT_THROWS_WITH(run_analyze(c.cfg), "row 2 ");
  EXPECT_EQ(core::read_file(c.dir / "analysis.json"), before);
}

}  // namespace
}  // namespace gradlens::pipeline
