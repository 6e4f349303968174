#include "gradlens/analysis/misclassification.h"

#include <torch/types.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "gradlens/core/check.h"
#include "gradlens/core/tensor_checks.h"

namespace gradlens::analysis {

namespace {

torch::Tensor misc_as_index(const torch::Tensor& t, int64_t n, const char* name) {
  core::check_labels(t, n, name);
  return t.to(torch::kCPU, torch::kLong).contiguous();
}

torch::Tensor misc_unit_rows(const torch::Tensor& x) {
  auto d = x.to(torch::kFloat64);
  auto norms = d.norm(2, 1, true);
  return d / norms.clamp_min(1e-300) * (norms > 0).to(torch::kFloat64);
}

}  // namespace

torch::Tensor confusion_matrix(const torch::Tensor& labels, const torch::Tensor& preds,
                               int64_t num_classes) {
  GRADLENS_CHECK(num_classes >= 1, "confusion matrix: num_classes must be >= 1, got ", num_classes);
  GRADLENS_CHECK(labels.dim() == 1, "confusion matrix: labels must be 1-D, got ", labels.sizes());
  const int64_t n = labels.size(0);
  auto y = misc_as_index(labels, n, "labels");
  auto p = misc_as_index(preds, n, "predictions");
  for (const auto& [t, name] : {std::pair{y, "label"}, std::pair{p, "prediction"}}) {
    if (n == 0) break;
    GRADLENS_CHECK(t.min().item<int64_t>() >= 0 && t.max().item<int64_t>() < num_classes,
                   "confusion matrix: a ", name, " is outside [0, ", num_classes, ")");
  }
  auto flat = torch::bincount(y * num_classes + p, {}, num_classes * num_classes);
  return flat.view({num_classes, num_classes}).to(torch::kLong);
}

torch::Tensor per_class_accuracy(const torch::Tensor& confusion) {
  GRADLENS_CHECK(confusion.dim() == 2 && confusion.size(0) == confusion.size(1),
                 "per-class accuracy: the confusion matrix must be square, got ", confusion.sizes());
  auto c = confusion.to(torch::kFloat64);
  return c.diagonal() / c.sum(1);  // 0/0 = NaN for an empty class, as documented
}

Neighbors cosine_neighbors(const torch::Tensor& x, int64_t k, const torch::Tensor& queries,
                           int64_t chunk_rows) {
  core::check_matrix(x, "embedding");
  const int64_t n = x.size(0);
  GRADLENS_CHECK(k >= 1 && k < n, "nearest neighbours: k must be in [1, ", n - 1, "] for ", n,
                 " rows, got ", k);
  GRADLENS_CHECK(chunk_rows >= 1, "nearest neighbours: chunk_rows must be >= 1");
  torch::Tensor q;
  if (queries.defined()) {
    GRADLENS_CHECK(queries.dim() == 1, "nearest neighbours: queries must be 1-D row indices");
    q = queries.to(torch::kCPU, torch::kLong);
    if (q.numel() > 0)
      GRADLENS_CHECK(q.min().item<int64_t>() >= 0 && q.max().item<int64_t>() < n,
                     "nearest neighbours: a query index is outside [0, ", n, ")");
  } else {
    q = torch::arange(n, torch::kLong);
  }
  const auto v = misc_unit_rows(x);
  const int64_t m = q.size(0);
  Neighbors out;
  out.indices = torch::empty({m, k}, torch::kLong);
  out.similarities = torch::empty({m, k}, torch::kFloat64);
  const auto idx_dev = q.to(x.device());
  for (int64_t s = 0; s < m; s += chunk_rows) {
    const int64_t e = std::min(m, s + chunk_rows);
    auto rows = idx_dev.slice(0, s, e);
    auto sims = v.index_select(0, rows).mm(v.t());  // [b, N]
    // Never one's own neighbour.
    sims.scatter_(1, rows.unsqueeze(1), -std::numeric_limits<double>::infinity());
    sims = sims.to(torch::kCPU, torch::kFloat64).contiguous();
    // The k best of each row, largest similarity first, ties to the lower
    // index (the order of a stable descending sort, at O(N log k) per row).
    const double* sp = sims.data_ptr<double>();
    int64_t* ip = out.indices.data_ptr<int64_t>();
    double* vp = out.similarities.data_ptr<double>();
    at::parallel_for(0, e - s, 1, [&](int64_t r0, int64_t r1) {
      std::vector<int64_t> order(static_cast<size_t>(n));
      for (int64_t r = r0; r < r1; ++r) {
        const double* row = sp + r * n;
        std::iota(order.begin(), order.end(), int64_t{0});
        std::partial_sort(order.begin(), order.begin() + k, order.end(), [row](int64_t a, int64_t b) {
          return row[a] > row[b] || (row[a] == row[b] && a < b);
        });
        for (int64_t j = 0; j < k; ++j) {
          ip[(s + r) * k + j] = order[static_cast<size_t>(j)];
          vp[(s + r) * k + j] = row[order[static_cast<size_t>(j)]];
        }
      }
    });
  }
  return out;
}

std::vector<std::string> LabelErrorScores::names() const {
  std::vector<std::string> n = {"self_confidence", "normalized_margin"};
  if (neighbor_disagreement.defined()) n.push_back("neighbor_disagreement");
  return n;
}

const torch::Tensor& LabelErrorScores::get(const std::string& name) const {
  if (name == "self_confidence") return self_confidence;
  if (name == "normalized_margin") return normalized_margin;
  GRADLENS_CHECK(name == "neighbor_disagreement" && neighbor_disagreement.defined(),
                 "unknown label-error score '", name,
                 "'; use self_confidence, normalized_margin or neighbor_disagreement");
  return neighbor_disagreement;
}

LabelErrorScores label_error_scores(const torch::Tensor& probs, const torch::Tensor& labels,
                                    const torch::Tensor& embedding, int64_t k_neighbors) {
  core::check_matrix(probs, "probs");
  const int64_t n = probs.size(0), kc = probs.size(1);
  GRADLENS_CHECK(kc >= 2, "label-error scores need at least 2 classes, got ", kc);
  auto y = misc_as_index(labels, n, "labels");
  GRADLENS_CHECK(y.min().item<int64_t>() >= 0 && y.max().item<int64_t>() < kc,
                 "label-error scores: a label is outside [0, ", kc, ")");
  auto p = probs.to(torch::kCPU, torch::kFloat64);
  const double worst = (p.sum(1) - 1.0).abs().max().item<double>();
  GRADLENS_CHECK(worst <= 1e-3 && p.min().item<double>() >= 0.0,
                 "label-error scores: probs rows must be probabilities summing to 1 (worst row is off by ",
                 worst, "); pass softmax outputs (probs.npy), not logits");

  LabelErrorScores s;
  auto py = p.gather(1, y.unsqueeze(1)).squeeze(1);
  s.self_confidence = 1.0 - py;
  auto others = p.scatter(1, y.unsqueeze(1), -1.0);
  s.normalized_margin = -(py - std::get<0>(others.max(1)));

  if (embedding.defined()) {
    GRADLENS_CHECK(embedding.dim() == 2 && embedding.size(0) == n, "label-error scores: the embedding has ",
                   embedding.sizes(), " but there are ", n, " labels");
    const auto nb = cosine_neighbors(embedding, k_neighbors);
    auto w = nb.similarities.clamp_min(0.0);
    auto differ = (y.index_select(0, nb.indices.reshape({-1})).view_as(nb.indices) != y.unsqueeze(1))
                      .to(torch::kFloat64);
    auto wsum = w.sum(1);
    auto weighted = (w * differ).sum(1) / wsum.clamp_min(1e-300);
    auto plain = differ.mean(1);
    s.neighbor_disagreement = torch::where(wsum > 0, weighted, plain);
  }
  return s;
}

double auroc(const torch::Tensor& scores, const torch::Tensor& is_error) {
  GRADLENS_CHECK(scores.dim() == 1 && is_error.dim() == 1 && scores.size(0) == is_error.size(0),
                 "AUROC: scores and the error flags must be 1-D of the same length, got ", scores.sizes(),
                 " and ", is_error.sizes());
  auto sc = scores.to(torch::kCPU, torch::kFloat64).contiguous();
  GRADLENS_CHECK(torch::isfinite(sc).all().item<bool>(), "AUROC: scores hold NaN or Inf");
  auto pos = is_error.to(torch::kCPU, torch::kBool).contiguous();
  const int64_t n = sc.size(0);
  const int64_t np = pos.sum().item<int64_t>();
  const int64_t nn = n - np;
  GRADLENS_CHECK(np > 0 && nn > 0, "AUROC needs both positives and negatives (", np, " positives, ",
                 nn, " negatives)");
  // Mann-Whitney U from mid-ranks.
  const double* a = sc.data_ptr<double>();
  const bool* e = pos.data_ptr<bool>();
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t i, int64_t j) { return a[i] < a[j]; });
  double rank_sum = 0.0;
  for (int64_t i = 0; i < n;) {
    int64_t j = i;
    while (j < n && a[order[j]] == a[order[i]]) ++j;
    const double mid = 0.5 * static_cast<double>(i + 1 + j);  // mean of ranks i+1..j
    for (int64_t t = i; t < j; ++t)
      if (e[order[t]]) rank_sum += mid;
    i = j;
  }
  const double u = rank_sum - static_cast<double>(np) * (np + 1) / 2.0;
  return u / (static_cast<double>(np) * static_cast<double>(nn));
}

