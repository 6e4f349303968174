#include "gradlens/models/model_spec.h"

#include <algorithm>
#include <filesystem>

#include "gradlens/core/check.h"
#include "gradlens/core/fs.h"
#include "gradlens/models/resnet.h"

namespace gradlens::models {

std::string default_model_path() {
  return (core::cache_dir() / "models" / "fashion-mnist-resnet18-w16.ckpt").string();
}

ModelSpec resolve_model_spec(const std::string& spec, const std::string& flag, bool architectures) {
  ModelSpec m;
  m.spec = spec;
  if (spec == kDefaultModelSpec) {
    m.kind = ModelSpec::Kind::kDefault;
    m.path = default_model_path();
    return m;
  }
  const auto archs = resnet_names();
  if (architectures && std::find(archs.begin(), archs.end(), spec) != archs.end()) {
    m.kind = ModelSpec::Kind::kArchitecture;
    return m;
  }
  if (architectures) {
    GRADLENS_CHECK(std::filesystem::exists(spec), flag, ": '", spec,
                   "' is neither an existing checkpoint/TorchScript file, 'default', nor one of "
                   "resnet18, resnet34, resnet50, resnet101, resnet152");
  } else {
    GRADLENS_CHECK(std::filesystem::exists(spec), flag, " ", spec,
                   ": no such file; give a gradlens checkpoint, a TorchScript file or 'default'");
  }
  m.kind = ModelSpec::Kind::kFile;
  m.path = spec;
  return m;
}

}  // namespace gradlens::models
