#include "gradlens/extract/audit.h"
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <cstring>
#include <numeric>
#include <sstream>

#include "gradlens/core/check.h"
#include "gradlens/core/json.h"

namespace gradlens::extract {

namespace {

uint64_t fnv1a(const unsigned char* p, size_t n) {
  uint64_t h = 1469598103934665603ULL;
  for (size_t i = 0; i < n; ++i) {
    h ^= p[i];
    h *= 1099511628211ULL;
  }
  return h;
}

int64_t count_distinct_rows(const torch::Tensor& x) {  // CPU contiguous
  const int64_t n = x.size(0);
  if (n == 0) return 0;
  const size_t row_bytes = static_cast<size_t>(x.numel() / n) * x.element_size();
  const auto* base = static_cast<const unsigned char*>(x.data_ptr());
  std::vector<std::pair<uint64_t, int64_t>> h(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) h[i] = {fnv1a(base + i * row_bytes, row_bytes), i};
  std::sort(h.begin(), h.end());
  int64_t distinct = 0;
  size_t i = 0;
  while (i < h.size()) {
    size_t j = i;
    while (j < h.size() && h[j].first == h[i].first) ++j;
    // Rows with the same hash: count the byte-distinct ones among them.
    std::vector<int64_t> reps;
    for (size_t t = i; t < j; ++t) {
      const auto* row = base + h[t].second * row_bytes;
      bool seen = false;
      for (auto r : reps)
        if (std::memcmp(row, base + r * row_bytes, row_bytes) == 0) {
          seen = true;
          break;
        }
      if (!seen) reps.push_back(h[t].second);
    }
    distinct += static_cast<int64_t>(reps.size());
    i = j;
  }
  return distinct;
}

std::string fmt_double(double v) {
  std::ostringstream os;
  os.precision(3);
  os << v;
  return os.str();
}

nlohmann::json num_or_null(double v) {
  return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr);
}

}  // namespace

torch::Tensor gradcam_head_identity(const torch::Tensor& fc_weight, const torch::Tensor& logit_grad,
                                    int64_t map_hw) {
  GRADLENS_CHECK(fc_weight.dim() == 2 && logit_grad.dim() == 2 &&
                     logit_grad.size(1) == fc_weight.size(0),
                 "gradcam_head_identity: logit_grad [N, K] and fc_weight [K, D] expected, got ",
                 logit_grad.sizes(), " and ", fc_weight.sizes());
  GRADLENS_CHECK(map_hw >= 1, "gradcam_head_identity: map size must be >= 1, got ", map_hw);
  return torch::matmul(logit_grad.to(torch::kDouble), fc_weight.detach().to(logit_grad.device(), torch::kDouble)) /
         static_cast<double>(map_hw);
}

