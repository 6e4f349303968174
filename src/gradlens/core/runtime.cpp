#include "gradlens/core/runtime.h"
#include <torch/types.h>
#include <ATen/Parallel.h>
#include <torch/cuda.h>
#include <torch/utils.h>

#include <torch/version.h>

#include <dlfcn.h>
#include <malloc.h>
#include <unistd.h>
#include <link.h>

#include <atomic>
#include <cmath>

#include <filesystem>
#include <limits>
#include <thread>

#include "gradlens/core/blas.h"
#include "gradlens/core/check.h"

namespace gradlens::core {

int hardware_threads() {
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

uint64_t physical_memory_bytes() {
  const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
  return pages > 0 && page > 0 ? static_cast<uint64_t>(pages) * static_cast<uint64_t>(page) : 0;
}

void check_fits_in_memory(uint64_t bytes, const std::string& what, const std::string& fix) {
  const uint64_t have = physical_memory_bytes();
  if (have == 0 || bytes <= have) return;
  constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;
  GRADLENS_CHECK(false, what, " needs ~", c10::str(std::ceil(bytes / kGiB)), " GiB; this machine has ",
                 c10::str(std::floor(have / kGiB)), " GiB; ", fix);
}

c10::Device parse_device(const std::string& spec) {
  GRADLENS_CHECK_OPTION(spec == "cpu" || spec.rfind("cuda", 0) == 0,
                 "--device: unknown device '", spec, "'; use cpu, cuda or cuda:N");
  if (spec == "cpu") return c10::Device(c10::kCPU);
  c10::Device dev(c10::kCPU);
  try {
    dev = c10::Device(spec);
  } catch (const c10::Error&) {
    GRADLENS_CHECK(false, "--device: malformed device '", spec, "'; use cuda or cuda:N");
  }
  GRADLENS_CHECK(torch::cuda::is_available(), "--device ", spec,
                 ": CUDA is not available (this LibTorch was built without CUDA or no GPU "
                 "is visible); use --device cpu or build against a CUDA LibTorch via "
                 "CMAKE_PREFIX_PATH");
  if (dev.has_index()) {
    GRADLENS_CHECK(dev.index() < static_cast<int>(torch::cuda::device_count()), "--device ", spec,
                   ": only ", torch::cuda::device_count(), " CUDA device(s) visible");
  }
  return dev;
}

bool parallel_for_splits() {
  if (at::get_num_threads() < 2) return false;
  std::atomic<int> calls{0};
  at::parallel_for(0, 2, 1, [&](int64_t, int64_t) { ++calls; });
  return calls.load() == 2;
}

RuntimeInfo init_runtime(const RuntimeOptions& opts) {
  GRADLENS_CHECK(opts.threads >= 0, "--threads must be >= 0 (0 = all cores), got ", opts.threads);
  GRADLENS_CHECK(opts.blas_threads >= 0, "--blas-threads must be >= 0 (0 = as many as --threads), got ",
                 opts.blas_threads);
  RuntimeInfo info;
  info.device = parse_device(opts.device);
  info.threads = opts.threads == 0 ? hardware_threads() : opts.threads;
  torch::set_num_threads(info.threads);
  // LibTorch's set_num_threads leaves OpenBLAS's pool at its own default
  // (all cores), whatever --threads says.
  if (set_blas_threads(opts.blas_threads == 0 ? info.threads : opts.blas_threads)) info.blas_threads = blas_threads();
  info.seed = opts.seed;
  torch::manual_seed(opts.seed);
  if (opts.keep_freed_memory) info.keeps_freed_memory = keep_freed_memory();
  return info;
}

bool keep_freed_memory() {
#if defined(__GLIBC__)
  // No block gets its own mapping (M_MMAP_MAX 0): a 224-px ResNet batch's
  // activations are hundreds of MB, over the largest mmap threshold glibc
  // accepts (32 MiB), so raising the threshold alone leaves them mapped
  // afresh on every batch. Threads other than the main one still map what
  // their 64 MiB arenas cannot hold. The threshold is raised too, in case
  // the mapping count is ever allowed again; either setting also turns off
  // glibc's dynamic threshold. bench/bench_peer.h gives benchmark peers the
  // same four settings through MALLOC_*_ variables; change both together.
  bool ok = mallopt(M_MMAP_MAX, 0) == 1;
  ok = mallopt(M_MMAP_THRESHOLD, 32 << 20) == 1 && ok;
  ok = mallopt(M_TRIM_THRESHOLD, std::numeric_limits<int>::max()) == 1 && ok;
  ok = mallopt(M_TOP_PAD, 64 << 20) == 1 && ok;
  return ok;
#else
  return false;
#endif
}

std::string torch_version() {
  return std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR) + "." +
         std::to_string(TORCH_VERSION_PATCH);
}

std::string blas_library_path() {
  void* h = dlopen("libblas.so.3", RTLD_LAZY | RTLD_NOLOAD);
  if (h == nullptr) h = dlopen("libblas.so.3", RTLD_LAZY);
  if (h == nullptr) return "";
  struct link_map* map = nullptr;
  std::string path;
  if (dlinfo(h, RTLD_DI_LINKMAP, &map) == 0 && map != nullptr && map->l_name != nullptr) {
    std::error_code ec;
    path = std::filesystem::canonical(map->l_name, ec).string();
    if (ec) path = map->l_name;
  }
  dlclose(h);
  return path;
}

}  // namespace gradlens::core
