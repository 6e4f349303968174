// TracIn-CP of gradlens against a hand-written sum over checkpoints in
// Debian's python3-torch (tests/python/tracin_reference.py): TorchScript
// checkpoints of a small CNN, per-sample head gradients from autograd.
#include "gradlens/influence/tracin.h"

#include <torch/torch.h>

#include "gradlens/core/npy.h"
#include "gradlens/data/dataset.h"
#include "gradlens/models/checkpoint.h"
#include "support/support.h"

namespace gradlens::influence {
namespace {

TEST(TracInPeer, EqualsPythonTorchsSumOverTorchScriptCheckpoints) {
  if (!test::python_has("torch")) GTEST_SKIP() << "python3-torch is not installed";
  test::TempDir dir;
  const auto py = test::run_command(std::string(test::kPython) + " " +
                                    test::source_path("tests/python/tracin_reference.py").string() + " " +
                                    dir.path().string());
  ASSERT_EQ(py.exit_code, 0) << py.output;
  auto dataset = [&](const std::string& stem) {
    data::Dataset ds;
    ds.images = core::read_npy(dir.path() / (stem + "_images.npy"));
    ds.labels = core::read_npy(dir.path() / (stem + "_labels.npy"));
    ds.class_names = {"a", "b", "c", "d"};
    ds.mean = {0.5};
    ds.std = {0.25};
    ds.name = stem;
    return ds;
  };
  const auto train = dataset("train"), queries = dataset("query");
  const auto eta_t = core::read_npy(dir.path() / "eta.npy");
  std::vector<double> eta(eta_t.data_ptr<double>(), eta_t.data_ptr<double>() + eta_t.numel());
  models::ResNetConfig fresh;
  fresh.in_channels = 1;
  fresh.num_classes = 4;
  std::vector<GradientFactors> tg, qg;
  for (int t = 0; t < 3; ++t) {
    auto m = models::open_classifier((dir.path() / ("ckpt" + std::to_string(t) + ".pt")).string(), torch::kCPU,
                                     fresh, 12);
    tg.push_back(dataset_gradient_factors(*m, train, train.labels, 7));
    qg.push_back(dataset_gradient_factors(*m, queries, queries.labels, 7));
  }
  TracInOptions o;
  o.keep_scores = true;
  o.top_k = 30;
  const auto r = tracin(tg, qg, eta, o);
  const auto expected = core::read_npy(dir.path() / "scores.npy");
  const double scale = expected.abs().max().item<double>();
  EXPECT_LT((r.scores - expected).abs().max().item<double>() / scale, 1e-5) << r.scores << expected;
  o.cosine = true;
  const auto rc = tracin(tg, qg, eta, o);
  EXPECT_LT((rc.scores - core::read_npy(dir.path() / "cosine.npy")).abs().max().item<double>(), 1e-5);
  const auto self = core::read_npy(dir.path() / "self.npy");
  EXPECT_LT(((self_influence(tg, eta) - self).abs() / self).max().item<double>(), 1e-5);
  // The rankings are the sorted scores.
  EXPECT_TRUE(torch::equal(r.proponents.select(1, 0), expected.argmax(1)));
  EXPECT_TRUE(torch::equal(r.opponents.select(1, 0), expected.argmin(1)));
}

}  // namespace
}  // namespace gradlens::influence
