#include "gradlens/data/dataset.h"
#include <torch/types.h>

#include <cmath>
#include <iomanip>
#include <sstream>

#include "gradlens/core/check.h"

namespace gradlens::data {

int64_t Dataset::size() const { return labels.defined() ? labels.size(0) : 0; }

int64_t Dataset::channels() const { return images.defined() && images.dim() == 4 ? images.size(1) : 0; }

void validate(const Dataset& ds) {
  const std::string& n = ds.name;
  GRADLENS_CHECK(ds.images.defined() && ds.labels.defined(), "dataset '", n,
                 "': images and labels must both be set");
  GRADLENS_CHECK(ds.images.scalar_type() == torch::kUInt8 && ds.images.dim() == 4,
                 "dataset '", n, "': images must be uint8 [N, C, H, W], got ",
                 ds.images.scalar_type(), " ", ds.images.sizes());
  const int64_t c = ds.images.size(1);
  GRADLENS_CHECK(c == 1 || c == 3, "dataset '", n, "': images must have 1 or 3 channels, got ", c);
  GRADLENS_CHECK(ds.labels.scalar_type() == torch::kInt64 && ds.labels.dim() == 1 &&
                     ds.labels.size(0) == ds.images.size(0),
                 "dataset '", n, "': labels must be int64 [", ds.images.size(0), "], got ",
                 ds.labels.scalar_type(), " ", ds.labels.sizes());
  if (ds.labels.numel() > 0) {
    const int64_t lo = ds.labels.min().item<int64_t>();
    const int64_t hi = ds.labels.max().item<int64_t>();
    GRADLENS_CHECK(lo >= 0 && hi < ds.num_classes(), "dataset '", n, "': labels span [", lo, ", ",
                   hi, "] but there are ", ds.num_classes(), " class names");
  }
  GRADLENS_CHECK(ds.paths.empty() || static_cast<int64_t>(ds.paths.size()) == ds.size(),
                 "dataset '", n, "': ", ds.paths.size(), " paths for ", ds.size(), " samples");
  GRADLENS_CHECK(static_cast<int64_t>(ds.mean.size()) == c && static_cast<int64_t>(ds.std.size()) == c,
                 "dataset '", n, "': mean/std must have ", c, " values (one per channel), got ",
                 ds.mean.size(), "/", ds.std.size());
  if (ds.masks.defined()) {
    GRADLENS_CHECK(ds.masks.scalar_type() == torch::kUInt8 && ds.masks.dim() == 4 &&
                       ds.masks.size(0) == ds.size() && ds.masks.size(1) == 1 &&
                       ds.masks.size(2) == ds.images.size(2) && ds.masks.size(3) == ds.images.size(3),
                   "dataset '", n, "': masks must be uint8 [N, 1, H, W] matching images ",
                   ds.images.sizes(), ", got ", ds.masks.scalar_type(), " ", ds.masks.sizes());
  }
}

torch::Tensor to_float(const torch::Tensor& uint8_batch, const std::vector<double>& mean,
                       const std::vector<double>& std, double pixel_scale) {
  GRADLENS_CHECK(std::isfinite(pixel_scale) && pixel_scale > 0, "to_float: pixel scale ", pixel_scale,
                 " must be finite and > 0");
  GRADLENS_CHECK(uint8_batch.defined() && uint8_batch.scalar_type() == torch::kUInt8,
                 "to_float: expected a uint8 image batch, got ",
                 uint8_batch.defined() ? c10::toString(uint8_batch.scalar_type()) : "undefined");
  GRADLENS_CHECK(uint8_batch.dim() == 4 || uint8_batch.dim() == 3,
                 "to_float: expected [B, C, H, W] or [C, H, W], got ", uint8_batch.sizes());
  const int64_t cdim = uint8_batch.dim() - 3;
  const int64_t c = uint8_batch.size(cdim);
  GRADLENS_CHECK(!mean.empty() && mean.size() == std.size(),
                 "to_float: mean and std must have the same, non-zero length, got ", mean.size(),
                 " and ", std.size());
  GRADLENS_CHECK(static_cast<int64_t>(mean.size()) == c || mean.size() == 1, "to_float: ",
                 mean.size(), " mean/std values for ", c, " channels; give one per channel");
  for (size_t i = 0; i < mean.size(); ++i) {
    GRADLENS_CHECK(std::isfinite(mean[i]) && std::isfinite(std[i]) && std[i] > 0.0,
                   "to_float: channel ", i, " has mean ", mean[i], " and std ", std[i],
                   "; std must be finite and > 0");
  }
  const auto opts = torch::TensorOptions().dtype(torch::kFloat32).device(uint8_batch.device());
  std::vector<float> m(mean.begin(), mean.end());
  std::vector<float> s(std.begin(), std.end());
  // Fold the pixel scale p into the scale: (x p - m)/s = x * (p/s) - m/s.
  std::vector<float> scale(s.size());
  std::vector<float> shift(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    scale[i] = static_cast<float>(pixel_scale / std[i]);
    shift[i] = static_cast<float>(mean[i] / std[i]);
  }
  std::vector<int64_t> shape(static_cast<size_t>(uint8_batch.dim()), 1);
  shape[static_cast<size_t>(cdim)] = static_cast<int64_t>(scale.size());
  const auto scale_t = torch::tensor(scale, torch::kFloat32).view(shape).to(opts.device());
  const auto shift_t = torch::tensor(shift, torch::kFloat32).view(shape).to(opts.device());
  return uint8_batch.to(opts).mul_(scale_t).sub_(shift_t);
}

torch::Tensor to_float(const Dataset& ds, const torch::Tensor& uint8_batch) {
  return to_float(uint8_batch, ds.mean, ds.std, ds.pixel_scale);
}

std::string input_range_name(const Dataset& ds) { return ds.pixel_scale == 1.0 ? "0-255" : "0-1"; }

std::string describe_input(const Dataset& ds) {
  auto list = [](const std::vector<double>& v) {
    std::ostringstream ss;
    ss << "[";
    for (size_t i = 0; i < v.size(); ++i) ss << (i ? ", " : "") << std::setprecision(4) << v[i];
    return ss.str() + "]";
  };
  std::ostringstream ss;
  if (ds.images.defined() && ds.images.dim() == 4) ss << ds.images.size(3) << "x" << ds.images.size(2) << ", ";
  ss << "(" << (ds.pixel_scale == 1.0 ? "x" : "x/255") << " - " << list(ds.mean) << ") / " << list(ds.std);
  if (!ds.normalization.empty()) ss << " (" << ds.normalization << ")";
  return ss.str();
}

Dataset select(const Dataset& ds, const torch::Tensor& indices) {
  GRADLENS_CHECK(indices.defined() && indices.dim() == 1 &&
                     c10::isIntegralType(indices.scalar_type(), /*includeBool=*/false),
                 "select: indices must be a 1-D integer tensor, got ",
                 indices.defined() ? indices.sizes() : c10::IntArrayRef{});
  const auto idx = indices.to(torch::kCPU, torch::kInt64).contiguous();
  const int64_t n = ds.size();
  if (idx.numel() > 0) {
    const int64_t lo = idx.min().item<int64_t>();
    const int64_t hi = idx.max().item<int64_t>();
    GRADLENS_CHECK(lo >= 0 && hi < n, "select: indices span [", lo, ", ", hi, "] but dataset '",
                   ds.name, "' has ", n, " samples");
  }
  Dataset out;
  out.class_names = ds.class_names;
  out.mean = ds.mean;
  out.std = ds.std;
  out.pixel_scale = ds.pixel_scale;
  out.normalization = ds.normalization;
  out.name = ds.name;
  out.images = ds.images.index_select(0, idx.to(ds.images.device()));
  out.labels = ds.labels.index_select(0, idx.to(ds.labels.device()));
  if (ds.masks.defined()) out.masks = ds.masks.index_select(0, idx.to(ds.masks.device()));
  if (!ds.paths.empty()) {
    const int64_t* p = idx.data_ptr<int64_t>();
    out.paths.reserve(static_cast<size_t>(idx.numel()));
    for (int64_t i = 0; i < idx.numel(); ++i) out.paths.push_back(ds.paths[static_cast<size_t>(p[i])]);
  }
  return out;
}

torch::Tensor class_counts(const Dataset& ds) {
  const int64_t k = ds.num_classes();
  if (ds.size() == 0) return torch::zeros({k}, torch::kInt64);
  return torch::bincount(ds.labels.to(torch::kCPU), /*weights=*/{}, k).to(torch::kInt64);
}

}  // namespace gradlens::data
