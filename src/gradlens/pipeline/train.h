// `gradlens train`: load data, build or resume a model, train, write the
// checkpoint and a JSON summary.
#pragma once

#include <string>

#include "gradlens/data/subset.h"
#include "gradlens/pipeline/run_context.h"
#include "gradlens/train/gradient_losses.h"
#include "gradlens/train/trainer.h"

namespace gradlens::pipeline {

/// Where the data comes from.
struct DataConfig {
  /// "fashion-mnist", "mnist", or an ImageFolder directory.
  std::string data = "fashion-mnist";
  /// Directory of the IDX files for fashion-mnist / mnist.
  std::string idx_dir;  ///< empty: /usr/share/datasets/fashion-mnist (or mnist)
  /// ImageFolder options.
  int64_t image_size = 0;  ///< 0: 28 for 1-channel data, 224 otherwise (IDX: 0 keeps 28)
  /// Shorter side before the centre crop to image_size, as torchvision's
  /// Resize(resize) + CenterCrop(image_size); 0: image_size.
  int64_t resize = 0;
  /// The model's input normalisation, (x * s - mean[c]) / std[c] with s =
  /// 1/255 for input_range "0-1" and 1 for "0-255" (mean/std in those
  /// units). Neither given: the data's own (Fashion-MNIST/MNIST constants, an
  /// ImageFolder's training-split statistics). Only input_range: mean 0, std
  /// 1. mean and std come together, one value per channel.
  std::vector<double> mean, std;
  std::string input_range;  ///< "", "0-1" or "0-255"
  /// Where the fields above came from when not from flags ("gradlens.json in
  /// m.pt"), for manifests and reports; set by data_for_models().
  std::string preprocess_source;
  int64_t channels = 0;    ///< 0: keep (IDX) / 3 (ImageFolder)
  bool skip_bad_images = false;
  /// Fraction of an ImageFolder held out as the test split.
  double test_fraction = 0.2;
  /// Keep only N images per class of each split (0 = all).
  int64_t train_per_class = 0;
  int64_t test_per_class = 0;
  /// How the per-class subsets are chosen: the first N of each class in file
  /// order, or N drawn at random (seeded by RunContext::seed).
  data::SubsetMode subset = data::SubsetMode::kFirst;
};

struct TrainConfig {
  DataConfig data;
  std::string model = "resnet18";
  std::string stem = "auto";  ///< auto: small for images <= 64 px, else imagenet
  int64_t width = 16;
  bool zero_init_residual = false;
  train::TrainOptions train;
  /// The seed's gradient losses (all off by default).
  train::GradientLossOptions losses;
  /// Training-data attribution and label-noise scoring (need `out`; see
  /// io/train_record.h for what is written):
  /// flip this share of the training labels, each to another class drawn
  /// uniformly (seeded by RunContext::seed), and record which (0: none; < 1).
  double noisy_labels = 0.0;
  /// The data-randomisation test's model (Adebayo et al. 2018): train on the
  /// training labels randomly permuted (numpy's RandomState(seed).permutation,
  /// so each class keeps its count); `saliency --data-randomisation` compares
  /// its maps with those of the model trained on the true labels. Needs `out`.
  bool permute_labels = false;
  /// Record every training image's margin, p(label), correctness and error
  /// norm at every epoch (train/dynamics.h). Not with resume.
  bool record_dynamics = false;
  /// Keep the weights after every epoch in out/checkpoints/ (TracIn's checkpoints).
  bool save_every_epoch = false;
  /// AUM's threshold samples (Pleiss et al. 2020): floor(N / (K + 1))
  /// training images, drawn by RunContext::seed, get the label of an extra class K
  /// that no real image has; the model has K + 1 outputs. Their AUM sets the
  /// threshold below which label-errors flags an image. Needs record_dynamics.
  bool aum_threshold_samples = false;
  /// Output directory for the checkpoint (model.ckpt) and summary.json.
  /// Empty: the default-model cache (see models::default_model_path()).
  std::string out;
};

struct TrainSummary {
  std::string checkpoint;
  /// The training record's directory (io/train_record.h) when one was written.
  std::string record;
  std::string summary_json_path;
  train::TrainResult result;
  std::string model_description;
  int64_t parameters = 0;
  /// Data-parallel rank and world size; only rank 0 writes checkpoint and summary.
  int rank = 0;
  int world_size = 1;
};

/// The configuration of the embedded default: ResNet18 (small stem, width
/// 16) on Fashion-MNIST, SGD + Nesterov, one-cycle, 8 epochs within a
/// 9-minute budget. See README "The default model".
TrainConfig default_train_config();

/// Runs the whole command. Under `gradlens launch` / torchrun (RANK,
/// WORLD_SIZE, ... set) the ranks train data-parallel (docs/training.md) and
/// only rank 0 writes. Throws c10::Error / UsageError on bad input.
/// ctx.seed seeds the initial weights, the batch order, augmentation and
/// every label draw; ctx.model is not used (the model is built here).
TrainSummary run_train(const TrainConfig& cfg, const RunContext& ctx = {});

}  // namespace gradlens::pipeline