AuditResult audit_representation(const torch::Tensor& x_in, const torch::Tensor& labels,
                                 int64_t num_classes, const AuditInput& input,
                                 const AuditOptions& opts) {
  const std::string& nm = input.name;
  GRADLENS_CHECK(x_in.defined() && x_in.dim() == 2 && x_in.is_floating_point(), "representation '",
                 nm, "' must be a 2-D float matrix [rows, features], got ",
                 x_in.defined() ? x_in.sizes() : c10::IntArrayRef{});
  const auto x = x_in.detach().to(torch::kCPU).contiguous();
  AuditResult r;
  r.name = nm;
  r.rows = x.size(0);
  r.cols = x.size(1);
  r.uses_true_labels = input.uses_true_labels;
  r.label_informed = input.uses_true_labels;
  if (r.rows > 0 && r.cols > 0 && !torch::isfinite(x).all().item<bool>()) {
    const auto bad = torch::logical_not(torch::isfinite(x)).any(1);
    const int64_t row = bad.nonzero().min().item<int64_t>();
    GRADLENS_CHECK(false, "representation '", nm, "' holds NaN or Inf (first in row ", row,
                   "); the model or its input produced non-finite values");
  }
  if (labels.defined())
    GRADLENS_CHECK(labels.dim() == 1 && labels.size(0) == r.rows, "representation '", nm, "' has ",
                   r.rows, " rows but ", labels.numel(), " labels were given");

  // Distinct and zero rows.
  r.distinct_rows = count_distinct_rows(x);
  if (r.rows > 0) r.zero_rows = (x == 0).all(1).sum().item<int64_t>();

  // One float64 copy serves the rank, the identity check and the leakage check.
  const auto xd = x.to(torch::kDouble);

  // Numerical rank (float64), as numpy.linalg.matrix_rank.
  if (r.rows > 0 && r.cols > 0) {
    r.rank_rows = std::min(r.rows, std::max<int64_t>(1, opts.rank_rows));
    const auto m = xd.slice(0, 0, r.rank_rows);
    // Singular values from the eigenvalues of the smaller Gram matrix (2-3x
    // faster than an SVD). Accurate enough for this tolerance: the
    // eigenvalues of G = M^T M carry an absolute error of about
    // n * eps64 * s_max^2, and the squared threshold is
    // (s_max * n * eps32)^2 = n^2 * 1.4e-14 * s_max^2 (n = max(rows, cols)):
    // at least 64n times larger, so no singular value changes side of it.
    const auto gram = m.size(1) >= m.size(0) ? torch::matmul(m, m.t()) : torch::matmul(m.t(), m);
    const auto s = torch::linalg_eigvalsh(gram).clamp_min(0).sqrt();
    const double eps = opts.rank_eps > 0 ? opts.rank_eps : std::numeric_limits<float>::epsilon();
    r.top_singular_value = s.max().item<double>();
    r.rank_tol = r.top_singular_value * static_cast<double>(std::max(m.size(0), m.size(1))) * eps;
    r.rank = (s > r.rank_tol).sum().item<int64_t>();
  }

  // Head identity.
  if (input.head_identity.defined()) {
    const auto e = input.head_identity.detach().to(torch::kCPU, torch::kDouble);
    GRADLENS_CHECK(e.sizes() == x.sizes(), "representation '", nm, "': head identity of shape ",
                   e.sizes(), " does not match the matrix ", x.sizes());
    r.identity_checked = true;
    const double scale = r.rows ? e.abs().max().item<double>() : 0.0;
    r.identity_max_abs_diff = r.rows ? (xd - e).abs().max().item<double>() : 0.0;
    r.identity_rel_diff = scale > 0 ? r.identity_max_abs_diff / scale : r.identity_max_abs_diff;
    r.equals_head_identity = r.identity_rel_diff <= opts.identity_rtol;
  }

  // Leakage: nearest class mean of row-normalised vectors.
  if (labels.defined() && r.rows > 0 && num_classes > 0) {
    const auto y = labels.to(torch::kCPU, torch::kLong);
    GRADLENS_CHECK(y.min().item<int64_t>() >= 0 && y.max().item<int64_t>() < num_classes,
                   "representation '", nm, "': labels must lie in [0, ", num_classes, ")");
    // Without materialising the normalised rows xn = x / |x| (0 for a zero
    // row): the class sums of xn are (onehot / |x|)^T x, and
    // |xn - m|^2 = |xn|^2 - 2 (x . m) / |x| + |m|^2, where |xn|^2 is the same
    // for every class and so drops out of the argmin.
    const auto norms = xd.norm(2, 1);
    const auto inv = torch::where(norms > 0, norms.reciprocal(), torch::zeros_like(norms)).unsqueeze(1);
    const auto onehot = torch::one_hot(y, num_classes).to(torch::kDouble);
    const auto sums = torch::matmul((onehot * inv).t(), xd);
    const auto counts = torch::bincount(y, {}, num_classes).to(torch::kDouble);
    const auto present = counts > 0;
    auto means = sums / counts.clamp_min(1).unsqueeze(1);
    auto d2 = (means * means).sum(1).unsqueeze(0) - 2 * torch::matmul(xd, means.t()) * inv;
    d2 = torch::where(present.unsqueeze(0), d2, torch::full_like(d2, std::numeric_limits<double>::infinity()));
    const auto pred = d2.argmin(1);
    r.ncm_accuracy = (pred == y).to(torch::kDouble).mean().item<double>();
    r.majority_accuracy = counts.max().item<double>() / static_cast<double>(r.rows);
  }

  // Flags and warnings.
  const bool few_rows = num_classes > 0 && r.rows > num_classes && r.distinct_rows <= num_classes;
  r.degenerate = r.equals_head_identity || few_rows || (r.rows > 0 && r.rank == 0);
  if (r.equals_head_identity)
    r.warnings.push_back(nm + ": degenerate: equals the head-weight identity (logit gradient x W / (H*W)) "
                         "to " + fmt_double(r.identity_rel_diff) +
                         " relative; it is a fixed function of the target class, so clustering it "
                         "only recovers the targets");
  if (few_rows)
    r.warnings.push_back(nm + ": degenerate: only " + std::to_string(r.distinct_rows) +
                         " distinct rows among " + std::to_string(r.rows) + " (<= " +
                         std::to_string(num_classes) + " classes)");
  if (r.rows > 0 && r.rank == 0) r.warnings.push_back(nm + ": degenerate: numerical rank 0 (all rows ~ zero)");
  if (r.label_informed) {
    std::string w = nm + ": label-informed: computed with the true labels, so row-normalised it "
                         "separates by label by construction";
    if (std::isfinite(r.ncm_accuracy))
      w += " (nearest-class-mean accuracy " + fmt_double(r.ncm_accuracy) + ")";
    r.warnings.push_back(w);
  }
  if (r.zero_rows > 0)
    r.warnings.push_back(nm + ": " + std::to_string(r.zero_rows) +
                         " all-zero row(s); cosine similarity is undefined for them");
  return r;
}

