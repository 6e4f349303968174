#include "gradlens/core/timer.h"

#include <thread>

#include "support/support.h"

namespace gradlens::core {
namespace {

TEST(Stopwatch, CountsFromConstructionAndFromEachRestart) {
  Stopwatch w;
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const double first = w.restart();
  EXPECT_GE(first, 0.019);
  EXPECT_LT(first, 5.0);
  EXPECT_LT(w.seconds(), first);  // restarted
  std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_GE(w.seconds(), 0.009);
}

}  // namespace
}  // namespace gradlens::core
