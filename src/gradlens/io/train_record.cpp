#include "gradlens/io/train_record.h"
#include <torch/types.h>

#include <nlohmann/json.hpp>

#include <cstdio>
#include <map>
#include <string>

#include "gradlens/core/check.h"
#include "gradlens/core/fs.h"
#include "gradlens/core/npy.h"

namespace gradlens::io {

namespace fs = std::filesystem;

namespace {

constexpr const char* kRecordFormat = "gradlens-train-record";
constexpr const char* kStoreFormat = "gradlens-influence-store";
constexpr int kVersion = 1;

nlohmann::json parse_manifest(const fs::path& path, const char* format, const std::string& flag,
                              const std::string& fix) {
  GRADLENS_CHECK(fs::exists(path), flag, ": ", path.parent_path().string(), " has no ", path.filename().string(),
                 "; ", fix);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(core::read_file(path));
  } catch (const nlohmann::json::exception& e) {
    GRADLENS_CHECK(false, flag, ": ", path.string(), " is not valid JSON (", e.what(), "); ", fix);
  }
  GRADLENS_CHECK(j.is_object() && j.value("format", "") == format, flag, ": ", path.string(), " is not a ",
                 format, " manifest; ", fix);
  GRADLENS_CHECK(j.value("version", 0) == kVersion, flag, ": ", path.string(), " has version ",
                 j.value("version", 0), "; this gradlens reads version ", kVersion);
  return j;
}

torch::Tensor read_shaped(const fs::path& path, torch::ScalarType dtype, std::vector<int64_t> shape,
                          const std::string& flag) {
  GRADLENS_CHECK(fs::exists(path), flag, ": ", path.string(), " is missing; the record is incomplete");
  auto t = core::read_npy(path);
  GRADLENS_CHECK(t.scalar_type() == dtype && t.sizes().vec() == shape, flag, ": ", path.string(), " holds ",
                 t.scalar_type(), " ", t.sizes(), " where ", c10::ScalarType(dtype), " ", c10::IntArrayRef(shape),
                 " was recorded");
  return t;
}

std::string dynamics_file(const std::string& name) { return "dynamics/" + name + ".npy"; }

}  // namespace

std::string tensor_crc32(const torch::Tensor& t) {
  const auto c = t.cpu().contiguous();
  return core::bytes_crc32(c.data_ptr(), static_cast<size_t>(c.nbytes()));
}

void write_train_record(const TrainRecord& r) {
  GRADLENS_CHECK(r.labels.defined() && r.labels.dim() == 1 && r.labels.size(0) == r.images,
                 "a training record needs the ", r.images, " training labels");
  core::write_npy(r.dir / "labels.npy", r.labels);
  if (r.flipped.defined()) core::write_npy(r.dir / "flipped.npy", r.flipped.to(torch::kUInt8));
  if (r.threshold.defined()) core::write_npy(r.dir / "threshold.npy", r.threshold.to(torch::kUInt8));
  nlohmann::json dyn = nullptr;
  if (r.dynamics.epochs() > 0) {
    fs::create_directories(r.dir / "dynamics");
    for (const auto& name : train::TrainingDynamics::names())
      core::write_npy(r.dir / dynamics_file(name), r.dynamics.get(name));
    dyn = {{"epochs", r.dynamics.epochs()}, {"fields", train::TrainingDynamics::names()}};
  }
  nlohmann::json ckpts = nlohmann::json::array();
  for (const auto& c : r.checkpoints)
    ckpts.push_back({{"epoch", c.epoch},
                     {"file", fs::relative(c.path, r.dir).generic_string()},
                     {"lr_mean", c.lr_mean},
                     {"crc32", c.crc32}});
  const nlohmann::json j = {{"format", kRecordFormat},
                            {"version", kVersion},
                            {"data", r.data},
                            {"images", r.images},
                            {"classes", r.classes},
                            {"class_names", r.class_names},
                            {"seed", r.seed},
                            {"noise_fraction", r.noise_fraction},
                            {"flipped", r.flipped.defined() ? r.flipped.to(torch::kInt64).sum().item<int64_t>() : 0},
                            {"threshold_samples",
                             r.threshold.defined() ? r.threshold.to(torch::kInt64).sum().item<int64_t>() : 0},
                            {"labels_crc32", tensor_crc32(r.labels)},
                            {"dynamics", dyn},
                            {"checkpoints", ckpts}};
  nlohmann::json out = j;
  if (!r.data_flags.empty()) out["data_flags"] = nlohmann::json::parse(r.data_flags);
  core::write_text_atomically(r.dir / "record.json", out.dump(2) + "\n");
}

