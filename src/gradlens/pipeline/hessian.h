// `gradlens hessian`: top eigenvalues and trace of the loss Hessian of a
// trained classifier, with respect to its parameters or its input.
#pragma once

#include <string>
#include <vector>

#include "gradlens/hessian/loss_spectrum.h"
#include "gradlens/hessian/spectrum.h"
#include "gradlens/models/classifier.h"
#include "gradlens/pipeline/run_context.h"
#include "gradlens/pipeline/train.h"

namespace gradlens::pipeline {

struct HessianConfig {
  DataConfig data;
  /// A gradlens checkpoint, a TorchScript file, or "default" (the cached
  /// default model, trained first if absent).
  std::string model = "default";
  /// The parameters (all or `param_prefixes`) or the input (one batch's).
  hessian::HessianWrt wrt = hessian::HessianWrt::kParams;
  /// Parameter names starting with one of these (empty: all parameters).
  std::vector<std::string> param_prefixes;
  /// Samples per class of the test split used (0: the whole split).
  int64_t per_class = 20;
  int64_t batch_size = 100;
  /// Use only the first batch (PyHessian's common "one batch" mode); else the
  /// whole selection, each batch weighted by its size.
  bool one_batch = false;
  /// Their `seed` fields are set from RunContext::seed (eigen) and
  /// RunContext::seed + 1 (trace) by run_hessian().
  hessian::EigenOptions eigen;
  hessian::TraceOptions trace;
  bool compute_trace = true;
  /// Also report the spectrum for each class's samples alone.
  bool per_class_analysis = false;
  std::string out;  ///< directory for hessian.json and hessian.md (empty: none)
};

struct HessianGroupResult {
  std::string name;  ///< "all" or a class name
  int64_t samples = 0;
  hessian::EigenResult eigen;
  hessian::TraceResult trace;
};

struct HessianReport {
  std::string model_description;
  int64_t dimension = 0;  ///< number of variables
  std::vector<HessianGroupResult> groups;
  std::string json_path, markdown_path;
};

/// Runs the analysis. The model is in eval mode (BatchNorm uses running
/// statistics), as PyHessian does; ctx.model.conv as open_model_for (kAuto:
/// Winograd where it applies); ctx.seed seeds the power iteration (eigen.seed
/// is replaced by it) and ctx.seed + 1 Hutchinson's probes (trace.seed).
/// Throws c10::Error on bad options.
HessianReport run_hessian(const HessianConfig& cfg, const RunContext& ctx = {});

}  // namespace gradlens::pipeline
