// A small synthetic extraction run directory for the analyze tests (pipeline
// and CLI): written with core::write_npy and a hand-made manifest.json, no
// model and no python.
#pragma once

#include <torch/types.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <vector>

#include "gradlens/core/fs.h"
#include "gradlens/core/npy.h"

namespace gradlens::test::analyze {

constexpr int64_t kPerClass = 10;
constexpr int64_t kClasses = 3;
constexpr int64_t kRows = kPerClass * kClasses;

/// Labels 0,1,2,0,1,2,... (int64 [30]).
inline torch::Tensor labels() { return torch::arange(kRows, torch::kInt64).remainder(kClasses); }

/// Three tight blobs around 50 e_c in 6-D (float32 [30, 6]); deterministic.
inline torch::Tensor blobs() {
  auto gen = at::detail::createCPUGenerator(1234);
  auto x = torch::randn({kRows, 6}, gen, torch::kFloat64) * 0.1;
  const auto y = labels();
  for (int64_t i = 0; i < kRows; ++i) x[i][y[i].item<int64_t>()] += 50.0;
  return x.to(torch::kFloat32);
}

/// Rows pointing along their own label (a "label-informed" representation):
/// onehot(y) + noise, float32 [30, 4].
inline torch::Tensor informed() {
  auto gen = at::detail::createCPUGenerator(99);
  auto x = torch::randn({kRows, 4}, gen, torch::kFloat64) * 0.05;
  x.slice(1, 0, kClasses) += torch::one_hot(labels(), kClasses).to(torch::kFloat64);
  return x.to(torch::kFloat32);
}

/// The manifest entry of one representation of `rows` rows.
inline nlohmann::json entry(const std::string& name, int64_t cols, bool uses_true_labels = false,
                            const std::string& dtype = "float32", int64_t rows = kRows) {
  return {{"name", name},
          {"file", name + ".npy"},
          {"representation", name.substr(0, name.find('.'))},
          {"variant", uses_true_labels ? "true" : "pred"},
          {"uses_true_labels", uses_true_labels},
          {"gradient_seed", ""},
          {"shape", {rows, cols}},
          {"dtype", dtype}};
}

/// A synthetic run's manifest (no model, no audit) over labels.npy and
/// preds.npy and the `representations` (entry()).
inline nlohmann::json manifest(const std::string& dataset, int64_t rows, const std::vector<std::string>& class_names,
                               const nlohmann::json& representations) {
  nlohmann::json m;
  m["format"] = "gradlens-extract";
  m["format_version"] = 1;
  m["model"] = "synthetic";
  m["model_spec"] = "";
  m["checkpoint_crc32"] = nullptr;
  m["dataset"] = dataset;
  m["n"] = rows;
  m["num_classes"] = static_cast<int64_t>(class_names.size());
  m["class_names"] = class_names;
  m["labels"] = "labels.npy";
  m["preds"] = "preds.npy";
  m["representations"] = representations;
  m["audit"] = nlohmann::json::object();
  return m;
}

/// Writes `dir` with blobs.npy ("features" named "blobs") and
/// informed.true.npy (uses_true_labels), labels.npy, preds.npy and a
/// manifest without audit. Returns the manifest for further edits.
inline nlohmann::json write_run(const std::filesystem::path& dir) {
  std::filesystem::create_directories(dir);
  core::write_npy(dir / "blobs.npy", blobs());
  core::write_npy(dir / "informed.true.npy", informed());
  core::write_npy(dir / "labels.npy", labels());
  core::write_npy(dir / "preds.npy", labels());
  const auto m = manifest("synthetic-blobs", kRows, {"alpha", "beta", "gamma"},
                          {entry("blobs", 6), entry("informed.true", 4, true)});
  core::write_text_atomically(dir / "manifest.json", m.dump(2));
  return m;
}

/// Rewrites the manifest.
inline void write_manifest(const std::filesystem::path& dir, const nlohmann::json& m) {
  core::write_text_atomically(dir / "manifest.json", m.dump(2));
}

}  // namespace gradlens::test::analyze
