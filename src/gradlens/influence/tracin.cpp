#include "gradlens/influence/tracin.h"
#include <torch/types.h>

#include <cmath>
#include <functional>

#include <torch/autograd.h>

#include "gradlens/core/check.h"
#include "gradlens/data/dataset.h"
#include "gradlens/models/classifier.h"

namespace gradlens::influence {

GradientFactors GradientFactors::rows(const torch::Tensor& index) const {
  GradientFactors r;
  r.delta = delta.index_select(0, index);
  r.features = features.index_select(0, index);
  if (logits.defined()) r.logits = logits.index_select(0, index);
  if (projected.defined()) r.projected = projected.index_select(0, index);
  return r;
}

GradientFactors head_gradients(const torch::Tensor& features, const torch::Tensor& logits,
                             const torch::Tensor& labels) {
  GRADLENS_CHECK(features.dim() == 2 && logits.dim() == 2 && features.size(0) == logits.size(0) &&
                     logits.size(1) >= 2,
                 "head gradients: features [N, D] and logits [N, K >= 2] expected, got ", features.sizes(),
                 " and ", logits.sizes());
  GRADLENS_CHECK(labels.dim() == 1 && labels.size(0) == logits.size(0) && labels.scalar_type() == torch::kInt64,
                 "head gradients: labels int64 [", logits.size(0), "] expected, got ", labels.sizes());
  GradientFactors g;
  g.features = features.detach().to(torch::kFloat32).cpu().contiguous();
  g.logits = logits.detach().to(torch::kFloat32).cpu().contiguous();
  GRADLENS_CHECK(torch::isfinite(g.features).all().item<bool>() && torch::isfinite(g.logits).all().item<bool>(),
                 "head gradients: the features or logits hold NaN or Inf");
  const int64_t k = g.logits.size(1);
  const auto y = labels.cpu();
  GRADLENS_CHECK(y.numel() == 0 || (y.min().item<int64_t>() >= 0 && y.max().item<int64_t>() < k),
                 "head gradients: a label is outside [0, ", k, ")");
  g.delta = torch::softmax(g.logits, 1);
  g.delta.scatter_add_(1, y.unsqueeze(1), -torch::ones({y.size(0), 1}, torch::kFloat32));
  return g;
}

namespace {

// The factors of n images whose model inputs batch_input(b, e) gives.
GradientFactors factors_of(models::Classifier& model, int64_t n,
                           const std::function<torch::Tensor(int64_t, int64_t)>& batch_input,
                           const torch::Tensor& labels, int64_t batch_size,
                           const std::vector<LayerProjection>& projections, const core::ProgressFn& progress) {
  GRADLENS_CHECK(batch_size >= 1, "--batch-size must be >= 1, got ", batch_size);
  models::ModeGuard mode(model, false);
  // No parameter records a graph: with projected layers, autograd starts at
  // the captured convolution's output (a leaf then), so the backward pass
  // runs from the logits to that layer only.
  struct FrozenParameters {
    std::vector<torch::Tensor> params;
    std::vector<bool> required;
    explicit FrozenParameters(models::Classifier& m) : params(m.parameters()) {
      for (auto& p : params) {
        required.push_back(p.requires_grad());
        p.requires_grad_(false);
      }
    }
    ~FrozenParameters() {
      for (size_t i = 0; i < params.size(); ++i) params[i].requires_grad_(required[i]);
    }
  } frozen(model);
  const auto layer = model.default_layer();
  std::vector<torch::Tensor> feats, logits, projected;
  auto keep_head = [&](const models::Capture& cap) {
    GRADLENS_CHECK(cap.features.defined(), "training-data attribution needs the input of the model's final "
                   "linear layer, and ", model.describe(), " has none");
    feats.push_back(cap.features.detach().to(torch::kFloat32).cpu());
    logits.push_back(cap.logits.detach().to(torch::kFloat32).cpu());
  };
  for (int64_t s = 0; s < n; s += batch_size) {
    const int64_t e = std::min(n, s + batch_size);
    const auto x = batch_input(s, e).to(model.device());
    if (progress) {
      core::ProgressEvent ev;
      ev.stage = "gradient factors";
      ev.done = s;
      ev.total = n;
      progress(ev);
    }
    if (projections.empty()) {
      torch::NoGradGuard no_grad;
      keep_head(model.capture(x, layer, /*maps_leaf=*/true));
      continue;
    }
    std::vector<torch::Tensor> parts;
    const auto y = labels.slice(0, s, e).to(model.device());
    for (size_t l = 0; l < projections.size(); ++l) {
      const auto& p = projections[l];
      // In eval mode sample i's loss depends on sample i alone, so the
      // gradient of the summed loss at the layer's output is per sample.
      auto cap = naming_flag("--param-layers", [&] { return model.capture_conv(x, layer, p.layer); });
      if (l == 0) keep_head(cap);
      const auto loss = torch::nll_loss(torch::log_softmax(cap.logits, 1), y, {}, at::Reduction::Sum);
      const auto g = torch::autograd::grad({loss}, {cap.conv_output})[0];
      parts.push_back(project_conv_gradient(cap.conv_input, g.detach(), p).cpu());
    }
    projected.push_back(torch::cat(parts, 1));
  }
  auto out = head_gradients(torch::cat(feats), torch::cat(logits), labels);
  if (!projected.empty()) {
    out.projected = torch::cat(projected).contiguous();
    GRADLENS_CHECK(torch::isfinite(out.projected).all().item<bool>(), "projected gradients hold NaN or Inf");
  }
  return out;
}

}  // namespace

GradientFactors dataset_gradient_factors(models::Classifier& model, const data::Dataset& ds,
                                         const torch::Tensor& labels, int64_t batch_size,
                                         const std::vector<LayerProjection>& projections) {
  GRADLENS_CHECK(labels.dim() == 1 && labels.size(0) == ds.size(), "gradient factors: ", ds.size(),
                 " labels expected for ", ds.name, ", got ", labels.sizes());
  GRADLENS_CHECK(ds.size() >= 1, "gradient factors: the data set ", ds.name, " is empty");
  return factors_of(
      model, ds.size(), [&](int64_t b, int64_t e) { return data::to_float(ds, ds.images.slice(0, b, e)); }, labels,
      batch_size, projections, {});
}

GradientFactors gradient_factors(models::Classifier& model, const torch::Tensor& images, const torch::Tensor& labels,
                                 int64_t batch_size, const std::vector<LayerProjection>& projections,
                                 const core::ProgressFn& progress) {
  GRADLENS_CHECK(images.dim() == 4 && images.is_floating_point() && images.size(0) >= 1,
                 "gradient factors: images float [N >= 1, C, H, W] expected, got ", images.sizes());
  GRADLENS_CHECK(labels.dim() == 1 && labels.size(0) == images.size(0) && labels.scalar_type() == torch::kInt64,
                 "gradient factors: labels int64 [", images.size(0), "] expected, got ", labels.sizes());
  GRADLENS_CHECK(torch::isfinite(images).all().item<bool>(), "gradient factors: the images hold NaN or Inf");
  return factors_of(
      model, images.size(0), [&](int64_t b, int64_t e) { return images.slice(0, b, e).to(torch::kFloat32); },
      labels, batch_size, projections, progress);
}

torch::Tensor gradient_inner(const GradientFactors& a, const GradientFactors& b) {
  GRADLENS_CHECK(a.delta.size(1) == b.delta.size(1) && a.features.size(1) == b.features.size(1),
                 "head gradients of different models: [", a.delta.size(1), " classes, ", a.features.size(1),
                 " features] and [", b.delta.size(1), ", ", b.features.size(1), "]");
  GRADLENS_CHECK(a.projected.defined() == b.projected.defined() &&
                     (!a.projected.defined() || a.projected.size(1) == b.projected.size(1)),
                 "gradient factors with different projected layers");
  const auto dd = torch::mm(a.delta, b.delta.t()).to(torch::kFloat64);
  const auto aa = torch::mm(a.features, b.features.t()).to(torch::kFloat64);
  auto inner = dd.mul_(aa.add_(1.0));
  if (a.projected.defined()) inner.add_(torch::mm(a.projected, b.projected.t()).to(torch::kFloat64));
  return inner;
}

torch::Tensor gradient_norm(const GradientFactors& g) {
  const auto d = g.delta.to(torch::kFloat64), a = g.features.to(torch::kFloat64);
  auto sq = d.pow(2).sum(1).mul(a.pow(2).sum(1).add(1.0));
  if (g.projected.defined()) sq.add_(g.projected.to(torch::kFloat64).pow(2).sum(1));
  return sq.sqrt();
}

namespace {

void check_checkpoints(const std::vector<GradientFactors>& train, const std::vector<double>& step_sizes) {
  GRADLENS_CHECK(!train.empty(), "TracIn needs at least one checkpoint");
  GRADLENS_CHECK(step_sizes.size() == train.size(), "TracIn: ", train.size(), " checkpoints but ",
                 step_sizes.size(), " step sizes");
  for (size_t t = 0; t < train.size(); ++t) {
    GRADLENS_CHECK(std::isfinite(step_sizes[t]) && step_sizes[t] >= 0, "TracIn: the step size of checkpoint ",
                   t + 1, " is ", step_sizes[t], "; it must be finite and >= 0");
    GRADLENS_CHECK(train[t].size() == train[0].size() && train[t].delta.size(1) == train[0].delta.size(1) &&
                       train[t].features.size(1) == train[0].features.size(1),
                   "TracIn: checkpoint ", t + 1, " gives [", train[t].size(), " images, ", train[t].delta.size(1),
                   " classes, ", train[t].features.size(1), " features] where checkpoint 1 gives [",
                   train[0].size(), ", ", train[0].delta.size(1), ", ", train[0].features.size(1),
                   "]: the checkpoints are not of one model");
  }
}

// Keeps, per row, the k largest values of cat(best, cand) (ties: lower index).
void merge_top(torch::Tensor& best_v, torch::Tensor& best_i, const torch::Tensor& v, const torch::Tensor& i, int64_t k) {
  auto all_v = best_v.defined() ? torch::cat({best_v, v}, 1) : v;
  auto all_i = best_i.defined() ? torch::cat({best_i, i}, 1) : i;
  // Sort by index first, then stably by value, so equal values keep the lower index first.
  const auto by_index = std::get<1>(all_i.sort(/*stable=*/true, 1, false));
  all_v = all_v.gather(1, by_index);
  all_i = all_i.gather(1, by_index);
  const auto order = std::get<1>(all_v.sort(/*stable=*/true, 1, /*descending=*/true));
  const int64_t kk = std::min<int64_t>(k, all_v.size(1));
  best_v = all_v.gather(1, order).slice(1, 0, kk).contiguous();
  best_i = all_i.gather(1, order).slice(1, 0, kk).contiguous();
}

}  // namespace

TracInResult tracin(const std::vector<GradientFactors>& train, const std::vector<GradientFactors>& queries,
                    const std::vector<double>& step_sizes, const TracInOptions& options) {
  check_checkpoints(train, step_sizes);
  GRADLENS_CHECK(queries.size() == train.size(), "TracIn: ", train.size(), " training checkpoints but ",
                 queries.size(), " for the queries");
  GRADLENS_CHECK_OPTION(options.top_k >= 1, "--top-k must be >= 1, got ", options.top_k);
  GRADLENS_CHECK(options.chunk_rows >= 1, "TracIn: chunk_rows must be >= 1");
  const int64_t n = train[0].size(), q = queries[0].size();
  for (size_t t = 0; t < queries.size(); ++t)
    GRADLENS_CHECK(queries[t].size() == q, "TracIn: checkpoint ", t + 1, " has ", queries[t].size(),
                   " queries, checkpoint 1 has ", q);
  const int64_t k = std::min(options.top_k, n);
  std::vector<torch::Tensor> query_norms, train_norms;
  if (options.cosine)
    for (size_t t = 0; t < train.size(); ++t) {
      query_norms.push_back(gradient_norm(queries[t]));
      train_norms.push_back(gradient_norm(train[t]));
    }
  TracInResult r;
  std::vector<torch::Tensor> blocks;
  torch::Tensor pv, pi, ov, oi;
  for (int64_t s = 0; s < n; s += options.chunk_rows) {
    const int64_t e = std::min(n, s + options.chunk_rows);
    auto block = torch::zeros({q, e - s}, torch::kFloat64);
    for (size_t t = 0; t < train.size(); ++t) {
      GradientFactors part;
      part.delta = train[t].delta.slice(0, s, e);
      part.features = train[t].features.slice(0, s, e);
      if (train[t].projected.defined()) part.projected = train[t].projected.slice(0, s, e);
      auto term = gradient_inner(queries[t], part);
      if (options.cosine) {
        const auto denom = torch::outer(query_norms[t], train_norms[t].slice(0, s, e));
        term = torch::where(denom.gt(0), term / denom, torch::zeros_like(term));
      }
      block.add_(term, step_sizes[t]);
    }
    const auto idx = torch::arange(s, e, torch::kInt64).unsqueeze(0).expand({q, e - s});
    const int64_t kb = std::min<int64_t>(k, e - s);
    {
      auto top = block.topk(kb, 1, true, true);
      merge_top(pv, pi, std::get<0>(top), idx.gather(1, std::get<1>(top)), k);
      auto low = block.neg().topk(kb, 1, true, true);
      merge_top(ov, oi, std::get<0>(low), idx.gather(1, std::get<1>(low)), k);
    }
    if (options.keep_scores) blocks.push_back(block);
  }
  r.proponents = pi;
  r.proponent_scores = pv;
  r.opponents = oi;
  r.opponent_scores = ov.neg();
  if (options.keep_scores) r.scores = torch::cat(blocks, 1);
  return r;
}

torch::Tensor self_influence(const std::vector<GradientFactors>& train, const std::vector<double>& step_sizes) {
  check_checkpoints(train, step_sizes);
  auto s = torch::zeros({train[0].size()}, torch::kFloat64);
  for (size_t t = 0; t < train.size(); ++t) s.add_(gradient_norm(train[t]).pow(2), step_sizes[t]);
  return s;
}

}  // namespace gradlens::influence
