#include "gradlens/core/runtime.h"

#include <torch/types.h>
#include <torch/cuda.h>
#include <ATen/Parallel.h>

#include <cstdlib>
#include <cstring>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "gradlens/core/blas.h"
#include "support/support.h"

namespace gradlens::core {
namespace {

TEST(Runtime, ZeroThreadsMeansAllCores) {
  RuntimeOptions o;
  o.threads = 0;
  const auto info = init_runtime(o);
  EXPECT_EQ(info.threads, hardware_threads());
  EXPECT_EQ(torch::get_num_threads(), hardware_threads());
  torch::set_num_threads(1);
}

TEST(Runtime, ParallelForRunsOnSeveralThreads) {
  // at::parallel_for is a header template: it splits the range only in
  // translation units built with OpenMP (as this one and the library are).
  // Without -fopenmp it silently ran every loop on one thread.
  RuntimeOptions o;
  o.threads = 2;
  init_runtime(o);
  std::vector<int> seen(2, -1);
  at::parallel_for(0, 2, 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) seen[i] = at::get_thread_num();
  });
  EXPECT_EQ(seen, (std::vector<int>{0, 1}));
  EXPECT_TRUE(parallel_for_splits());  // the same, compiled into the library
  torch::set_num_threads(1);
  EXPECT_FALSE(parallel_for_splits());
}

#if defined(__GLIBC__)
TEST(Runtime, KeepFreedMemoryServesLargeBlocksFromTheUntrimmedHeap) {
  RuntimeOptions o;
  o.threads = 1;
  EXPECT_TRUE(init_runtime(o).keeps_freed_memory);
  // A 48 MiB block (over glibc's default 128 KiB mmap threshold and over
  // the largest threshold it accepts, 32 MiB) now comes from the heap rather
  // than its own mapping, and stays there once freed.
  const size_t bytes = size_t{48} << 20;
  const auto before = mallinfo2();
  void* p = std::malloc(bytes);
  ASSERT_NE(p, nullptr);
  std::memset(p, 1, bytes);
  const auto during = mallinfo2();
  std::free(p);
  const auto after = mallinfo2();
  EXPECT_EQ(during.hblkhd, before.hblkhd);  // no new mapping
  EXPECT_GE(during.uordblks, before.uordblks + bytes);
  EXPECT_GE(after.arena, during.uordblks);  // heap not trimmed
  EXPECT_GE(after.fordblks, bytes);         // the block is free for reuse
}
#endif

TEST(Runtime, NegativeThreadsIsAnError) {
  RuntimeOptions o;
  o.threads = -2;
  GRADLENS_EXPECT_THROWS_WITH(init_runtime(o), "--threads");
}

TEST(Runtime, NegativeBlasThreadsIsAnError) {
  RuntimeOptions o;
  o.blas_threads = -1;
  GRADLENS_EXPECT_THROWS_WITH(init_runtime(o), "--blas-threads");
}

TEST(Runtime, OpenBlasGetsOneThreadByDefaultAndFollowsThreadsOnZero) {
  if (blas_threads() == 0) GTEST_SKIP() << "the BLAS in this process is not OpenBLAS";
  // OpenBLAS starts with a pool of all cores, whatever LibTorch's count.
  ASSERT_TRUE(set_blas_threads(3));
  EXPECT_EQ(blas_threads(), 3);
  RuntimeOptions o;
  o.threads = 2;
  auto info = init_runtime(o);
  EXPECT_EQ(info.blas_threads, 1);
  EXPECT_EQ(blas_threads(), 1);
  o.blas_threads = 0;  // as many as --threads
  info = init_runtime(o);
  EXPECT_EQ(info.blas_threads, 2);
  EXPECT_EQ(blas_threads(), 2);
  o.blas_threads = 1;
  o.threads = 1;
  info = init_runtime(o);
  EXPECT_EQ(info.blas_threads, 1);
  {
    const BlasThreadLimit limit(2);
    EXPECT_EQ(blas_threads(), 2);
  }
  EXPECT_EQ(blas_threads(), 1);  // restored
  GRADLENS_EXPECT_THROWS_WITH(set_blas_threads(0), "threads must be >= 1");
}

TEST(Runtime, UnknownDeviceNamesTheFlag) {
  GRADLENS_EXPECT_THROWS_WITH(parse_device("tpu"), "--device");
}

TEST(Runtime, CudaWithoutCudaIsAClearError) {
  if (torch::cuda::is_available()) GTEST_SKIP() << "CUDA is available here";
  GRADLENS_EXPECT_THROWS_WITH(parse_device("cuda"), "CUDA is not available");
}

TEST(Runtime, SeedMakesRandomTensorsReproducible) {
  RuntimeOptions o;
  o.threads = 1;
  o.seed = 42;
  init_runtime(o);
  const auto a = torch::randn({8});
  init_runtime(o);
  const auto b = torch::randn({8});
  EXPECT_TRUE(torch::equal(a, b));
}

}  // namespace
}  // namespace gradlens::core
