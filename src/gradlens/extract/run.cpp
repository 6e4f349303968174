#include "gradlens/extract/run.h"
#include <torch/torch.h>

#include <unistd.h>

#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <torch/version.h>

#include "gradlens/core/check.h"
#include "gradlens/core/timer.h"
#include "gradlens/extract/logit_seed.h"
#include "gradlens/core/fs.h"
#include "gradlens/core/npy.h"
#include "gradlens/core/strings.h"
#include "gradlens/data/dataset.h"
#include "gradlens/models/classifier.h"

namespace gradlens::extract {

namespace fs = std::filesystem;

namespace {

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

torch::Tensor ExtractRun::load(const std::string& name) const {
  const auto it = values.find(name);
  if (it != values.end()) return it->second;
  const RunEntry* e = manifest.find(name);
  GRADLENS_CHECK(e != nullptr, dir.empty() ? std::string("the run") : "the run " + dir.string(), " has no output '",
                 name, "'");
  GRADLENS_CHECK(!dir.empty(), "the output '", name, "' of an in-memory run was not kept");
  verify_file(e->file);
  return core::read_npy_matrix(dir / e->file);
}

void ExtractRun::verify_file(const std::string& file) const {
  const auto it = manifest.checksums.find(file);
  if (it == manifest.checksums.end() || !fs::exists(dir / file)) return;  // a missing file: its reader says so
  core::verify_file_crc32(dir / file, it->second, "manifest.json",
                          "re-run 'gradlens extract' (or remove the run from the cache)");
}

void ExtractRun::check_outputs(const std::vector<std::string>& names) const {
  const int64_t n = size();
  const fs::path labels_path = dir / manifest.labels_file;
  for (const auto& name : names) {
    if (values.count(name) != 0) continue;
    const RunEntry* e = manifest.find(name);
    GRADLENS_CHECK(e != nullptr, "the run ", dir.string(), " has no output '", name, "'");
    GRADLENS_CHECK(core::is_safe_file_stem(name), dir.string(), "/manifest.json: representation name '", name,
                   "' is not a plain file name (letters, digits, '.', '-', '_'); the manifest is damaged");
    const fs::path p = dir / e->file;
    GRADLENS_CHECK(fs::exists(p), "representation '", name, "': ", p.string(),
                   " listed in manifest.json is missing; re-run 'gradlens extract'");
    core::NpyHeader h;
    try {
      h = core::read_npy_header(p);
    } catch (const std::exception& ex) {
      GRADLENS_CHECK(false, error_message(ex), " (representation '", name,
                     "'); the file is damaged: re-run 'gradlens extract'");
    }
    GRADLENS_CHECK(h.dtype == torch::kFloat || h.dtype == torch::kDouble, p.string(), ": holds ", h.descr,
                   " data, not float; representation '", name,
                   "' must be a float32 [N, D] matrix (re-run 'gradlens extract')");
    GRADLENS_CHECK(h.shape.size() == 2, p.string(), ": is ", h.shape.size(), "-D; representation '", name,
                   "' must be a 2-D [N, D] matrix");
    GRADLENS_CHECK(h.shape[1] >= 1, p.string(), ": representation '", name,
                   "' has zero features per row (shape [", h.shape[0], ", 0]); nothing to analyse; "
                   "leave it out with --representations");
    GRADLENS_CHECK(h.shape[0] == n, p.string(), ": ", h.shape[0], " rows but ", labels_path.string(), " has ", n,
                   " labels; the run directory is inconsistent: re-run 'gradlens extract'");
  }
}

ExtractRunResult run_extract(models::Classifier& model, const data::Dataset& ds,
                             const ExtractConfig& cfg, const core::ProgressFn& progress) {
  const core::Stopwatch t_total;
  const auto specs = plan_outputs(cfg.options);  // validate options first
  const int64_t winograd_before = model.winograd_convolutions();
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
  core::StagedDirectory tmp(out, "--out");

  ExtractRunResult res;
  res.out = out;
  res.n = n;
  res.outputs = specs;
  Timings timings;

  const torch::Device device = model.device();
  std::vector<core::NpyWriter> writers;
  core::NpyWriter labels_w(tmp.path() / "labels.npy", torch::kLong, {});
  core::NpyWriter preds_w(tmp.path() / "preds.npy", torch::kLong, {});
  std::vector<torch::Tensor> probs_parts;  // [N, K] in all: kept for the audit's identity check
  const bool keep = cfg.keep_in_memory && cfg.ranks.world_size <= 1;
  std::vector<std::vector<torch::Tensor>> kept;  // per output, its batches (keep)
  std::vector<torch::Tensor> kept_labels, kept_preds;
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
    const core::Stopwatch t_write;
    if (writers.empty()) {
      for (size_t j = 0; j < o.specs.size(); ++j)
        writers.emplace_back(tmp.path() / (o.specs[j].name + ".npy"), torch::kFloat,
                             std::vector<int64_t>{o.values[j].size(1)});
      map_h = o.map_height;
      map_w = o.map_width;
      layer = o.layer;
    }
    for (size_t j = 0; j < o.specs.size(); ++j) writers[j].append(o.values[j]);
    const auto preds = o.preds.to(torch::kCPU);
    if (keep) {
      kept.resize(o.specs.size());
      for (size_t j = 0; j < o.specs.size(); ++j) kept[j].push_back(o.values[j].to(torch::kCPU, torch::kFloat));
      kept_labels.push_back(y.to(torch::kCPU, torch::kLong));
      kept_preds.push_back(preds.to(torch::kLong));
    }
    labels_w.append(y);
    preds_w.append(preds);
    correct += (preds == y.to(torch::kLong)).sum().item<int64_t>();
    if (need_probs) probs_parts.push_back(torch::softmax(o.logits, 1).to(torch::kCPU, torch::kDouble));
    timings.add("write", t_write.seconds());
    ++res.batches;
    res.backward_passes_per_batch = o.backward_passes;
    core::ProgressEvent ev;
    ev.stage = "extract";
    ev.done = end;
    ev.total = n;
    ev.elapsed_s = t_total.seconds();
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
    const auto all_probs = run_gather_shards(tmp.path(), specs, !writers.empty(), probs_parts, ranks);
    if (!root) {
      res.out.clear();
      res.n = row_end - ranks.row_begin;
      timings.add("total", t_total.seconds());
      res.seconds = timings.items;
      return res;
    }
    probs_parts.assign(1, all_probs);
    const auto labels_all = core::read_npy(tmp.path() / "labels.npy");
    correct = (core::read_npy(tmp.path() / "preds.npy") == labels_all).sum().item<int64_t>();
    res.batches = (n + cfg.batch_size - 1) / cfg.batch_size;
    res.shapes.clear();
    for (size_t j = 0; j < specs.size(); ++j) res.shapes.push_back({n, 0});
  }
  for (size_t j = 0; j < specs.size(); ++j)
    res.shapes[j][1] = core::read_npy_header(tmp.path() / (specs[j].name + ".npy")).shape.at(1);
  if (keep) {
    for (size_t j = 0; j < specs.size(); ++j) res.run.values[specs[j].name] = torch::cat(kept[j], 0);
    res.run.labels = torch::cat(kept_labels, 0);
    res.run.preds = torch::cat(kept_preds, 0);
    kept.clear();
  } else {
    res.run.labels = core::read_npy(tmp.path() / "labels.npy");
    res.run.preds = core::read_npy(tmp.path() / "preds.npy");
  }
  res.accuracy = static_cast<double>(correct) / static_cast<double>(n);

