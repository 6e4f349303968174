// The differences between the LibTorch builds gradlens compiles against
// (Debian 12's 1.13, 2.x, with or without CUDA), in one place; c10d's process
// groups are in torch_compat_c10d.h. Nothing else tests TORCH_VERSION_MAJOR
// or USE_C10D_NCCL.
#pragma once

#include <c10/util/Exception.h>
#include <torch/version.h>

#include <string>

#if TORCH_VERSION_MAJOR >= 2
#include <variant>
#else
#include <c10/util/variant.h>
#endif

namespace gradlens::compat {

/// std::get_if on LibTorch's option variants (c10::variant before 2.0,
/// std::variant since).
template <class T, class Variant>
auto get_if(Variant* v) {
#if TORCH_VERSION_MAJOR >= 2
  return std::get_if<T>(v);
#else
  return c10::get_if<T>(v);
#endif
}

/// Makes a c10d::TCPStoreOptions use the plain TCP store. LibTorch 2.2+
/// defaults to a libuv store, whose server does not serve 1.x-style clients
/// and whose rendezvous differs; every rank of a gradlens run uses the same
/// kind either way.
template <class StoreOptions>
void use_plain_tcp_store(StoreOptions& options) {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 2)
  options.useLibUV = false;
#else
  (void)options;
#endif
}

/// A c10::Error whose message is `msg`, without a backtrace (the
/// constructor's backtrace argument changed type in 2.x).
inline c10::Error make_error(const std::string& msg) {
#if TORCH_VERSION_MAJOR >= 2
  return c10::Error(msg, nullptr);
#else
  return c10::Error(msg, "");
#endif
}

/// True when this LibTorch has aten::scaled_dot_product_attention (2.0+),
/// which PyTorch 2.x's nn.MultiheadAttention calls.
constexpr bool kHasScaledDotProductAttention = TORCH_VERSION_MAJOR >= 2;

/// True when this LibTorch has c10d's NCCL backend (a CUDA build: its CMake
/// package defines USE_C10D_NCCL for the code that links it).
#ifdef USE_C10D_NCCL
constexpr bool kHasNccl = true;
#else
constexpr bool kHasNccl = false;
#endif

}  // namespace gradlens::compat
