#include "gradlens/influence/projection.h"
#include <torch/types.h>

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <sstream>

#include "gradlens/core/check.h"
#include "gradlens/core/strings.h"
#include "gradlens/models/classifier.h"

namespace gradlens::influence {

ProjectionKind parse_projection_kind(const std::string& name) {
  if (name == "gaussian") return ProjectionKind::kGaussian;
  if (name == "rademacher") return ProjectionKind::kRademacher;
  GRADLENS_CHECK_OPTION(false, "--projection: unknown kind '", name, "'; use gaussian or rademacher");
  return ProjectionKind::kGaussian;
}

std::string projection_kind_name(ProjectionKind kind) {
  return kind == ProjectionKind::kGaussian ? "gaussian" : "rademacher";
}

std::string ProjectionOptions::describe() const {
  std::ostringstream s;
  s << "layers=" << core::join(layers, ",") << ";dim=" << dim << ";seed=" << seed
    << ";kind=" << projection_kind_name(kind);
  return s.str();
}

namespace {

// A [rows, cols] factor with E[P^T P] = I; the identity when rows == cols
// (nothing to reduce on that side, and no error from it).
torch::Tensor random_factor(int64_t rows, int64_t cols, ProjectionKind kind, at::Generator& gen) {
  if (rows == cols) return torch::eye(rows, torch::kFloat32);
  const double scale = 1.0 / std::sqrt(static_cast<double>(rows));
  if (kind == ProjectionKind::kGaussian)
    return at::normal(0.0, scale, {rows, cols}, gen, torch::TensorOptions().dtype(torch::kFloat32));
  auto signs = at::randint(0, 2, {rows, cols}, gen, torch::TensorOptions().dtype(torch::kFloat32));
  return signs.mul_(2).sub_(1).mul_(scale);
}

}  // namespace

std::vector<LayerProjection> make_projections(models::Classifier& model, const torch::Tensor& probe,
                                              const ProjectionOptions& options) {
  std::vector<LayerProjection> out;
  if (options.layers.empty()) return out;
  GRADLENS_CHECK_OPTION(options.dim >= 1, "--proj-dim must be >= 1, got ", options.dim);
  const auto names = model.conv_layer_names();
  GRADLENS_CHECK_OPTION(!names.empty(), "--param-layers: ", model.describe(), " offers no convolution whose "
                        "per-sample gradients gradlens can capture (an nn.Conv2d); leave --param-layers out "
                        "to use the final linear layer alone");
  models::ModeGuard mode(model, false);
  for (size_t l = 0; l < options.layers.size(); ++l) {
    const auto& name = options.layers[l];
    GRADLENS_CHECK_OPTION(std::find(names.begin(), names.end(), name) != names.end(), "--param-layers: unknown "
                          "convolution '", name, "'; use any of ", core::join(names, ", "));
    for (size_t m = 0; m < l; ++m)
      GRADLENS_CHECK_OPTION(options.layers[m] != name, "--param-layers: '", name, "' is given twice");
    models::ConvCapture cap;
    {
      torch::NoGradGuard no_grad;
      cap = naming_flag("--param-layers", [&] {
        return model.capture_conv(probe.to(model.device()), model.default_layer(), name);
      });
    }
    LayerProjection p;
    p.layer = name;
    p.kernel = cap.geometry.kernel;
    p.stride = cap.geometry.stride;
    p.padding = cap.geometry.padding;
    p.dilation = cap.geometry.dilation;
    const int64_t cout = cap.conv_output.size(1);
    const int64_t cin = cap.conv_input.size(1) * p.kernel[0] * p.kernel[1];
    p.gradient_size = cout * cin;
    GRADLENS_CHECK_OPTION(options.dim <= p.gradient_size, "--proj-dim ", options.dim, " is larger than the "
                          "gradient of ", name, " (", p.gradient_size, " numbers); use at most ", p.gradient_size);
    const int64_t k_out =
        std::min(cout, std::max<int64_t>(1, std::llround(std::sqrt(static_cast<double>(options.dim)))));
    const int64_t k_in = std::min(cin, options.dim / k_out);
    auto gen = at::make_generator<at::CPUGeneratorImpl>(options.seed * 1000003ULL + l);
    p.p_out = random_factor(k_out, cout, options.kind, gen).to(model.device());
    p.p_in = random_factor(k_in, cin, options.kind, gen).to(model.device());
    out.push_back(std::move(p));
  }
  return out;
}

torch::Tensor project_conv_gradient(const torch::Tensor& input, const torch::Tensor& grad_output,
                                    const LayerProjection& p) {
  GRADLENS_CHECK(input.dim() == 4 && grad_output.dim() == 4 && input.size(0) == grad_output.size(0),
                 "projected gradients: input [B, Cin, H, W] and grad_output [B, Cout, H', W'] expected, got ",
                 input.sizes(), " and ", grad_output.sizes());
  const int64_t b = input.size(0);
  const auto a = torch::im2col(input.to(torch::kFloat32), p.kernel, p.dilation, p.padding, p.stride);  // [B, CinKK, L]
  const auto d = grad_output.to(torch::kFloat32).reshape({b, grad_output.size(1), -1});                 // [B, Cout, L]
  GRADLENS_CHECK(a.size(1) == p.p_in.size(1) && d.size(1) == p.p_out.size(1) && a.size(2) == d.size(2),
                 "projected gradients of ", p.layer, ": the layer's shapes differ from the projection's");
  const auto pa = torch::matmul(p.p_in, a);   // [B, k_in, L]
  const auto pd = torch::matmul(p.p_out, d);  // [B, k_out, L]
  return torch::bmm(pd, pa.transpose(1, 2)).reshape({b, -1});
}

}  // namespace gradlens::influence
