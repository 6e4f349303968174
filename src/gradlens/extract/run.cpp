#include "gradlens/extract/run.h"
#include <torch/torch.h>

#include <unistd.h>

#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <torch/version.h>

#include "gradlens/core/check.h"
#include "gradlens/core/fs.h"
#include "gradlens/core/npy.h"
#include "gradlens/data/dataset.h"
#include "gradlens/models/classifier.h"
#include "gradlens/models/resnet.h"

namespace gradlens::extract {

namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;

double since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Accumulates named stage times in first-seen order.
struct Timings {
  std::vector<std::pair<std::string, double>> items;
  void add(const std::string& k, double s) {
    for (auto& it : items)
      if (it.first == k) {
        it.second += s;
        return;
      }
    items.emplace_back(k, s);
  }
};

// Removes the temporary run directory unless released.
struct TempDirGuard {
  fs::path dir;
  bool keep = false;
  ~TempDirGuard() {
    if (!keep && !dir.empty()) {
      std::error_code ec;
      fs::remove_all(dir, ec);
    }
  }
};

// Multi-process runs: replaces every file of this rank's shard in `dir` by
// the rows of all ranks (on rank 0) and returns the gathered probabilities
// (rank 0) for the audit. A rank without rows contributes [0] / [0, 0].
torch::Tensor run_gather_shards(const fs::path& dir, const std::vector<OutputSpec>& specs, bool have_rows,
                                const std::vector<torch::Tensor>& probs_parts, const ExtractRanks& ranks) {
  GRADLENS_CHECK(static_cast<bool>(ranks.gather_rows), "run_extract: world_size ", ranks.world_size,
                 " needs ExtractRanks::gather_rows");
  const bool root = ranks.rank == 0;
  auto one = [&](const std::string& file, bool matrix) {
    const fs::path p = dir / file;
    torch::Tensor local = have_rows ? core::read_npy(p)
                                    : torch::empty(matrix ? std::vector<int64_t>{0, 0} : std::vector<int64_t>{0},
                                                   matrix ? torch::kFloat : torch::kLong);
    const torch::Tensor all = ranks.gather_rows(local);
    if (root) core::write_npy(p, all);
  };
  for (const auto& s : specs) one(s.name + ".npy", true);
  one("labels.npy", false);
  one("preds.npy", false);
  torch::Tensor probs = probs_parts.empty() ? torch::empty({0, 0}, torch::kDouble) : torch::cat(probs_parts, 0);
  return ranks.gather_rows(probs);
}

}  // namespace

