#!/usr/bin/env bash
# Runs every test (all labels) in ./build with CTest.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${GRADLENS_BUILD_DIR:-build}
ctest --test-dir "$BUILD_DIR" --output-on-failure -j"$(nproc)" "$@"
