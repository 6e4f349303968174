// The training loop: epochs of shuffled, augmented mini-batches, a schedule,
// evaluation after each epoch, atomic checkpoints and exact resumption.
#pragma once

#include <torch/types.h>

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "gradlens/core/progress.h"
#include "gradlens/data/augment.h"
#include "gradlens/data/dataset.h"
#include "gradlens/models/classifier.h"
#include "gradlens/models/resnet.h"
#include "gradlens/train/optimizer.h"
#include "gradlens/train/schedule.h"

namespace gradlens::train {

/// Extra loss terms added to cross-entropy (for the gradient losses).
/// Receives the model, the normalised batch x (requires_grad set), labels y
/// and the logits; returns named, already weighted terms to add.
using ExtraLossFn = std::function<std::vector<std::pair<std::string, torch::Tensor>>(
    models::Classifier& model, const torch::Tensor& x, const torch::Tensor& y,
    const torch::Tensor& logits)>;

/// Data-parallel training hooks (see docs/training.md "Distributed training").
/// Every rank runs the same global batches (same shuffled order, same
/// augmentation draws); rank r trains on rows [b_r, e_r) of each global batch
/// (contiguous blocks, the first (B % world_size) ranks one row more; every
/// global batch must have >= world_size rows). The defaults are a single
/// process; the hooks are then identities and may stay empty. The trainer
/// knows nothing of how the hooks communicate (pipeline/train.cpp wires them
/// to distributed::Communicator).
struct DataParallelOptions {
  int rank = 0;
  int world_size = 1;
  /// After backward: `grads` holds this rank's gradient of every optimised
  /// parameter (an undefined tensor where it has none); `weight` is the local
  /// batch size over the global batch size. Must replace each gradient by the
  /// sum over ranks of weight * grad, i.e. the gradient of the mean loss over
  /// the global batch (a defined tensor where any rank had one).
  std::function<void(std::vector<torch::Tensor>& grads, double weight)> sync_gradients;
  /// In place: a float64 vector of per-rank sums becomes the sum over ranks.
  std::function<void(torch::Tensor& sums)> sum_stats;
  /// In place: every rank's buffers (BatchNorm running statistics) become
  /// rank 0's. Called after each epoch, before evaluation and the checkpoint.
  std::function<void(std::vector<torch::Tensor>& buffers)> broadcast_buffers;
};

struct TrainOptions {
  int64_t epochs = 8;
  int64_t batch_size = 128;
  /// If > 0: after the first steps, the number of epochs is lowered so that
  /// training (with its evaluations) fits this many seconds. The run length
  /// then depends on the machine's speed; use epochs alone for exact runs.
  double time_budget_s = 0.0;
  ScheduleOptions schedule;
  OptimizerOptions optimizer;
  bool augment = true;
  data::AugmentOptions augment_opts{2, 0.5};
  int64_t eval_batch_size = 500;
  uint64_t seed = 0;
  /// Channels-last tensors for oneDNN convolutions on CPU (~1.3-1.5x faster),
  /// used for 1-channel data on AVX-512 CPUs only (see trainer.cpp: LibTorch
  /// 1.13's oneDNN corrupts the heap in other cases).
  bool channels_last = true;
  /// Written atomically after every epoch when not empty (and write_checkpoint).
  std::string checkpoint_path;
  /// false: read checkpoint_path for --resume but never write it (the ranks
  /// other than 0 of a data-parallel run).
  bool write_checkpoint = true;
  /// Continue from checkpoint_path: weights, optimizer, schedule position and
  /// data order. Throws if it is missing or was made for another model.
  bool resume = false;
  /// Free-form JSON stored in the checkpoint's metadata (e.g. the dataset).
  std::string checkpoint_meta = "{}";
  /// When not empty (and write_checkpoint): after every epoch e, the weights
  /// are also written atomically to <epoch_checkpoint_dir>/epoch-<eee>.ckpt
  /// (eee = e zero-padded to 3 digits), whose metadata is checkpoint_meta
  /// plus "epoch", "lr_mean" (the mean learning rate of the epoch's steps,
  /// TracIn's step size) and "lr_last". The directory must exist.
  std::string epoch_checkpoint_dir;
  /// Called after every training step's forward pass with the epoch
  /// (0-based), this rank's rows of the batch as positions in the training
  /// set (int64 [B]), their logits (detached, float32 [B, K]; train mode, on
  /// the augmented images) and labels (int64 [B]). Used to record training
  /// dynamics (train/dynamics.h). Empty: nothing is called.
  std::function<void(int64_t epoch, const torch::Tensor& rows, const torch::Tensor& logits,
                     const torch::Tensor& labels)>
      observe_batch;
  ExtraLossFn extra_loss;
  /// Parameters optimised together with the model's (e.g. MINE's network).
  std::vector<torch::Tensor> extra_parameters;
  /// Data-parallel ranks and hooks (default: a single process).
  DataParallelOptions data_parallel;
};

struct EpochStats {
  int64_t epoch = 0;  ///< 1-based
  double train_loss = 0, train_acc = 0;
  double test_loss = 0, test_acc = 0;  ///< NaN-free: 0 when there is no test set
  double seconds = 0, images_per_s = 0, lr_last = 0;
  double lr_mean = 0;  ///< mean learning rate over the epoch's steps
  std::vector<std::pair<std::string, double>> terms;  ///< mean of each loss term
};

struct TrainResult {
  std::vector<EpochStats> epochs;  ///< all epochs, including resumed ones
  int64_t planned_epochs = 0;
  int64_t steps = 0;
  /// Cross-entropy of every step of this invocation (mean over the global batch).
  std::vector<double> step_losses;
  double seconds = 0;  ///< this invocation's wall time
  bool budget_limited = false;
  double final_test_acc() const { return epochs.empty() ? 0.0 : epochs.back().test_acc; }
};

struct EvalResult {
  double loss = 0, accuracy = 0;
  torch::Tensor predictions;  ///< int64 [N]
  torch::Tensor probabilities;  ///< float [N, classes]
};

/// The file name of the checkpoint after epoch `epoch` (1-based) in
/// TrainOptions::epoch_checkpoint_dir: "epoch-001.ckpt".
std::string epoch_checkpoint_name(int64_t epoch);

/// Eval-mode loss, accuracy and predictions of `model` on `ds`.
EvalResult evaluate(models::Classifier& model, const data::Dataset& ds, int64_t batch_size = 500,
                    bool channels_last = false);

/// Trains `model` (already on its device) on `train`, evaluating on `test`
/// (may be null) after every epoch (each data-parallel rank evaluates a
/// contiguous shard of `test`; loss and accuracy are summed over ranks).
/// Throws c10::Error on a non-finite loss
/// (naming the term; the last checkpoint stays the last good one), on a
/// dataset/model mismatch (channels, classes), and on resume problems.
TrainResult train_model(models::ResNet& model, const data::Dataset& train, const data::Dataset* test,
                        const TrainOptions& opts, const core::ProgressFn& progress = {});

}  // namespace gradlens::train
