#include "gradlens/extract/run_manifest.h"

#include <nlohmann/json.hpp>

#include "gradlens/core/check.h"
#include "gradlens/core/json.h"

namespace gradlens::extract {

using json = nlohmann::json;

std::vector<const RunEntry*> RunManifest::float_entries() const {
  std::vector<const RunEntry*> out;
  for (const auto& e : representations) {
    if (e.dtype != "float32" && e.dtype != "float64") continue;
    if (e.name == "labels" || e.name == "preds") continue;
    out.push_back(&e);
  }
  return out;
}

const RunEntry* RunManifest::find(const std::string& name) const {
  for (const auto& e : representations)
    if (e.name == name) return &e;
  return nullptr;
}

void to_json(json& j, const RunManifest& m) {
  json reps = json::array();
  for (const auto& e : m.representations)
    reps.push_back({{"name", e.name},
                    {"file", e.file},
                    {"representation", e.representation},
                    {"variant", e.variant},
                    {"uses_true_labels", e.uses_true_labels},
                    {"gradient_seed", e.gradient_seed},
                    {"shape", e.shape},
                    {"dtype", e.dtype}});
  json audit = json::object();
  for (const auto& [name, a] : m.audits) audit[name] = a;
  json secs = json::object();
  for (const auto& [stage, s] : m.seconds) secs[stage] = s;
  j = json::object();
  j["format"] = RunManifest::kFormat;
  j["format_version"] = m.format_version;
  j["model"] = m.model;
  j["convolutions"] = m.convolutions;
  j["model_spec"] = m.model_spec;
  j["checkpoint_crc32"] = m.checkpoint_crc32 ? json(*m.checkpoint_crc32) : json(nullptr);
  j["device"] = m.device;
  j["dataset"] = m.dataset;
  j["n"] = m.n;
  j["num_classes"] = m.num_classes;
  j["input"] = {{"mean", m.input.mean},
                {"std", m.input.std},
                {"input_range", m.input.input_range},
                {"image_size", m.input.image_size},
                {"normalization", m.input.normalization},
                {"text", m.input.text}};
  j["class_names"] = m.class_names;
  j["indices"] = m.indices ? json(*m.indices) : json(nullptr);
  j["files"] = m.files;
  j["layer"] = m.layer;
  j["map_size"] = m.map_size;
  j["gradcam_targets"] = m.gradcam_targets;
  j["grad_labels"] = m.grad_labels;
  j["param_layer"] = m.param_layer;
  j["pool"] = m.pool;
  j["batch_size"] = m.batch_size;
  j["passes_per_batch"] = {{"forward", 1}, {"backward", m.backward_passes_per_batch}};
  j["seed"] = m.seed;
  j["libtorch_version"] = m.libtorch_version;
  j["accuracy"] = m.accuracy;
  j["labels"] = m.labels_file;
  j["preds"] = m.preds_file;
  j["representations"] = reps;
  j["audit"] = audit;
  j["warnings"] = m.warnings;
  j["seconds"] = secs;
  j["crc32"] = m.checksums;
}

void from_json(const json& j, RunManifest& m) {
  GRADLENS_CHECK(j.is_object() && core::json_value_or<std::string>(j, "format", "") == RunManifest::kFormat &&
                     j.contains("representations") && j["representations"].is_array(),
                 "not a gradlens-extract manifest (no \"representations\" list)");
  m = RunManifest();
  m.format_version = core::json_value_or<int>(j, "format_version", 1);
  m.model = core::json_value_or<std::string>(j, "model", "");
  m.convolutions = core::json_value_or<std::string>(j, "convolutions", "");
  m.model_spec = core::json_value_or<std::string>(j, "model_spec", "");
  const auto crc = core::json_value_or<std::string>(j, "checkpoint_crc32", "");
  if (!crc.empty()) m.checkpoint_crc32 = crc;
  m.device = core::json_value_or<std::string>(j, "device", "");
  m.dataset = core::json_value_or<std::string>(j, "dataset", "");
  m.n = core::json_value_or<int64_t>(j, "n", 0);
  m.num_classes = core::json_value_or<int64_t>(j, "num_classes", 0);
  if (j.contains("input") && j["input"].is_object()) {
    const auto& in = j["input"];
    m.input.mean = core::json_value_or<std::vector<double>>(in, "mean", {});
    m.input.std = core::json_value_or<std::vector<double>>(in, "std", {});
    m.input.input_range = core::json_value_or<std::string>(in, "input_range", "");
    m.input.image_size = core::json_value_or<std::vector<int64_t>>(in, "image_size", {});
    m.input.normalization = core::json_value_or<std::string>(in, "normalization", "");
    m.input.text = core::json_value_or<std::string>(in, "text", "");
  }
  m.class_names = core::json_value_or<std::vector<std::string>>(j, "class_names", {});
  if (j.contains("indices") && j["indices"].is_array())
    m.indices = core::json_value_or<std::vector<int64_t>>(j, "indices", {});
  m.files = core::json_value_or<std::vector<std::string>>(j, "files", {});
  m.layer = core::json_value_or<std::string>(j, "layer", "");
  m.map_size = core::json_value_or<std::vector<int64_t>>(j, "map_size", {});
  m.gradcam_targets = core::json_value_or<std::vector<std::string>>(j, "gradcam_targets", {});
  m.grad_labels = core::json_value_or<std::vector<std::string>>(j, "grad_labels", {});
  m.param_layer = core::json_value_or<std::string>(j, "param_layer", "");
  m.pool = core::json_value_or<std::string>(j, "pool", "");
  m.batch_size = core::json_value_or<int64_t>(j, "batch_size", 0);
  if (j.contains("passes_per_batch") && j["passes_per_batch"].is_object())
    m.backward_passes_per_batch = core::json_value_or<int64_t>(j["passes_per_batch"], "backward", 0);
  m.seed = core::json_value_or<uint64_t>(j, "seed", 0);
  m.libtorch_version = core::json_value_or<std::string>(j, "libtorch_version", "");
  m.accuracy = core::json_value_or<double>(j, "accuracy", 0.0);
  m.labels_file = core::json_value_or<std::string>(j, "labels", "labels.npy");
  m.preds_file = core::json_value_or<std::string>(j, "preds", "preds.npy");
  for (const auto& e : j["representations"]) {
    if (!e.is_object() || !e.contains("name") || !e["name"].is_string()) continue;
    RunEntry r;
    r.name = e["name"].get<std::string>();
    r.file = core::json_value_or<std::string>(e, "file", r.name + ".npy");
    r.representation = core::json_value_or<std::string>(e, "representation", "");
    r.variant = core::json_value_or<std::string>(e, "variant", "");
    r.uses_true_labels = core::json_value_or<bool>(e, "uses_true_labels", false);
    r.gradient_seed = core::json_value_or<std::string>(e, "gradient_seed", "");
    r.shape = core::json_value_or<std::vector<int64_t>>(e, "shape", {});
    r.dtype = core::json_value_or<std::string>(e, "dtype", "float32");
    m.representations.push_back(std::move(r));
  }
  if (j.contains("audit") && j["audit"].is_object())
    for (const auto& [name, a] : j["audit"].items())
      if (a.is_object()) m.audits[name] = a.get<AuditResult>();
  m.warnings = core::json_value_or<std::vector<std::string>>(j, "warnings", {});
  m.checksums = core::json_value_or<std::map<std::string, std::string>>(j, "crc32", {});
  if (j.contains("seconds") && j["seconds"].is_object())
    for (const auto& [stage, s] : j["seconds"].items())
      if (s.is_number()) m.seconds.emplace_back(stage, s.get<double>());
}

}  // namespace gradlens::extract
