// What a model given on the command line names: the cached default model, a
// ResNet architecture to train, or a file (a gradlens checkpoint or a
// TorchScript file). The one place that interprets "default".
#pragma once

#include <string>

namespace gradlens::models {

/// The spec of the cached default model.
inline constexpr const char* kDefaultModelSpec = "default";

/// Where the default model is cached: <core::cache_dir()>/models/fashion-mnist-resnet18-w16.ckpt.
std::string default_model_path();

struct ModelSpec {
  enum class Kind { kDefault, kArchitecture, kFile };
  Kind kind = Kind::kFile;
  std::string spec;  ///< as given
  /// The file to open: default_model_path() for kDefault (it may not exist
  /// yet), the file for kFile, empty for kArchitecture.
  std::string path;
};

/// Resolves `spec`: "default", an architecture of resnet_names() (only when
/// `architectures`), or an existing file. Throws c10::Error naming `flag`,
/// the spec and what is accepted otherwise.
ModelSpec resolve_model_spec(const std::string& spec, const std::string& flag, bool architectures);

}  // namespace gradlens::models
