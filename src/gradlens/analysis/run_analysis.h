// The seed's analysis of every representation of an extraction run (held in
// memory or stored in a run directory): Cos_Sim, PCA, KMeans and GMM scored
// by ARI/NMI/AMI/silhouette/accuracy, with the validity audit. Nothing is
// written: io::write_analysis() stores a result.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "gradlens/analysis/representation_analysis.h"
#include "gradlens/core/progress.h"
#include "gradlens/extract/audit.h"
#include "gradlens/extract/run.h"

namespace gradlens::analysis {

struct RunAnalysisOptions {
  /// Representation names (e.g. "gradcam-weights", "input-grad.true"); empty
  /// = every float output listed in the manifest (labels and preds are not
  /// representations).
  std::vector<std::string> representations;
  AnalyzeOptions options;
  /// Report the validity audit: reuse the manifest's when it has one for the
  /// representation, else compute it (extract::audit_representation; the
  /// Grad-CAM head identity only when the manifest names a gradlens
  /// checkpoint whose CRC-32 still matches, the layer is the model's last and
  /// the seed's inputs are in the run; otherwise that check is skipped).
  bool audit = true;
  extract::AuditOptions audit_options;
};

/// One analysed representation.
struct AnalyzedRepresentation {
  std::string name;  ///< e.g. "gradcam-weights.true"
  std::string file;  ///< its .npy file name inside the run directory
  RepresentationAnalysis analysis;
  /// "manifest" (reused), "computed", or "none" (audit off).
  std::string audit_source = "none";
  extract::AuditResult audit;  ///< meaningful unless audit_source == "none"
  bool degenerate = false;      ///< audit.degenerate (false when not audited)
  bool label_informed = false;  ///< computed with the true labels (from the manifest or the audit)
  std::vector<std::string> warnings;
};

struct RunAnalysis {
  std::filesystem::path run_dir;  ///< the analysed run's directory (empty for a run in memory)
  int64_t n = 0;                  ///< samples
  int64_t num_classes = 0;        ///< from the manifest (else max label + 1)
  int64_t k = 0;                  ///< clusters used
  std::vector<std::string> class_names;
  std::vector<AnalyzedRepresentation> representations;
  /// Degenerate / label-informed representations, failed fits, in order; one
  /// line each, naming the representation.
  std::vector<std::string> warnings;
  double seconds = 0.0;
};

/// Analyses each selected representation of `run`, loading one at a time.
/// Progress: stage "analyze" (4 steps per representation, note = name and
/// step).
///
/// Throws UsageError: a representation name the manifest does not list (the
/// message lists the available ones); options.k < 0 or larger than the number
/// of samples. Throws c10::Error naming the file or representation: fewer
/// than 2 samples; a negative label; what ExtractRun::check_outputs() checks for
/// stored outputs; NaN/Inf (naming the representation and the first bad
/// row); and what analyze_representation() throws (prefixed with the
/// representation's name).
///
/// Over several processes (`comm`), every rank passes the same run and gets
/// the same result; each representation's clustering runs sharded
/// (analyze_representation()).
RunAnalysis analyze_run(const extract::ExtractRun& run, const RunAnalysisOptions& opts,
                        const core::ProgressFn& progress = {},
                        core::Collectives& comm = core::single_process());

}  // namespace gradlens::analysis
