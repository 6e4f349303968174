// Hessian-vector products by Pearlmutter's trick: H v = ∇(∇L · v), with two
// backward passes and without forming H.
#pragma once

#include <torch/types.h>

#include <functional>
#include <vector>

namespace gradlens::hessian {

using TensorList = std::vector<torch::Tensor>;

/// v ↦ H v for a fixed loss and variables (parameters or an input).
using HvpFn = std::function<TensorList(const TensorList& v)>;

/// H v of the scalar `loss` with respect to `vars` (each requires grad):
/// differentiates ⟨∇L, v⟩. `v` has one tensor per var, same shapes. The
/// graph of `loss` is kept, so the call can be repeated with other v.
/// Throws c10::Error when shapes disagree or loss is not a scalar.
TensorList hvp(const torch::Tensor& loss, const TensorList& vars, const TensorList& v);

/// Like hvp() but reuses first-order gradients computed once with
/// create_graph=true (the cheaper form for many products on one batch).
TensorList hvp_from_grads(const TensorList& grads, const TensorList& vars, const TensorList& v);

/// First-order gradients with the graph kept, for hvp_from_grads().
TensorList grads_with_graph(const torch::Tensor& loss, const TensorList& vars);

/// Σ_i ⟨a_i, b_i⟩ as a double.
double dot(const TensorList& a, const TensorList& b);

/// The explicit Hessian [P, P] (P = total numel of vars), column by column
/// through hvp(): O(P) products, for tests and small problems only.
torch::Tensor explicit_hessian(const torch::Tensor& loss, const TensorList& vars);

}  // namespace gradlens::hessian
