// The extraction driver: a classifier and a dataset in, a run directory out
// (one <name>.npy per representation, labels.npy, preds.npy, manifest.json).
// The CLI's pipeline opens the model and the data and calls run_extract().
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "gradlens/core/progress.h"
#include "gradlens/extract/audit.h"
#include "gradlens/extract/representations.h"
#include "gradlens/extract/run_manifest.h"

namespace gradlens::models {
class Classifier;
}
namespace gradlens::data {
struct Dataset;
}

namespace gradlens::extract {

/// How run_extract shares one run between ranks (see docs/scaling.md). The
/// default is a single process. The pipeline fills it from distributed::Communicator.
struct ExtractRanks {
  int rank = 0;
  int world_size = 1;
  /// This rank's rows [row_begin, row_end) of the dataset; row_end = -1: all
  /// rows. Ranks should split at multiples of batch_size so that every batch
  /// is the one a single process would run (bitwise equal results on CPU).
  int64_t row_begin = 0;
  int64_t row_end = -1;
  /// Collective: the row blocks of all ranks concatenated in rank order, on
  /// rank 0 (undefined elsewhere). Needed when world_size > 1.
  std::function<torch::Tensor(const torch::Tensor&)> gather_rows;
};

/// An extraction run: its manifest, labels and predictions, and its float
/// outputs, held in memory or stored in a run directory (io::read_run) and
/// read one at a time by load(), so that a consumer that takes one output at a
/// time holds one N x D matrix.
struct ExtractRun {
  std::filesystem::path dir;  ///< the run directory; empty for a run held only in memory
  RunManifest manifest;
  torch::Tensor labels, preds;  ///< int64 [N]
  /// Float outputs held in memory, by manifest name.
  std::map<std::string, torch::Tensor> values;

  int64_t size() const { return labels.defined() ? labels.size(0) : 0; }
  /// The output `name` as float [N, D]: from `values`, else read from
  /// dir/<entry file> after verify_file(). Throws gradlens::Error naming the
  /// output (and the file) when the manifest does not list it or the file is
  /// corrupt or cannot be read.
  torch::Tensor load(const std::string& name) const;
  /// Compares dir/<file>'s CRC-32 with the one the manifest recorded (no-op
  /// for runs written before checksums were recorded); throws gradlens::Error
  /// naming the file when it is corrupt.
  void verify_file(const std::string& file) const;
  /// Checks, before a long computation, that each named stored output is a
  /// readable float [N, D] matrix with D >= 1 and N = size(); outputs held in
  /// memory are not checked. Throws c10::Error naming the output and its
  /// file: not listed, missing, damaged, not float, not 2-D, zero width, or a
  /// row count different from the labels'.
  void check_outputs(const std::vector<std::string>& names) const;
};

struct ExtractConfig {
  /// The run directory to create. It must not exist unless `overwrite`, and
  /// then only a previous run directory (holding manifest.json) is replaced.
  std::filesystem::path out;
  ExtractOptions options;
  /// Images per batch (memory is bounded by the batch, not by N).
  int64_t batch_size = 64;
  bool overwrite = false;
  /// Audit every representation (reads each back, one at a time, so the
  /// audit holds one N x D matrix in memory) and record it in the manifest.
  bool audit = true;
  AuditOptions audit_options;
  // --- recorded in manifest.json
  /// The model as the user named it (checkpoint, TorchScript file or
  /// architecture); an existing file gets its CRC-32 recorded.
  std::string model_spec;
  uint64_t seed = 0;
  /// Optional int64 [N]: indices of the dataset's images in the source split
  /// (a balanced subset); recorded as "indices".
  torch::Tensor indices;
  /// Free-form dataset description; "" = Dataset::name.
  std::string dataset_name;
  /// Also return every output in memory (ExtractRunResult::run.values), so
  /// that a caller that goes on with them reads nothing back. Single-process
  /// runs only (ignored when ranks.world_size > 1).
  bool keep_in_memory = false;
  /// Multi-process extraction: each rank extracts its rows, rank 0 gathers
  /// them (one representation at a time) into the run directory, audits and
  /// writes the manifest; the other ranks write nothing and return n = their
  /// row count and an empty `out`.
  ExtractRanks ranks;
};

struct ExtractRunResult {
  std::filesystem::path out;
  int64_t n = 0;
  std::vector<OutputSpec> outputs;
  std::vector<std::vector<int64_t>> shapes;  ///< per output, [N, D]
  std::vector<AuditResult> audits;           ///< per output when audited
  std::vector<std::string> warnings;         ///< the audits' warnings, in order
  int64_t batches = 0;
  int64_t backward_passes_per_batch = 0;
  double accuracy = 0.0;                     ///< preds == labels
  /// Seconds per stage summed over batches ("forward", "backward.<seed>",
  /// "param-grad", "write", "audit", "total").
  std::vector<std::pair<std::string, double>> seconds;
  /// The run as written (rank 0): dir = out, the manifest, labels and preds;
  /// `values` filled when ExtractConfig::keep_in_memory.
  ExtractRun run;
};

/// Extracts every output of cfg.options for every image of `ds` (in order),
/// in eval mode, batch by batch, streaming each output to
/// "<out>/<name>.npy" (float32 [N, D]) plus "labels.npy" and "preds.npy"
/// (int64 [N]) and "manifest.json" (see docs/formats.md). Everything is
/// written into a hidden sibling directory (core::StagedDirectory) that is
/// renamed to `out` only at the end, so an interrupted run never leaves a
/// complete-looking run directory, and the next run removes what a killed
/// one left. Progress: stage "extract" (images done of
/// N) and "audit" (outputs done).
///
/// Throws c10::Error: an empty dataset; batch_size < 1; `out` exists (and is
/// not a run directory with overwrite); the parent of `out` not writable
/// (naming --out); NaN/Inf in an image (naming its index); cfg.indices not
/// int64 [N]; and everything extract_batch() throws. On error the temporary
/// directory is removed.
ExtractRunResult run_extract(models::Classifier& model, const data::Dataset& ds,
                             const ExtractConfig& cfg, const core::ProgressFn& progress = {});

}  // namespace gradlens::extract
