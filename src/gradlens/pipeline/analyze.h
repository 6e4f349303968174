// `gradlens analyze RUN_DIR`: io::read_run, analysis::analyze_run (Cos_Sim,
// PCA, KMeans and GMM scored by ARI/NMI/AMI/silhouette/accuracy, with the
// validity audit) and io::write_analysis into the run directory (see
// docs/formats.md, "analyze").
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "gradlens/analysis/run_analysis.h"
#include "gradlens/extract/audit.h"
#include "gradlens/pipeline/run_context.h"

namespace gradlens::pipeline {

struct AnalyzeConfig {
  /// A run directory written by `gradlens extract` (holds manifest.json).
  std::filesystem::path run_dir;
  /// Representation names (e.g. "gradcam-weights", "input-grad.true"); empty
  /// = every float output listed in the manifest (labels and preds are not
  /// representations).
  std::vector<std::string> representations;
  /// options.seed is set from RunContext::seed by run_analyze().
  analysis::AnalyzeOptions options;
  /// Report the validity audit (see analysis::RunAnalysisOptions::audit).
  bool audit = true;
  extract::AuditOptions audit_options;
};

using AnalyzedRepresentation = analysis::AnalyzedRepresentation;

/// analysis::analyze_run()'s result and where `gradlens analyze` wrote it.
struct AnalyzeResult : analysis::RunAnalysis {
  std::filesystem::path json_path, csv_path, markdown_path;
};

/// The float representations listed in `run_dir`/manifest.json, in manifest
/// order. Throws c10::Error naming the directory when it is not a run
/// directory (no or unreadable manifest.json).
std::vector<std::string> list_representations(const std::filesystem::path& run_dir);

/// Reads cfg.run_dir, analyses each representation and writes, into it,
/// clusters/<name>.kmeans.npy and clusters/<name>.gmm.npy (int64 [N]),
/// pca2/<name>.npy (float32 [N, 2]), analysis.csv, analysis.md and, last,
/// analysis.json (so its presence means the analysis is complete). Every
/// file is written atomically; nothing is written (and a previous analysis
/// is left as it was) until every representation has been analysed, and the
/// previous analysis.json is removed before the new files replace the old.
/// Progress: stage "analyze" (4 steps per representation, note = name and
/// step). Under `gradlens launch` or torchrun (RANK, WORLD_SIZE, ...) every
/// rank analyses the run with its clustering sharded over the ranks
/// (analysis::analyze_run) and only rank 0 writes; the others return the
/// result with empty paths.
///
/// Throws UsageError: a --representations name that is not in the manifest
/// (the message lists the available ones); --k larger than the number of
/// samples. Throws c10::Error naming the file or flag: no manifest.json; a
/// missing, truncated or non-float .npy; a representation that is not a 2-D
/// [N, D] matrix with D >= 1; a label count different from the rows; fewer
/// than 2 samples; NaN/Inf (names the representation and the first bad
/// row); an unwritable run directory; and what analyze_representation()
/// throws (prefixed with the representation's name).
/// ctx.seed is the clustering's random_state (it replaces cfg.options.seed);
/// the analysis runs on the CPU whatever ctx.device.
AnalyzeResult run_analyze(const AnalyzeConfig& cfg, const RunContext& ctx = {});

}  // namespace gradlens::pipeline
