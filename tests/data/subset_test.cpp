#include "gradlens/data/subset.h"

#include <torch/types.h>

#include <set>

#include "support/support.h"

namespace gradlens::data {
namespace {

// Labels: class 0 at 0,3,6,9; class 1 at 1,4,7; class 2 at 2,5,8,10,11.
torch::Tensor labels12() { return torch::tensor({0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 2, 2}, torch::kInt64); }

TEST(Subset, FirstTakesFileOrder) {
  const auto idx = per_class_indices(labels12(), 2, SubsetMode::kFirst);
  EXPECT_TRUE(torch::equal(idx, torch::tensor({0, 1, 2, 3, 4, 5}, torch::kInt64)));
  const auto idx3 = per_class_indices(labels12(), 3, SubsetMode::kFirst);
  EXPECT_TRUE(torch::equal(idx3, torch::tensor({0, 1, 2, 3, 4, 5, 6, 7, 8}, torch::kInt64)));
}

TEST(Subset, RandomIsSeededBalancedAndWithoutRepeats) {
  const auto l = labels12();
  const auto a = per_class_indices(l, 3, SubsetMode::kRandom, 42);
  const auto b = per_class_indices(l, 3, SubsetMode::kRandom, 42);
  EXPECT_TRUE(torch::equal(a, b));
  ASSERT_EQ(a.numel(), 9);
  EXPECT_TRUE(torch::equal(torch::bincount(l.index_select(0, a)), torch::tensor({3, 3, 3}, torch::kInt64)));
  const auto acc = a.accessor<int64_t, 1>();
  std::set<int64_t> uniq;
  for (int64_t i = 0; i < a.numel(); ++i) {
    uniq.insert(acc[i]);
    if (i > 0) {
      EXPECT_LT(acc[i - 1], acc[i]);  // ascending
    }
  }
  EXPECT_EQ(uniq.size(), 9u);
  // Over many seeds every sample of class 2 (5 samples) gets picked.
  std::set<int64_t> seen;
  bool differs = false;
  for (uint64_t seed = 0; seed < 50; ++seed) {
    const auto s = per_class_indices(l, 2, SubsetMode::kRandom, seed);
    differs = differs || !torch::equal(s, per_class_indices(l, 2, SubsetMode::kRandom, 0));
    for (int64_t i = 0; i < s.numel(); ++i)
      if (l[s[i].item<int64_t>()].item<int64_t>() == 2) seen.insert(s[i].item<int64_t>());
  }
  EXPECT_TRUE(differs);
  EXPECT_EQ(seen, (std::set<int64_t>{2, 5, 8, 10, 11}));
}

TEST(Subset, TooFewSamplesNamesClassAndCount) {
  GRADLENS_EXPECT_THROWS_WITH(per_class_indices(labels12(), 4, SubsetMode::kFirst, 0, -1,
                                                {"zero", "one", "two"}),
                              "class 'one' (label 1) has only 3 samples but 4 per class");
  // A class with no sample at all (num_classes given).
  GRADLENS_EXPECT_THROWS_WITH(per_class_indices(labels12(), 1, SubsetMode::kFirst, 0, 4),
                              "class label 3 has only 0 samples");
  GRADLENS_EXPECT_THROWS_WITH(per_class_indices(labels12(), 0), ">= 1");
  GRADLENS_EXPECT_THROWS_WITH(per_class_indices(torch::tensor({0, -1}, torch::kInt64), 1),
                              "label -1 at index 1 is negative");
}

TEST(Subset, BalancedSubsetOfDataset) {
  Dataset ds;
  ds.labels = labels12();
  ds.images = torch::arange(12, torch::kUInt8).view({12, 1, 1, 1});
  ds.class_names = {"a", "b", "c"};
  ds.mean = {0};
  ds.std = {1};
  const Dataset s = balanced_subset(ds, 1);
  EXPECT_TRUE(torch::equal(s.images.flatten(), torch::tensor({0, 1, 2}, torch::kUInt8)));
  EXPECT_EQ(parse_subset_mode("random"), SubsetMode::kRandom);
  GRADLENS_EXPECT_THROWS_WITH(parse_subset_mode("some", "--pick"), "--pick 'some' is not a subset mode");
}

TEST(Subset, StratifiedSplitKeepsClassProportions) {
  // 40 of class 0, 20 of class 1, 1 of class 2.
  std::vector<int64_t> v(40, 0);
  v.insert(v.end(), 20, 1);
  v.push_back(2);
  const auto l = torch::tensor(v, torch::kInt64);
  const auto s = stratified_split(l, 0.25, 7);
  EXPECT_EQ(s.test.numel(), 10 + 5);
  EXPECT_EQ(s.train.numel(), 30 + 15 + 1);
  EXPECT_TRUE(torch::equal(torch::bincount(l.index_select(0, s.test), {}, 3),
                           torch::tensor({10, 5, 0}, torch::kInt64)));
  // Disjoint and covering.
  const auto all = std::get<0>(torch::sort(torch::cat({s.train, s.test})));
  EXPECT_TRUE(torch::equal(all, torch::arange(61, torch::kInt64)));
  // Deterministic in the seed, different across seeds.
  EXPECT_TRUE(torch::equal(stratified_split(l, 0.25, 7).test, s.test));
  EXPECT_FALSE(torch::equal(stratified_split(l, 0.25, 8).test, s.test));
  // Tiny classes keep one sample on each side.
  const auto t = stratified_split(torch::tensor({0, 0, 1, 1}, torch::kInt64), 0.01, 0);
  EXPECT_EQ(t.test.numel(), 2);
  GRADLENS_EXPECT_THROWS_WITH(stratified_split(l, 1.0), "test fraction must be in (0, 1)");
  GRADLENS_EXPECT_THROWS_WITH(stratified_split(l, 0.0), "got 0");
}

TEST(Subset, TrainTestSplitDatasets) {
  Dataset ds;
  ds.labels = torch::tensor({0, 1, 0, 1, 0, 1, 0, 1}, torch::kInt64);
  ds.images = torch::arange(8, torch::kUInt8).view({8, 1, 1, 1});
  ds.class_names = {"a", "b"};
  ds.mean = {0};
  ds.std = {1};
  ds.name = "toy";
  const auto [tr, te] = train_test_split(ds, 0.5, 3);
  EXPECT_EQ(tr.size(), 4);
  EXPECT_EQ(te.size(), 4);
  EXPECT_EQ(tr.name, "toy-train");
  EXPECT_EQ(te.name, "toy-test");
  EXPECT_TRUE(torch::equal(class_counts(te), torch::tensor({2, 2}, torch::kInt64)));
}

}  // namespace
}  // namespace gradlens::data
