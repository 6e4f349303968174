// The files of `gradlens analyze` inside a run directory: analysis.json,
// analysis.csv, analysis.md, clusters/<name>.{kmeans,gmm}.npy and
// pca2/<name>.npy (docs/formats.md, "analyze").
#pragma once

#include <filesystem>

#include "gradlens/analysis/run_analysis.h"
#include "gradlens/extract/run_manifest.h"

namespace gradlens::io {

struct AnalysisPaths {
  std::filesystem::path json, csv, markdown;
};

/// Writes `result` (an analysis of the run stored in `dir`, made with
/// `opts`) into `dir`. Every file is written atomically; the previous
/// analysis.json is removed first and the new one written last, so its
/// presence means the analysis is complete. Throws c10::Error naming RUN_DIR
/// when `dir` is not writable.
AnalysisPaths write_analysis(const std::filesystem::path& dir, const analysis::RunAnalysis& result,
                             const analysis::RunAnalysisOptions& opts, const extract::RunManifest& manifest);

}  // namespace gradlens::io
