// Process-wide runtime set-up: thread count, device choice and seeding.
#pragma once

#include <c10/core/Device.h>

#include <cstdint>
#include <string>

namespace gradlens::core {

struct RuntimeOptions {
  /// Intra-op threads; 0 means all hardware threads (Debian's LibTorch
  /// starts with 1, which wastes the machine).
  int threads = 0;
  /// OpenBLAS's own pthread pool (LibTorch's matrix products and LAPACK
  /// calls go through it). 1 by default: gradlens parallelises with
  /// LibTorch's OpenMP pool, and OpenBLAS workers busy-wait after each call,
  /// taking cores from the OpenMP threads (on the 2-core machine, `hessian`
  /// ran 1.5x slower and `analyze` 1.3x slower idle and up to 10x slower on
  /// a loaded machine with OpenBLAS on all cores). 0 means the same as
  /// `threads`.
  int blas_threads = 1;
  /// "cpu", "cuda" or "cuda:N".
  std::string device = "cpu";
  uint64_t seed = 0;
  /// Keep memory that tensors free mapped in the process for reuse
  /// (keep_freed_memory()). On by default.
  bool keep_freed_memory = true;
};

/// What init_runtime() settled on.
struct RuntimeInfo {
  c10::Device device{c10::kCPU};
  int threads = 1;
  /// OpenBLAS's thread count as set, or 0 when the process's BLAS is not
  /// OpenBLAS (the setting then has no effect).
  int blas_threads = 0;
  uint64_t seed = 0;
  /// Whether keep_freed_memory() took effect.
  bool keeps_freed_memory = false;
};

/// Number of hardware threads (at least 1).
int hardware_threads();

/// Physical memory of this machine in bytes (0 if unknown).
uint64_t physical_memory_bytes();

/// Throws gradlens::Error "<what> needs ~X GiB; this machine has Y GiB;
/// <fix>" when `bytes` exceed the machine's physical memory: an allocation
/// that would fail deep in the allocator, or swap for hours, refused before
/// it starts.
void check_fits_in_memory(uint64_t bytes, const std::string& what, const std::string& fix);

/// Whether at::parallel_for, as compiled into the gradlens library, splits a
/// range of 2 over 2 threads when at least 2 intra-op threads are set (it is
/// a header template: without OpenMP in our build it runs every loop on one
/// thread). False when fewer than 2 threads are set.
bool parallel_for_splits();

/// Parses "cpu", "cuda" or "cuda:N". Throws c10::Error naming --device when
/// the string is malformed or CUDA is not available in this build/machine.
c10::Device parse_device(const std::string& spec);

/// Tells glibc's malloc to keep freed memory mapped instead of handing it
/// back to the kernel: every block the main thread allocates comes from the
/// heap (no block gets its own mapping), which is never trimmed and grows by
/// 64 MiB at a time. LibTorch's CPU allocator is plain malloc, so by default
/// every activation over glibc's mmap threshold is a fresh mapping whose
/// pages fault in again on each batch (about 40 us per 4 KiB page on the VMs
/// we measured: a quarter of a ResNet18 extraction of Fashion-MNIST, 60% of
/// a Grad-CAM pass over 224-px images). The cost is memory: the process
/// keeps its peak heap. Process-wide, so only
/// programs call it (through init_runtime), never library code. Returns
/// false where the C library is not glibc or refuses a setting.
bool keep_freed_memory();

/// Sets the intra-op and OpenBLAS thread counts, seeds LibTorch's generators and resolves
/// the device, and calls keep_freed_memory() unless told not to. Throws on a bad device or a negative thread
/// count.
RuntimeInfo init_runtime(const RuntimeOptions& opts);

/// "1.13.0"-style version of the LibTorch we run against.
std::string torch_version();

/// The file libblas.so.3 resolves to, or "" if it cannot be found. Used to
/// warn when the reference BLAS (about 40x slower here) is in use.
std::string blas_library_path();

}  // namespace gradlens::core
