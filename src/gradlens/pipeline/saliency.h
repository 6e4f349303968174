// `gradlens saliency`: attribution maps of one or more models on a dataset,
// compared per image with the saliency metrics (against the class-mean map,
// between models, or against object masks), written as an output directory
// with per_image.csv, summary.md, summary.json, maps/<model>.npy and
// overlay.png (docs/formats.md, "Saliency directory").
//
// run_saliency() is the in-memory library function (a later `gradlens
// evaluate` calls it); write_saliency_outputs() writes a directory;
// run_saliency_command() opens models and data for the CLI and does both.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "gradlens/core/progress.h"
#include "gradlens/data/mnist.h"
#include "gradlens/models/classifier.h"
#include "gradlens/pipeline/run_context.h"
#include "gradlens/pipeline/train.h"
#include "gradlens/report/overlay.h"
#include "gradlens/saliency/cam.h"
#include "gradlens/saliency/compare.h"
#include "gradlens/saliency/faithfulness.h"
#include "gradlens/saliency/road.h"
#include "gradlens/saliency/sanity.h"

namespace gradlens::models {
class Classifier;
}
namespace gradlens::data {
struct Dataset;
}

namespace gradlens::pipeline {

/// A classifier with the name its maps are filed under.
struct NamedClassifier {
  /// Display name and file stem (maps/<name>.npy): letters, digits, '.', '_'
  /// and '-' only.
  std::string name;
  models::Classifier* model = nullptr;
  /// The model as the user named it (recorded in summary.json).
  std::string spec;
};

/// Integrated Gradients' baseline: zeros of the model input (the training
/// mean colour after normalisation) or black (pixel value 0 in every channel).
enum class IgBaseline { kZero, kBlack };
/// "zero" or "black".
std::string ig_baseline_name(IgBaseline baseline);
/// ig_baseline_name()'s inverse. Throws gradlens::Error (usage) naming `flag`.
IgBaseline parse_ig_baseline(const std::string& name, const std::string& flag = "--ig-baseline");

/// The model-parameter randomisation test: off, cascading (groups randomised
/// from the head down, cumulatively) or independent (one group at a time).
enum class RandomisationTest { kNone, kCascading, kIndependent };
/// "none", "cascading" or "independent".
std::string randomisation_test_name(RandomisationTest test);
/// randomisation_test_name()'s inverse. Throws gradlens::Error (usage) naming `flag`.
RandomisationTest parse_randomisation_test(const std::string& name, const std::string& flag = "--randomisation");

struct SaliencyConfig {
  /// Method, layer, target and the SmoothGrad / IG settings (saliency/cam.h);
  /// `attribution.ig_baseline` is set from `ig_baseline` below.
  saliency::AttributionOptions attribution;
  IgBaseline ig_baseline = IgBaseline::kZero;
  /// kModels needs >= 2 models, kMask a dataset with object masks.
  saliency::ComparisonKind compare = saliency::ComparisonKind::kClassMean;
  saliency::CompareOptions compare_options;
  int64_t batch_size = 64;
  /// Faithfulness and localisation metrics per image (docs/saliency.md): any
  /// of faithfulness_metric_names(); "pointing", "energy" and "rank" need
  /// object masks. The target class is each model's prediction.
  std::vector<std::string> metrics;
  /// Deletion / insertion: steps, baseline, blur sigma; batch_size is set
  /// from `batch_size` above.
  saliency::PerturbationOptions perturbation;
  /// ROAD (metric "road"): removal fractions and imputation noise; seed and
  /// batch size are set from --seed and `batch_size`.
  saliency::RoadOptions road;
  /// Pointing game tolerance in pixels (TorchRay: 15 at 224 px).
  double pointing_tolerance = 15.0;
  /// Model-parameter randomisation test (saliency/sanity.h);
  /// `randomisation_options.cascading` is set from it.
  RandomisationTest randomisation = RandomisationTest::kNone;
  saliency::RandomisationOptions randomisation_options;
  /// Overlay sample: per class, up to this many images the first model
  /// classifies correctly and as many it misclassifies (dataset order).
  int64_t overlay_per_class = 1;
  report::OverlayOptions overlay;
};

/// The maps of one model.
struct SaliencyModelMaps {
  std::string name, spec, description;
  std::string layer;                      ///< resolved layer ("" for input-space methods)
  torch::Tensor maps;                     ///< float32 [N, H, W] display maps, CPU
  torch::Tensor preds;                    ///< int64 [N]
  torch::Tensor confidence;               ///< float32 [N]: softmax probability of the prediction
  torch::Tensor constant;                 ///< bool [N]: constant raw map (display map all zero)
  int64_t num_constant = 0;
  double accuracy = 0.0;                  ///< preds == labels
  int64_t raw_height = 0, raw_width = 0;  ///< size of the raw maps (the layer's map for CAMs)
  int64_t forward_passes = 0, backward_passes = 0;  ///< summed over batches
  double seconds = 0.0;
  /// Per-image faithfulness / localisation scores, float64 [N] (NaN where
  /// undefined), by column name ("deletion_auc", "insertion_auc",
  /// "average_drop", "increase_in_confidence", "road_morf", "road_lerf",
  /// "road_combined", "pointing_game", "energy_pointing_game",
  /// "relevance_rank_accuracy", "random_logit_spearman", "random_logit_ssim"),
  /// in that order.
  std::vector<std::pair<std::string, torch::Tensor>> scores;
  /// Mean deletion / insertion curves over the images, [steps + 1] (empty
  /// when not asked for), and their x values.
  torch::Tensor deletion_curve, insertion_curve, curve_fractions;
  /// Mean ROAD curves over the images, [F] (empty when not asked for), and
  /// their removal fractions.
  torch::Tensor road_morf_curve, road_lerf_curve, road_fractions;
  /// The randomisation test's steps (empty when not asked for).
  std::vector<saliency::RandomisationStep> randomisation;
};

/// "deletion", "insertion", "confidence", "road", "pointing", "energy",
/// "rank", "random-logit".
const std::vector<std::string>& faithfulness_metric_names();

/// One comparison: `model`'s maps (the prediction) against `reference`.
struct SaliencyComparison {
  std::string name;       ///< "<model>" or "<model> vs <other>"
  std::string model;      ///< name of the model whose maps are scored
  std::string reference;  ///< "class-mean", "mask" or the other model's name
  saliency::MapComparison result;
};

/// The data-randomisation test (Adebayo et al. 2018): the first model's maps
/// against those of a model trained on permuted labels (`train
/// --permute-labels`), image by image; each model explains its own target.
/// A method that explains what the model learnt gives low similarity.
struct SaliencyDataRandomisation {
  std::string name, spec, description;
  double accuracy = 0.0;  ///< the randomised model's accuracy on the images
  torch::Tensor spearman;  ///< float64 [N] (NaN where a map is constant); undefined when not run
  torch::Tensor ssim;      ///< float64 [N]
};

struct SaliencyRun {
  std::string method, target, compare;
  int64_t n = 0;
  int64_t height = 0, width = 0;  ///< input (and display map) size
  std::vector<SaliencyModelMaps> models;
  std::vector<SaliencyComparison> comparisons;
  SaliencyDataRandomisation data_randomisation;
  std::vector<std::string> warnings;  ///< one line each (constant maps, 1x1 layers, ...)
  std::vector<std::pair<std::string, double>> seconds;  ///< "maps.<model>", "compare", "total"
};

/// Computes the maps of every model for every image of `ds` (batch by batch,
/// in dataset order, on each model's device) and the comparisons of
/// cfg.compare; with `data_randomised`, also that model's maps and their
/// similarity to the first model's (run.data_randomisation). Progress: stage
/// "saliency <model>" (images) and "compare".
///
/// Throws c10::Error: no model or a null one; duplicate or unsafe names; an
/// empty dataset; batch_size < 1; a model with fewer classes than the data or
/// other input channels; compare kModels with one model or kMask without
/// masks (naming the flag); and
/// everything compute_attribution() and the comparisons throw.
SaliencyRun run_saliency(const std::vector<NamedClassifier>& models, const data::Dataset& ds,
                         const SaliencyConfig& cfg, const core::ProgressFn& progress = {},
                         const NamedClassifier* data_randomised = nullptr);

/// The overlay sample: dataset positions (int64 [M], grouped by class in
/// label order, correct ones first) of up to `per_class` correctly classified
/// and `per_class` misclassified images per class, each in dataset order.
torch::Tensor overlay_sample(const torch::Tensor& labels, const torch::Tensor& preds,
                             int64_t num_classes, int64_t per_class);

/// The overlay grid of `rows` (dataset positions): the plain image, then one
/// column per model (its maps, "pred: <class> (p)" captions, red frames where
/// the model is wrong), plus the object mask when cfg.compare is "mask".
/// Image captions name the true class and "index <i>": indices[row] when
/// `indices` (int64 [N], positions in the source split) is given, else the row.
report::OverlayGrid saliency_overlay_grid(const SaliencyRun& run, const data::Dataset& ds,
                                          const torch::Tensor& rows, const SaliencyConfig& cfg,
                                          const torch::Tensor& indices = {});

/// Writes `run` into the directory `out` (see docs/formats.md): everything
/// goes to a hidden sibling (core::StagedDirectory) renamed to `out` at the
/// end, so a directory named `out` is always complete. `indices` (optional,
/// int64 [N]) are the images' positions in the source split, recorded in
/// per_image.csv and summary.json; `dataset_name` and `config` are recorded.
/// Throws c10::Error naming --out when `out` exists (unless `overwrite`, and
/// then only a previous saliency directory, holding summary.json, is
/// replaced) or cannot be written.
void write_saliency_outputs(const SaliencyRun& run, const data::Dataset& ds,
                            const SaliencyConfig& config, const std::filesystem::path& out,
                            bool overwrite, const torch::Tensor& indices = {},
                            const std::string& dataset_name = "");

struct SaliencyCommandConfig {
  DataConfig data;
  data::Split split = data::Split::kTest;
  /// Images per class of the split (first N; 0 = all).
  int64_t per_class = 10;
  /// Model specs ("default", a gradlens checkpoint or a TorchScript file).
  std::vector<std::string> models = {"default"};
  /// The data-randomisation test's model (`train --permute-labels`), "" for none.
  std::string data_randomisation;
  SaliencyConfig saliency;
  std::filesystem::path out;
  bool overwrite = false;
};

struct SaliencyCommandResult {
  std::filesystem::path out;
  SaliencyRun run;
};

/// Loads the data and the models, runs run_saliency() and writes the
/// directory. Model names: the file stem of each spec ("default" for the
/// default model), made unique with the parent folder or a number.
/// ctx.model.conv kAuto: Winograd where it applies (open_model_for); ctx.seed
/// draws SmoothGrad's noise, ROAD's imputation and AUC-Borji's samples.
SaliencyCommandResult run_saliency_command(const SaliencyCommandConfig& cfg, const RunContext& ctx = {});

/// File-name-safe, unique display names for model specs.
std::vector<std::string> saliency_model_names(const std::vector<std::string>& specs);

}  // namespace gradlens::pipeline
