#include "gradlens/core/cpu.h"

#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "support/support.h"

namespace gradlens::core {
namespace {

// The flags the kernel reports for the first CPU in /proc/cpuinfo.
std::set<std::string> proc_cpu_flags() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("flags", 0) != 0) continue;
    std::istringstream words(line.substr(line.find(':') + 1));
    std::set<std::string> flags;
    for (std::string w; words >> w;) flags.insert(w);
    return flags;
  }
  return {};
}

TEST(Cpu, FeaturesAgreeWithProcCpuinfo) {
#if !(defined(__x86_64__) && defined(__GNUC__))
  EXPECT_FALSE(cpu_has_avx512f());
  EXPECT_FALSE(cpu_has_avx2_fma());
#else
  const auto flags = proc_cpu_flags();
  if (flags.empty()) GTEST_SKIP() << "no /proc/cpuinfo flags line";
  EXPECT_EQ(cpu_has_avx512f(), flags.count("avx512f") == 1);
  EXPECT_EQ(cpu_has_avx2_fma(), flags.count("avx2") == 1 && flags.count("fma") == 1);
#endif
}

}  // namespace
}  // namespace gradlens::core
