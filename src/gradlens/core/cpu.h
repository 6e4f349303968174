// What the CPU this process runs on can execute, for the SIMD kernels that
// dispatch at run time (cluster/kmeans_kernel.cpp, models/winograd_kernel.cpp).
#pragma once

namespace gradlens::core {

/// x86-64 with AVX-512F (and the OS saving its registers); false elsewhere.
bool cpu_has_avx512f();

/// x86-64 with AVX2 and FMA; false elsewhere.
bool cpu_has_avx2_fma();

}  // namespace gradlens::core
