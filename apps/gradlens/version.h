#pragma once

namespace gradlens::cli {
inline constexpr const char* kVersion = "0.1.0";
}  // namespace gradlens::cli
