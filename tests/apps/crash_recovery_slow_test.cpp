// kill -9 at several moments of train (also with a training record),
// extract, evaluate, attribute and label-errors leaves either nothing or a
// complete output under the final name, and the next run succeeds and
// removes what the killed one left.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <thread>

#include "gradlens/core/fs.h"
#include "gradlens/io/train_record.h"
#include "gradlens/models/model_file.h"
#include "support/support.h"

namespace gradlens {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> temporaries(const fs::path& dir);

/// Runs the gradlens binary with `args` (GRADLENS_CACHE=cache) and kills it
/// with SIGKILL after `delay_s`, or as soon as a temporary appears in
/// `watch` when it is given, unless it ended before. Returns its exit code
/// if it ended, -9 if it was killed.
int run_killed_after(const std::vector<std::string>& args, const fs::path& cache, double delay_s,
                     const fs::path& watch = {}) {
  const std::string bin = test::binary_path("gradlens").string();
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int null = ::open("/dev/null", O_WRONLY);
    ::dup2(null, 1);
    ::dup2(null, 2);
    ::setenv("GRADLENS_CACHE", cache.c_str(), 1);
    std::vector<char*> argv{const_cast<char*>(bin.c_str())};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(bin.c_str(), argv.data());
    ::_exit(127);
  }
  const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(delay_s);
  int status = 0;
  while (std::chrono::steady_clock::now() < until) {
    if (::waitpid(pid, &status, WNOHANG) == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    if (!watch.empty() && !temporaries(watch).empty()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(watch.empty() ? 10 : 2));
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, &status, 0);
  return WIFSIGNALED(status) ? -9 : WEXITSTATUS(status);
}

/// Names in `dir` that a run left as temporaries.
std::vector<std::string> temporaries(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    const auto n = e.path().filename().string();
    if (n.find(".partial-") != std::string::npos || n.find(".tmp-") != std::string::npos) out.push_back(n);
  }
  return out;
}

/// Moments to kill at, as fractions of an uninterrupted run's duration.
const std::vector<double> kFractions = {0.1, 0.3, 0.5, 0.7, 0.85, 0.95};

