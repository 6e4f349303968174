#include "gradlens/pipeline/train.h"
#include <torch/types.h>

#include <nlohmann/json.hpp>

#include "gradlens/core/check.h"
#include "gradlens/core/fs.h"
#include "gradlens/core/runtime.h"
#include "gradlens/distributed/context.h"
#include "gradlens/distributed/data_parallel.h"
#include "gradlens/models/checkpoint.h"
#include "gradlens/models/model_spec.h"
#include "gradlens/pipeline/data_source.h"

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

TrainSummary run_train(const TrainConfig& cfg, const core::ProgressFn& progress) {
  // Under `gradlens launch` or torchrun (RANK, WORLD_SIZE, ...): data-parallel
  // training, each rank a block of every global batch, gradients averaged by
  // a bucketed all-reduce, rank 0 writing (see docs/training.md). A single
  // process otherwise (the collectives are identities).
  distributed::Communicator comm{distributed::DistOptions{}};
  auto device = core::parse_device(cfg.device);
  if (comm.world_size() > 1 && device.is_cuda() && !device.has_index())
    device = torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(comm.local_rank()));
  const std::filesystem::path out_dir =
      cfg.out.empty() ? std::filesystem::path(models::default_model_path()).parent_path()
                      : std::filesystem::path(cfg.out);
  core::ensure_writable_dir(out_dir, "--out");
  const std::string ckpt =
      cfg.out.empty() ? models::default_model_path() : (out_dir / "model.ckpt").string();

  auto splits = load_splits(cfg.data, cfg.seed);
  // MNIST digits are not mirror-symmetric: no flips there.
  train::TrainOptions topts = cfg.train;
  if (cfg.data.data == "mnist") topts.augment_opts.flip_prob = 0.0;
  topts.seed = cfg.seed;
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
  torch::manual_seed(cfg.seed);
  models::ResNet model(mc);
  model.to(device);

  nlohmann::json meta = {{"dataset", cfg.data.data},
                         {"class_names", splits.train.class_names},
                         {"mean", splits.train.mean},
                         {"std", splits.train.std},
                         {"image_size", side},
                         {"seed", cfg.seed}};
  topts.checkpoint_meta = meta.dump();

  auto losses_opts = cfg.losses;
  losses_opts.seed = cfg.seed;
  auto losses = train::make_gradient_losses(losses_opts);
  topts.extra_loss = losses.fn;
  topts.extra_parameters = losses.parameters;

  TrainSummary s;
  s.checkpoint = ckpt;
  s.rank = comm.rank();
  s.world_size = comm.world_size();
  s.model_description = model.describe();
  s.parameters = models::count_parameters(model);
  s.result = train::train_model(model, splits.train, &splits.test, topts, progress);

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
                  {"seed", cfg.seed},
                  {"threads", cfg.threads},
                  {"device", cfg.device},
                  {"libtorch", core::torch_version()},
                  {"lambda_grad", cfg.losses.lambda_grad},
                  {"grad_form", cfg.losses.form == train::GradForm::kCosine ? "cosine" : "euclidean"},
                  {"grad_reduction", cfg.losses.reduction == train::GradReduction::kMean ? "mean" : "sum"},
                  {"grad_source", cfg.losses.source},
                  {"lambda_mi", cfg.losses.lambda_mi},
                  {"mi_estimator", cfg.losses.mi_estimator},
                  {"mi_dims", cfg.losses.mi_dims},
                  {"lambda_curv", cfg.losses.lambda_curv}}},
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
