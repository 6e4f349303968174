// Training dynamics: what the training pass itself says about every training
// image at every epoch (margin, probability of the given label, correctness,
// error norm), recorded from the logits the trainer already computes. The
// label-noise scores built on them (AUM, forgetting events, data maps, EL2N)
// live in analysis/label_noise.h.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace gradlens::train {

/// Per-epoch, per-image values of the training pass, float32 [E, N] each
/// (correct: uint8). Row e holds epoch e+1; every image appears once per
/// epoch (the trainer's shuffled order), on its augmented view, in train
/// mode, with the weights of the step that used it (before that step's
/// update), as Pleiss et al. (AUM) and Toneva et al. (forgetting) record them.
struct TrainingDynamics {
  /// z_y - max_{k != y} z_k: the assigned logit minus the largest other one
  /// (AUM's margin; negative when another class wins).
  torch::Tensor margin;
  /// softmax(z)_y: the probability of the given label (data maps' confidence).
  torch::Tensor p_label;
  /// 1 where argmax z == y.
  torch::Tensor correct;
  /// ||softmax(z) - onehot(y)||_2 (EL2N's error norm).
  torch::Tensor el2n;

  int64_t epochs() const { return margin.defined() ? margin.size(0) : 0; }
  int64_t size() const { return margin.defined() ? margin.size(1) : 0; }
  /// The field names, as the files of a run's dynamics/ directory are named.
  static const std::vector<std::string>& names();
  const torch::Tensor& get(const std::string& name) const;
  torch::Tensor& get(const std::string& name);
};

/// Fills a TrainingDynamics from the trainer's observe_batch hook.
class DynamicsRecorder {
 public:
  /// Room for `epochs` epochs of `n` training images.
  DynamicsRecorder(int64_t epochs, int64_t n);
  /// Records one batch: rows int64 [B] (positions in the training set),
  /// logits float [B, K], labels int64 [B]. Throws gradlens::Error when an
  /// epoch or row is out of range, the shapes disagree, or a logit is not
  /// finite.
  void record(int64_t epoch, const torch::Tensor& rows, const torch::Tensor& logits,
              const torch::Tensor& labels);
  /// Which (epoch, image) cells were recorded, uint8 [E, N].
  const torch::Tensor& recorded() const { return recorded_; }
  /// The first `epochs` epochs (the epochs a time budget let run). Throws
  /// gradlens::Error when one of them has an image that was never recorded.
  TrainingDynamics take(int64_t epochs) const;
  /// Direct access, e.g. to sum the shards of data-parallel ranks.
  TrainingDynamics& values() { return d_; }
  torch::Tensor& recorded_mask() { return recorded_; }

 private:
  TrainingDynamics d_;
  torch::Tensor recorded_;
};

/// The values of one batch: margin, p_label, correct, el2n of each row
/// (float32 [B] each, correct uint8). logits [B, K] (K >= 2), labels int64 [B].
TrainingDynamics batch_dynamics(const torch::Tensor& logits, const torch::Tensor& labels);

}  // namespace gradlens::train
