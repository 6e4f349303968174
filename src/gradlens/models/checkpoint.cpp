#include "gradlens/models/checkpoint.h"
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "gradlens/core/check.h"
#include "gradlens/core/fs.h"
#include "gradlens/models/model_file.h"
#include "gradlens/models/torchscript.h"

namespace gradlens::models {

namespace {
constexpr const char* kFormatKey = "gradlens_format";
constexpr const char* kFormat = "gradlens-checkpoint-v1";
}  // namespace

std::string config_to_json(const ResNetConfig& cfg) {
  nlohmann::json j = {{"arch", cfg.arch},
                      {"num_classes", cfg.num_classes},
                      {"in_channels", cfg.in_channels},
                      {"stem", stem_name(cfg.stem)},
                      {"width", cfg.width},
                      {"zero_init_residual", cfg.zero_init_residual}};
  return j.dump();
}

ResNetConfig config_from_json(const std::string& text) {
  ResNetConfig cfg;
  try {
    auto j = nlohmann::json::parse(text);
    cfg.arch = j.at("arch").get<std::string>();
    cfg.num_classes = j.at("num_classes").get<int64_t>();
    cfg.in_channels = j.at("in_channels").get<int64_t>();
    cfg.stem = parse_stem(j.at("stem").get<std::string>());
    cfg.width = j.at("width").get<int64_t>();
    cfg.zero_init_residual = j.value("zero_init_residual", false);
  } catch (const nlohmann::json::exception& e) {
    GRADLENS_CHECK(false, "malformed model configuration in checkpoint: ", e.what());
  }
  return cfg;
}

void save_checkpoint(const std::filesystem::path& path, ResNet& model, const std::string& meta_json,
                     const ArchiveWriter& extra) {
  core::write_atomically(path, [&](const std::filesystem::path& tmp) {
    torch::serialize::OutputArchive archive;
    archive.write(kFormatKey, c10::IValue(std::string(kFormat)));
    archive.write("config", c10::IValue(config_to_json(model.config())));
    archive.write("meta", c10::IValue(meta_json));
    torch::serialize::OutputArchive weights;
    model.save(weights);
    archive.write("model", weights);
    if (extra) extra(archive);
    archive.save_to(tmp.string());
  });
}

bool is_checkpoint(const std::filesystem::path& path) {
  try {
    return inspect_model_file(path, /*verify=*/false).kind == ModelFileKind::kCheckpoint;
  } catch (const std::exception&) {
    return false;
  }
}

Checkpoint load_checkpoint(const std::filesystem::path& path, torch::Device device,
                           const ArchiveReader& extra, bool verify) {
  GRADLENS_CHECK(std::filesystem::exists(path), "checkpoint ", path.string(),
                 " does not exist; train one with 'gradlens train' or pass another --model");
  const auto info = inspect_model_file(path, /*verify=*/false);
  // Damage to the structure can hide the checkpoint's marker: corrupt, then.
  if (verify && info.kind != ModelFileKind::kCheckpoint && !info.entries.empty())
    core::verify_zip(path, info.entries, core::ZipPart::kStructure);
  GRADLENS_CHECK(info.kind == ModelFileKind::kCheckpoint,
                 wrong_model_file_message(path, info.kind, "checkpoint"));
  torch::serialize::InputArchive archive;
  const auto read = [&] {
    try {
      archive.load_from(path.string(), device);
    } catch (const std::exception& e) {
      GRADLENS_CHECK(false, "checkpoint ", path.string(), " is corrupt (", error_message(e),
                     "); retrain it with 'gradlens train' or restore it from a backup");
    }
  };
  if (verify)
    core::load_verified(path, info.entries, read);
  else
    read();
  c10::IValue fmt, cfg, meta;
  GRADLENS_CHECK(archive.try_read(kFormatKey, fmt) && fmt.isString() && fmt.toStringRef() == kFormat,
                 path.string(), " is not a gradlens checkpoint (a TorchScript model? pass it as --model)");
  GRADLENS_CHECK(archive.try_read("config", cfg) && cfg.isString(), "checkpoint ", path.string(),
                 " has no model configuration; it is corrupt, retrain it");
  archive.try_read("meta", meta);
  Checkpoint out;
  out.model = std::make_unique<ResNet>(config_from_json(cfg.toStringRef()));
  out.model->to(device);
  out.meta_json = meta.isString() ? meta.toStringRef() : "{}";
  try {
    torch::serialize::InputArchive weights;
    archive.read("model", weights);
    out.model->load(weights);
    if (extra) extra(archive);
  } catch (const c10::Error& e) {
    GRADLENS_CHECK(false, "checkpoint ", path.string(), " is corrupt (", error_message(e),
                   "); retrain it with 'gradlens train'");
  }
  return out;
}

std::unique_ptr<Classifier> open_classifier(const std::string& spec, torch::Device device,
                                            const ResNetConfig& fresh, int64_t probe_size,
                                            const ModelOptions& options) {
  if (!std::filesystem::exists(spec)) {
    GRADLENS_CHECK(spec.find('/') == std::string::npos && spec.find(".pt") == std::string::npos,
                   "--model ", spec, ": no such file; give a TorchScript file, a gradlens "
                   "checkpoint or a model name (resnet18 ... resnet152)");
    ResNetConfig cfg = fresh;
    cfg.arch = spec;
    auto m = std::make_unique<ResNet>(cfg);
    m->to(device);
    return m;
  }
  const auto info = inspect_model_file(spec, /*verify=*/false);
  if (info.kind == ModelFileKind::kCheckpoint)
    return std::move(load_checkpoint(spec, device, {}, options.verify_files).model);
  GRADLENS_CHECK(info.kind == ModelFileKind::kTorchScript, wrong_model_file_message(spec, info.kind, "--model"));
  ProbeShape probe;
  probe.size = probe_size;
  probe.in_channels = fresh.in_channels;
  return std::make_unique<TorchScriptClassifier>(spec, device, probe, options.torchscript, options.verify_files);
}

}  // namespace gradlens::models
