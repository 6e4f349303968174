#include "gradlens/models/winograd.h"

#include <torch/torch.h>

#include <tuple>
#include <vector>

#include "gradlens/models/winograd_kernel.h"
#include "support/support.h"

namespace gradlens::models {
namespace {

using test::SeededTest;

class WinogradTest : public SeededTest {
 protected:
  void SetUp() override {
    SeededTest::SetUp();
    if (!detail::winograd_cpu_supported()) GTEST_SKIP() << "no AVX-512F on this CPU";
  }
};

torch::Tensor cl(const torch::Tensor& t) { return at::empty_like(t, at::MemoryFormat::ChannelsLast).copy_(t); }

// max |a - b| / max |b|
double rel_err(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kDouble) - b.to(torch::kDouble)).abs().max().item<double>() /
         b.to(torch::kDouble).abs().max().item<double>();
}

TEST_F(WinogradTest, EqualsConv2dOnManyShapes) {
  // (n, c, k, h, w): tile-aligned and ragged sizes (1..3 pixels past a
  // tile), maps smaller than a tile, more tiles than one cache block, and
  // channel counts with every register-blocking remainder (16, 32, 48, 64+).
  const std::vector<std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t>> shapes = {
      {3, 16, 16, 28, 28}, {2, 16, 32, 14, 14}, {2, 32, 16, 7, 7},  {5, 64, 64, 4, 4},
      {1, 16, 48, 5, 9},   {2, 48, 80, 6, 3},   {1, 128, 128, 1, 1}, {1, 16, 16, 2, 2},
      {7, 16, 16, 30, 31}, {1, 32, 112, 3, 10}, {40, 16, 16, 8, 8}};
  for (const auto& [n, c, k, h, w] : shapes) {
    const auto x = cl(torch::randn({n, c, h, w}));
    const auto wt = torch::randn({k, c, 3, 3});
    const auto b = torch::randn({k});
    const auto ref = torch::conv2d(x.to(torch::kDouble), wt.to(torch::kDouble), b.to(torch::kDouble), 1, 1);
    const auto y = winograd_conv3x3(x, wt, b);
    EXPECT_TRUE(y.is_contiguous(at::MemoryFormat::ChannelsLast));
    ASSERT_EQ(y.sizes(), ref.sizes());
    const double e = rel_err(y, ref);
    const double direct = rel_err(torch::conv2d(x, wt, b, 1, 1), ref);
    EXPECT_LT(e, 1e-5) << n << " " << c << " " << k << " " << h << "x" << w << " (direct float32: " << direct << ")";
    EXPECT_LT(rel_err(winograd_conv3x3(x, wt, {}), ref - b.to(torch::kDouble).reshape({1, -1, 1, 1})), 1e-5);
  }
}

TEST_F(WinogradTest, TransformedKernelsAreGgGtOfAHandKernel) {
  // One 16 x 16 kernel set, all zero but w[1][2] = [[1,2,3],[4,5,6],[7,8,9]]:
  // U = G g G^T, by hand for two positions (G's rows 0 and 3: [1/4, 0, 0]
  // and [1/24, 1/12, 1/6]).
  auto w = torch::zeros({16, 16, 3, 3});
  w[1][2] = torch::arange(1, 10, torch::kFloat).reshape({3, 3});
  const auto k = winograd_kernels(w);
  ASSERT_EQ(k.forward.sizes(), at::IntArrayRef({36, 16, 16}));
  ASSERT_EQ(k.input_grad.sizes(), at::IntArrayRef({36, 16, 16}));
  // Position (0, 0): g[0][0] / 16.
  EXPECT_FLOAT_EQ(k.forward[0][2][1].item<float>(), 1.0f / 16);
  // Position (3, 3): r^T g r with r = [1/24, 1/12, 1/6].
  const double r[3] = {1.0 / 24, 1.0 / 12, 1.0 / 6};
  double v = 0;
  for (int a = 0; a < 3; ++a)
    for (int b = 0; b < 3; ++b) v += r[a] * (3 * a + b + 1) * r[b];
  EXPECT_FLOAT_EQ(k.forward[3 * 6 + 3][2][1].item<float>(), static_cast<float>(v));
  // Position (5, 5): g[2][2]. Every other channel pair is zero.
  EXPECT_FLOAT_EQ(k.forward[35][2][1].item<float>(), 9.0f);
  EXPECT_EQ((k.forward != 0).sum().item<int64_t>(), (k.forward.select(1, 2).select(1, 1) != 0).sum().item<int64_t>());
  // The input-gradient kernels: channels swapped, kernel rotated, so
  // position (0, 0) takes g[2][2] / 16 and (5, 5) takes g[0][0].
  EXPECT_FLOAT_EQ(k.input_grad[0][1][2].item<float>(), 9.0f / 16);
  EXPECT_FLOAT_EQ(k.input_grad[35][1][2].item<float>(), 1.0f);
}