TrainRecord read_train_record(const fs::path& dir, const std::string& flag) {
  GRADLENS_CHECK(fs::is_directory(dir), flag, ": ", dir.string(),
                 " is not a directory; give the --out directory of 'gradlens train'");
  const std::string fix =
      "give the --out directory of 'gradlens train --save-every-epoch --record-dynamics' (or --noisy-labels)";
  const auto j = parse_manifest(dir / "record.json", kRecordFormat, flag, fix);
  TrainRecord r;
  r.dir = dir;
  try {
    r.data = j.at("data").get<std::string>();
    r.images = j.at("images").get<int64_t>();
    r.classes = j.at("classes").get<int64_t>();
    r.class_names = j.at("class_names").get<std::vector<std::string>>();
    r.seed = j.at("seed").get<uint64_t>();
    r.noise_fraction = j.at("noise_fraction").get<double>();
    if (j.contains("data_flags")) {
      GRADLENS_CHECK(j.at("data_flags").is_object(), flag, ": ", (dir / "record.json").string(),
                     ": data_flags is not an object");
      r.data_flags = j.at("data_flags").dump();
    }
  } catch (const nlohmann::json::exception& e) {
    GRADLENS_CHECK(false, flag, ": ", (dir / "record.json").string(), " lacks a field or has a wrong type (",
                   e.what(), ")");
  }
  GRADLENS_CHECK(r.images >= 1 && r.classes >= 2, flag, ": ", (dir / "record.json").string(), " records ",
                 r.images, " images of ", r.classes, " classes");
  r.labels = read_shaped(dir / "labels.npy", torch::kInt64, {r.images}, flag);
  GRADLENS_CHECK(r.labels.min().item<int64_t>() >= 0 && r.labels.max().item<int64_t>() < r.classes, flag, ": ",
                 (dir / "labels.npy").string(), " holds a label outside [0, ", r.classes, ")");
  GRADLENS_CHECK(tensor_crc32(r.labels) == j.value("labels_crc32", ""), flag, ": ",
                 (dir / "labels.npy").string(), " is not the file record.json recorded (its CRC-32 differs)");
  if (fs::exists(dir / "flipped.npy")) r.flipped = read_shaped(dir / "flipped.npy", torch::kUInt8, {r.images}, flag);
  if (j.value("threshold_samples", int64_t{0}) > 0)
    r.threshold = read_shaped(dir / "threshold.npy", torch::kUInt8, {r.images}, flag);
  const auto& dyn = j.at("dynamics");
  if (dyn.is_object()) {
    const int64_t e = dyn.value("epochs", int64_t{0});
    GRADLENS_CHECK(e >= 1, flag, ": ", (dir / "record.json").string(), " records ", e, " epochs of dynamics");
    for (const auto& name : train::TrainingDynamics::names())
      r.dynamics.get(name) = read_shaped(dir / dynamics_file(name), name == "correct" ? torch::kUInt8 : torch::kFloat32,
                                         {e, r.images}, flag);
  }
  for (const auto& c : j.at("checkpoints")) {
    EpochCheckpoint e;
    e.epoch = c.at("epoch").get<int64_t>();
    e.path = dir / c.at("file").get<std::string>();
    e.lr_mean = c.at("lr_mean").get<double>();
    e.crc32 = c.at("crc32").get<std::string>();
    GRADLENS_CHECK(fs::exists(e.path), flag, ": the checkpoint of epoch ", e.epoch, " (", e.path.string(),
                   ") is missing");
    r.checkpoints.push_back(e);
  }
  return r;
}

