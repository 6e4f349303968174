#include "gradlens/train/trainer.h"
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <cmath>
#include <random>

#include "gradlens/core/check.h"
#include "gradlens/core/cpu.h"
#include "gradlens/core/timer.h"
#include "gradlens/data/rng.h"
#include "gradlens/models/checkpoint.h"
#include "gradlens/models/model_file.h"

namespace gradlens::train {

namespace {


torch::Tensor prepare(const data::Dataset& ds, const torch::Tensor& u8, torch::Device dev,
                      bool channels_last) {
  auto x = data::to_float(ds, u8.to(dev));
  if (channels_last && x.dim() == 4) x = x.contiguous(at::MemoryFormat::ChannelsLast);
  return x;
}

// Seeded permutation of [0, n) for one epoch (Fisher-Yates on a portable RNG).
torch::Tensor epoch_permutation(int64_t n, uint64_t seed, int64_t epoch) {
  std::mt19937_64 gen(data::mix_seed(seed * 1000003ULL + static_cast<uint64_t>(epoch)));
  std::vector<int64_t> idx(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) idx[i] = i;
  for (int64_t i = n - 1; i > 0; --i)
    std::swap(idx[i], idx[data::uniform_below(gen, static_cast<uint64_t>(i + 1))]);
  return torch::tensor(idx, torch::kInt64);
}

nlohmann::json epoch_json(const EpochStats& e) {
  nlohmann::json terms = nlohmann::json::object();
  for (const auto& [k, v] : e.terms) terms[k] = v;
  return {{"epoch", e.epoch},         {"train_loss", e.train_loss}, {"train_acc", e.train_acc},
          {"test_loss", e.test_loss}, {"test_acc", e.test_acc},     {"seconds", e.seconds},
          {"images_per_s", e.images_per_s}, {"lr_last", e.lr_last},
          {"lr_mean", e.lr_mean},     {"terms", terms}};
}

EpochStats epoch_from_json(const nlohmann::json& j) {
  EpochStats e;
  e.epoch = j.at("epoch");
  e.train_loss = j.at("train_loss");
  e.train_acc = j.at("train_acc");
  e.test_loss = j.at("test_loss");
  e.test_acc = j.at("test_acc");
  e.seconds = j.at("seconds");
  e.images_per_s = j.at("images_per_s");
  e.lr_last = j.at("lr_last");
  e.lr_mean = j.value("lr_mean", e.lr_last);
  if (j.contains("terms"))
    for (auto& [k, v] : j["terms"].items()) e.terms.emplace_back(k, v.get<double>());
  return e;
}

// Rows [begin, end) of `rank` in a global batch of `n` rows: contiguous
// blocks, the first (n % world) ranks one row more.
std::pair<int64_t, int64_t> trainer_dp_rows(int64_t n, int rank, int world) {
  const int64_t q = n / world, r = n % world;
  const int64_t b = rank * q + std::min<int64_t>(rank, r);
  return {b, b + q + (rank < r ? 1 : 0)};
}

// Summed cross-entropy and correct predictions over rows [begin, end) of ds
// in eval mode; appends predictions / probabilities when asked.
std::pair<double, int64_t> trainer_eval_range(models::Classifier& model, const data::Dataset& ds,
                                              int64_t begin, int64_t end, int64_t batch_size,
                                              bool channels_last, std::vector<torch::Tensor>* preds,
                                              std::vector<torch::Tensor>* probs) {
  models::ModeGuard mode(model, false);
  torch::NoGradGuard ng;
  const auto dev = model.device();
  double loss_sum = 0;
  int64_t correct = 0;
  for (int64_t s = begin; s < end; s += batch_size) {
    const int64_t e = std::min(end, s + batch_size);
    auto x = prepare(ds, ds.images.slice(0, s, e), dev, channels_last);
    auto y = ds.labels.slice(0, s, e).to(dev);
    auto logits = model.forward(x).to(torch::kFloat32);
    loss_sum += torch::nn::functional::cross_entropy(
                    logits, y, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
                    .item<double>();
    auto p = logits.argmax(1);
    correct += p.eq(y).sum().item<int64_t>();
    if (preds != nullptr) preds->push_back(p.cpu());
    if (probs != nullptr) probs->push_back(torch::softmax(logits, 1).cpu());
  }
  return {loss_sum, correct};
}

}  // namespace

std::string epoch_checkpoint_name(int64_t epoch) {
  GRADLENS_CHECK(epoch >= 1 && epoch <= 99999, "epoch ", epoch, " out of range for a checkpoint name");
  char buf[32];
  std::snprintf(buf, sizeof buf, "epoch-%03lld.ckpt", static_cast<long long>(epoch));
  return buf;
}

EvalResult evaluate(models::Classifier& model, const data::Dataset& ds, int64_t batch_size,
                    bool channels_last) {
  GRADLENS_CHECK(ds.size() > 0, "cannot evaluate on an empty dataset (", ds.name, ")");
  GRADLENS_CHECK(batch_size >= 1, "--eval-batch-size must be >= 1");
  std::vector<torch::Tensor> preds, probs;
  const auto [loss_sum, correct] =
      trainer_eval_range(model, ds, 0, ds.size(), batch_size, channels_last, &preds, &probs);
  EvalResult r;
  r.loss = loss_sum / static_cast<double>(ds.size());
  r.accuracy = static_cast<double>(correct) / static_cast<double>(ds.size());
  r.predictions = torch::cat(preds);
  r.probabilities = torch::cat(probs);
  return r;
}

TrainResult train_model(models::ResNet& model, const data::Dataset& train, const data::Dataset* test,
                        const TrainOptions& opts, const core::ProgressFn& progress) {
  data::validate(train);
  GRADLENS_CHECK(train.size() > 0, "the training set ", train.name, " is empty");
  GRADLENS_CHECK(opts.epochs >= 1, "--epochs must be >= 1, got ", opts.epochs);
  GRADLENS_CHECK(opts.batch_size >= 1, "--batch-size must be >= 1, got ", opts.batch_size);
  GRADLENS_CHECK(train.channels() == model.in_channels(), "the data ", train.name, " has ",
                 train.channels(), " channel(s) but the model takes ", model.in_channels(),
                 "; build the model with --channels ", train.channels());
  GRADLENS_CHECK(train.num_classes() <= model.num_classes(), "the data has ", train.num_classes(),
                 " classes but the model only ", model.num_classes());
  GRADLENS_CHECK(!opts.resume || !opts.checkpoint_path.empty(), "--resume needs a checkpoint path");
  GRADLENS_CHECK(opts.eval_batch_size >= 1, "--eval-batch-size must be >= 1, got ", opts.eval_batch_size);
  const auto& dp = opts.data_parallel;
  GRADLENS_CHECK(dp.world_size >= 1 && dp.rank >= 0 && dp.rank < dp.world_size, "data-parallel rank ",
                 dp.rank, " is not in [0, world size ", dp.world_size, ")");
  GRADLENS_CHECK(dp.world_size == 1 || (dp.sync_gradients && dp.sum_stats && dp.broadcast_buffers),
                 "data-parallel training over ", dp.world_size,
                 " ranks needs the sync_gradients, sum_stats and broadcast_buffers hooks");
  {
    const int64_t n = train.size(), bs = opts.batch_size, last = n % bs;
    GRADLENS_CHECK(std::min(n, bs) >= dp.world_size && (last == 0 || last >= dp.world_size),
                   "every batch must give each of the ", dp.world_size, " ranks at least one image, but ",
                   n, " images in batches of --batch-size ", bs, " leave ", (last == 0 ? std::min(n, bs) : last),
                   " in the smallest batch; change --batch-size (or the number of images or ranks)");
  }

  const auto dev = model.device();
  // Channels-last only for 1-channel data on AVX-512 CPUs. Debian's LibTorch
  // 1.13 (oneDNN) corrupts the heap in the channels-last backward of
  // 3-channel small-stem ResNets at 64 px on every CPU, and of 1-channel ones
  // on AVX2-only CPUs (valgrind: an invalid write from oneDNN's JIT code; the
  // Trainer tests abort with "double free"), while 1-channel data on AVX-512
  // CPUs (Fashion-MNIST, 1.3-1.5x faster there) is unaffected.
  const bool cl = opts.channels_last && dev.is_cpu() && train.channels() == 1 && core::cpu_has_avx512f();
  if (cl) model.to_channels_last();
  // Training never folds BatchNorm, so never runs Winograd; the per-epoch
  // evaluation (eval mode) would: it uses LibTorch's convolutions too, so
  // that the logged test figures are those Python torch computes. The
  // caller's setting is restored on return.
  struct WinogradOff {
    models::ResNet& m;
    bool before;
    explicit WinogradOff(models::ResNet& r) : m(r), before(r.uses_winograd()) { m.set_winograd(false); }
    ~WinogradOff() { m.set_winograd(before); }
  } winograd_off(model);
  auto all_params = model.parameters();
  for (const auto& p : opts.extra_parameters) all_params.push_back(p);
  auto optimizer = make_optimizer(all_params, opts.optimizer);

  const int64_t n = train.size();
  const int64_t steps_per_epoch = (n + opts.batch_size - 1) / opts.batch_size;
  TrainResult result;
  int64_t planned_epochs = opts.epochs;
  int64_t start_epoch = 0;
  int64_t step = 0;

  if (opts.resume) {
    torch::serialize::InputArchive archive;
    GRADLENS_CHECK(std::filesystem::exists(opts.checkpoint_path), "--resume: checkpoint ",
                   opts.checkpoint_path, " does not exist; start without --resume");
    const auto info = models::inspect_model_file(opts.checkpoint_path);
    GRADLENS_CHECK(info.kind == models::ModelFileKind::kCheckpoint,
                   models::wrong_model_file_message(opts.checkpoint_path, info.kind, "--resume: checkpoint"));
    try {
      archive.load_from(opts.checkpoint_path, dev);
    } catch (const std::exception& e) {
      GRADLENS_CHECK(false, "--resume: checkpoint ", opts.checkpoint_path, " is corrupt (",
                     error_message(e), ")");
    }
    c10::IValue cfg, state;
    GRADLENS_CHECK(archive.try_read("config", cfg) && cfg.isString() &&
                       cfg.toStringRef() == models::config_to_json(model.config()),
                   "--resume: checkpoint ", opts.checkpoint_path,
                   " was made for another model configuration");
    GRADLENS_CHECK(archive.try_read("train_state", state) && state.isString(), "--resume: ",
                   opts.checkpoint_path, " has no training state (not written by 'gradlens train')");
    torch::serialize::InputArchive weights, optim;
    archive.read("model", weights);
    model.load(weights);
    if (cl) model.to_channels_last();
    archive.read("optimizer", optim);
    optimizer->load(optim);
    auto j = nlohmann::json::parse(state.toStringRef());
    start_epoch = j.at("epochs_done");
    step = j.at("step");
    planned_epochs = j.at("planned_epochs");
    // Asking for a different number of epochs than the interrupted run
    // extends (or shortens) the schedule from here on.
    if (j.value("epochs_requested", opts.epochs) != opts.epochs) planned_epochs = opts.epochs;
    GRADLENS_CHECK(planned_epochs > start_epoch || planned_epochs == start_epoch,
                   "--resume: the checkpoint already has ", start_epoch, " epochs");
    for (auto& e : j.at("history")) result.epochs.push_back(epoch_from_json(e));
  }
  result.planned_epochs = planned_epochs;

  auto save = [&](int64_t epochs_done) {
    if (opts.checkpoint_path.empty() || !opts.write_checkpoint) return;
    nlohmann::json hist = nlohmann::json::array();
    for (const auto& e : result.epochs) hist.push_back(epoch_json(e));
    const nlohmann::json state = {{"epochs_done", epochs_done},
                                  {"step", step},
                                  {"planned_epochs", planned_epochs},
                                  {"epochs_requested", opts.epochs},
                                  {"history", hist}};
    models::save_checkpoint(opts.checkpoint_path, model, opts.checkpoint_meta,
                            [&](torch::serialize::OutputArchive& a) {
                              a.write("train_state", c10::IValue(state.dump()));
                              torch::serialize::OutputArchive optim;
                              optimizer->save(optim);
                              a.write("optimizer", optim);
                            });
  };

  const core::Stopwatch t_start;
  bool budget_fixed = opts.time_budget_s <= 0;
  const int64_t kBudgetProbeSteps = 20;

  for (int64_t epoch = start_epoch; epoch < planned_epochs; ++epoch) {
    model.train(true);
    const core::Stopwatch t_epoch;
    auto perm = epoch_permutation(n, opts.seed, epoch);
    std::mt19937_64 aug_gen(data::mix_seed(opts.seed ^ (0xA5A5ULL + static_cast<uint64_t>(epoch))));
    double loss_sum = 0;
    int64_t correct = 0, seen = 0;
    std::vector<std::pair<std::string, double>> term_sums;
    double lr = 0, lr_sum = 0;
    int64_t epoch_steps = 0;
    core::Stopwatch t_probe;
    for (int64_t b = 0; b < steps_per_epoch; ++b, ++step) {
      const int64_t s = b * opts.batch_size;
      const int64_t e = std::min(n, s + opts.batch_size);
      // The global batch (augmented as a whole, so every rank draws the same
      // crops and flips as a single process), then this rank's rows of it.
      const auto [lb, le] = trainer_dp_rows(e - s, dp.rank, dp.world_size);
      const int64_t local_n = le - lb;
      auto idx = perm.slice(0, s, e);
      auto u8 = train.images.index_select(0, idx);
      if (opts.augment) u8 = data::random_crop_flip(u8, opts.augment_opts, aug_gen);
      auto x = prepare(train, u8.slice(0, lb, le), dev, cl);
      auto y = train.labels.index_select(0, idx.slice(0, lb, le)).to(dev);

      lr = lr_at(opts.schedule, step, planned_epochs * steps_per_epoch);
      set_lr(*optimizer, lr);
      lr_sum += lr;
      ++epoch_steps;
      if (opts.extra_loss) x.requires_grad_(true);
      auto logits = model.forward(x);
      auto loss = torch::nn::functional::cross_entropy(logits, y);
      if (opts.observe_batch)
        opts.observe_batch(epoch, idx.slice(0, lb, le), logits.detach().to(torch::kFloat32), y);
      std::vector<std::pair<std::string, torch::Tensor>> terms;
      if (opts.extra_loss) terms = opts.extra_loss(model, x, y, logits);
      auto total = loss;
      for (auto& [name, t] : terms) total = total + t;
      // Per-rank sums [loss, correct, rows, terms...], summed over ranks, so
      // every rank sees (and checks) the same global-batch values.
      const double local_w = static_cast<double>(local_n);
      std::vector<double> sums{loss.item<double>() * local_w,
                               static_cast<double>(logits.argmax(1).eq(y).sum().item<int64_t>()), local_w};
      for (auto& [name, t] : terms) sums.push_back(t.item<double>() * local_w);
      auto sums_t = torch::tensor(sums, torch::dtype(torch::kFloat64));
      if (dp.sum_stats) dp.sum_stats(sums_t);
      const auto sa = sums_t.accessor<double, 1>();
      const double rows = sa[2];
      const double lv = sa[0] / rows;
      GRADLENS_CHECK(std::isfinite(lv), "training diverged: the cross-entropy loss is ", lv,
                     " at epoch ", epoch + 1, " step ", b + 1,
                     "; lower --lr (the last good checkpoint is kept)");
      if (term_sums.size() < terms.size()) {
        term_sums.clear();
        for (auto& [name, t] : terms) term_sums.emplace_back(name, 0.0);
      }
      for (size_t i = 0; i < terms.size(); ++i) {
        const double v = sa[3 + static_cast<int64_t>(i)] / rows;
        GRADLENS_CHECK(std::isfinite(v), "training diverged: the loss term ", terms[i].first, " is ",
                       v, " at epoch ", epoch + 1, " step ", b + 1,
                       "; lower its weight or --lr (the last good checkpoint is kept)");
        term_sums[i].second += sa[3 + static_cast<int64_t>(i)];
      }
      optimizer->zero_grad();
      total.backward();
      if (dp.sync_gradients) {
        // The mean-over-global-batch gradient: sum over ranks of
        // (local rows / global rows) x the local mean gradient.
        std::vector<torch::Tensor> grads;
        grads.reserve(all_params.size());
        for (const auto& p : all_params) grads.push_back(p.grad());
        dp.sync_gradients(grads, local_w / static_cast<double>(e - s));
        for (size_t i = 0; i < grads.size(); ++i)
          if (grads[i].defined() && !all_params[i].grad().defined()) all_params[i].mutable_grad() = grads[i];
      }
      optimizer->step();

      loss_sum += sa[0];
      correct += static_cast<int64_t>(std::llround(sa[1]));
      seen += static_cast<int64_t>(std::llround(rows));
      result.step_losses.push_back(lv);

      if (!budget_fixed) {
        const int64_t done_here = step - start_epoch * steps_per_epoch;
        if (done_here == 2) t_probe.restart();
        if (done_here == 2 + kBudgetProbeSteps) {
          // Averaged over ranks, so every rank plans the same number of epochs.
          auto timing = torch::tensor({t_probe.seconds() / kBudgetProbeSteps, t_start.seconds()},
                                      torch::dtype(torch::kFloat64));
          if (dp.sum_stats) dp.sum_stats(timing);
          timing.div_(dp.world_size);
          const double per_step = timing[0].item<double>();
          const double elapsed = timing[1].item<double>();
          const double eval_cost =
              test != nullptr ? per_step * 0.35 * static_cast<double>(test->size()) / opts.batch_size
                              : 0.0;
          const double per_epoch = per_step * steps_per_epoch + eval_cost;
          const int64_t fit = static_cast<int64_t>((opts.time_budget_s - elapsed) /
                                                   per_epoch) + epoch;
          const int64_t new_plan = std::max<int64_t>(epoch + 1, std::min(planned_epochs, fit));
          if (new_plan < planned_epochs) {
            planned_epochs = new_plan;
            result.budget_limited = true;
            result.planned_epochs = planned_epochs;
          }
          budget_fixed = true;
        }
      }
      if (progress) {
        core::ProgressEvent ev;
        ev.stage = "epoch " + std::to_string(epoch + 1) + "/" + std::to_string(planned_epochs);
        ev.done = b + 1;
        ev.total = steps_per_epoch;
        ev.elapsed_s = t_epoch.seconds();
        ev.values = {{"loss", loss_sum / seen},
                     {"acc", static_cast<double>(correct) / seen},
                     {"img/s", seen / std::max(1e-9, ev.elapsed_s)},
                     {"lr", lr}};
        for (const auto& [k, v] : term_sums) ev.values.emplace_back(k, v / seen);
        progress(ev);
      }
    }
    EpochStats st;
    st.epoch = epoch + 1;
    st.train_loss = loss_sum / seen;
    st.train_acc = static_cast<double>(correct) / seen;
    st.seconds = t_epoch.seconds();
    st.images_per_s = seen / std::max(1e-9, st.seconds);
    st.lr_last = lr;
    st.lr_mean = lr_sum / static_cast<double>(std::max<int64_t>(1, epoch_steps));
    for (auto& [k, v] : term_sums) st.terms.emplace_back(k, v / seen);
    // BatchNorm running statistics are per rank during training (each rank
    // normalises with its own rows' moments); as PyTorch DDP's
    // broadcast_buffers, rank 0's are then given to every rank, so all ranks
    // evaluate and checkpoint the same model.
    if (dp.broadcast_buffers) {
      std::vector<torch::Tensor> buffers;
      for (auto& [name, t] : model.named_buffers()) buffers.push_back(t);
      dp.broadcast_buffers(buffers);
    }
    if (test != nullptr) {
      GRADLENS_CHECK(test->size() > 0, "cannot evaluate on an empty dataset (", test->name, ")");
      const auto [tb, te] = trainer_dp_rows(test->size(), dp.rank, dp.world_size);
      const auto [tl, tc] = trainer_eval_range(model, *test, tb, te, opts.eval_batch_size, cl, nullptr, nullptr);
      auto eval_t = torch::tensor({tl, static_cast<double>(tc)}, torch::dtype(torch::kFloat64));
      if (dp.sum_stats) dp.sum_stats(eval_t);
      st.test_loss = eval_t[0].item<double>() / static_cast<double>(test->size());
      st.test_acc = eval_t[1].item<double>() / static_cast<double>(test->size());
    }
    result.epochs.push_back(st);
    save(epoch + 1);
    if (!opts.epoch_checkpoint_dir.empty() && opts.write_checkpoint) {
      auto meta = nlohmann::json::parse(opts.checkpoint_meta);
      GRADLENS_CHECK(meta.is_object(), "the checkpoint metadata must be a JSON object");
      meta["epoch"] = epoch + 1;
      meta["lr_mean"] = st.lr_mean;
      meta["lr_last"] = st.lr_last;
      models::save_checkpoint(std::filesystem::path(opts.epoch_checkpoint_dir) / epoch_checkpoint_name(epoch + 1),
                              model, meta.dump());
    }
    if (progress) {
      core::ProgressEvent ev;
      ev.stage = "epoch " + std::to_string(epoch + 1) + "/" + std::to_string(planned_epochs);
      ev.done = ev.total = steps_per_epoch;
      ev.elapsed_s = t_epoch.seconds();
      ev.stage_end = true;
      ev.values = {{"loss", st.train_loss}, {"acc", st.train_acc}, {"img/s", st.images_per_s}};
      if (test != nullptr) {
        ev.values.emplace_back("test_loss", st.test_loss);
        ev.values.emplace_back("test_acc", st.test_acc);
      }
      for (auto& t : st.terms) ev.values.push_back(t);
      progress(ev);
    }
  }
  result.steps = step;
  result.seconds = t_start.seconds();
  return result;
}

}  // namespace gradlens::train
