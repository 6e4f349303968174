// `gradlens evaluate`: the seed's whole protocol for one or more models —
// extraction, Cos_Sim/PCA/KMeans/GMM analysis with the validity audit,
// Grad-CAM maps scored with the saliency metrics, the misclassification and
// label-error analysis — and a report directory with the seed's three tables,
// its PCA figure, overlays and report.html (docs/formats.md, "evaluate").
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "gradlens/analysis/representation_analysis.h"
#include "gradlens/extract/logit_seed.h"
#include "gradlens/models/classifier.h"
#include "gradlens/pipeline/analyze.h"
#include "gradlens/pipeline/run_context.h"
#include "gradlens/pipeline/train.h"

namespace gradlens::pipeline {

struct EvaluateConfig {
  /// Model specs: "default" (the cached default model, trained first if
  /// absent), an architecture resnet18|resnet34|resnet50|resnet101|resnet152
  /// (trained briefly on the training split with the default recipe and
  /// `arch_epochs`, cached), or a gradlens checkpoint / TorchScript file.
  std::vector<std::string> models = {"default"};
  DataConfig data;
  /// Images per class of the test split (first N of each class).
  int64_t per_class = 100;
  /// Report directory. Written in a hidden sibling (core::StagedDirectory)
  /// and renamed at the end;
  /// a previous report there (a directory holding report.json) is replaced,
  /// any other existing path is refused.
  std::filesystem::path out = "gradlens-report";
  /// Layer of the Grad-CAM weights, the activation maps and the Grad-CAM
  /// maps; "" = the model's last (layer4), as the seed.
  std::string layer;
  /// Grad-CAM target: pred (default, label-free, as pytorch-grad-cam), true
  /// or loss.
  extract::GradientTarget target = extract::GradientTarget::kPred;
  analysis::AnalyzeOptions analyze;
  /// Label-error validation: this share of the evaluation labels is flipped
  /// (seeded) and each score is measured at finding them.
  double flip_fraction = 0.05;
  /// Neighbours for the neighbour-disagreement score and the misclassified
  /// images' neighbour lists.
  int64_t neighbors = 10;
  /// The label-free embedding of the gradient-neighbourhood score.
  std::string label_error_embedding = "param-grad";
  /// Training of architecture specs: epochs (and optionally training images
  /// per class, 0 = all).
  int64_t arch_epochs = 2;
  int64_t arch_train_per_class = 0;
  /// Overlay grid: images per class, correct and misclassified.
  int64_t overlay_per_class = 1;
  int64_t batch_size = 100;
  /// Reuse cached extractions (keyed by model file, data and options).
  bool cache = true;
  /// Attribution methods compared for faithfulness (saliency/cam.h names:
  /// gradcam, gradcam++, gradient, smoothgrad, ig; {"none"}: no comparison);
  /// empty: all five on data with object masks, none otherwise
  /// (evaluate_compare_methods()). Each method's maps of the evaluated
  /// images (target: the prediction) are scored by deletion and insertion
  /// AUC, average drop, ROAD, the pointing game (with masks) and the
  /// cascading randomisation of the head's two parameter groups.
  std::vector<std::string> compare_methods;
  /// Skip the attribution-quality stages whatever the data: the method
  /// comparison and the scoring of Grad-CAM maps against object masks
  /// (--quick). The tables of the seed and the label-error ranking are kept.
  bool quick = false;
};

/// Grad-CAM maps of one model scored against each image's class-mean map.
struct SaliencyScores {
  /// (metric, mean, std) for CC, KLD, SIM, NSS, AUC-Judd, AUC-Borji.
  std::vector<std::tuple<std::string, double, double>> metrics;
  int64_t constant_maps = 0;  ///< all-zero or constant Grad-CAM maps (scored at chance, counted)
  /// With object masks in the data (make-shapes, ImageFolder <image>.mask.png):
  /// (metric, mean, images scored) for the pointing game, the energy-based
  /// pointing game and the relevance rank accuracy (saliency/localisation.h),
  /// and the pointing game's tolerance in pixels. Empty without masks.
  std::vector<std::tuple<std::string, double, int64_t>> localisation;
  double pointing_tolerance = 0.0;
  torch::Tensor maps;         ///< float32 [N, H, W] display maps
  double value(const std::string& metric) const;
};

/// A label-error score's ranking quality on the flipped labels.
struct RankingQuality {
  std::string score;
  double auroc = 0.0;
  double precision_at_flipped = 0.0;  ///< precision@k with k = number flipped
  double precision_at_10 = 0.0;
};

struct MisclassificationSummary {
  torch::Tensor confusion;           ///< int64 [K, K]
  torch::Tensor per_class_accuracy;  ///< float64 [K]
  double accuracy = 0.0;
  int64_t errors = 0;
  /// Scores on the given labels, float64 [N] each (names as LabelErrorScores).
  std::vector<std::pair<std::string, torch::Tensor>> scores;
  /// Flip validation.
  int64_t flipped = 0;
  std::vector<RankingQuality> ranking;
  std::string best_score;
  /// Nearest neighbours (cosine) of each misclassified image: [E, k] rows of
  /// dataset positions, in gradient space (the label-error embedding) and in
  /// feature space.
  torch::Tensor error_indices;  ///< int64 [E] dataset positions of the errors
  torch::Tensor gradient_neighbors, feature_neighbors;
  /// Errors per KMeans cluster of the embedding and of the features: [k].
  torch::Tensor errors_per_gradient_cluster, errors_per_feature_cluster;
};

/// One attribution method's faithfulness scores (means over the images; NaN
/// where undefined, e.g. the pointing game without masks).
struct MethodFaithfulness {
  std::string method;
  double deletion_auc = 0.0;     ///< lower is better
  double insertion_auc = 0.0;    ///< higher is better
  double average_drop = 0.0;     ///< lower is better
  double road_combined = 0.0;    ///< (LeRF - MoRF) / 2, higher is better
  double pointing_game = 0.0;    ///< higher is better; NaN without masks
  /// Spearman correlation of the maps with the trained model's after
  /// randomising the head's last two parameter groups (cascading); lower
  /// means the map depends on the model.
  double randomisation_spearman = 0.0;
  std::string randomised;  ///< the groups randomised, comma-separated
  /// Mean deletion / insertion curves over the images and their x values
  /// (the share of pixels perturbed), [steps + 1] each.
  torch::Tensor deletion_curve, insertion_curve, curve_fractions;  ///< float64 [steps + 1]
  /// The maps of one image (MethodFaithfulness::figure_row) on the trained
  /// model, then after each cascading randomisation step: float32 [1 + steps, H, W].
  torch::Tensor randomisation_maps;
  int64_t figure_row = 0;  ///< the image of randomisation_maps: the first one classified correctly, else 0
  double seconds = 0.0;
};

struct ModelEvaluation {
  std::string spec;      ///< as given
  std::string name;      ///< display name (e.g. "ResNet18 (default)")
  std::string slug;      ///< file-name-safe name
  std::string checkpoint;
  std::string description;
  std::string layer;  ///< the layer of Grad-CAM and activations (--layer or the model's default)
  std::filesystem::path run_dir;  ///< the cached extraction run (read once when cached; never written to after extraction)
  bool extraction_cached = false;
  analysis::RunAnalysis analysis;
  SaliencyScores saliency;
  MisclassificationSummary errors;
  std::vector<MethodFaithfulness> methods;  ///< EvaluateConfig::compare_methods, in that order
  torch::Tensor labels, preds, confidence;  ///< [N]
  /// Seconds per stage: train, extract, analyze, saliency, errors, figures.
  std::vector<std::pair<std::string, double>> seconds;
};

struct EvaluateResult {
  std::filesystem::path out;
  std::vector<ModelEvaluation> models;
  std::vector<std::string> class_names;
  /// The model input: data::describe_input(), and its parts.
  std::string input;
  std::vector<double> input_mean, input_std;
  std::string input_range;
  int64_t n = 0;
  torch::Tensor indices;           ///< int64 [N] positions in the test split
  std::vector<std::string> paths;  ///< source paths (ImageFolder), else empty
  torch::Tensor images;            ///< uint8 [N, C, H, W] (for the overlays)
  std::vector<std::string> warnings;
  double seconds = 0.0;         ///< end to end
  double report_seconds = 0.0;  ///< tables, figures, HTML and the rename
  std::filesystem::path report_html, report_md;
};

/// The representation rows of the seed's clustering tables, with their
/// names: gradcam-weights "Gradient Weights", probs "Final Predictions",
/// activations "Feature Maps", then our extra representations.
const std::vector<std::pair<std::string, std::string>>& evaluate_representation_rows();

/// The attribution methods run_evaluate() compares on data with or without
/// object masks (`has_masks`): none with cfg.quick or {"none"}; all five
/// (saliency::attribution_method_names()) when cfg.compare_methods is empty
/// and the data has masks; cfg.compare_methods otherwise. Throws
/// gradlens::Error (usage) naming --compare-methods for an unknown name, or
/// "none" with other names.
std::vector<std::string> evaluate_compare_methods(const EvaluateConfig& cfg, bool has_masks);

/// Runs the protocol for every model and writes the report. Throws
/// UsageError / c10::Error naming the flag or file on bad input (unknown
/// model spec, missing checkpoint, a model whose input channels do not fit
/// the data, an empty dataset, an existing --out that is not a previous report).
/// Under `gradlens launch` or torchrun (RANK, WORLD_SIZE, ...), every rank
/// runs the extraction on its whole batches (rank 0 gathers them into the
/// extraction cache, which every rank then reads) and the clustering on its
/// rows (analysis::analyze_run); rank 0 alone computes the rest and writes the
/// report, the others return the models' analyses with empty paths. Models
/// that would have to be trained first are refused there.
/// ctx.model.conv kAuto means kDirect here, unlike the other commands: KMeans
/// and GMM scores can move in the third decimal under float rounding
/// (docs/evaluate.md), and these tables are meant to equal what Python torch
/// and scikit-learn give on the same model (bench/evaluate_bench.cpp).
EvaluateResult run_evaluate(const EvaluateConfig& cfg, const RunContext& ctx = {});

/// Writes the report files for `result` into `dir` (report.md, report.json,
/// report.html, table*.{md,csv}, samples.csv). Used by run_evaluate() on its
/// temporary directory; exposed for tests.
void write_evaluate_report(const EvaluateConfig& cfg, const RunContext& ctx, EvaluateResult& result,
                           const std::filesystem::path& dir);

}  // namespace gradlens::pipeline
