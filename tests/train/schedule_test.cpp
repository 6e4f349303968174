#include "gradlens/train/schedule.h"

#include <cmath>

#include "support/support.h"

namespace gradlens::train {
namespace {

TEST(Schedule, OneCycleFollowsTorchsFormula) {
  ScheduleOptions o;
  o.kind = ScheduleKind::kOneCycle;
  o.lr = 0.1;
  const int64_t total = 100;
  // Starts at lr/25, peaks at lr at step pct_start*total-1 = 29, ends at
  // lr/25/1e4 at the last step.
  EXPECT_NEAR(lr_at(o, 0, total), 0.004, 1e-12);
  EXPECT_NEAR(lr_at(o, 29, total), 0.1, 1e-12);
  EXPECT_NEAR(lr_at(o, 99, total), 0.004 / 1e4, 1e-12);
  // Halfway up the cosine: (initial + max) / 2.
  EXPECT_NEAR(lr_at(o, 14, total), 0.004 + (0.1 - 0.004) / 2 * (1 - std::cos(M_PI * 14 / 29.0)),
              1e-12);
}

TEST(Schedule, CosineWithWarmup) {
  ScheduleOptions o;
  o.kind = ScheduleKind::kCosine;
  o.lr = 1.0;
  o.warmup_steps = 10;
  EXPECT_NEAR(lr_at(o, 0, 110), 0.1, 1e-12);
  EXPECT_NEAR(lr_at(o, 9, 110), 1.0, 1e-12);
  EXPECT_NEAR(lr_at(o, 10, 110), 1.0, 1e-12);
  EXPECT_NEAR(lr_at(o, 60, 110), 0.5, 1e-12);
  EXPECT_NEAR(lr_at(o, 110, 110), 0.0, 1e-12);
}

TEST(Schedule, StepDecay) {
  ScheduleOptions o;
  o.kind = ScheduleKind::kStep;
  o.lr = 0.1;
  o.step_size = 10;
  o.gamma = 0.5;
  EXPECT_NEAR(lr_at(o, 9, 100), 0.1, 1e-15);
  EXPECT_NEAR(lr_at(o, 10, 100), 0.05, 1e-15);
  EXPECT_NEAR(lr_at(o, 35, 100), 0.0125, 1e-15);
}

TEST(Schedule, BadOptionsNameTheFlag) {
  GRADLENS_EXPECT_THROWS_WITH(parse_schedule("linear"), "--schedule");
  ScheduleOptions o;
  o.lr = -1;
  GRADLENS_EXPECT_THROWS_WITH(lr_at(o, 0, 10), "--lr");
}

}  // namespace
}  // namespace gradlens::train
