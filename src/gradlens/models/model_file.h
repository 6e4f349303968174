// What a model file is, told by its content, and whether it is intact.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "gradlens/core/zip.h"

namespace gradlens::models {

enum class ModelFileKind {
  kCheckpoint,   ///< written by gradlens (train, import)
  kTorchScript,  ///< torch.jit.save of a scripted or traced module
  kTorchSave,    ///< torch.save of Python objects (a state_dict, a pickled nn.Module)
  kOther,        ///< not a PyTorch archive
};

/// "a gradlens checkpoint", "a TorchScript model", ...
std::string model_file_kind_name(ModelFileKind kind);

struct ModelFileInfo {
  ModelFileKind kind = ModelFileKind::kOther;
  core::ZipCheck check;  ///< what was verified (empty when verify was false)
  std::vector<core::ZipEntry> entries;  ///< the archive's directory (empty for kOther)
};

/// Tells the kind of the file at `path` from its content (its zip directory
/// and, for a scripted archive, its pickled attributes), and with `verify`
/// compares every entry's CRC-32 with the bytes on disk. Throws
/// gradlens::Error naming the file when it is missing, when a PyTorch archive
/// is truncated, or when an entry is corrupt. A file that is not a zip
/// archive is kOther (a legacy torch.save pickle included), not an error.
ModelFileInfo inspect_model_file(const std::filesystem::path& path, bool verify = true);

/// The message for a file that is not what the caller can load: what it is
/// and how to make what gradlens needs. `flag` names where it came from.
std::string wrong_model_file_message(const std::filesystem::path& path, ModelFileKind kind,
                                     const std::string& flag);

/// inspect_model_file(), then an Error with wrong_model_file_message() unless
/// the file is of kind `want`.
void require_model_file(const std::filesystem::path& path, ModelFileKind want, const std::string& flag,
                        bool verify = true);

}  // namespace gradlens::models
