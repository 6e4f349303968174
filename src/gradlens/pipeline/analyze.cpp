#include "gradlens/pipeline/analyze.h"

#include <filesystem>

#include "gradlens/core/check.h"
#include "gradlens/distributed/context.h"
#include "gradlens/io/analysis_files.h"
#include "gradlens/io/run_dir.h"

namespace gradlens::pipeline {

std::vector<std::string> list_representations(const std::filesystem::path& run_dir) {
  const auto run = io::read_run(run_dir);
  std::vector<std::string> names;
  for (const auto* e : run.manifest.float_entries()) names.push_back(e->name);
  return names;
}

AnalyzeResult run_analyze(const AnalyzeConfig& cfg, const RunContext& ctx) {
  GRADLENS_CHECK(!cfg.run_dir.empty(), "RUN_DIR: no run directory given");
  const auto dir = std::filesystem::absolute(cfg.run_dir).lexically_normal();
  const auto run = io::read_run(dir);
  analysis::RunAnalysisOptions opts;
  opts.representations = cfg.representations;
  opts.options = cfg.options;
  opts.options.seed = ctx.seed;
  opts.audit = cfg.audit;
  opts.audit_options = cfg.audit_options;
  // Under `gradlens launch` or torchrun: every rank reads the run, the
  // clustering runs on each rank's rows, rank 0 writes (docs/scaling.md).
  distributed::RankSetup ranks = distributed::join_ranks(c10::kCPU);
  AnalyzeResult res;
  static_cast<analysis::RunAnalysis&>(res) = analysis::analyze_run(run, opts, ctx.progress, ranks.comm);
  if (!ranks.comm.is_root()) return res;
  const auto paths = io::write_analysis(dir, res, opts, run.manifest);
  res.json_path = paths.json;
  res.csv_path = paths.csv;
  res.markdown_path = paths.markdown;
  return res;
}

}  // namespace gradlens::pipeline