  // Audit, one representation at a time.
  RunManifest& m = res.run.manifest;
  if (cfg.audit) {
    const core::Stopwatch t_audit;
    const auto labels = ds.labels.to(torch::kCPU, torch::kLong);
    const auto& preds = res.run.preds;
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
      const auto x = keep ? res.run.values.at(s.name) : core::read_npy_matrix(tmp.path() / (s.name + ".npy"));
      AuditInput in{s.name, s.uses_true_labels, {}};
      if (s.representation == "gradcam-weights" && w.defined() && x.size(1) == w.size(1)) {
        GradientTarget target = GradientTarget::kPred;
        if (parse_gradient_target(s.variant, target)) {
          const auto g = logit_seed(seed_kind(target), target == GradientTarget::kPred ? preds : labels, k, probs);
          in.head_identity = gradcam_head_identity(w, g, map_h * map_w);
        }
      }
      auto a = audit_representation(x, labels, std::max<int64_t>(k, ds.num_classes()), in,
                                    cfg.audit_options);
      for (const auto& wmsg : a.warnings) res.warnings.push_back(wmsg);
      m.audits[s.name] = a;
      res.audits.push_back(std::move(a));
      core::ProgressEvent ev;
      ev.stage = "audit";
      ev.done = static_cast<int64_t>(j + 1);
      ev.total = static_cast<int64_t>(specs.size());
      ev.elapsed_s = t_total.seconds();
      ev.note = s.name;
      core::report(progress, ev);
    }
    timings.add("audit", t_audit.seconds());
  }

