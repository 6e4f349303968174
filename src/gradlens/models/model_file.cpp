#include "gradlens/models/model_file.h"

#include <algorithm>

#include "gradlens/core/check.h"

namespace gradlens::models {

namespace {

/// The bytes gradlens' checkpoints carry in their pickled attributes (the
/// value of their "gradlens_format" key).
constexpr const char* kCheckpointMarker = "gradlens-checkpoint-v";

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

std::string model_file_kind_name(ModelFileKind kind) {
  switch (kind) {
    case ModelFileKind::kCheckpoint: return "a gradlens checkpoint";
    case ModelFileKind::kTorchScript: return "a TorchScript model";
    case ModelFileKind::kTorchSave: return "a torch.save() file of Python objects";
    case ModelFileKind::kOther: break;
  }
  return "not a PyTorch file";
}

ModelFileInfo inspect_model_file(const std::filesystem::path& path, bool verify) {
  GRADLENS_CHECK(std::filesystem::is_regular_file(path), path.string(),
                 ": no such file; give a TorchScript file or a gradlens checkpoint");
  ModelFileInfo info;
  if (!core::is_zip_file(path)) return info;
  info.entries = core::zip_entries(path);
  const auto& entries = info.entries;
  const core::ZipEntry* data_pkl = nullptr;
  bool has_code = false;
  for (const auto& e : entries) {
    if (e.name.find("/code/") != std::string::npos) has_code = true;
    if (ends_with(e.name, "/data.pkl") && std::count(e.name.begin(), e.name.end(), '/') == 1) data_pkl = &e;
  }
  if (verify) info.check = core::verify_zip(path, entries);
  if (!has_code) {
    info.kind = data_pkl ? ModelFileKind::kTorchSave : ModelFileKind::kOther;
    return info;
  }
  info.kind = ModelFileKind::kTorchScript;
  if (data_pkl && data_pkl->method == 0 && data_pkl->size < (uint64_t{64} << 20) &&
      core::read_zip_entry(path, *data_pkl).find(kCheckpointMarker) != std::string::npos)
    info.kind = ModelFileKind::kCheckpoint;
  return info;
}

std::string wrong_model_file_message(const std::filesystem::path& path, ModelFileKind kind,
                                     const std::string& flag) {
  std::string msg = flag + " " + path.string() + " is " + model_file_kind_name(kind);
  switch (kind) {
    case ModelFileKind::kTorchSave:
      return msg + ", which only Python can read; save the model as TorchScript instead: "
                   "torch.jit.save(torch.jit.script(model), 'model.pt') (or torch.jit.trace(model, example))";
    case ModelFileKind::kOther:
      return msg + " (no zip archive inside: it is truncated, a legacy torch.save pickle or another "
                   "kind of file); give a TorchScript file (torch.jit.save) or a gradlens checkpoint";
    case ModelFileKind::kTorchScript:
      return msg + ", not a gradlens checkpoint; pass it as --model (or convert it with 'gradlens import')";
    case ModelFileKind::kCheckpoint:
      break;
  }
  return msg;
}

void require_model_file(const std::filesystem::path& path, ModelFileKind want, const std::string& flag,
                        bool verify) {
  const auto info = inspect_model_file(path, verify);
  GRADLENS_CHECK(info.kind == want, wrong_model_file_message(path, info.kind, flag));
}

}  // namespace gradlens::models