std::optional<std::vector<influence::GradientFactors>> read_influence_store(const fs::path& dir, const StoreKey& key,
                                                                          const std::string& flag,
                                                                          std::string* warning) {
  if (!fs::exists(dir)) return std::nullopt;
  const std::string fix = "delete it to recompute it, or give another " + flag;
  const auto j = parse_manifest(dir / "manifest.json", kStoreFormat, flag, fix);
  const auto crcs = j.value("checkpoint_crc32", std::vector<std::string>{});
  GRADLENS_CHECK(crcs == key.checkpoint_crc32, flag, ": the store ", dir.string(),
                 " was computed from other checkpoints (their CRC-32s differ); ", fix);
  GRADLENS_CHECK(j.value("images", int64_t{-1}) == key.images && j.value("labels_crc32", "") == key.labels_crc32,
                 flag, ": the store ", dir.string(), " was computed for other training images or labels; ", fix);
  GRADLENS_CHECK(j.value("projection", "") == key.projection, flag, ": the store ", dir.string(),
                 " holds gradients projected as '", j.value("projection", ""), "', not as asked ('", key.projection,
                 "': --param-layers, --proj-dim, --proj-seed, --projection); ", fix);
  // The files' checksums (absent from stores written before they were recorded).
  std::map<std::string, std::string> sums;
  try {
    sums = j.value("crc32", std::map<std::string, std::string>{});
  } catch (const nlohmann::json::exception&) {
    GRADLENS_CHECK(false, flag, ": the store ", dir.string(), "'s manifest.json has a malformed crc32 field; ", fix);
  }
  const std::string refresh = "delete the store " + dir.string() + " to recompute it, or give another " + flag;
  if (sums.empty() && warning != nullptr)
    *warning = flag + ": the store " + dir.string() + " was written before gradlens recorded checksums, so its "
               "files are read unverified; delete it to recompute it with them";
  const auto read = [&](const std::string& file) {
    if (!sums.empty()) {
      const auto it = sums.find(file);
      GRADLENS_CHECK(it != sums.end(), flag, ": the store ", dir.string(), " has no checksum for ", file,
                     "; it is damaged: ", refresh);
      core::verify_file_crc32(dir / file, it->second, "the store's manifest", refresh);
    }
    return core::read_npy(dir / file);
  };
  std::vector<influence::GradientFactors> out;
  for (size_t t = 0; t < crcs.size(); ++t) {
    char stem[32];
    std::snprintf(stem, sizeof stem, "checkpoint-%03zu", t + 1);
    influence::GradientFactors g;
    g.delta = read(std::string(stem) + ".delta.npy");
    g.features = read(std::string(stem) + ".features.npy");
    if (!key.projection.empty()) {
      g.projected = read(std::string(stem) + ".projected.npy");
      GRADLENS_CHECK(g.projected.dim() == 2 && g.projected.size(0) == key.images &&
                         g.projected.scalar_type() == torch::kFloat32,
                     flag, ": the store ", dir.string(), " holds projected gradients of the wrong shape for "
                     "checkpoint ", t + 1, "; ", fix);
    }
    GRADLENS_CHECK(g.delta.dim() == 2 && g.features.dim() == 2 && g.delta.size(0) == key.images &&
                       g.features.size(0) == key.images && g.delta.scalar_type() == torch::kFloat32 &&
                       g.features.scalar_type() == torch::kFloat32,
                   flag, ": the store ", dir.string(), " holds factors of the wrong shape for checkpoint ", t + 1,
                   "; ", fix);
    out.push_back(std::move(g));
  }
  return out;
}

InfluenceStoreWriter::InfluenceStoreWriter(const fs::path& dir, StoreKey key, std::string flag)
    : staged_(dir, flag), key_(std::move(key)), flag_(std::move(flag)) {}

void InfluenceStoreWriter::add(const influence::GradientFactors& factors) {
  GRADLENS_CHECK(added_ < key_.checkpoint_crc32.size(), "an influence store of ", key_.checkpoint_crc32.size(),
                 " checkpoints was given more");
  const auto write = [&](const std::string& file, const torch::Tensor& t) {
    core::write_npy(staged_.path() / file, t);
    sums_[file] = core::file_crc32(staged_.path() / file);
  };
  char stem[32];
  std::snprintf(stem, sizeof stem, "checkpoint-%03zu", added_ + 1);
  write(std::string(stem) + ".delta.npy", factors.delta);
  write(std::string(stem) + ".features.npy", factors.features);
  if (factors.projected.defined()) write(std::string(stem) + ".projected.npy", factors.projected);
  if (added_ == 0) {
    classes_ = factors.delta.size(1);
    features_ = factors.features.size(1);
  }
  ++added_;
}

void InfluenceStoreWriter::commit() {
  GRADLENS_CHECK(added_ == key_.checkpoint_crc32.size(), "an influence store needs one set of factors per "
                 "checkpoint: ", key_.checkpoint_crc32.size(), " checkpoints, ", added_, " given");
  const nlohmann::json j = {{"format", kStoreFormat},
                            {"version", kVersion},
                            {"images", key_.images},
                            {"labels_crc32", key_.labels_crc32},
                            {"checkpoint_crc32", key_.checkpoint_crc32},
                            {"projection", key_.projection},
                            {"classes", classes_},
                            {"features", features_},
                            {"crc32", sums_}};
  core::write_text_atomically(staged_.path() / "manifest.json", j.dump(2) + "\n");
  staged_.commit();
}

void write_influence_store(const fs::path& dir, const StoreKey& key,
                           const std::vector<influence::GradientFactors>& factors, const std::string& flag) {
  GRADLENS_CHECK(factors.size() == key.checkpoint_crc32.size(), "an influence store needs one set of factors per "
                 "checkpoint");
  InfluenceStoreWriter writer(dir, key, flag);
  for (const auto& f : factors) writer.add(f);
  writer.commit();
}

}  // namespace gradlens::io
