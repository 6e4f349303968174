#include "gradlens/core/numpy_random.h"

#include "support/support.h"

namespace gradlens::core {
namespace {

TEST(NumpyRandomTest, MersenneTwisterStream) {
  // MT19937 seeded with 5489 (the reference seed): 10000th output 4123659995.
  NumpyRandomState r(5489);
  uint32_t v = 0;
  for (int i = 0; i < 10000; ++i) v = r.next_uint32();
  EXPECT_EQ(v, 4123659995u);
  NumpyRandomState a(3), b(3);
  EXPECT_EQ(a.permutation(50), b.permutation(50));
  GRADLENS_EXPECT_THROWS_WITH(NumpyRandomState(uint64_t{1} << 32), "2^32 - 1");
}

TEST(NumpyRandomTest, PermutationIsNumpysFisherYatesFromTheEnd) {
  // numpy.random.RandomState(0).permutation(10) = [2 8 4 9 1 6 7 3 0 5].
  EXPECT_EQ(NumpyRandomState(0).permutation(10), (std::vector<int64_t>{2, 8, 4, 9, 1, 6, 7, 3, 0, 5}));
}

}  // namespace
}  // namespace gradlens::core