void to_json(nlohmann::json& j, const AuditResult& r) {
  j = nlohmann::json{{"name", r.name},
                     {"rows", r.rows},
                     {"cols", r.cols},
                     {"distinct_rows", r.distinct_rows},
                     {"zero_rows", r.zero_rows},
                     {"rank", r.rank},
                     {"rank_rows", r.rank_rows},
                     {"rank_tol", r.rank_tol},
                     {"top_singular_value", r.top_singular_value},
                     {"identity_checked", r.identity_checked},
                     {"identity_max_abs_diff", num_or_null(r.identity_max_abs_diff)},
                     {"identity_rel_diff", num_or_null(r.identity_rel_diff)},
                     {"equals_head_identity", r.equals_head_identity},
                     {"uses_true_labels", r.uses_true_labels},
                     {"ncm_accuracy", num_or_null(r.ncm_accuracy)},
                     {"majority_accuracy", num_or_null(r.majority_accuracy)},
                     {"degenerate", r.degenerate},
                     {"label_informed", r.label_informed},
                     {"warnings", r.warnings}};
}

void from_json(const nlohmann::json& j, AuditResult& r) {
  constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
  r = AuditResult();
  r.name = core::json_value_or<std::string>(j, "name", "");
  r.rows = core::json_value_or<int64_t>(j, "rows", 0);
  r.cols = core::json_value_or<int64_t>(j, "cols", 0);
  r.distinct_rows = core::json_value_or<int64_t>(j, "distinct_rows", 0);
  r.zero_rows = core::json_value_or<int64_t>(j, "zero_rows", 0);
  r.rank = core::json_value_or<int64_t>(j, "rank", 0);
  r.rank_rows = core::json_value_or<int64_t>(j, "rank_rows", 0);
  r.rank_tol = core::json_value_or<double>(j, "rank_tol", kNaN);
  r.top_singular_value = core::json_value_or<double>(j, "top_singular_value", kNaN);
  r.identity_checked = core::json_value_or<bool>(j, "identity_checked", false);
  r.identity_max_abs_diff = core::json_value_or<double>(j, "identity_max_abs_diff", kNaN);
  r.identity_rel_diff = core::json_value_or<double>(j, "identity_rel_diff", kNaN);
  r.equals_head_identity = core::json_value_or<bool>(j, "equals_head_identity", false);
  r.uses_true_labels = core::json_value_or<bool>(j, "uses_true_labels", false);
  r.ncm_accuracy = core::json_value_or<double>(j, "ncm_accuracy", kNaN);
  r.majority_accuracy = core::json_value_or<double>(j, "majority_accuracy", kNaN);
  r.degenerate = core::json_value_or<bool>(j, "degenerate", false);
  r.label_informed = core::json_value_or<bool>(j, "label_informed", r.uses_true_labels);
  r.warnings = core::json_value_or<std::vector<std::string>>(j, "warnings", {});
}

}  // namespace gradlens::extract
