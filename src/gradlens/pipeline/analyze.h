// `gradlens analyze RUN_DIR`: the seed's analysis (Cos_Sim, PCA, KMeans and
// GMM scored by ARI/NMI/AMI/silhouette/accuracy) of every representation of
// an extraction run directory, with the validity audit, written back into the
// run directory (see docs/formats.md, "analyze").
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "gradlens/analysis/representation_analysis.h"
#include "gradlens/core/progress.h"
#include "gradlens/extract/audit.h"

namespace gradlens::pipeline {

struct AnalyzeConfig {
  /// A run directory written by `gradlens extract` (holds manifest.json).
  std::filesystem::path run_dir;
  /// Representation names (e.g. "gradcam-weights", "input-grad.true"); empty
  /// = every float output listed in the manifest (labels and preds are not
  /// representations).
  std::vector<std::string> representations;
  analysis::AnalyzeOptions options;
  /// Report the validity audit: reuse manifest.json's when it has one for the
  /// representation, else compute it (extract::audit_representation; the
  /// Grad-CAM head identity only when the manifest names a gradlens
  /// checkpoint whose CRC-32 still matches, the layer is the model's last and
  /// the seed's inputs are in the run directory; otherwise that check is
  /// skipped).
  bool audit = true;
  extract::AuditOptions audit_options;
};

/// One analysed representation.
struct AnalyzedRepresentation {
  std::string name;  ///< e.g. "gradcam-weights.true"
  std::string file;  ///< its .npy file name inside the run directory
  analysis::RepresentationAnalysis analysis;
  /// "manifest" (reused), "computed", or "none" (audit off).
  std::string audit_source = "none";
  extract::AuditResult audit;  ///< meaningful unless audit_source == "none"
  bool degenerate = false;      ///< audit.degenerate (false when not audited)
  bool label_informed = false;  ///< computed with the true labels (from the manifest or the audit)
  std::vector<std::string> warnings;
};

struct AnalyzeResult {
  std::filesystem::path run_dir;
  int64_t n = 0;            ///< samples
  int64_t num_classes = 0;  ///< from the manifest (else max label + 1)
  int64_t k = 0;            ///< clusters used
  std::vector<std::string> class_names;
  std::vector<AnalyzedRepresentation> representations;
  /// Degenerate / label-informed representations, failed fits, in order; one
  /// line each, naming the representation.
  std::vector<std::string> warnings;
  std::filesystem::path json_path, csv_path, markdown_path;
  double seconds = 0.0;
};

/// The float representations listed in `run_dir`/manifest.json, in manifest
/// order. Throws c10::Error naming the directory when it is not a run
/// directory (no or unreadable manifest.json).
std::vector<std::string> list_representations(const std::filesystem::path& run_dir);

/// Analyses each representation of cfg.run_dir and writes, into it,
/// clusters/<name>.kmeans.npy and clusters/<name>.gmm.npy (int64 [N]),
/// pca2/<name>.npy (float32 [N, 2]), analysis.csv, analysis.md and, last,
/// analysis.json (so its presence means the analysis is complete). Every
/// file is written atomically; nothing is written (and a previous analysis
/// is left as it was) until every representation has been analysed, and the
/// previous analysis.json is removed before the new files replace the old.
/// Progress: stage "analyze" (4 steps per representation, note = name and
/// step).
///
/// Throws UsageError: a --representations name that is not in the manifest
/// (the message lists the available ones); --k larger than the number of
/// samples. Throws c10::Error naming the file or flag: no manifest.json; a
/// missing, truncated or non-float .npy; a representation that is not a 2-D
/// [N, D] matrix with D >= 1; a label count different from the rows; fewer
/// than 2 samples; NaN/Inf (names the representation and the first bad
/// row); an unwritable run directory; and what analyze_representation()
/// throws (prefixed with the representation's name).
AnalyzeResult run_analyze(const AnalyzeConfig& cfg, const core::ProgressFn& progress = {});

}  // namespace gradlens::pipeline