ExtractRunResult run_extract(models::Classifier& model, const data::Dataset& ds,
                             const ExtractConfig& cfg, const core::ProgressFn& progress) {
  const auto t_total = Clock::now();
  const auto specs = plan_outputs(cfg.options);  // validate options first
  const auto* resnet = dynamic_cast<const models::ResNet*>(&model);
  const int64_t winograd_before = resnet != nullptr ? resnet->winograd_convolutions() : 0;
  GRADLENS_CHECK(ds.images.defined() && ds.images.dim() == 4, "dataset '", ds.name,
                 "' has no [N, C, H, W] images");
  const int64_t n = ds.images.size(0);
  GRADLENS_CHECK(n > 0, "dataset '", ds.name, "' is empty; nothing to extract");
  GRADLENS_CHECK(cfg.batch_size >= 1, "--batch-size must be >= 1, got ", cfg.batch_size);
  GRADLENS_CHECK(!cfg.out.empty(), "--out: no output directory given");
  GRADLENS_CHECK(ds.labels.defined() && ds.labels.dim() == 1 && ds.labels.size(0) == n,
                 "dataset '", ds.name, "' has ", ds.labels.defined() ? ds.labels.numel() : 0,
                 " labels for ", n, " images");
  if (cfg.indices.defined())
    GRADLENS_CHECK(cfg.indices.dim() == 1 && cfg.indices.size(0) == n &&
                       cfg.indices.scalar_type() == torch::kLong,
                   "subset indices must be int64 [", n, "], got ", cfg.indices.sizes(), " ",
                   c10::toString(cfg.indices.scalar_type()));

  // The output directory: refuse to clobber anything but a previous run.
  const fs::path out = fs::absolute(cfg.out).lexically_normal();
  const fs::path parent = out.has_parent_path() ? out.parent_path() : fs::path(".");
  if (fs::exists(out)) {
    GRADLENS_CHECK(cfg.overwrite, "--out ", out.string(),
                   " already exists; choose a new directory or pass --overwrite");
    GRADLENS_CHECK(fs::is_directory(out) && fs::exists(out / "manifest.json"), "--out ",
                   out.string(),
                   " exists and is not a gradlens run directory (no manifest.json); refusing to "
                   "replace it");
  }
  core::ensure_writable_dir(parent, "--out");
  TempDirGuard tmp{parent / ("." + out.filename().string() + ".partial-" + std::to_string(::getpid()))};
  {
    std::error_code ec;
    fs::remove_all(tmp.dir, ec);
    fs::create_directories(tmp.dir, ec);
    GRADLENS_CHECK(!ec, "--out: cannot create ", tmp.dir.string(), ": ", ec.message());
  }

  ExtractRunResult res;
  res.out = out;
  res.n = n;
  res.outputs = specs;
  Timings timings;

  const torch::Device device = model.device();
  std::vector<core::NpyWriter> writers;
  core::NpyWriter labels_w(tmp.dir / "labels.npy", torch::kLong, {});
  core::NpyWriter preds_w(tmp.dir / "preds.npy", torch::kLong, {});
  std::vector<torch::Tensor> probs_parts;  // [N, K] in all: kept for the audit's identity check
  int64_t correct = 0, map_h = 0, map_w = 0;
  std::string layer;
  const bool need_probs = cfg.audit;
  const ExtractRanks& ranks = cfg.ranks;
  const bool multi = ranks.world_size > 1;
  const bool root = ranks.rank == 0;
  const int64_t row_end = ranks.row_end < 0 ? n : std::min(n, ranks.row_end);
  GRADLENS_CHECK(ranks.row_begin >= 0 && ranks.row_begin <= row_end, "run_extract: bad row range [",
                 ranks.row_begin, ", ", row_end, ") of ", n, " rows");

  for (int64_t start = ranks.row_begin; start < row_end; start += cfg.batch_size) {
    const int64_t end = std::min(row_end, start + cfg.batch_size);
    auto x = data::to_float(ds, ds.images.slice(0, start, end)).to(device);
    check_finite_rows(x, start);
    const auto y = ds.labels.slice(0, start, end);
    auto o = extract_batch(model, x, y.to(device), cfg.options);
    for (const auto& [k, s] : o.seconds) timings.add(k, s);
    const auto t_write = Clock::now();
    if (writers.empty()) {
      for (size_t j = 0; j < o.specs.size(); ++j)
        writers.emplace_back(tmp.dir / (o.specs[j].name + ".npy"), torch::kFloat,
                             std::vector<int64_t>{o.values[j].size(1)});
      map_h = o.map_height;
      map_w = o.map_width;
      layer = o.layer;
    }
    for (size_t j = 0; j < o.specs.size(); ++j) writers[j].append(o.values[j]);
    const auto preds = o.preds.to(torch::kCPU);
    labels_w.append(y);
    preds_w.append(preds);
    correct += (preds == y.to(torch::kLong)).sum().item<int64_t>();
    if (need_probs) probs_parts.push_back(torch::softmax(o.logits, 1).to(torch::kCPU, torch::kDouble));
    timings.add("write", since(t_write));
    ++res.batches;
    res.backward_passes_per_batch = o.backward_passes;
    core::ProgressEvent ev;
    ev.stage = "extract";
    ev.done = end;
    ev.total = n;
    ev.elapsed_s = since(t_total);
    core::report(progress, ev);
  }
  for (auto& w : writers) {
    res.shapes.push_back({w.rows(), 0});
    w.close();
  }
  labels_w.close();
  preds_w.close();
  if (multi) {
    // Rank 0 gathers every file in rank order; the other ranks are done.
    const auto all_probs = run_gather_shards(tmp.dir, specs, !writers.empty(), probs_parts, ranks);
    if (!root) {
      res.out.clear();
      res.n = row_end - ranks.row_begin;
      timings.add("total", since(t_total));
      res.seconds = timings.items;
      return res;
    }
    probs_parts.assign(1, all_probs);
    const auto labels_all = core::read_npy(tmp.dir / "labels.npy");
    correct = (core::read_npy(tmp.dir / "preds.npy") == labels_all).sum().item<int64_t>();
    res.batches = (n + cfg.batch_size - 1) / cfg.batch_size;
    res.shapes.clear();
    for (size_t j = 0; j < specs.size(); ++j) res.shapes.push_back({n, 0});
  }
  for (size_t j = 0; j < specs.size(); ++j)
    res.shapes[j][1] = core::read_npy_header(tmp.dir / (specs[j].name + ".npy")).shape.at(1);
  res.accuracy = static_cast<double>(correct) / static_cast<double>(n);

  // Audit, one representation at a time.
  nlohmann::json audit_json = nlohmann::json::object();
  if (cfg.audit) {
    const auto t_audit = Clock::now();
    const auto labels = ds.labels.to(torch::kCPU, torch::kLong);
    const auto preds = core::read_npy(tmp.dir / "preds.npy");
    const auto probs = torch::cat(probs_parts, 0);
    probs_parts.clear();
    const int64_t k = probs.size(1);
    torch::Tensor w;  // the head's weight, where logits = Linear(features)
    try {
      w = model.fc_weight().detach().to(torch::kCPU);
    } catch (const c10::Error&) {
      // no plain final nn.Linear: the head identity does not apply
    }
    for (size_t j = 0; j < specs.size(); ++j) {
      const auto& s = specs[j];
      const auto x = core::read_npy_matrix(tmp.dir / (s.name + ".npy"));
      AuditInput in{s.name, s.uses_true_labels, {}};
      if (s.representation == "gradcam-weights" && w.defined() && x.size(1) == w.size(1)) {
        torch::Tensor g;
        if (s.variant == "pred") g = torch::one_hot(preds, k).to(torch::kDouble);
        if (s.variant == "true") g = torch::one_hot(labels, k).to(torch::kDouble);
        if (s.variant == "loss") g = probs - torch::one_hot(labels, k).to(torch::kDouble);
        in.head_identity = gradcam_head_identity(w, g, map_h * map_w);
      }
      auto a = audit_representation(x, labels, std::max<int64_t>(k, ds.num_classes()), in,
                                    cfg.audit_options);
      for (const auto& wmsg : a.warnings) res.warnings.push_back(wmsg);
      audit_json[s.name] = a;
      res.audits.push_back(std::move(a));
      core::ProgressEvent ev;
      ev.stage = "audit";
      ev.done = static_cast<int64_t>(j + 1);
      ev.total = static_cast<int64_t>(specs.size());
      ev.elapsed_s = since(t_total);
      ev.note = s.name;
      core::report(progress, ev);
    }
    timings.add("audit", since(t_audit));
  }

  // Manifest.
  nlohmann::json m;
  m["format"] = "gradlens-extract";
  m["format_version"] = 1;
  m["model"] = model.describe();
  // Whether some convolutions ran by Winograd F(4x4, 3x3) (equal to
  // LibTorch's up to float rounding; --conv-algorithm).
  m["convolutions"] =
      resnet != nullptr && resnet->winograd_convolutions() > winograd_before ? "winograd" : "libtorch";
  m["model_spec"] = cfg.model_spec;
  m["checkpoint_crc32"] = nullptr;
  if (!cfg.model_spec.empty() && fs::is_regular_file(cfg.model_spec))
    m["checkpoint_crc32"] = core::file_crc32(cfg.model_spec);
  m["device"] = device.str();
  m["dataset"] = cfg.dataset_name.empty() ? ds.name : cfg.dataset_name;
  m["n"] = n;
  m["num_classes"] = ds.num_classes();
  m["input"] = {{"mean", ds.mean},
                {"std", ds.std},
                {"input_range", data::input_range_name(ds)},
                {"image_size", {ds.images.size(2), ds.images.size(3)}},
                {"normalization", ds.normalization},
                {"text", data::describe_input(ds)}};
  m["class_names"] = ds.class_names;
  if (cfg.indices.defined()) {
    const auto idx = cfg.indices.to(torch::kCPU).contiguous();
    m["indices"] = std::vector<int64_t>(idx.data_ptr<int64_t>(), idx.data_ptr<int64_t>() + n);
  } else {
    m["indices"] = nullptr;
  }
  m["layer"] = layer;
  m["map_size"] = {map_h, map_w};
  m["gradcam_targets"] = cfg.options.gradcam_targets;
  m["grad_labels"] = cfg.options.grad_labels;
  m["param_layer"] = cfg.options.param_layer.empty() ? "fc" : cfg.options.param_layer;
  m["pool"] = cfg.options.pool;
  m["batch_size"] = cfg.batch_size;
  m["passes_per_batch"] = {{"forward", 1}, {"backward", res.backward_passes_per_batch}};
  m["seed"] = cfg.seed;
  m["libtorch_version"] = TORCH_VERSION;
  m["accuracy"] = res.accuracy;
  m["labels"] = "labels.npy";
  m["preds"] = "preds.npy";
  nlohmann::json reps = nlohmann::json::array();
  for (size_t j = 0; j < specs.size(); ++j) {
    const auto& s = specs[j];
    reps.push_back({{"name", s.name},
                    {"file", s.name + ".npy"},
                    {"representation", s.representation},
                    {"variant", s.variant},
                    {"uses_true_labels", s.uses_true_labels},
                    {"gradient_seed", s.seed},
                    {"shape", res.shapes[j]},
                    {"dtype", "float32"}});
  }
  m["representations"] = reps;
  m["audit"] = audit_json;
  m["warnings"] = res.warnings;
  timings.add("total", since(t_total));
  res.seconds = timings.items;
  nlohmann::json secs = nlohmann::json::object();
  for (const auto& [k, s] : res.seconds) secs[k] = s;
  m["seconds"] = secs;
  core::write_text_atomically(tmp.dir / "manifest.json", m.dump(2) + "\n");

  // Publish.
  std::error_code ec;
  if (fs::exists(out)) {
    fs::remove_all(out, ec);
    GRADLENS_CHECK(!ec, "--out: cannot replace ", out.string(), ": ", ec.message());
  }
  fs::rename(tmp.dir, out, ec);
  GRADLENS_CHECK(!ec, "--out: cannot move ", tmp.dir.string(), " to ", out.string(), ": ",
                 ec.message());
  tmp.keep = true;
  return res;
}

}  // namespace gradlens::extract