  // Manifest.
  m.model = model.describe();
  // Whether some convolutions ran by Winograd F(4x4, 3x3) (equal to
  // LibTorch's up to float rounding; --conv-algorithm).
  m.convolutions = model.winograd_convolutions() > winograd_before ? "winograd" : "libtorch";
  m.model_spec = cfg.model_spec;
  if (!cfg.model_spec.empty() && fs::is_regular_file(cfg.model_spec))
    m.checkpoint_crc32 = core::file_crc32(cfg.model_spec);
  m.device = device.str();
  m.dataset = cfg.dataset_name.empty() ? ds.name : cfg.dataset_name;
  m.n = n;
  m.num_classes = ds.num_classes();
  m.input = {ds.mean,
             ds.std,
             data::input_range_name(ds),
             {ds.images.size(2), ds.images.size(3)},
             ds.normalization,
             data::describe_input(ds)};
  m.class_names = ds.class_names;
  if (cfg.indices.defined()) {
    const auto idx = cfg.indices.to(torch::kCPU).contiguous();
    m.indices = std::vector<int64_t>(idx.data_ptr<int64_t>(), idx.data_ptr<int64_t>() + n);
  }
  m.files = ds.paths;
  m.layer = layer;
  m.map_size = {map_h, map_w};
  m.gradcam_targets = cfg.options.gradcam_targets;
  m.grad_labels = cfg.options.grad_labels;
  m.param_layer = cfg.options.param_layer.empty() ? "fc" : cfg.options.param_layer;
  m.pool = activation_pool_name(cfg.options.pool);
  m.batch_size = cfg.batch_size;
  m.backward_passes_per_batch = res.backward_passes_per_batch;
  m.seed = cfg.seed;
  m.libtorch_version = TORCH_VERSION;
  m.accuracy = res.accuracy;
  for (size_t j = 0; j < specs.size(); ++j) {
    const auto& s = specs[j];
    m.representations.push_back(
        {s.name, s.name + ".npy", s.representation, s.variant, s.uses_true_labels, s.seed, res.shapes[j], "float32"});
  }
  m.warnings = res.warnings;
  timings.add("total", t_total.seconds());
  res.seconds = timings.items;
  m.seconds = res.seconds;
  for (const auto& f : fs::directory_iterator(tmp.path()))
    if (f.path().extension() == ".npy") m.checksums[f.path().filename().string()] = core::file_crc32(f.path());
  core::write_text_atomically(tmp.path() / "manifest.json", nlohmann::json(m).dump(2) + "\n");

  tmp.commit();
  res.run.dir = out;
  return res;
}

}  // namespace gradlens::extract
