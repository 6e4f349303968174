// Training-data attribution with TracIn-CP (Pruthi et al. 2020) on the final
// linear layer: the influence of training image i on query q is
//
//   TracIn(i, q) = sum_t eta_t <g_t(z_i), g_t(z_q)>
//
// over checkpoints t with step sizes eta_t, where g_t(z) is the gradient of
// the cross-entropy of z (with its given label) with respect to the head's
// weight and bias under checkpoint t. For a linear head the gradient is the
// outer product delta [a; 1]^T with delta = softmax(logits) - onehot(label)
// and a the head's input (the penultimate features), so
//
//   <g(z_i), g(z_q)> = (delta_i . delta_q) (a_i . a_q + 1)
//
// exactly, from K + D numbers per image and checkpoint: no gradient of size
// K x (D + 1) is ever formed. Convolutions chosen with --param-layers add
// the inner products of their randomly projected gradients (projection.h),
// an unbiased estimate of theirs. The cosine form divides each checkpoint's term
// by ||g_t(z_i)|| ||g_t(z_q)|| (Barshan et al. 2020's normalisation applied per
// checkpoint). Positive scores are proponents (training on z_i lowered the
// query's loss), negative ones opponents.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <vector>

#include "gradlens/core/progress.h"
#include "gradlens/influence/projection.h"

namespace gradlens::models {
class Classifier;
}
namespace gradlens::data {
struct Dataset;
}

namespace gradlens::influence {

/// The per-sample gradient factors of N images under one checkpoint: the
/// head's exactly, inner layers' projected.
struct GradientFactors {
  torch::Tensor delta;     ///< float32 [N, K]: softmax(logits) - onehot(label)
  torch::Tensor features;  ///< float32 [N, D]: the head's input
  torch::Tensor logits;    ///< float32 [N, K] (undefined when read from a store)
  /// float32 [N, P]: the projected gradients of the --param-layers, layer
  /// after layer; undefined when there are none.
  torch::Tensor projected;
  int64_t size() const { return delta.defined() ? delta.size(0) : 0; }
  /// The rows `index` (int64 [M]) of every field.
  GradientFactors rows(const torch::Tensor& index) const;
};

/// Factors from a forward pass's features [N, D], logits [N, K] and labels
/// int64 [N] in [0, K). Throws gradlens::Error on mis-shaped or non-finite
/// input or a label out of range.
GradientFactors head_gradients(const torch::Tensor& features, const torch::Tensor& logits,
                             const torch::Tensor& labels);

/// head_gradients() of every image of `ds` (eval mode, no augmentation, the
/// dataset's own normalisation) with the labels `labels` (int64 [N]; the
/// given labels of a training run may differ from ds.labels), in batches,
/// plus the projected gradients of the layers of `projections` (one backward
/// pass per layer and batch). Throws gradlens::Error if the model has no
/// final linear layer.
GradientFactors dataset_gradient_factors(models::Classifier& model, const data::Dataset& ds,
                                         const torch::Tensor& labels, int64_t batch_size = 500,
                                         const std::vector<LayerProjection>& projections = {});

/// dataset_gradient_factors() of model inputs already normalised: images
/// float [N, C, H, W], labels int64 [N]. `progress` is called before each
/// batch (e.g. to stop a long call).
GradientFactors gradient_factors(models::Classifier& model, const torch::Tensor& images, const torch::Tensor& labels,
                                 int64_t batch_size = 500, const std::vector<LayerProjection>& projections = {},
                                 const core::ProgressFn& progress = {});

/// <g_i, g_j> for every i of `a` and j of `b`: float64 [Na, Nb] (the head's
/// exact term plus the projected layers' estimate).
torch::Tensor gradient_inner(const GradientFactors& a, const GradientFactors& b);

/// ||g_i||_2, the square root of gradient_inner(g, g)'s diagonal: float64 [N]
/// (the head alone: ||delta_i|| sqrt(||a_i||^2 + 1), GraNd of the head).
torch::Tensor gradient_norm(const GradientFactors& g);

struct TracInOptions {
  /// Divide each checkpoint's term by the two gradient norms (a zero
  /// gradient gives 0).
  bool cosine = false;
  /// Proponents and opponents kept per query (clamped to the training size).
  int64_t top_k = 10;
  /// Training images scored per block (memory: queries x chunk_rows doubles).
  int64_t chunk_rows = 8192;
  /// Also return the full [Q, N] score matrix.
  bool keep_scores = false;
};

struct TracInResult {
  torch::Tensor proponents, proponent_scores;  ///< int64 / float64 [Q, k], largest score first
  torch::Tensor opponents, opponent_scores;    ///< int64 / float64 [Q, k], most negative first
  torch::Tensor scores;                        ///< float64 [Q, N] when keep_scores
};

/// TracIn-CP of every query against every training image. train[t] and
/// queries[t] hold checkpoint t's factors; step_sizes[t] is eta_t. Equal
/// scores are listed lower training index first (when more than top_k
/// scores tie at the cut-off, which of them are kept is unspecified). Throws gradlens::Error when
/// the checkpoint counts differ, a checkpoint's shapes disagree (another
/// model), a step size is negative or not finite, or top_k < 1.
TracInResult tracin(const std::vector<GradientFactors>& train, const std::vector<GradientFactors>& queries,
                    const std::vector<double>& step_sizes, const TracInOptions& options = {});

/// Self-influence sum_t eta_t ||g_t(z_i)||^2 of every training image
/// (float64 [N]; Pruthi et al.'s score for mislabelled examples).
torch::Tensor self_influence(const std::vector<GradientFactors>& train, const std::vector<double>& step_sizes);

}  // namespace gradlens::influence
