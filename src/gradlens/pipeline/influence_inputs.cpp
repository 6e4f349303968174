#include "gradlens/pipeline/influence_inputs.h"
#include <torch/types.h>

#include <optional>

#include "gradlens/core/check.h"
#include "gradlens/core/fs.h"
#include "gradlens/core/runtime.h"
#include "gradlens/distributed/context.h"
#include "gradlens/models/checkpoint.h"
#include "gradlens/report/document.h"

namespace gradlens::pipeline {

namespace fs = std::filesystem;

std::string class_name_of(const std::vector<std::string>& names, int64_t c) {
  return c >= 0 && c < static_cast<int64_t>(names.size()) ? names[static_cast<size_t>(c)] : std::to_string(c);
}

std::unique_ptr<core::StagedDirectory> stage_output(const fs::path& out, bool overwrite) {
  if (fs::exists(out))
    GRADLENS_CHECK_OPTION(overwrite, "--out ", out.string(), " already exists; choose a new directory or pass "
                          "--overwrite");
  return std::make_unique<core::StagedDirectory>(out, "--out");
}

void publish_outputs(core::StagedDirectory& staged, const std::string& summary_json, const report::Document& doc) {
  core::write_text_atomically(staged.path() / "summary.json", summary_json);
  core::write_text_atomically(staged.path() / "summary.md", doc.to_markdown());
  core::write_text_atomically(staged.path() / "report.html", doc.to_html(staged.path()));
  staged.commit();
}

std::unique_ptr<models::Classifier> open_epoch_checkpoint(const io::EpochCheckpoint& c, torch::Device device,
                                                          const models::ModelOptions& options) {
  // The record's CRC-32 of the whole file covers every zip entry's, so the
  // entries are not checked a second time.
  if (options.verify_files)
    core::verify_file_crc32(c.path, c.crc32, "gradlens train",
                            "train again, or pass --no-verify to use it as it is");
  auto ck = models::load_checkpoint(c.path, device, {}, /*verify=*/false);
  std::unique_ptr<models::Classifier> m = std::move(ck.model);
  m->set_conv_algorithm(options.conv);
  return m;
}

influence::GradientFactors checkpoint_factors(models::Classifier& model, const data::Dataset& ds,
                                             const torch::Tensor& labels, const InfluenceConfig& cfg,
                                             core::Collectives& comm) {
  GRADLENS_CHECK_OPTION(cfg.batch_size >= 1, "--batch-size must be >= 1, got ", cfg.batch_size);
  std::vector<influence::LayerProjection> projections;
  if (!cfg.projection.layers.empty() && ds.size() > 0)
    projections = influence::make_projections(model, data::to_float(ds, ds.images.slice(0, 0, 1)), cfg.projection);
  const int world = comm.world_size();
  // Fewer batches than ranks (a few queries): every rank computes them all.
  if (world == 1 || (ds.size() + cfg.batch_size - 1) / cfg.batch_size < world)
    return influence::dataset_gradient_factors(model, ds, labels, cfg.batch_size, projections);
  // Whole batches per rank: each rank's batches are the single process's.
  const auto [b, e] = distributed::shard_range(ds.size(), comm.rank(), world, cfg.batch_size);
  data::Dataset part = ds;
  part.images = ds.images.slice(0, b, e);
  part.labels = ds.labels.slice(0, b, e);
  auto f = influence::dataset_gradient_factors(model, part, labels.slice(0, b, e), cfg.batch_size, projections);
  f.delta = comm.all_gather_rows(f.delta);
  f.features = comm.all_gather_rows(f.features);
  f.logits = comm.all_gather_rows(f.logits);
  if (f.projected.defined()) f.projected = comm.all_gather_rows(f.projected);
  return f;
}

io::TrainRecord read_record(const InfluenceConfig& cfg) {
  GRADLENS_CHECK_OPTION(!cfg.run.empty(), "--run is required: the --out directory of 'gradlens train "
                        "--save-every-epoch --record-dynamics'");
  return io::read_train_record(cfg.run, "--run");
}

InfluenceInputs load_influence_inputs(const InfluenceConfig& cfg, const RunContext& ctx, bool need_checkpoints,
                                      core::Collectives& comm) {
  return load_influence_inputs(cfg, ctx, read_record(cfg), need_checkpoints, comm);
}

InfluenceInputs load_influence_inputs(const InfluenceConfig& cfg, const RunContext& ctx, io::TrainRecord record,
                                      bool need_checkpoints, core::Collectives& comm) {
  InfluenceInputs in;
  in.record = std::move(record);
  const auto& r = in.record;
  const DataConfig data = cfg.data_from_record && !r.data_flags.empty()
                              ? data_flags_from_json(r.data_flags, (r.dir / "record.json").string())
                              : cfg.data;
  GRADLENS_CHECK_OPTION(data.data == r.data, "--data ", data.data, " is not the data the run at --run ",
                        cfg.run, " was trained on (", r.data, "); give --data ", r.data,
                        " and the other data flags given to 'gradlens train'");
  in.splits = load_splits(data, r.seed);
  auto& ds = in.splits.train;
  const int64_t extra = r.threshold.defined() ? 1 : 0;  // AUM's threshold class
  GRADLENS_CHECK_OPTION(ds.size() == r.images && ds.num_classes() + extra == r.classes, "--data: the training split "
                        "has ", ds.size(), " images of ", ds.num_classes(), " classes, but the run at --run ", cfg.run,
                        " was trained on ", r.images, " of ", r.classes - extra,
                        "; give the data flags given to 'gradlens train'");
  const auto differ = ds.labels.ne(r.labels);
  auto expected = r.flipped.defined() ? r.flipped.to(torch::kBool) : torch::zeros_like(differ);
  if (r.threshold.defined()) expected = expected.logical_or(r.threshold.to(torch::kBool));
  GRADLENS_CHECK_OPTION(differ.eq(expected).all().item<bool>(), "--data: the training labels differ from those the "
                        "run at --run ", cfg.run, " recorded in ", differ.logical_xor(expected).sum().item<int64_t>(),
                        " places its --noisy-labels does not explain; give the data flags given to 'gradlens train'");
  in.original_labels = ds.labels;
  ds.labels = r.labels;
  ds.class_names = r.class_names;
  if (!need_checkpoints) return in;

  GRADLENS_CHECK_OPTION(!r.checkpoints.empty(), "--run: ", cfg.run, " has no epoch checkpoints; train with "
                        "--save-every-epoch");
  for (const auto& c : r.checkpoints) in.step_sizes.push_back(c.lr_mean);
  in.store = cfg.store.empty() ? (fs::path(cfg.run) / "influence-store").string() : cfg.store;
  io::StoreKey key;
  key.images = r.images;
  key.labels_crc32 = io::tensor_crc32(r.labels);
  for (const auto& c : r.checkpoints) key.checkpoint_crc32.push_back(c.crc32);
  if (!cfg.projection.layers.empty()) key.projection = cfg.projection.describe();
  // Rank 0 decides whether the store is there, so that every rank takes the
  // same path (the others would wait in a collective otherwise).
  auto exists = torch::tensor({std::filesystem::exists(in.store) ? 1.0 : 0.0}, torch::kFloat64);
  comm.broadcast(exists, 0);
  if (exists.item<double>() > 0.5) {
    std::string warning;
    auto stored = io::read_influence_store(in.store, key, "--store", &warning);
    if (!warning.empty()) in.warnings.push_back(warning);
    GRADLENS_CHECK(stored.has_value(), "--store: ", in.store, " disappeared while it was being read");
    in.train = std::move(*stored);
    in.store_reused = true;
    return in;
  }
  // Each checkpoint's factors go to the store as soon as they are computed.
  std::optional<io::InfluenceStoreWriter> store;
  if (comm.is_root()) store.emplace(in.store, key, "--store");
  for (size_t t = 0; t < r.checkpoints.size(); ++t) {
    if (ctx.progress) {
      core::ProgressEvent ev;
      ev.stage = "training gradients";
      ev.done = static_cast<int64_t>(t);
      ev.total = static_cast<int64_t>(r.checkpoints.size());
      ctx.progress(ev);
    }
    auto model = open_epoch_checkpoint(r.checkpoints[t], ctx.device, ctx.model);
    in.train.push_back(checkpoint_factors(*model, ds, r.labels, cfg, comm));
    if (store) store->add(in.train.back());
  }
  if (store) store->commit();
  return in;
}

}  // namespace gradlens::pipeline
