// Boundary checks for the analysis stages (reduce, cluster, metrics, analysis): shape,
// dtype and finiteness of a data matrix, and the length of a label vector.
#pragma once

#include <torch/types.h>

#include <string>

namespace gradlens::core {

/// Checks that `x` is a 2-D floating-point tensor (float32 or float64) with at
/// least one row and one column, and that every entry is finite.
/// Throws c10::Error naming `name` when `x` is not 2-D, has 0 rows or 0
/// columns, is not float32/float64, or holds NaN/Inf (the message names the
/// first bad row).
void check_matrix(const torch::Tensor& x, const std::string& name);

/// Checks that `labels` is a 1-D integer tensor with `n_rows` entries.
/// Throws c10::Error naming `name` otherwise.
void check_labels(const torch::Tensor& labels, int64_t n_rows, const std::string& name);

}  // namespace gradlens::core
