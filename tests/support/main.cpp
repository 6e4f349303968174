#include <gtest/gtest.h>
#include <torch/types.h>
#include <torch/utils.h>

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  // Tests run two executables at once under `ctest -j2`; one thread each.
  torch::set_num_threads(1);
  return RUN_ALL_TESTS();
}
