#include "gradlens/pipeline/data_source.h"
#include <torch/types.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "gradlens/core/check.h"
#include "gradlens/core/runtime.h"
#include "gradlens/data/image_folder.h"
#include "gradlens/data/image_ops.h"
#include "gradlens/data/mnist.h"
#include "gradlens/data/subset.h"
#include "gradlens/models/metadata.h"

namespace gradlens::pipeline {

namespace {

bool ds_is_idx(const DataConfig& cfg) { return cfg.data == "fashion-mnist" || cfg.data == "mnist"; }

data::Dataset ds_load_idx(const DataConfig& cfg, data::Split split) {
  const bool fashion = cfg.data == "fashion-mnist";
  const std::string dir = !cfg.idx_dir.empty() ? cfg.idx_dir : data::default_idx_dir(cfg.data);
  auto ds = fashion ? data::load_fashion_mnist(dir, split) : data::load_mnist(dir, split);
  ds.normalization = fashion ? "Fashion-MNIST training-set constants" : "MNIST training-set constants";
  return ds;
}

// Resize/crop of IDX images (an ImageFolder's are resized as they are
// decoded), then the normalisation of --mean/--std/--input-range.
void ds_preprocess(const DataConfig& cfg, data::Dataset& ds, bool idx) {
  if (idx && (cfg.resize > 0 || (cfg.image_size > 0 && cfg.image_size != ds.images.size(3)))) {
    const int64_t crop = cfg.image_size > 0 ? cfg.image_size : ds.images.size(3);
    GRADLENS_CHECK(cfg.resize == 0 || cfg.resize >= crop, "--resize ", cfg.resize,
                   " is smaller than the centre crop --image-size ", crop, "; give --resize >= --image-size");
    const auto side = static_cast<uint64_t>(std::max(crop, cfg.resize));
    core::check_fits_in_memory(static_cast<uint64_t>(ds.images.size(0) * ds.images.size(1)) * side * side * 4,
                               "--image-size " + std::to_string(crop) + " (--resize " + std::to_string(cfg.resize) +
                                   ") on " + std::to_string(ds.images.size(0)) + " images",
                               "lower --image-size/--resize or use fewer images (--train-per-class, --test-per-class)");
    ds.images = data::resize_center_crop_batch(ds.images, crop, cfg.resize);
  }
  GRADLENS_CHECK(cfg.input_range.empty() || cfg.input_range == "0-1" || cfg.input_range == "0-255",
                 "--input-range ", cfg.input_range, ": use 0-1 (the model takes x/255) or 0-255 (raw pixels)");
  GRADLENS_CHECK(cfg.mean.size() == cfg.std.size(), "--mean and --std come together, one value per channel; got ",
                 cfg.mean.size(), " and ", cfg.std.size(), " value(s)");
  const int64_t c = ds.channels();
  if (!cfg.mean.empty()) {
    GRADLENS_CHECK(static_cast<int64_t>(cfg.mean.size()) == c, "--mean/--std have ", cfg.mean.size(),
                   " value(s) but the data has ", c, " channel(s); give one per channel");
    for (size_t i = 0; i < cfg.mean.size(); ++i)
      GRADLENS_CHECK(std::isfinite(cfg.mean[i]) && std::isfinite(cfg.std[i]) && cfg.std[i] > 0, "--mean/--std: channel ",
                     i, " has mean ", cfg.mean[i], " and std ", cfg.std[i], "; both must be finite and std > 0");
    ds.mean = cfg.mean;
    ds.std = cfg.std;
    ds.normalization = cfg.preprocess_source.empty() ? "--mean/--std" : "mean/std of " + cfg.preprocess_source;
  } else if (!cfg.input_range.empty()) {
    ds.mean.assign(static_cast<size_t>(c), 0.0);
    ds.std.assign(static_cast<size_t>(c), 1.0);
    ds.normalization = "none (--input-range without --mean/--std)";
  }
  if (cfg.mean.empty() && cfg.input_range.empty()) return;
  ds.pixel_scale = cfg.input_range == "0-255" ? 1.0 : 1.0 / 255;
  ds.normalization += cfg.input_range == "0-255" ? ", inputs in [0, 255]" : ", inputs in [0, 1]";
}

// The ranges the CLI's data flags enforce, for callers that fill DataConfig
// themselves (the Python module, tests).
void ds_check(const DataConfig& cfg) {
  GRADLENS_CHECK_OPTION(cfg.image_size >= 0 && cfg.image_size <= 4096, "--image-size ", cfg.image_size,
                        ": give 0 (the data's own size) to 4096 pixels");
  GRADLENS_CHECK_OPTION(cfg.resize >= 0 && cfg.resize <= 4096, "--resize ", cfg.resize,
                        ": give 0 (no resize) to 4096 pixels");
  GRADLENS_CHECK_OPTION(cfg.channels == 0 || cfg.channels == 1 || cfg.channels == 3, "--channels ", cfg.channels,
                        ": give 1 (grayscale) or 3 (RGB), or 0 for the data's own");
  GRADLENS_CHECK_OPTION(cfg.test_fraction > 0.0 && cfg.test_fraction <= 0.9, "--test-fraction ",
                        cfg.test_fraction, ": give a share above 0 (0 would leave no test images) and at most 0.9");
  GRADLENS_CHECK_OPTION(cfg.train_per_class >= 0, "--train-per-class ", cfg.train_per_class,
                        ": give 0 (all) or more");
  GRADLENS_CHECK_OPTION(cfg.test_per_class >= 0, "--test-per-class ", cfg.test_per_class, ": give 0 (all) or more");
}

// The per-class limits of --train-per-class / --test-per-class.
data::Dataset ds_limit(data::Dataset ds, int64_t per_class, data::SubsetMode mode, uint64_t seed) {
  if (per_class <= 0) return ds;
  return data::balanced_subset(ds, per_class, mode, seed);
}

}  // namespace

ModelData data_for_models(const DataConfig& flags, const std::vector<std::string>& model_files) {
  ModelData r;
  r.data = flags;
  const models::ModelMetadata* first = nullptr;
  std::vector<models::ModelMetadata> metas;
  bool any_torchscript = false;
  for (const auto& f : model_files) {
    metas.push_back(models::read_model_metadata(f));
    any_torchscript |= models::is_torchscript_file(f);
  }
  for (const auto& m : metas) {
    if (!m.present) continue;
    if (!m.class_names.empty()) r.class_names.emplace_back(m.path, m.class_names);
    if (first == nullptr) {
      first = &m;
      continue;
    }
    GRADLENS_CHECK(m.mean == first->mean && m.std == first->std && m.input_range == first->input_range &&
                       m.image_size == first->image_size && m.resize == first->resize &&
                       m.channels == first->channels,
                   "the gradlens.json of ", first->path, " and of ", m.path,
                   " ask for different inputs (mean/std, input_range, image_size, resize or channels); "
                   "evaluate the models separately, or give --mean/--std/--input-range/--image-size");
  }
  if (first != nullptr) {
    DataConfig& d = r.data;
    bool used = false;
    if (d.mean.empty() && !first->mean.empty()) d.mean = first->mean, d.std = first->std, used = true;
    if (d.input_range.empty() && !first->input_range.empty()) d.input_range = first->input_range, used = true;
    if (d.image_size == 0 && first->image_size > 0) d.image_size = first->image_size, used = true;
    if (d.resize == 0 && first->resize > 0) d.resize = first->resize, used = true;
    if (d.channels == 0 && first->channels > 0) d.channels = first->channels, used = true;
    if (used) r.source = d.preprocess_source = "gradlens.json in " + first->path;
  }
  if (any_torchscript && r.data.mean.empty() && r.data.input_range.empty())
    r.assumed = "no --mean/--std/--input-range and no gradlens.json in the model file: the TorchScript model "
                "gets the data's own normalisation; if it was trained with other preprocessing give "
                "--mean/--std (and --input-range) or save them in the file (docs/own-model.md)";
  return r;
}

void check_model_classes(const ModelData& md, const data::Dataset& ds) {
  for (const auto& [file, names] : md.class_names)
    GRADLENS_CHECK(static_cast<int64_t>(names.size()) == ds.num_classes(), file, ": its gradlens.json names ",
                   names.size(), " classes but the data has ", ds.num_classes(),
                   "; use the data the model was trained on, or fix class_names");
}

std::string data_flags_json(const DataConfig& cfg) {
  const nlohmann::json j = {{"data", cfg.data},
                            {"data_dir", cfg.idx_dir},
                            {"image_size", cfg.image_size},
                            {"resize", cfg.resize},
                            {"mean", cfg.mean},
                            {"std", cfg.std},
                            {"input_range", cfg.input_range},
                            {"channels", cfg.channels},
                            {"skip_bad_images", cfg.skip_bad_images},
                            {"test_fraction", cfg.test_fraction},
                            {"train_per_class", cfg.train_per_class},
                            {"test_per_class", cfg.test_per_class},
                            {"subset", data::subset_mode_name(cfg.subset)}};
  return j.dump();
}

DataConfig data_flags_from_json(const std::string& json, const std::string& what) {
  DataConfig d;
  try {
    const auto j = nlohmann::json::parse(json);
    d.data = j.at("data").get<std::string>();
    d.idx_dir = j.at("data_dir").get<std::string>();
    d.image_size = j.at("image_size").get<int64_t>();
    d.resize = j.at("resize").get<int64_t>();
    d.mean = j.at("mean").get<std::vector<double>>();
    d.std = j.at("std").get<std::vector<double>>();
    d.input_range = j.at("input_range").get<std::string>();
    d.channels = j.at("channels").get<int64_t>();
    d.skip_bad_images = j.at("skip_bad_images").get<bool>();
    d.test_fraction = j.at("test_fraction").get<double>();
    d.train_per_class = j.at("train_per_class").get<int64_t>();
    d.test_per_class = j.at("test_per_class").get<int64_t>();
    d.subset = data::parse_subset_mode(j.at("subset").get<std::string>(), what);
  } catch (const nlohmann::json::exception& e) {
    GRADLENS_CHECK(false, what, ": the recorded data flags are not readable (", e.what(), ")");
  }
  return d;
}

Splits load_splits(const DataConfig& cfg, uint64_t seed) {
  ds_check(cfg);
  Splits s;
  if (ds_is_idx(cfg)) {
    s.train = ds_load_idx(cfg, data::Split::kTrain);
    s.test = ds_load_idx(cfg, data::Split::kTest);
    ds_preprocess(cfg, s.train, true);
    ds_preprocess(cfg, s.test, true);
  } else {
    GRADLENS_CHECK(std::filesystem::is_directory(cfg.data), "--data ", cfg.data,
                   ": not 'fashion-mnist', 'mnist' or an existing ImageFolder directory "
                   "(root/<class>/<image>)");
    data::ImageFolderOptions o;
    o.channels = cfg.channels == 0 ? 3 : static_cast<int>(cfg.channels);
    o.size = cfg.image_size == 0 ? (o.channels == 1 ? 28 : 224) : cfg.image_size;
    o.resize = cfg.resize;
    o.skip_bad_images = cfg.skip_bad_images;
    auto all = data::load_image_folder(cfg.data, o).dataset;
    GRADLENS_CHECK(all.num_classes() >= 2, "--data ", cfg.data, ": ", all.num_classes(),
                   " class folder (", all.class_names.empty() ? std::string() : all.class_names[0],
                   "); training or evaluating a classifier needs at least two classes, each in its own "
                   "folder root/<class>/<image>");
    auto [tr, te] = data::train_test_split(all, cfg.test_fraction, seed);
    s.train = std::move(tr);
    s.test = std::move(te);
    // Normalise with the training split's statistics only (no test leakage).
    auto x = s.train.images.to(torch::kFloat64) / 255.0;
    auto mean = x.mean({0, 2, 3});
    auto std = x.std({0, 2, 3}, /*unbiased=*/false).clamp_min(1e-6);
    s.train.mean.assign(mean.data_ptr<double>(), mean.data_ptr<double>() + mean.numel());
    s.train.std.assign(std.data_ptr<double>(), std.data_ptr<double>() + std.numel());
    s.test.mean = s.train.mean;
    s.test.std = s.train.std;
    s.train.normalization = s.test.normalization = "training-split statistics";
    ds_preprocess(cfg, s.train, false);
    ds_preprocess(cfg, s.test, false);
  }
  const auto mode = cfg.subset;
  s.train = ds_limit(std::move(s.train), cfg.train_per_class, mode, seed);
  s.test = ds_limit(std::move(s.test), cfg.test_per_class, mode, seed + 1);
  return s;
}

data::Dataset load_split(const DataConfig& cfg, uint64_t seed, bool train) {
  ds_check(cfg);
  if (ds_is_idx(cfg)) {
    // Each IDX split is its own pair of files with fixed normalisation
    // constants, so only the split asked for is read.
    const auto mode = cfg.subset;
    auto ds = ds_load_idx(cfg, train ? data::Split::kTrain : data::Split::kTest);
    ds_preprocess(cfg, ds, true);
    return train ? ds_limit(std::move(ds), cfg.train_per_class, mode, seed)
                 : ds_limit(std::move(ds), cfg.test_per_class, mode, seed + 1);
  }
  Splits s = load_splits(cfg, seed);  // an ImageFolder's test split needs the training statistics
  return train ? std::move(s.train) : std::move(s.test);
}

}  // namespace gradlens::pipeline
