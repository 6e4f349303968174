// `gradlens label-errors`: rank the training images of a training run by how
// likely their label is wrong, with every score gradlens has (training
// dynamics, self-influence, final-model confidence, neighbours), and, when
// the run flipped labels on purpose (--noisy-labels), how well each score
// finds them. run_label_errors() is the in-memory library function;
// write_label_errors() writes the output directory (docs/formats.md,
// "Label-error directory").
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <filesystem>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "gradlens/pipeline/influence_inputs.h"

namespace gradlens::pipeline {

struct LabelErrorsConfig {
  InfluenceConfig input;
  /// Scores to compute, any of label_error_score_names(); empty = every one
  /// the record allows (dynamics scores need --record-dynamics, checkpoint
  /// scores need --save-every-epoch).
  std::vector<std::string> scores;
  /// The epoch of EL2N and GraNd (Paul et al. score early in training),
  /// 1-based; 0 = the second epoch, or the first when only one was recorded.
  int64_t el2n_epoch = 0;
  /// Neighbours of the neighbour-disagreement score (features of the final model).
  int64_t neighbors = 10;
  /// Training images shown in the report (the top of the ranking by `show_score`).
  int64_t show = 30;
  /// The score whose ranking the report shows and scores.csv is sorted by;
  /// "" = self-influence when available, else aum, else self-confidence.
  std::string show_score;
  std::string out = "label-errors";
  bool overwrite = false;
};

/// self-influence, grand, el2n, aum, forgetting, low-confidence,
/// variability, self-confidence, normalized-margin, neighbor-disagreement.
const std::vector<std::string>& label_error_score_names();

/// A score's ranking quality on the flipped labels.
struct NoiseRankingQuality {
  std::string score;
  double auroc = 0;
  double found_at_10 = 0, found_at_20 = 0;  ///< share of flipped labels in the top 10% / 20%
  double precision_at_flipped = 0;          ///< precision@k, k = the number flipped
};

struct LabelErrorsResult {
  io::TrainRecord record;
  std::vector<std::string> class_names;
  torch::Tensor images;       ///< uint8 [N, C, H, W] the training images
  torch::Tensor original;     ///< int64 [N] the data's labels (before flipping)
  torch::Tensor predictions;  ///< int64 [N] of the final model (undefined without checkpoints)
  std::vector<std::pair<std::string, torch::Tensor>> scores;  ///< float64 [N] each, larger = more suspicious
  std::string show_score;
  int64_t el2n_epoch = 0;  ///< the epoch EL2N and GraNd were taken at
  /// The training images that are ranked and scored against the flips:
  /// int64 [M], all of them, or all but AUM's threshold samples.
  torch::Tensor ranked;
  /// With --aum-threshold-samples (and aum computed): the threshold (the
  /// 99th percentile of the threshold samples' AUM), the ranked images at or
  /// below it (bool [N], false for threshold samples), and with flips the
  /// precision and recall of that flag (NaN otherwise).
  double aum_threshold = std::numeric_limits<double>::quiet_NaN();
  torch::Tensor aum_flagged;
  double aum_flag_precision = std::numeric_limits<double>::quiet_NaN();
  double aum_flag_recall = std::numeric_limits<double>::quiet_NaN();
  /// With flipped labels (over the ranked images): one row per score, the best (largest found_at_10) first,
  /// and the found-vs-inspected curves (float64 [scores, 100], fractions 0.01..1).
  std::vector<NoiseRankingQuality> quality;
  torch::Tensor curves;
  bool store_reused = false;
  std::vector<std::string> warnings;
  /// Under `gradlens launch`: this process's rank and the number of ranks
  /// (every rank computes a block of the training factors; rank 0 writes).
  int rank = 0, world_size = 1;
  std::vector<std::pair<std::string, double>> seconds;
  const torch::Tensor& score(const std::string& name) const;
};

LabelErrorsResult run_label_errors(const LabelErrorsConfig& cfg, const RunContext& ctx = {});

/// Writes scores.csv, quality.csv (with flips), found.csv + found.png (with
/// flips), suspicious.png, summary.json, summary.md and report.html into
/// `out` (a staged directory; an existing `out` needs `overwrite`).
void write_label_errors(const LabelErrorsResult& r, const LabelErrorsConfig& cfg, const std::filesystem::path& out);

}  // namespace gradlens::pipeline
