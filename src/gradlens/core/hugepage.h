// Large CPU work buffers backed by transparent huge pages.
#pragma once
#include <torch/types.h>

namespace gradlens::core {

/// An uninitialised tensor of `sizes`. On the CPU, from 4 MiB up, its memory
/// is 2 MiB-aligned and advised for transparent huge pages
/// (madvise(MADV_HUGEPAGE)), as numpy does for its large arrays: where every
/// 4 KiB page fault is expensive (virtual machines: ~40 us each, ~1 s for a
/// fresh 120 MB tensor) this makes a fresh buffer ~30x cheaper. Smaller
/// sizes and other devices: torch::empty. The tensor owns its memory; it
/// cannot be resized.
torch::Tensor empty_hugepage(c10::IntArrayRef sizes, const torch::TensorOptions& options);

}  // namespace gradlens::core
