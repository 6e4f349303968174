// gradlens' self-describing model checkpoints: architecture config + weights
// (+ optional extra state such as the optimizer), written atomically.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include <torch/types.h>

#include "gradlens/models/classifier.h"
#include "gradlens/models/model_options.h"
#include "gradlens/models/resnet.h"

namespace gradlens::models {

/// Serialises a ResNetConfig as a JSON string and back (throws on bad JSON).
std::string config_to_json(const ResNetConfig& cfg);
ResNetConfig config_from_json(const std::string& json);

using ArchiveWriter = std::function<void(torch::serialize::OutputArchive&)>;
using ArchiveReader = std::function<void(torch::serialize::InputArchive&)>;

/// Writes `path` atomically with the model's config, weights and buffers, a
/// free-form JSON `meta` string and whatever `extra` adds (e.g. optimizer
/// state under its own key).
void save_checkpoint(const std::filesystem::path& path, ResNet& model, const std::string& meta_json,
                     const ArchiveWriter& extra = {});

/// A checkpoint read back: the rebuilt model (on `device`) and its metadata.
struct Checkpoint {
  std::unique_ptr<ResNet> model;
  std::string meta_json;
};

/// Reads a checkpoint written by save_checkpoint(). `extra` may read more
/// keys. With `verify`, every entry's CRC-32 is compared with the bytes on
/// disk first. Throws gradlens::Error naming the file if it is missing,
/// truncated, corrupt or not a gradlens checkpoint (saying what it is).
Checkpoint load_checkpoint(const std::filesystem::path& path, torch::Device device,
                           const ArchiveReader& extra = {}, bool verify = true);

/// True if `path` is a readable gradlens checkpoint (not a TorchScript model).
bool is_checkpoint(const std::filesystem::path& path);

/// Opens any model spec: a gradlens checkpoint, a TorchScript file, or an
/// architecture name (fresh weights from `fresh`). A TorchScript file is
/// probed with [2, fresh.in_channels, probe_size, probe_size] images and read
/// as options.torchscript says. A file's kind is told by its content, and
/// with options.verify_files its checksums are verified first. Throws
/// gradlens::Error naming the spec on failure. options.conv is not applied.
std::unique_ptr<Classifier> open_classifier(const std::string& spec, torch::Device device,
                                            const ResNetConfig& fresh, int64_t probe_size = 28,
                                            const ModelOptions& options = {});

}  // namespace gradlens::models
