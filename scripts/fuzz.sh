#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (build-fuzz/) and runs each for
# SECONDS (default 30) on its seed corpus in fuzz/corpus/<name>, collecting
# new inputs in build-fuzz/corpus/<name>. Prints one line per target (runs,
# coverage, corpus size); exits non-zero if any target found a crash (its
# input is left in build-fuzz/crash-<target>-*).
#   bash scripts/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-30}
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(idx_fuzz npy_fuzz image_fuzz model_file_fuzz json_fuzz)
if [ ! -x build-fuzz/idx_fuzz ] || [ "${GRADLENS_FUZZ_REBUILD:-1}" = 1 ]; then
  CC=clang CXX=clang++ cmake -S fuzz -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo > /dev/null
  cmake --build build-fuzz -j"$(nproc)" --target "${TARGETS[@]}" > /dev/null
fi
status=0
for t in "${TARGETS[@]}"; do
  name=${t%_fuzz}
  mkdir -p "build-fuzz/corpus/$name"
  log=build-fuzz/$t.log
  if ASAN_OPTIONS=detect_leaks=0 "build-fuzz/$t" -max_total_time="$SECONDS_EACH" -max_len=65536 -rss_limit_mb=4096 \
      -timeout=20 -artifact_prefix="build-fuzz/crash-$t-" -print_final_stats=1 \
      "build-fuzz/corpus/$name" "fuzz/corpus/$name" > "$log" 2>&1; then
    result=ok
  else
    result=CRASH
    status=1
  fi
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || echo '?')
  echo "$t: $result, $runs runs in ${SECONDS_EACH}s, coverage $cov edges, corpus $(ls "build-fuzz/corpus/$name" | wc -l) inputs"
done
exit $status
