#!/usr/bin/env bash
# Configures and builds gradlens into ./build (Release, ccache).
#   bash scripts/build.sh                 everything: the library, the CLI, the tests
#   bash scripts/build.sh gradlens        only the command-line program
# Arguments that start with -D go to the CMake configure step (e.g.
# -DGRADLENS_BUILD_BENCH=ON, -DCMAKE_PREFIX_PATH=/opt/libtorch for another
# LibTorch); the others name build targets.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${GRADLENS_BUILD_DIR:-build}
configure=()
targets=()
for a in "$@"; do
  case "$a" in
    -D*) configure+=("$a") ;;
    *) targets+=(--target "$a") ;;
  esac
done
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release "${configure[@]}"
cmake --build "$BUILD_DIR" -j"$(nproc)" "${targets[@]}"