TEST_F(WinogradTest, GradientsEqualThoseOfConv2d) {
  const auto x0 = cl(torch::randn({3, 32, 9, 10}));
  const auto w0 = torch::randn({16, 32, 3, 3});
  const auto b0 = torch::randn({16});
  const auto gy = torch::randn({3, 16, 9, 10});
  auto grads = [&](bool winograd) {
    auto x = x0.clone().requires_grad_(true);
    auto w = w0.clone().requires_grad_(true);
    auto b = b0.clone().requires_grad_(true);
    auto y = winograd ? winograd_conv3x3(x, w, b) : torch::conv2d(x, w, b, 1, 1);
    return torch::autograd::grad({y}, {x, w, b}, {gy});
  };
  const auto ours = grads(true), ref = grads(false);
  EXPECT_LT(rel_err(ours[0], ref[0]), 1e-5);  // input gradient: a Winograd convolution
  EXPECT_LT(rel_err(ours[1], ref[1]), 1e-6);  // weight and bias: LibTorch's
  EXPECT_LT(rel_err(ours[2], ref[2]), 1e-6);
  // Only the input needs a gradient (extraction): no weight gradient.
  auto x = x0.clone().requires_grad_(true);
  auto gx = torch::autograd::grad({winograd_conv3x3(x, w0, b0)}, {x}, {gy});
  EXPECT_LT(rel_err(gx[0], ref[0]), 1e-5);
}

TEST_F(WinogradTest, DoubleBackpropIsThatOfConv2d) {
  // Under create_graph the backward builds LibTorch's convolution gradients,
  // so second derivatives (L_grad, Hessian-vector products) are exact:
  // d/dw of |dL/dx|^2 with L = <y, gy> against the same through conv2d.
  const auto x0 = cl(torch::randn({2, 16, 6, 7}));
  const auto w0 = torch::randn({16, 16, 3, 3});
  const auto gy = torch::randn({2, 16, 6, 7});
  auto second = [&](bool winograd) {
    auto x = x0.clone().requires_grad_(true);
    auto w = w0.clone().requires_grad_(true);
    auto y = winograd ? winograd_conv3x3(x, w, {}) : torch::conv2d(x, w, {}, 1, 1);
    auto gx = torch::autograd::grad({y}, {x}, {gy}, true, true)[0];
    return torch::autograd::grad({gx.pow(2).sum()}, {w})[0];
  };
  EXPECT_LT(rel_err(second(true), second(false)), 1e-5);
}

