#include "gradlens/models/metadata.h"

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "gradlens/core/check.h"
#include "gradlens/core/strings.h"
#include "gradlens/core/zip.h"
#include "gradlens/models/model_file.h"

namespace gradlens::models {

bool is_torchscript_file(const std::string& path) {
  try {
    return inspect_model_file(path, /*verify=*/false).kind == ModelFileKind::kTorchScript;
  } catch (const std::exception&) {
    return false;
  }
}

ModelMetadata read_model_metadata(const std::string& path) {
  ModelMetadata m;
  m.path = path;
  if (!core::is_zip_file(path)) return m;
  std::string text;
  {
    const auto entries = core::zip_entries(path);
    const core::ZipEntry* json = nullptr;
    for (const auto& e : entries) {
      const auto slash = e.name.find('/');
      if (slash != std::string::npos && e.name.compare(slash, std::string::npos, "/extra/gradlens.json") == 0)
        json = &e;
    }
    if (json == nullptr) return m;
    text = core::read_zip_entry(path, *json);
  }
  return parse_model_metadata(text, path);
}

ModelMetadata parse_model_metadata(const std::string& text, const std::string& path) {
  ModelMetadata m;
  m.path = path;
  m.present = true;
  const std::string where = path + " (its gradlens.json)";
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    GRADLENS_CHECK(false, where, " is not valid JSON: ", e.what(),
                   "; save it with json.dumps({...}) in torch.jit.save's _extra_files");
  }
  GRADLENS_CHECK(j.is_object(), where, " must be a JSON object, got ", j.type_name());
  static const std::vector<std::string> kKeys = {"mean",     "std",      "input_range", "image_size",
                                                 "resize",   "channels", "class_names", "layer",
                                                 "output_index", "output_key", "class_tokens"};
  for (const auto& [key, value] : j.items()) {
    bool known = false;
    for (const auto& k : kKeys) known |= k == key;
    GRADLENS_CHECK(known, where, ": unknown key '", key, "'; the keys are ", core::join(kKeys, ", "));
  }
  try {
    if (j.contains("mean")) m.mean = j.at("mean").get<std::vector<double>>();
    if (j.contains("std")) m.std = j.at("std").get<std::vector<double>>();
    if (j.contains("input_range")) m.input_range = j.at("input_range").get<std::string>();
    if (j.contains("image_size")) m.image_size = j.at("image_size").get<int64_t>();
    if (j.contains("resize")) m.resize = j.at("resize").get<int64_t>();
    if (j.contains("channels")) m.channels = j.at("channels").get<int64_t>();
    if (j.contains("class_names")) m.class_names = j.at("class_names").get<std::vector<std::string>>();
    if (j.contains("layer")) m.layer = j.at("layer").get<std::string>();
    if (j.contains("output_index")) m.output_index = j.at("output_index").get<int64_t>();
    if (j.contains("output_key")) m.output_key = j.at("output_key").get<std::string>();
    if (j.contains("class_tokens")) m.class_tokens = j.at("class_tokens").get<int64_t>();
  } catch (const nlohmann::json::exception& e) {
    GRADLENS_CHECK(false, where, ": a value has the wrong type (", e.what(),
                   "); mean/std are lists of numbers, image_size/resize/channels/output_index/class_tokens "
                   "integers, class_names a list of strings, input_range, layer and output_key strings");
  }
  GRADLENS_CHECK(m.mean.size() == m.std.size(), where, ": mean has ", m.mean.size(), " value(s) and std ",
                 m.std.size(), "; give both, one per channel");
  for (size_t i = 0; i < m.mean.size(); ++i)
    GRADLENS_CHECK(std::isfinite(m.mean[i]) && std::isfinite(m.std[i]) && m.std[i] > 0, where, ": channel ", i,
                   " has mean ", m.mean[i], " and std ", m.std[i], "; both must be finite and std > 0");
  GRADLENS_CHECK(m.input_range.empty() || m.input_range == "0-1" || m.input_range == "0-255", where,
                 ": input_range '", m.input_range, "'; use \"0-1\" or \"0-255\"");
  GRADLENS_CHECK(m.channels == 0 || m.channels == 1 || m.channels == 3, where, ": channels ", m.channels,
                 "; use 1 or 3");
  GRADLENS_CHECK(m.image_size >= 0 && m.resize >= 0 && m.image_size <= 4096 && m.resize <= 4096, where,
                 ": image_size and resize must be from 0 to 4096 (got ", m.image_size, " and ", m.resize, ")");
  GRADLENS_CHECK(m.output_index <= 1000 && m.class_tokens <= 1000, where,
                 ": output_index and class_tokens must be at most 1000");
  GRADLENS_CHECK(m.resize == 0 || m.resize >= m.image_size, where, ": resize ", m.resize,
                 " is smaller than image_size ", m.image_size);
  GRADLENS_CHECK((!j.contains("output_index") || m.output_index >= 0) &&
                     (!j.contains("class_tokens") || m.class_tokens >= 0),
                 where, ": output_index and class_tokens must be >= 0");
  GRADLENS_CHECK(m.output_index < 0 || m.output_key.empty(), where,
                 ": give output_index (a tuple output) or output_key (a dict output), not both");
  return m;
}

}  // namespace gradlens::models
