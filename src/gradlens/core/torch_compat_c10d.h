// The c10d part of the LibTorch differences (see torch_compat.h), kept apart
// so that only the file that builds process groups compiles c10d's headers.
// Nothing else tests TORCH_VERSION_MAJOR or USE_C10D_NCCL.
#pragma once

#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/Store.hpp>
#include <torch/version.h>
#ifdef USE_C10D_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <chrono>

#include "gradlens/core/torch_compat.h"

namespace gradlens::compat {

/// The common base of c10d's process groups: c10d::ProcessGroup before 2.0,
/// c10d::Backend since (the collectives have the same signatures on both).
#if TORCH_VERSION_MAJOR >= 2
using CollectiveGroup = c10d::Backend;
#else
using CollectiveGroup = c10d::ProcessGroup;
#endif

/// A ProcessGroupNCCL over `store` with per-collective `timeout`. Throws
/// c10::Error naming the fix when this LibTorch has no NCCL (kHasNccl).
inline c10::intrusive_ptr<CollectiveGroup> make_nccl_group(const c10::intrusive_ptr<c10d::Store>& store,
                                                           int rank, int size,
                                                           std::chrono::milliseconds timeout) {
#ifdef USE_C10D_NCCL
  auto options = c10d::ProcessGroupNCCL::Options::create();
  options->timeout = timeout;
  return c10::make_intrusive<c10d::ProcessGroupNCCL>(store, rank, size, options);
#else
  (void)store, (void)rank, (void)size, (void)timeout;
  throw make_error(
      "the NCCL backend needs a LibTorch built with CUDA and NCCL, and this one has neither; use "
      "GRADLENS_DIST_BACKEND=gloo, or build gradlens against a CUDA LibTorch (CMAKE_PREFIX_PATH)");
#endif
}

}  // namespace gradlens::compat
