// Cross-checks every saliency metric against the numpy port of the MIT
// reference code in tests/python/saliency_reference.py, on random maps. The
// sampled AUCs hand their negatives to Python so both score the same points.
#include "gradlens/saliency/metrics.h"

#include "support/support.h"

#include <torch/torch.h>

#include <fstream>
#include <map>
#include <sstream>

namespace gradlens::saliency {
namespace {

using test::kPython;
using test::run_command;
using test::source_path;
using test::TempDir;

void write_raw(const torch::Tensor& t, const test::fs::path& path, torch::ScalarType dtype) {
  const torch::Tensor c = t.to(torch::kCPU, dtype).contiguous();
  std::ofstream out(path, std::ios::binary);
  out.write(static_cast<const char*>(c.data_ptr()), static_cast<std::streamsize>(c.nbytes()));
  ASSERT_TRUE(out.good()) << path;
}

/// Parses "name v0 v1 ..." lines into name -> [N] float64 tensor.
std::map<std::string, torch::Tensor> parse(const std::string& output) {
  std::map<std::string, torch::Tensor> rows;
  std::istringstream lines(output);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream fields(line);
    std::string name;
    fields >> name;
    std::vector<double> values;
    double v = 0;
    while (fields >> v) values.push_back(v);
    rows[name] = torch::tensor(values, torch::kFloat64);
  }
  return rows;
}

class SaliencyMetricsPeer : public test::SeededTest {};

TEST_F(SaliencyMetricsPeer, AllMetricsMatchNumpyReference) {
  if (!test::python_has("numpy")) GTEST_SKIP() << "numpy missing for " << kPython;
  const int64_t n = 8, h = 13, w = 17;
  // Continuous maps; images 4-5 quantised to tenths so that ties, exact
  // thresholds (0.3, 0.6, ...) and the reference's tie handling are exercised.
  torch::Tensor pred = torch::rand({n, h, w}, torch::kFloat64);
  torch::Tensor gt = torch::rand({n, h, w}, torch::kFloat64).pow(3);
  pred.slice(0, 4, 6).mul_(10).round_().div_(10);
  gt.slice(0, 4, 6).mul_(10).round_().div_(10);
  pred[6].fill_(0.5);  // constant prediction: documented degenerate values
  gt[7].zero_();       // all-zero target
  torch::Tensor fix = (torch::rand({n, h, w}) < 0.08).to(torch::kFloat64);
  fix.select(1, 0).select(1, 0).fill_(1.0);  // at least one fixation per image
  fix[3].view({-1}).slice(0, 0, 150).fill_(2.0);  // dense; counts > 1 mean fixated
  torch::Tensor other = (torch::rand({n, h, w}) < 0.06).to(torch::kFloat64);
  other.select(1, h - 1).select(1, w - 1).fill_(1.0);

  SampledAucOptions opt;
  opt.n_splits = 25;
  opt.seed = 1234;
  opt.keep_negatives = true;
  const std::map<std::string, MetricResult> ours{
      {"cc", cc(pred, gt)},
      {"kld", kld(pred, gt)},
      {"sim", sim(pred, gt)},
      {"nss", nss(pred, fix)},
      {"auc_judd", auc_judd(pred, fix)}};
  const SampledAucResult borji = auc_borji(pred, fix, opt);
  const SampledAucResult shuffled = auc_shuffled(pred, fix, other, opt);

  TempDir dir;
  write_raw(pred, dir / "pred.f64", torch::kFloat64);
  write_raw(gt, dir / "gt.f64", torch::kFloat64);
  write_raw(fix, dir / "fix.f64", torch::kFloat64);
  write_raw(other, dir / "other.f64", torch::kFloat64);
  ASSERT_EQ(borji.negatives.size(), static_cast<size_t>(n));
  ASSERT_EQ(shuffled.negatives.size(), static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    write_raw(borji.negatives[i], dir / ("borji_neg_" + std::to_string(i) + ".i64"),
              torch::kInt64);
    write_raw(shuffled.negatives[i], dir / ("sauc_neg_" + std::to_string(i) + ".i64"),
              torch::kInt64);
  }
  std::ostringstream cmd;
  cmd << kPython << " " << source_path("tests/python/saliency_reference.py") << " "
      << dir.path() << " " << n << " " << h << " " << w << " " << opt.n_splits << " "
      << opt.step_size;
  const test::CommandResult run = run_command(cmd.str());
  ASSERT_EQ(run.exit_code, 0) << run.output;
  const auto theirs = parse(run.out);

  auto compare = [&](const std::string& name, const MetricResult& r) {
    ASSERT_EQ(theirs.count(name), 1u) << run.output;
    const torch::Tensor ref = theirs.at(name);
    ASSERT_EQ(ref.sizes(), r.values.sizes()) << name;
    const double dev = test::max_abs_diff(r.values, ref);
    EXPECT_LT(dev, 1e-6) << name << ": ours " << r.values << " numpy " << ref;
    RecordProperty("max_abs_dev_" + name, std::to_string(dev));
    std::cout << "[ saliency ] " << name << " max |ours - numpy| = " << dev << "\n";
  };
  for (const auto& [name, r] : ours) compare(name, r);
  compare("auc_borji", borji);
  compare("auc_shuffled", shuffled);

  // The inputs did reach the degenerate paths.
  EXPECT_TRUE(ours.at("cc").degenerate[6].item<bool>());
  EXPECT_TRUE(ours.at("kld").degenerate[7].item<bool>());
  EXPECT_EQ(borji.values[6].item<double>(), 0.5);
}

}  // namespace
}  // namespace gradlens::saliency
