#!/usr/bin/env bash
# Configures and builds gradlens into ./build (Release, ccache, PCH).
# Extra arguments go to the CMake configure step (e.g. -DGRADLENS_BUILD_BENCH=ON,
# -DCMAKE_PREFIX_PATH=/opt/libtorch for another LibTorch).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${GRADLENS_BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release "$@"
cmake --build "$BUILD_DIR" -j"$(nproc)"