double seconds_of_run(const std::vector<std::string>& args, const fs::path& cache) {
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(run_killed_after(args, cache, 600), 0) << args[2];
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

class CrashRecoverySlow : public ::testing::Test {
 protected:
  void SetUp() override {
    if (test::fashion_mnist_dir().empty()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  }
  test::TempDir dir;
  fs::path cache() const { return dir / "cache"; }
  std::vector<std::string> train_args(const fs::path& out) const {
    return {"--threads", "1", "train", "--width", "4", "--epochs", "2", "--train-per-class", "30",
            "--test-per-class", "10", "--batch-size", "50", "--out", out.string()};
  }
};

TEST_F(CrashRecoverySlow, Train) {
  const double t = seconds_of_run(train_args(dir / "measure"), cache());
  int killed = 0;
  for (const double f : kFractions) {
    const auto out = dir / ("trained-" + std::to_string(static_cast<int>(f * 100)));
    const int code = run_killed_after(train_args(out), cache(), f * t);
    killed += code == -9;
    SCOPED_TRACE("killed after " + std::to_string(f * t) + " s, exit " + std::to_string(code));
    // Whatever is under the final name is a whole, intact checkpoint.
    if (fs::exists(out / "model.ckpt")) {
      EXPECT_EQ(models::inspect_model_file(out / "model.ckpt").kind, models::ModelFileKind::kCheckpoint);
    }
    // The rerun succeeds and leaves no temporary behind.
    ASSERT_EQ(run_killed_after(train_args(out), cache(), 600), 0);
    EXPECT_EQ(models::inspect_model_file(out / "model.ckpt").kind, models::ModelFileKind::kCheckpoint);
    const auto left = temporaries(out);
    EXPECT_TRUE(left.empty()) << left[0];
  }
  EXPECT_GT(killed, 2);
}

TEST_F(CrashRecoverySlow, ExtractAndEvaluate) {
  const auto model = dir / "m";
  ASSERT_EQ(run_killed_after(train_args(model), cache(), 600), 0);
  const std::string ckpt = (model / "model.ckpt").string();
  struct Case {
    std::vector<std::string> args;
    fs::path out;
    const char* done_marker;
  };
  const std::vector<Case> cases = {
      {{"--threads", "1", "extract", "--model", ckpt, "--per-class", "30", "--overwrite", "--out",
        (dir / "run").string()},
       dir / "run", "manifest.json"},
      {{"--threads", "1", "evaluate", "--models", ckpt, "--per-class", "10", "--out", (dir / "report").string()},
       dir / "report", "report.json"},
  };
  for (const auto& c : cases) {
    const double t = seconds_of_run(c.args, cache());
    ASSERT_TRUE(fs::exists(c.out / c.done_marker));
    int killed = 0;
    size_t leftovers = 0;
    // The timed kills below land wherever the machine's load puts them; this
    // one, as soon as the run starts writing (the directory holds no
    // temporary before it), makes sure one kill hit a run that was writing.
    ASSERT_TRUE(temporaries(dir.path()).empty());
    killed += run_killed_after(c.args, cache(), 600, dir.path()) == -9;
    leftovers = temporaries(dir.path()).size();
    EXPECT_TRUE(fs::exists(c.out / c.done_marker));
    for (const double f : kFractions) {
      const int code = run_killed_after(c.args, cache(), f * t);
      killed += code == -9;
      leftovers = std::max(leftovers, temporaries(dir.path()).size());
      SCOPED_TRACE(c.args[2] + " killed after " + std::to_string(f * t) + " s, exit " + std::to_string(code));
      // The previous complete output stays whole until the new one replaces it.
      EXPECT_TRUE(fs::exists(c.out / c.done_marker));
    }
    EXPECT_GT(killed, 2) << c.args[2];
    EXPECT_GT(leftovers, 0u) << c.args[2] << ": no kill left a temporary to clean up";
    // A clean run afterwards succeeds and removes the killed runs' leftovers.
    ASSERT_EQ(run_killed_after(c.args, cache(), 600), 0) << c.args[2];
    EXPECT_TRUE(fs::exists(c.out / c.done_marker));
    const auto left = temporaries(dir.path());
    EXPECT_TRUE(left.empty()) << c.args[2] << " left " << left[0];
  }
}

TEST_F(CrashRecoverySlow, TrainingRecordAttributeAndLabelErrors) {
  const auto record_args = [&](const fs::path& out) {
    auto a = train_args(out);
    a.insert(a.end(), {"--noisy-labels", "0.1", "--record-dynamics", "--save-every-epoch"});
    return a;
  };
  // A killed recording train leaves no record that looks complete (a
  // record.json only over a whole record); its rerun writes one.
  const double t = seconds_of_run(record_args(dir / "measure"), cache());
  for (const double f : {0.3, 0.6, 0.9}) {
    const auto out = dir / ("rec-" + std::to_string(static_cast<int>(f * 100)));
    const int code = run_killed_after(record_args(out), cache(), f * t);
    SCOPED_TRACE("train killed after " + std::to_string(f * t) + " s, exit " + std::to_string(code));
    // record.json is written last: where it exists, the record is whole.
    if (fs::exists(out / "record.json")) {
      EXPECT_NO_THROW(io::read_train_record(out));
    }
    ASSERT_EQ(run_killed_after(record_args(out), cache(), 600), 0);
    EXPECT_TRUE(fs::exists(out / "record.json"));
    const auto left = temporaries(out);
    EXPECT_TRUE(left.empty()) << left[0];
  }
  const std::string run = (dir / "measure").string();
  struct Case {
    std::vector<std::string> args;
    fs::path out;
  };
  const std::vector<Case> cases = {
      {{"--threads", "1", "attribute", "--run", run, "--train-per-class", "30", "--test-per-class", "10", "--queries",
        "all", "--top-k", "3", "--show", "2",
        "--store", (dir / "store-a").string(), "--overwrite", "--out", (dir / "attr").string()},
       dir / "attr"},
      {{"--threads", "1", "label-errors", "--run", run, "--train-per-class", "30", "--test-per-class", "10", "--show",
        "4", "--store", (dir / "store-l").string(),
        "--overwrite", "--out", (dir / "errors").string()},
       dir / "errors"},
  };
  for (const auto& c : cases) {
    const double tc = seconds_of_run(c.args, cache());
    ASSERT_TRUE(fs::exists(c.out / "summary.json")) << c.args[2];
    int killed = 0;
    for (const double f : kFractions) {
      // Each run starts from no store, so the kills also land while it is written.
      fs::remove_all(c.args[c.args.size() - 4]);
      const int code = run_killed_after(c.args, cache(), f * tc);
      killed += code == -9;
      SCOPED_TRACE(c.args[2] + " killed after " + std::to_string(f * tc) + " s, exit " + std::to_string(code));
      EXPECT_TRUE(fs::exists(c.out / "summary.json"));  // the previous output stays whole
    }
    EXPECT_GT(killed, 2) << c.args[2];
    // The rerun (over whatever store a killed run left) succeeds and cleans up.
    ASSERT_EQ(run_killed_after(c.args, cache(), 600), 0) << c.args[2];
    EXPECT_TRUE(fs::exists(c.out / "summary.json"));
    const auto left = temporaries(dir.path());
    EXPECT_TRUE(left.empty()) << c.args[2] << " left " << left[0];
  }
}

}  // namespace
}  // namespace gradlens
