// The spectrum of a classifier's cross-entropy Hessian over a set of images:
// top eigenvalues (power iteration with deflation) and the trace
// (Hutchinson), with respect to its parameters or its input, as PyHessian.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "gradlens/hessian/spectrum.h"
#include "gradlens/models/classifier.h"

namespace gradlens::hessian {

/// The variables of the Hessian: the parameters (all, or those named by
/// param_prefixes) or the input (the first batch's images).
enum class HessianWrt { kParams, kInput };

/// "params" or "input".
std::string hessian_wrt_name(HessianWrt wrt);
/// hessian_wrt_name()'s inverse. Throws gradlens::Error (usage) naming `flag`.
HessianWrt parse_hessian_wrt(const std::string& name, const std::string& flag = "--wrt");

struct LossSpectrumOptions {
  HessianWrt wrt = HessianWrt::kParams;
  /// Parameter names starting with one of these (empty: all parameters).
  std::vector<std::string> param_prefixes;
  /// Images per forward pass; the loss is the mean over all images (each
  /// batch's mean weighted by its size), so the result does not depend on it
  /// beyond float rounding.
  int64_t batch_size = 100;
  /// Only the first batch (PyHessian's common "one batch" mode; always so
  /// for wrt "input").
  bool one_batch = false;
  EigenOptions eigen;
  TraceOptions trace;
  bool compute_trace = true;
};

/// Model inputs of images [begin, end): float [end - begin, C, H, W] on the
/// model's device, normalised as the model expects, and int64 labels
/// [end - begin] on the same device. Called once per batch per
/// Hessian-vector product (it may throw to stop the computation).
using BatchFn = std::function<std::pair<torch::Tensor, torch::Tensor>(int64_t begin, int64_t end)>;

struct LossSpectrum {
  int64_t samples = 0;    ///< images the loss averages over
  int64_t dimension = 0;  ///< number of variables (parameters or input numbers)
  EigenResult eigen;
  TraceResult trace;  ///< empty when compute_trace is false
};

/// The Hessian of the mean cross-entropy of `model` over images [0, n)
/// (from `batch`) with respect to opts.wrt, in eval mode (BatchNorm uses its
/// running statistics, as PyHessian). Parameters keep their requires_grad
/// flags and the model its mode on return (also after an exception).
/// Throws c10::Error: batch_size < 1;
/// n < 1; no parameter matching param_prefixes (names the prefixes).
LossSpectrum loss_spectrum(models::Classifier& model, int64_t n, const BatchFn& batch,
                           const LossSpectrumOptions& opts);

}  // namespace gradlens::hessian
