#!/usr/bin/env bash
# Installs every Debian package gradlens needs (idempotent; run as root on
# Debian 12). Set GRADLENS_SKIP_APT=1 to skip installing (e.g. in a prepared
# image); the BLAS check still runs.
set -euo pipefail

PACKAGES=(
  # build
  cmake g++ make ccache
  # LibTorch (C++ API, TorchScript) and c10d's Gloo backend
  libtorch-dev libgloo-dev
  # a fast BLAS for LibTorch (the reference BLAS is ~40x slower here)
  libopenblas0-pthread
  # tests
  googletest libgtest-dev
  # CLI, JSON, formatting, images, gzip, CRC-32 checks of model files
  libcli11-dev nlohmann-json3-dev libfmt-dev libstb-dev zlib1g-dev libdeflate-dev
  # sparse Cholesky of ROAD's noisy linear imputation
  libeigen3-dev
  # the default data set
  dataset-fashion-mnist
  # peers the tests cross-check against
  python3 python3-numpy python3-scipy python3-torch python3-torchvision python3-sklearn python3-skimage
  # the Python module (import gradlens) and its tests
  python3-dev pybind11-dev python3-pytest
  # figures: gnuplot draws the PCA grids and heat maps; DejaVu Sans captions the overlay PNGs
  gnuplot-nox fonts-dejavu-core
  # the report test renders report.html in a real browser
  chromium
  # libFuzzer targets of the file parsers (scripts/fuzz.sh; CI runs a short smoke)
  clang libclang-rt-14-dev
)

if [ "${GRADLENS_SKIP_APT:-0}" != "1" ]; then
  missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -q
    $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
  else
    echo "setup: all ${#PACKAGES[@]} packages present"
  fi
fi

# LibTorch links libblas.so.3; Debian's alternatives decide which BLAS that is.
# (awk reads all its input: an early exit would SIGPIPE ldconfig and, under
# pipefail, fail this script at random.)
blas=$(ldconfig -p | awk '/libblas\.so\.3 .*x86-64/ && !found {print $NF; found=1}')
real=$(readlink -f "${blas:-/nonexistent}" 2>/dev/null || true)
case "$real" in
  *openblas*) echo "setup: libblas.so.3 -> $real (OpenBLAS: good)";;
  *) echo "setup: WARNING: libblas.so.3 resolves to '${real:-nothing}', not OpenBLAS;" \
          "LibTorch will be ~40x slower. Fix: apt-get install libopenblas0-pthread &&" \
          "update-alternatives --config libblas.so.3-x86_64-linux-gnu" >&2;;
esac
