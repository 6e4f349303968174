// Second derivatives through a user's TorchScript model (not a ResNet): the
// loss Hessian w.r.t. a convolution's and the head's parameters, by gradlens'
// Hessian-vector products through TorchScriptClassifier::forward, against
// Python torch's double backward (tests/python/hessian_torchscript_reference.py).
#include <torch/torch.h>

#include "gradlens/core/npy.h"
#include "gradlens/hessian/hvp.h"
#include "gradlens/hessian/loss_spectrum.h"
#include "gradlens/hessian/spectrum.h"
#include "gradlens/models/torchscript.h"
#include "support/support.h"

namespace gradlens::hessian {
namespace {

struct TorchScriptHessianRef {
  static constexpr const char* kScript = "tests/python/hessian_torchscript_reference.py";
  static constexpr const char* kModule = "torch";
};
class TorchScriptHessianPeer : public test::PythonReferenceTest<TorchScriptHessianRef> {};

TEST_F(TorchScriptHessianPeer, ExplicitHessianAndTopEigenvaluesMatchPythonTorch) {
  models::TorchScriptClassifier model((dir() / "model.pt").string(), torch::kCPU, {3, 12});
  const auto x = core::read_npy(dir() / "x.npy");
  const auto y = core::read_npy(dir() / "y.npy").to(torch::kInt64);
  const auto want = core::read_npy(dir() / "hessian.npy").to(torch::kFloat64);
  ASSERT_EQ(want.sizes(), torch::IntArrayRef({251, 251}));
  std::map<std::string, torch::Tensor> params;
  for (auto& [name, t] : model.named_parameters()) params[name] = t;
  const TensorList vars = {params.at("features.2.weight"), params.at("fc.weight"), params.at("fc.bias")};
  model.train(false);
  const auto loss = [&] { return torch::nn::functional::cross_entropy(model.forward(x), y); };
  const auto h = explicit_hessian(loss(), vars).to(torch::kFloat64);
  EXPECT_LT(test::rel_to_reference(h, want), 1e-4);
  // Not only the head: the convolution's block is non-zero and matches too.
  EXPECT_GT(want.slice(0, 0, 216).slice(1, 0, 216).abs().max().item<double>(), 1e-4);

  const auto grads = grads_with_graph(loss(), vars);
  EigenOptions eo;
  eo.k = 2;
  eo.max_iter = 500;
  eo.tol = 1e-7;
  const auto eig = top_eigenvalues([&](const TensorList& v) { return hvp_from_grads(grads, vars, v); }, vars, eo);
  const auto ev = std::get<0>(torch::linalg_eigh(want));
  const auto order = ev.abs().argsort(/*dim=*/0, /*descending=*/true);
  ASSERT_EQ(eig.eigenvalues.size(), 2u);
  for (int64_t i = 0; i < 2; ++i)
    EXPECT_NEAR(eig.eigenvalues[i], ev[order[i]].item<double>(), 1e-3 * std::abs(ev[order[0]].item<double>())) << i;
}

// loss_spectrum over batches (3 + 3 + 2 images, size-weighted) equals the
// Hessian of the mean loss over all 8: top eigenvalues against eigh of
// Python's explicit Hessian, Hutchinson's trace against its exact trace.
TEST_F(TorchScriptHessianPeer, LossSpectrumOverBatchesMatchesPythonTorch) {
  models::TorchScriptClassifier model((dir() / "model.pt").string(), torch::kCPU, {3, 12});
  const auto x = core::read_npy(dir() / "x.npy");
  const auto y = core::read_npy(dir() / "y.npy").to(torch::kInt64);
  const auto want = core::read_npy(dir() / "hessian.npy").to(torch::kFloat64);
  const auto ev = std::get<0>(torch::linalg_eigh(want));
  const auto order = ev.abs().argsort(/*dim=*/0, /*descending=*/true);
  LossSpectrumOptions o;
  o.param_prefixes = {"features.2.weight", "fc."};
  o.batch_size = 3;
  o.eigen.k = 2;
  o.eigen.max_iter = 500;
  o.eigen.tol = 1e-7;
  o.trace.max_iter = 2000;
  o.trace.min_iter = 2000;
  int64_t calls = 0;
  model.train(true);
  std::vector<bool> flags;
  for (auto& [name, t] : model.named_parameters()) flags.push_back(t.requires_grad());
  const auto s = loss_spectrum(model, 8, [&](int64_t b, int64_t e) {
    ++calls;
    return std::make_pair(x.slice(0, b, e), y.slice(0, b, e));
  }, o);
  EXPECT_EQ(s.samples, 8);
  EXPECT_EQ(s.dimension, 251);
  ASSERT_EQ(s.eigen.eigenvalues.size(), 2u);
  const double top = std::abs(ev[order[0]].item<double>());
  for (int64_t i = 0; i < 2; ++i) EXPECT_NEAR(s.eigen.eigenvalues[i], ev[order[i]].item<double>(), 1e-3 * top) << i;
  const double trace = want.trace().item<double>();
  ASSERT_EQ(s.trace.samples.size(), 2000u);
  EXPECT_GT(s.trace.std_error, 0.0);
  EXPECT_NEAR(s.trace.trace, trace, 4 * s.trace.std_error);
  EXPECT_EQ(calls % 3, 0);  // three batches per Hessian-vector product
  // The mode and every requires_grad flag are as before.
  EXPECT_TRUE(model.is_training());
  size_t i = 0;
  for (auto& [name, t] : model.named_parameters()) EXPECT_EQ(t.requires_grad(), flags[i++]) << name;

  o.param_prefixes = {"nothing"};
  EXPECT_THROW(loss_spectrum(model, 8, {}, o), c10::Error);
  o.param_prefixes.clear();
  // The variables are typed; their name is checked where it is parsed.
  EXPECT_THROW(parse_hessian_wrt("weights"), c10::Error);
}

}  // namespace
}  // namespace gradlens::hessian
