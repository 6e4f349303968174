#!/usr/bin/env bash
# The GPU check: builds gradlens against the CUDA LibTorch of a Python
# virtual environment, runs the tests labelled gpu and the GPU benchmark
# (bench/gpu_bench.py), and writes OUT_DIR/gpu-check.log and
# OUT_DIR/gpu-check.md (the result table). Written for one NVIDIA GPU, no
# network, under 8 minutes on 16 cores.
#
# Needs: the venv's python3 first on PATH with torch (CUDA) and torchvision
# (found by `python3 -c "import torch; print(torch.utils.cmake_prefix_path)"`),
# CMake, Ninja and the CUDA toolkit; none of Debian's -dev packages. The
# header-only dependencies, the three C libraries and Fashion-MNIST come from
# vendor/, which scripts/vendor-deps.sh makes beforehand on a Debian machine
# (git-ignored, ~45 MB).
#
#   usage: scripts/gpu-check.sh OUT_DIR
#   GRADLENS_VENDOR_DIR   default: vendor (in the checkout)
#   GRADLENS_TORCH_PREFIX default: torch.utils.cmake_prefix_path
#   GRADLENS_GPU_CHECK_DEVICE  default cuda; cpu rehearses the script on a
#                         machine without a GPU (small benchmark)
set -uo pipefail
cd "$(dirname "$0")/.."
[ $# -eq 1 ] || { echo "usage: scripts/gpu-check.sh OUT_DIR" >&2; exit 2; }
out=$(mkdir -p "$1" && cd "$1" && pwd) || { echo "gpu-check: cannot create $1" >&2; exit 2; }
log=$out/gpu-check.log
: > "$log"
exec > >(tee -a "$log") 2>&1
device=${GRADLENS_GPU_CHECK_DEVICE:-cuda}
vendor=$(cd "${GRADLENS_VENDOR_DIR:-vendor}" 2>/dev/null && pwd) ||
  { echo "gpu-check: no ${GRADLENS_VENDOR_DIR:-vendor}/: run scripts/vendor-deps.sh on a Debian machine first"; exit 2; }
build=$PWD/build-gpu
start=$(date +%s)
stamp() { echo "== $(( $(date +%s) - start )) s: $*"; }
fail() { stamp "FAILED: $*"; { echo "# gpu-check: failed"; echo; echo "$*"; echo; echo "See gpu-check.log."; } > "$out/gpu-check.md"; exit 1; }

stamp "environment"
python3 -c "import torch, torchvision; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'gpus', torch.cuda.device_count(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')" ||
  fail "python3 has no torch/torchvision (activate the virtual environment)"
prefix=${GRADLENS_TORCH_PREFIX:-$(python3 -c "import torch; print(torch.utils.cmake_prefix_path)")}
if [ "$device" = cuda ]; then
  python3 -c "import torch; assert torch.cuda.is_available()" || fail "torch sees no CUDA device"
  nvidia-smi -L || true
fi
cmake --version | head -1; ninja --version; nproc

stamp "configure"
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix" \
  -DGRADLENS_VENDOR_DIR="$vendor" -DGRADLENS_BUILD_PYTHON=OFF -DGRADLENS_USE_CCACHE=OFF || fail "cmake configure"
stamp "build"
cmake --build "$build" -j"$(nproc)" --target gradlens gradlens_apps_tests || fail "build"
built=$(( $(date +%s) - start ))

stamp "tests labelled gpu"
export GRADLENS_DATASETS=$vendor/datasets
ctest --test-dir "$build" -L gpu --output-on-failure --timeout 300 | tee "$out/ctest-gpu.txt"
tests_rc=${PIPESTATUS[0]}
summary=$(grep -E "tests passed|tests failed" "$out/ctest-gpu.txt" | tail -1)
skipped=$(grep -c "(Skipped)" "$out/ctest-gpu.txt")

stamp "benchmark"
if [ "$device" = cuda ]; then bench_args=(--device cuda); else bench_args=(--device cpu --images 64 --size 64 --batch 16); fi
python3 bench/gpu_bench.py "$build/gradlens" "$out/bench" "${bench_args[@]}" || fail "benchmark (bench/gpu_bench.py)"

stamp "done"
{
  echo "# gpu-check $(date +%Y-%m-%d)"
  echo
  echo "$(python3 -c "import torch; print('torch', torch.__version__, '(CUDA', str(torch.version.cuda) + ')')"), $(nproc) cores; build ${built} s, whole check $(( $(date +%s) - start )) s"
  echo
  echo "Tests labelled gpu: $summary; $skipped skipped (exit $tests_rc)"
  echo
  cat "$out/bench/gpu-bench.md"
} > "$out/gpu-check.md"
cat "$out/gpu-check.md"
exit "$tests_rc"
