#include "gradlens/core/npy.h"
#include <torch/types.h>

#include <fstream>

#include "gradlens/core/check.h"
#include "gradlens/core/fs.h"
#include "support/support.h"

namespace gradlens::core {
namespace {

using test::TempDir;

std::string bytes_of(const fs::path& p) { return read_file(p); }

void write_bytes(const fs::path& p, const std::string& s) {
  std::ofstream out(p, std::ios::binary);
  out.write(s.data(), static_cast<std::streamsize>(s.size()));
}

TEST(NpyHeader, MatchesNumpyLayoutByteForByte) {
  // np.save(np.zeros((3, 4), np.float32)) with numpy 1.24 starts with these
  // 128 bytes: dict + 20 growth spaces + padding to 64, header length 118.
  const std::string h = npy_header("<f4", {3, 4});
  ASSERT_EQ(h.size(), 128u);
  EXPECT_EQ(h.substr(0, 6), std::string("\x93NUMPY", 6));
  EXPECT_EQ(h[6], '\x01');
  EXPECT_EQ(h[7], '\x00');
  EXPECT_EQ(static_cast<unsigned char>(h[8]), 118);
  EXPECT_EQ(h[9], '\x00');
  EXPECT_EQ(h.substr(10, 59), "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }");
  EXPECT_EQ(h.back(), '\n');
  EXPECT_EQ(h.find_first_not_of(' ', 69), 127u);
  EXPECT_EQ(npy_header_dict("<i8", {5}), "{'descr': '<i8', 'fortran_order': False, 'shape': (5,), }");
  EXPECT_EQ(npy_header_dict("<f8", {}), "{'descr': '<f8', 'fortran_order': False, 'shape': (), }");
  for (int64_t n : std::vector<int64_t>{0, 1, 999999, 123456789012345678}) EXPECT_EQ(npy_header("<f4", {n, 17}).size() % 64, 0u);
}

TEST(Npy, RoundTripsEveryDtypeAndShape) {
  TempDir dir;
  const std::vector<torch::Tensor> cases = {
      torch::randn({5, 3}),
      torch::randn({2, 3, 4}, torch::kDouble),
      torch::arange(-4, 4, torch::kLong) * static_cast<int64_t>(1000000000007),
      torch::arange(6, torch::kInt).reshape({2, 3}),
      torch::arange(250, 256, torch::kLong).to(torch::kByte),
      torch::tensor(2.5, torch::kDouble),
      torch::zeros({0, 7}),
      torch::randn({4, 6}).t(),  // non-contiguous input is written in C order
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    const auto p = dir / ("t" + std::to_string(i) + ".npy");
    write_npy(p, cases[i]);
    const auto back = read_npy(p);
    EXPECT_EQ(back.scalar_type(), cases[i].scalar_type()) << i;
    EXPECT_EQ(back.sizes(), cases[i].sizes()) << i;
    EXPECT_TRUE(torch::equal(back, cases[i])) << i;
    EXPECT_EQ(read_npy_header(p).data_offset % 64, 0) << i;
  }
}

TEST(NpyWriter, StreamsBlocksAndPatchesTheRowCount) {
  TempDir dir;
  const auto p = dir / "s.npy";
  const auto all = torch::randn({10, 2, 3});
  {
    NpyWriter w(p, torch::kFloat, {2, 3});
    w.append(all.slice(0, 0, 4));
    EXPECT_FALSE(fs::exists(p));  // still under its temporary name
    w.append(all.slice(0, 4, 4));  // an empty block is fine
    w.append(all.slice(0, 4, 10).to(torch::kDouble));  // converted to float32
    EXPECT_EQ(w.rows(), 10);
    w.close();
    EXPECT_FALSE(w.is_open());
  }
  EXPECT_TRUE(torch::equal(read_npy(p), all));
  EXPECT_FALSE(fs::exists(dir / "s.npy.partial"));
  // The streamed file is identical to a whole-tensor write.
  write_npy(dir / "w.npy", all);
  EXPECT_EQ(bytes_of(p), bytes_of(dir / "w.npy"));
}

TEST(NpyWriter, LeavesNothingWhenNotClosed) {
  TempDir dir;
  {
    NpyWriter w(dir / "x.npy", torch::kFloat, {3});
    w.append(torch::ones({4, 3}));
  }
  EXPECT_TRUE(fs::is_empty(dir.path()));
}

TEST(NpyWriter, RejectsWrongRowShapeAndDoubleClose) {
  TempDir dir;
  NpyWriter w(dir / "x.npy", torch::kLong, {});
  w.append(torch::arange(3));
  GRADLENS_EXPECT_THROWS_WITH(w.append(torch::ones({2, 2})), "x.npy");
  w.close();
  EXPECT_TRUE(torch::equal(read_npy(dir / "x.npy"), torch::arange(3)));
  GRADLENS_EXPECT_THROWS_WITH(w.close(), "close() called twice");
  GRADLENS_EXPECT_THROWS_WITH(w.append(torch::arange(3)), "after close()");
}

TEST(NpyWriter, UnwritableDirectoryNamesThePath) {
  GRADLENS_EXPECT_THROWS_WITH(NpyWriter("/proc/gradlens-nope/x.npy", torch::kFloat, {2}),
                              "/proc/gradlens-nope/x.npy");
  GRADLENS_EXPECT_THROWS_WITH(NpyWriter("/tmp/x.npy", torch::kBool, {2}), "cannot write a Bool");
}

TEST(NpyRead, TruncatedFileSaysHowManyBytes) {
  TempDir dir;
  const auto p = dir / "t.npy";
  write_npy(p, torch::ones({4, 5}));
  std::string b = bytes_of(p);
  write_bytes(p, b.substr(0, b.size() - 7));
  GRADLENS_EXPECT_THROWS_WITH(read_npy(p), "truncated: expected 80 bytes of data for shape (4, 5) <f4, got 73");
  GRADLENS_EXPECT_THROWS_WITH(read_npy(p), p.string());
  write_bytes(p, b.substr(0, 40));
  GRADLENS_EXPECT_THROWS_WITH(read_npy(p), "truncated");
  write_bytes(p, b + "xyz");
  GRADLENS_EXPECT_THROWS_WITH(read_npy(p), "3 bytes of trailing data");
}

TEST(NpyRead, RejectsBadMagicVersionDtypeAndFortranOrder) {
  TempDir dir;
  const auto p = dir / "b.npy";
  write_bytes(p, "PK\x03\x04 this is a zip file, not npy");
  GRADLENS_EXPECT_THROWS_WITH(read_npy(p), "not a .npy file");
  std::string h = npy_header("<f4", {2});
  h[6] = '\x07';
  write_bytes(p, h + std::string(8, '\0'));
  GRADLENS_EXPECT_THROWS_WITH(read_npy(p), "unsupported .npy version 7.0");
  write_bytes(p, npy_header("<U5", {2}) + std::string(40, '\0'));
  GRADLENS_EXPECT_THROWS_WITH(read_npy(p), "unsupported dtype '<U5'");
  write_bytes(p, npy_header(">f4", {2}) + std::string(8, '\0'));
  GRADLENS_EXPECT_THROWS_WITH(read_npy(p), "unsupported dtype '>f4'");
  std::string f = npy_header("<f4", {2, 2});
  f.replace(f.find("False"), 5, "True ");
  write_bytes(p, f + std::string(16, '\0'));
  GRADLENS_EXPECT_THROWS_WITH(read_npy(p), "Fortran order is not supported");
  GRADLENS_EXPECT_THROWS_WITH(read_npy(dir / "missing.npy"), "missing.npy");
}

// Found by npy_fuzz: a dimension too long for int64 escaped as
// std::out_of_range, and a product of dimensions could overflow.
TEST(NpyRead, AbsurdShapesAreCorruptNotAnOverflow) {
  TempDir dir;
  const auto p = dir / "s.npy";
  std::string h = npy_header("<i4", {1, 2});
  h.replace(h.find("(1, 2)"), 6, "(1, 2, 00008888888888888800009558069)");
  write_bytes(p, h + std::string(8, '\0'));
  GRADLENS_EXPECT_THROWS_WITH(read_npy(p), "absurdly large");
  write_bytes(p, npy_header("<f8", {100000000000000, 100000000000000}) + std::string(8, '\0'));
  GRADLENS_EXPECT_THROWS_WITH(read_npy(p), "more bytes than any file can hold");
}

TEST(NpyRead, MatrixRequiresTwoDimensionalFloat) {
  TempDir dir;
  write_npy(dir / "i.npy", torch::ones({3, 2}, torch::kLong));
  GRADLENS_EXPECT_THROWS_WITH(read_npy_matrix(dir / "i.npy"), "not float");
  write_npy(dir / "v.npy", torch::ones({3}));
  GRADLENS_EXPECT_THROWS_WITH(read_npy_matrix(dir / "v.npy"), "is 1-D");
  write_npy(dir / "m.npy", torch::ones({3, 2}, torch::kDouble));
  EXPECT_EQ(read_npy_matrix(dir / "m.npy").scalar_type(), torch::kDouble);
}

}  // namespace
}  // namespace gradlens::core