TEST_F(WinogradTest, AppliesOnlyWhereTheKernelDoes) {
  const auto x = cl(torch::randn({1, 16, 5, 5}));
  const auto w = torch::randn({32, 16, 3, 3});
  EXPECT_TRUE(winograd_applies(x, w, {1, 1}, {1, 1}, {1, 1}, 1));
  EXPECT_FALSE(winograd_applies(x.contiguous(), w, {1, 1}, {1, 1}, {1, 1}, 1));  // NCHW
  EXPECT_FALSE(winograd_applies(x, w, {2, 2}, {1, 1}, {1, 1}, 1));
  EXPECT_FALSE(winograd_applies(x, w, {1, 1}, {0, 0}, {1, 1}, 1));
  EXPECT_FALSE(winograd_applies(x, w, {1, 1}, {1, 1}, {2, 2}, 1));
  EXPECT_FALSE(winograd_applies(x, w, {1, 1}, {1, 1}, {1, 1}, 2));
  EXPECT_FALSE(winograd_applies(x.to(torch::kDouble), w.to(torch::kDouble), {1, 1}, {1, 1}, {1, 1}, 1));
  EXPECT_FALSE(winograd_applies(x, torch::randn({24, 16, 3, 3}), {1, 1}, {1, 1}, {1, 1}, 1));  // K % 16
  EXPECT_FALSE(winograd_applies(cl(torch::randn({1, 8, 5, 5})), torch::randn({16, 8, 3, 3}), {1, 1}, {1, 1},
                                {1, 1}, 1));  // C % 16
  EXPECT_FALSE(winograd_applies(x, torch::randn({32, 16, 5, 5}), {1, 1}, {1, 1}, {1, 1}, 1));
  // Misuse is an error naming the requirement, not a wrong result.
  try {
    winograd_conv3x3(x.contiguous(), w, {});
    FAIL() << "NCHW input accepted";
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what_without_backtrace()).find("channels-last"), std::string::npos);
  }
  EXPECT_THROW(winograd_conv3x3(x, w, torch::zeros({16})), c10::Error);  // bias of the wrong size
  auto other = winograd_kernels(torch::randn({16, 16, 3, 3}));
  EXPECT_THROW(winograd_conv3x3(x, w, {}, &other), c10::Error);  // kernels of another shape
}

TEST_F(WinogradTest, SplitOverThreadsGivesTheSameBits) {
  // Tiles are independent: any split of the blocks over threads writes the
  // same values.
  const auto x = cl(torch::randn({6, 16, 28, 28}));
  const auto w = torch::randn({16, 16, 3, 3});
  const int before = at::get_num_threads();
  at::set_num_threads(1);
  const auto one = winograd_conv3x3(x, w, {});
  at::set_num_threads(3);
  const auto three = winograd_conv3x3(x, w, {});
  at::set_num_threads(before);
  EXPECT_TRUE(torch::equal(one, three));
}

TEST_F(WinogradTest, KernelCacheTransformsAgainOnlyAfterAChange) {
  auto a = torch::randn({16, 16, 3, 3});
  auto s = torch::rand({16}) + 0.5;
  const auto x = cl(torch::randn({2, 16, 8, 8}));
  WinogradKernelCache cache;
  auto run = [&] {
    const auto w = a * s.reshape({-1, 1, 1, 1});  // recomputed per call, as a folded BN weight
    const auto& k = cache.get({a, s}, w);
    return winograd_conv3x3(x, w, {}, &k);
  };
  const auto y1 = run();
  const auto y2 = run();
  EXPECT_EQ(cache.transforms(), 1);
  EXPECT_TRUE(torch::equal(y1, y2));
  {
    torch::NoGradGuard g;
    s.mul_(2);  // in place: a new version
  }
  const auto y3 = run();
  EXPECT_EQ(cache.transforms(), 2);
  EXPECT_LT(rel_err(y3, 2 * y1), 1e-6);
  s = torch::rand({16});  // another tensor
  run();
  EXPECT_EQ(cache.transforms(), 3);
  {
    torch::NoGradGuard g;
    s.set_data(torch::rand({16}));  // the same tensor, new storage, same version
  }
  run();
  EXPECT_EQ(cache.transforms(), 4);
  const auto w = a * s.reshape({-1, 1, 1, 1});
  cache.get({a, s}, w, {1e-5});  // another scalar
  EXPECT_EQ(cache.transforms(), 5);
  cache.get({a, s}, w, {1e-5});
  EXPECT_EQ(cache.transforms(), 5);
  cache.clear();
  cache.get({a, s}, w, {1e-5});
  EXPECT_EQ(cache.transforms(), 6);
}

}  // namespace
}  // namespace gradlens::models
