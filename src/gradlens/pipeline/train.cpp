#include "gradlens/pipeline/train.h"
#include <torch/types.h>

#include <nlohmann/json.hpp>

#include "gradlens/analysis/label_noise.h"
#include "gradlens/analysis/misclassification.h"
#include "gradlens/core/check.h"
#include "gradlens/core/fs.h"
#include "gradlens/core/numpy_random.h"
#include "gradlens/core/runtime.h"
#include "gradlens/distributed/context.h"
#include "gradlens/distributed/data_parallel.h"
#include "gradlens/io/train_record.h"
#include "gradlens/models/checkpoint.h"
#include "gradlens/models/model_spec.h"
#include "gradlens/pipeline/data_source.h"
#include "gradlens/train/dynamics.h"

namespace gradlens::pipeline {

TrainConfig default_train_config() {
  TrainConfig c;
  c.data.data = "fashion-mnist";
  c.model = "resnet18";
  c.stem = "small";
  c.width = 16;
  c.train.epochs = 8;
  c.train.time_budget_s = 540;
  c.train.batch_size = 128;
  c.train.optimizer.name = "sgd";
  c.train.optimizer.lr = 0.1;
  c.train.optimizer.momentum = 0.9;
  c.train.optimizer.nesterov = true;
  c.train.optimizer.weight_decay = 5e-4;
  c.train.schedule.kind = train::ScheduleKind::kOneCycle;
  c.train.schedule.lr = 0.1;
  c.train.augment = true;
  c.train.augment_opts.padding = 2;
  c.train.augment_opts.flip_prob = 0.5;
  return c;
}

TrainSummary run_train(const TrainConfig& cfg, const RunContext& ctx) {
  // Under `gradlens launch` or torchrun (RANK, WORLD_SIZE, ...): data-parallel
  // training, each rank a block of every global batch, gradients averaged by
  // a bucketed all-reduce, rank 0 writing (see docs/training.md). A single
  // process otherwise (the collectives are identities).
  distributed::RankSetup ranks = distributed::join_ranks(ctx.device);
  distributed::Communicator& comm = ranks.comm;
  const torch::Device device = ranks.device;
  const std::filesystem::path out_dir =
      cfg.out.empty() ? std::filesystem::path(models::default_model_path()).parent_path()
                      : std::filesystem::path(cfg.out);
  core::ensure_writable_dir(out_dir, "--out");
  const std::string ckpt =
      cfg.out.empty() ? models::default_model_path() : (out_dir / "model.ckpt").string();

  const bool recording = cfg.noisy_labels > 0 || cfg.record_dynamics || cfg.save_every_epoch;
  GRADLENS_CHECK_OPTION(!recording || !cfg.out.empty(), "--noisy-labels, --record-dynamics and "
                        "--save-every-epoch write a training record next to the model: give --out DIR");
  GRADLENS_CHECK_OPTION(cfg.noisy_labels >= 0 && cfg.noisy_labels < 1, "--noisy-labels must be in [0, 1), got ",
                        cfg.noisy_labels);
  GRADLENS_CHECK_OPTION(!cfg.permute_labels || !cfg.out.empty(), "--permute-labels trains a model on random "
                        "labels: give --out DIR, so that it does not replace the cached default model");
  GRADLENS_CHECK_OPTION(!cfg.permute_labels || cfg.noisy_labels == 0, "--permute-labels and --noisy-labels: "
                        "give one (all labels are already random under --permute-labels)");
  GRADLENS_CHECK_OPTION(!cfg.aum_threshold_samples || cfg.record_dynamics, "--aum-threshold-samples needs "
                        "--record-dynamics (the threshold comes from the recorded margins)");
  GRADLENS_CHECK_OPTION(!(cfg.train.resume && recording), "--resume cannot continue a training record (",
                        "--noisy-labels, --record-dynamics, --save-every-epoch): train again without --resume");

  auto splits = load_splits(cfg.data, ctx.seed);
  if (cfg.permute_labels) {
    const auto order = core::NumpyRandomState(ctx.seed).permutation(splits.train.size());
    splits.train.labels = splits.train.labels.index_select(0, torch::tensor(order, torch::kLong));
  }
  io::TrainRecord record;
  if (recording) {
    record.dir = out_dir;
    record.data = cfg.data.data;
    record.data_flags = data_flags_json(cfg.data);
    record.images = splits.train.size();
    record.classes = splits.train.num_classes();
    record.class_names = splits.train.class_names;
    record.seed = ctx.seed;
    record.noise_fraction = cfg.noisy_labels;
    if (cfg.noisy_labels > 0) {
      const auto flipped =
          analysis::flip_labels(splits.train.labels, splits.train.num_classes(), cfg.noisy_labels, ctx.seed);
      splits.train.labels = flipped.labels;
      record.flipped = flipped.flipped.to(torch::kUInt8);
    }
    if (cfg.aum_threshold_samples) {
      const auto t = analysis::threshold_samples(splits.train.size(), splits.train.num_classes(), ctx.seed);
      splits.train.labels = splits.train.labels.masked_fill(t.to(torch::kBool), splits.train.num_classes());
      splits.train.class_names.push_back(analysis::kThresholdClassName);
      record.threshold = t;
      record.classes = splits.train.num_classes();
      record.class_names = splits.train.class_names;
    }
    record.labels = splits.train.labels.clone();
  }
  if (recording && comm.is_root()) {
    core::remove_stale_temporaries(out_dir);
    // A record of an earlier run must not pass for this one's while it trains.
    std::filesystem::remove(out_dir / "record.json");
    if (cfg.save_every_epoch) {
      std::filesystem::remove_all(out_dir / "checkpoints");
      std::filesystem::create_directories(out_dir / "checkpoints");
    }
  }
  // MNIST digits are not mirror-symmetric: no flips there.
  train::TrainOptions topts = cfg.train;
  if (cfg.data.data == "mnist") topts.augment_opts.flip_prob = 0.0;
  topts.seed = ctx.seed;
  topts.checkpoint_path = ckpt;
  topts.write_checkpoint = comm.is_root();
  topts.data_parallel.rank = comm.rank();
  topts.data_parallel.world_size = comm.world_size();
  topts.data_parallel.sync_gradients = [&comm](std::vector<torch::Tensor>& grads, double weight) {
    distributed::all_reduce_gradients(comm, grads, weight);
  };
  topts.data_parallel.sum_stats = [&comm](torch::Tensor& sums) { comm.all_reduce_sum(sums); };
  topts.data_parallel.broadcast_buffers = [&comm](std::vector<torch::Tensor>& buffers) {
    distributed::broadcast_tensors(comm, buffers, 0);
  };

  models::ResNetConfig mc;
  mc.arch = cfg.model;
  mc.num_classes = splits.train.num_classes();
  mc.in_channels = splits.train.channels();
  mc.width = cfg.width;
  mc.zero_init_residual = cfg.zero_init_residual;
  const int64_t side = splits.train.images.size(3);
  mc.stem = cfg.stem == "auto" ? (side <= 64 ? models::Stem::kSmall : models::Stem::kImageNet)
                               : models::parse_stem(cfg.stem);
  torch::manual_seed(ctx.seed);
  models::ResNet model(mc);
  model.to(device);

  nlohmann::json meta = {{"dataset", cfg.data.data},
                         {"class_names", splits.train.class_names},
                         {"mean", splits.train.mean},
                         {"std", splits.train.std},
                         {"image_size", side},
                         {"seed", ctx.seed}};
  topts.checkpoint_meta = meta.dump();
  if (cfg.save_every_epoch) topts.epoch_checkpoint_dir = (out_dir / "checkpoints").string();
  std::unique_ptr<train::DynamicsRecorder> recorder;
  if (cfg.record_dynamics) {
    recorder = std::make_unique<train::DynamicsRecorder>(topts.epochs, splits.train.size());
    topts.observe_batch = [&recorder](int64_t epoch, const torch::Tensor& rows, const torch::Tensor& logits,
                                      const torch::Tensor& labels) { recorder->record(epoch, rows, logits, labels); };
  }

  auto losses_opts = cfg.losses;
  losses_opts.seed = ctx.seed;
  auto losses = train::make_gradient_losses(losses_opts);
  topts.extra_loss = losses.fn;
  topts.extra_parameters = losses.parameters;

  TrainSummary s;
  s.checkpoint = ckpt;
  s.rank = comm.rank();
  s.world_size = comm.world_size();
  s.model_description = model.describe();
  s.parameters = models::count_parameters(model);
  s.result = train::train_model(model, splits.train, &splits.test, topts, ctx.progress);
  if (recorder != nullptr && comm.world_size() > 1) {
    // Each rank recorded its rows of every batch; the sum is the whole.
    for (const auto& name : train::TrainingDynamics::names()) {
      auto& t = recorder->values().get(name);
      auto d = t.to(torch::kFloat64);
      comm.all_reduce_sum(d);
      t.copy_(d);
    }
    auto m = recorder->recorded_mask().to(torch::kFloat64);
    comm.all_reduce_sum(m);
    recorder->recorded_mask().copy_(m);
  }
  if (recording && comm.is_root()) {
    const int64_t epochs_run = static_cast<int64_t>(s.result.epochs.size());
    if (recorder != nullptr) record.dynamics = recorder->take(epochs_run);
    if (cfg.save_every_epoch)
      for (const auto& e : s.result.epochs) {
        io::EpochCheckpoint c;
        c.epoch = e.epoch;
        c.path = out_dir / "checkpoints" / train::epoch_checkpoint_name(e.epoch);
        c.lr_mean = e.lr_mean;
        c.crc32 = core::file_crc32(c.path);
        record.checkpoints.push_back(c);
      }
    io::write_train_record(record);
    s.record = out_dir.string();
  }

  nlohmann::json epochs = nlohmann::json::array();
  for (const auto& e : s.result.epochs) {
    nlohmann::json terms = nlohmann::json::object();
    for (const auto& [k, v] : e.terms) terms[k] = v;
    epochs.push_back({{"epoch", e.epoch},
                      {"train_loss", e.train_loss},
                      {"train_acc", e.train_acc},
                      {"test_loss", e.test_loss},
                      {"test_acc", e.test_acc},
                      {"seconds", e.seconds},
                      {"images_per_s", e.images_per_s},
                      {"lr_last", e.lr_last},
                      {"lr_mean", e.lr_mean},
                      {"terms", terms}});
  }
  const auto& t = topts;
  nlohmann::json summary = {
      {"checkpoint", ckpt},
      {"model", {{"description", s.model_description},
                 {"arch", mc.arch},
                 {"stem", models::stem_name(mc.stem)},
                 {"width", mc.width},
                 {"parameters", s.parameters}}},
      {"data", {{"name", cfg.data.data},
                {"train_images", splits.train.size()},
                {"test_images", splits.test.size()},
                {"classes", splits.train.class_names}}},
      {"config", {{"epochs", t.epochs},
                  {"planned_epochs", s.result.planned_epochs},
                  {"budget_limited", s.result.budget_limited},
                  {"time_budget_s", t.time_budget_s},
                  {"batch_size", t.batch_size},
                  {"optimizer", t.optimizer.name},
                  {"lr", t.schedule.lr},
                  {"momentum", t.optimizer.momentum},
                  {"nesterov", t.optimizer.nesterov},
                  {"weight_decay", t.optimizer.weight_decay},
                  {"schedule", train::schedule_name(t.schedule.kind)},
                  {"augment", t.augment},
                  {"seed", ctx.seed},
                  {"threads", ctx.threads},
                  {"device", device_name(ctx)},
                  {"libtorch", core::torch_version()},
                  {"lambda_grad", cfg.losses.lambda_grad},
                  {"grad_form", train::grad_form_name(cfg.losses.form)},
                  {"grad_reduction", train::grad_reduction_name(cfg.losses.reduction)},
                  {"grad_source", cfg.losses.source},
                  {"lambda_mi", cfg.losses.lambda_mi},
                  {"mi_estimator", cfg.losses.mi_estimator},
                  {"mi_dims", cfg.losses.mi_dims},
                  {"lambda_curv", cfg.losses.lambda_curv},
                  {"noisy_labels", cfg.noisy_labels},
                  {"permute_labels", cfg.permute_labels},
                  {"record_dynamics", cfg.record_dynamics},
                  {"save_every_epoch", cfg.save_every_epoch}}},
      {"epochs", epochs},
      {"step_losses", s.result.step_losses},
      {"ranks", comm.world_size()},
      {"final_test_acc", s.result.final_test_acc()},
      {"seconds", s.result.seconds},
      {"steps", s.result.steps}};
  s.summary_json_path = (cfg.out.empty() ? std::filesystem::path(ckpt + ".summary.json")
                                         : out_dir / "summary.json")
                            .string();
  if (comm.is_root()) core::write_text_atomically(s.summary_json_path, summary.dump(2) + "\n");
  return s;
}

}  // namespace gradlens::pipeline
