#!/usr/bin/env bash
# Copies what a gradlens build takes from Debian's -dev packages, and the
# Fashion-MNIST files the tests use, into one folder (default: vendor/ in the
# checkout, git-ignored), for a machine without those packages:
# scripts/gpu-check.sh builds with -DGRADLENS_VENDOR_DIR=vendor there.
# Run it on a Debian 12 machine after scripts/setup.sh.
#
#   include/  CLI11, nlohmann-json, fmt (used header-only), Eigen, stb,
#             zlib and libdeflate headers
#   lib/      libz, libdeflate and libstb as Debian built them (C ABI; they
#             need only glibc >= 2.33)
#   src/googletest             GoogleTest's source (built with LibTorch's flags)
#   datasets/fashion-mnist     dataset-fashion-mnist's IDX files
#   VERSIONS                   the Debian package versions copied
#
# usage: scripts/vendor-deps.sh [DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-vendor}
packages=(libcli11-dev nlohmann-json3-dev libfmt-dev libeigen3-dev libstb-dev zlib1g-dev libdeflate-dev googletest
          dataset-fashion-mnist)
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
    { echo "vendor-deps: Debian package $p is not installed; run scripts/setup.sh first" >&2; exit 2; }
done
tmp=$(mktemp -d "${out%/}.tmp-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/include/eigen3" "$tmp/include/stb" "$tmp/lib" "$tmp/src" "$tmp/datasets"
cp -r /usr/include/CLI /usr/include/nlohmann /usr/include/fmt "$tmp/include/"
cp -r /usr/include/eigen3/Eigen "$tmp/include/eigen3/"
cp /usr/include/stb/stb_image.h /usr/include/stb/stb_image_write.h /usr/include/stb/stb_truetype.h "$tmp/include/stb/"
cp /usr/include/zlib.h /usr/include/zconf.h /usr/include/libdeflate.h "$tmp/include/"
lib=/usr/lib/$(gcc -print-multiarch)
for so in libz.so.1 libdeflate.so.0 libstb.so.0; do
  cp -L "$lib/$so" "$tmp/lib/$so"  # linked by this name: no symbolic links to carry
done
cp -r /usr/src/googletest "$tmp/src/googletest"
cp -r /usr/share/datasets/fashion-mnist "$tmp/datasets/"
dpkg-query -W -f='${Package} ${Version}\n' "${packages[@]}" > "$tmp/VERSIONS"
rm -rf "$out"
mv "$tmp" "$out"
trap - EXIT
echo "vendor-deps: wrote $out ($(du -sh "$out" | cut -f1))"
