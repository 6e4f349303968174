// numpy loads what gradlens writes (byte-identical to np.save), and gradlens
// loads what numpy writes.
#include "gradlens/core/npy.h"
#include <torch/types.h>

#include "support/support.h"

namespace gradlens::core {
namespace {

using test::TempDir;

TEST(NpyPeer, NumpyAndGradlensReadEachOther) {
  if (!test::python_has("numpy")) GTEST_SKIP() << "python3-numpy is not installed";
  TempDir dir;
  write_npy(dir / "ours_f4.npy", torch::arange(12, torch::kFloat).reshape({3, 4}) / 7);
  write_npy(dir / "ours_f8.npy", torch::arange(10, torch::kDouble).reshape({2, 5}) / 3);
  write_npy(dir / "ours_i8.npy", torch::arange(-3, 3, torch::kLong) * static_cast<int64_t>(1000000000007));
  write_npy(dir / "ours_i4.npy", torch::arange(6, torch::kInt).reshape({1, 2, 3}));
  write_npy(dir / "ours_u1.npy", torch::arange(250, 256, torch::kLong).to(torch::kByte));
  write_npy(dir / "ours_empty.npy", torch::zeros({0, 4}));
  {
    const auto all = torch::arange(21, torch::kFloat).reshape({7, 3}) * 0.5;
    NpyWriter w(dir / "ours_streamed.npy", torch::kFloat, {3});
    w.append(all.slice(0, 0, 2));
    w.append(all.slice(0, 2, 7));
    w.close();
  }
  const auto r = test::run_command(std::string(test::kPython) + " " +
                                   test::source_path("tests/python/extract_npy_peer.py").string() +
                                   " " + dir.path().string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output.find("MISMATCH"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("DIFFERENT"), std::string::npos) << r.output;

  const auto f4 = read_npy(dir / "np_f4.npy");
  EXPECT_TRUE(torch::equal(f4, (torch::arange(20, torch::kFloat).reshape({4, 5}) - 3.25) / 9));
  const auto f8 = read_npy(dir / "np_f8.npy");
  EXPECT_TRUE(torch::allclose(f8, torch::linspace(-1, 1, 7, torch::kDouble), 0, 1e-15));
  const auto i8 = read_npy(dir / "np_i8.npy");
  EXPECT_TRUE(torch::equal(i8, torch::tensor(std::vector<int64_t>{1, -2, 3, int64_t{1} << 40}).reshape({2, 2})));
  EXPECT_TRUE(torch::equal(read_npy(dir / "np_i4.npy"), torch::tensor({7, -8, 9}, torch::kInt)));
  EXPECT_TRUE(torch::equal(read_npy(dir / "np_u1.npy"),
                           torch::tensor({0, 255, 1, 128}, torch::kInt).to(torch::kByte).reshape({2, 2})));
  const auto s = read_npy(dir / "np_scalar.npy");
  EXPECT_EQ(s.dim(), 0);
  EXPECT_EQ(s.item<double>(), 2.5);
  GRADLENS_EXPECT_THROWS_WITH(read_npy(dir / "np_fortran.npy"), "Fortran order");
  GRADLENS_EXPECT_THROWS_WITH(read_npy(dir / "np_bigendian.npy"), "'>f4'");
  GRADLENS_EXPECT_THROWS_WITH(read_npy(dir / "np_strings.npy"), "unsupported dtype '<U2'");
}

}  // namespace
}  // namespace gradlens::core
