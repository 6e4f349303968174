// The manifest of an extraction run directory (manifest.json; the format is
// specified in docs/formats.md, "The extraction run directory"), as a typed
// struct with its JSON conversions both ways. Writers fill the struct and
// serialise it; readers (io::read_run) parse it back, so the field names live
// here alone.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "gradlens/extract/audit.h"

namespace gradlens::extract {

/// One output file of a run.
struct RunEntry {
  std::string name;            ///< e.g. "gradcam-weights.true"
  std::string file;            ///< file name inside the run directory ("<name>.npy")
  std::string representation;  ///< e.g. "gradcam-weights"
  std::string variant;         ///< "pred", "true", "loss" or ""
  bool uses_true_labels = false;
  std::string gradient_seed;   ///< see extract/representations.h, "" if none
  std::vector<int64_t> shape;  ///< [N, D]
  std::string dtype = "float32";
};

/// How the images were fed to the model.
struct RunInput {
  std::vector<double> mean, std;
  std::string input_range;
  std::vector<int64_t> image_size;  ///< [H, W]
  std::string normalization;
  std::string text;  ///< data::describe_input()
};

struct RunManifest {
  static constexpr const char* kFormat = "gradlens-extract";
  int format_version = 1;
  std::string model;         ///< Classifier::describe()
  std::string convolutions;  ///< "winograd" | "libtorch"
  std::string model_spec;    ///< as the user named it
  std::optional<std::string> checkpoint_crc32;  ///< of model_spec when it was a file
  std::string device;
  std::string dataset;
  int64_t n = 0;
  int64_t num_classes = 0;
  RunInput input;
  std::vector<std::string> class_names;
  std::optional<std::vector<int64_t>> indices;  ///< positions in the source split
  std::vector<std::string> files;  ///< row i's source image file (ImageFolder data); empty for IDX data
  std::string layer;
  std::vector<int64_t> map_size;  ///< [h, w] at the layer
  std::vector<std::string> gradcam_targets, grad_labels;
  std::string param_layer;
  std::string pool;
  int64_t batch_size = 0;
  int64_t backward_passes_per_batch = 0;
  uint64_t seed = 0;
  std::string libtorch_version;
  double accuracy = 0.0;
  std::string labels_file = "labels.npy";
  std::string preds_file = "preds.npy";
  std::vector<RunEntry> representations;
  /// Audits by representation name (empty when the run was not audited).
  std::map<std::string, AuditResult> audits;
  std::vector<std::string> warnings;
  std::vector<std::pair<std::string, double>> seconds;
  /// CRC-32 (core::file_crc32) of every array file, by file name, recorded
  /// when the run was written and verified before a file is read. Empty in
  /// runs written before gradlens recorded them (read unverified).
  std::map<std::string, std::string> checksums;

  /// The entries that hold float matrices, in manifest order (labels and preds
  /// are not representations).
  std::vector<const RunEntry*> float_entries() const;
  /// The entry named `name`, or nullptr.
  const RunEntry* find(const std::string& name) const;
};

/// Every field; absent optionals are written as null.
void to_json(nlohmann::json& j, const RunManifest& m);
/// Reads what to_json writes. Missing or mistyped fields keep their defaults
/// (manifests of older runs lack some); entries without a string "name" are
/// skipped. Throws c10::Error when `j` is not an object whose "format" is
/// "gradlens-extract" with a "representations" list (the caller names the
/// file).
void from_json(const nlohmann::json& j, RunManifest& m);

}  // namespace gradlens::extract