double precision_at_k(const torch::Tensor& scores, const torch::Tensor& is_error, int64_t k) {
  GRADLENS_CHECK(scores.dim() == 1 && is_error.dim() == 1 && scores.size(0) == is_error.size(0),
                 "precision@k: scores and the error flags must be 1-D of the same length");
  const int64_t n = scores.size(0);
  GRADLENS_CHECK(k >= 1 && k <= n, "precision@k: k must be in [1, ", n, "], got ", k);
  auto sc = scores.to(torch::kCPU, torch::kFloat64);
  auto order = std::get<1>(sc.sort(/*stable=*/true, /*dim=*/0, /*descending=*/true));
  auto top = order.slice(0, 0, k);
  return is_error.to(torch::kCPU, torch::kFloat64).index_select(0, top).sum().item<double>() /
         static_cast<double>(k);
}

std::vector<int64_t> sample_without_replacement(int64_t n, int64_t m, std::mt19937_64& rng) {
  GRADLENS_CHECK(m >= 0 && m <= n, "a sample of ", m, " from ", n, " items");
  std::vector<int64_t> idx(static_cast<size_t>(n));
  std::iota(idx.begin(), idx.end(), 0);
  for (int64_t i = 0; i < m; ++i) {
    std::uniform_int_distribution<int64_t> pick(i, n - 1);
    std::swap(idx[static_cast<size_t>(i)], idx[static_cast<size_t>(pick(rng))]);
  }
  idx.resize(static_cast<size_t>(m));
  return idx;
}

FlippedLabels flip_labels(const torch::Tensor& labels, int64_t num_classes, double fraction,
                          uint64_t seed) {
  GRADLENS_CHECK(num_classes >= 2, "flip labels: need at least 2 classes, got ", num_classes);
  GRADLENS_CHECK(fraction >= 0.0 && fraction <= 1.0, "flip labels: fraction must be in [0, 1], got ",
                 fraction);
  GRADLENS_CHECK(labels.dim() == 1, "flip labels: labels must be 1-D");
  const int64_t n = labels.size(0);
  auto y = misc_as_index(labels, n, "labels").clone();
  const int64_t m = static_cast<int64_t>(std::llround(fraction * static_cast<double>(n)));
  std::mt19937_64 rng(seed);
  const auto idx = sample_without_replacement(n, m, rng);
  FlippedLabels out;
  out.flipped = torch::zeros({n}, torch::kBool);
  auto* yp = y.data_ptr<int64_t>();
  auto* fp = out.flipped.data_ptr<bool>();
  std::uniform_int_distribution<int64_t> other(1, num_classes - 1);
  for (int64_t i = 0; i < m; ++i) {
    const int64_t r = idx[i];
    GRADLENS_CHECK(yp[r] >= 0 && yp[r] < num_classes, "flip labels: label ", yp[r], " is outside [0, ",
                   num_classes, ")");
    yp[r] = (yp[r] + other(rng)) % num_classes;
    fp[r] = true;
  }
  out.labels = y;
  return out;
}

}  // namespace gradlens::analysis
