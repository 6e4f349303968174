#!/usr/bin/env bash
# Builds gradlens against Debian 13 (trixie)'s LibTorch 2.6 and runs its tests
# there, in a trixie chroot made with debootstrap from Debian's mirror (or
# reused). Needs root. The checkout is bind-mounted read-only; the build
# directory and ccache live in the chroot, so a second run is incremental.
#
#   bash scripts/check-libtorch2.sh                  every test (but the browser test)
#   bash scripts/check-libtorch2.sh -L 'unit|peer'   CTest arguments go to ctest
#   bash scripts/check-libtorch2.sh --prepare        only make the chroot and install its packages
#
# GRADLENS_TRIXIE_ROOT     the chroot (default: ~/.cache/gradlens/trixie)
# DEBIAN_MIRROR            default http://deb.debian.org/debian
# GRADLENS_TORCH2_TARGETS  build only these targets (space-separated) and run
#                          only their tests (default: everything); CI uses it
set -euo pipefail
cd "$(dirname "$0")/.."
src=$(pwd)
prepare_only=0
if [ "${1:-}" = "--prepare" ]; then prepare_only=1; shift; fi
root=${GRADLENS_TRIXIE_ROOT:-${XDG_CACHE_HOME:-$HOME/.cache}/gradlens/trixie}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
[ "$(id -u)" -eq 0 ] || { echo "check-libtorch2: run as root (debootstrap, chroot, mount)" >&2; exit 2; }

# The README's set-up packages (scripts/setup.sh), in their trixie versions;
# without chromium (only the report's browser test uses it, excluded below)
# and the fuzzing toolchain (clang, libclang-rt-14-dev: Debian 12's names;
# scripts/fuzz.sh is not part of this check): neither exercises LibTorch.
mapfile -t packages < <(sed -n '/^PACKAGES=(/,/^)/p' scripts/setup.sh | sed '1d;$d' | sed 's/#.*//' |
                        tr ' ' '\n' | grep -v -e '^$' -e '^chromium$' -e '^clang$' -e '^libclang-rt-')

if [ ! -x "$root/usr/bin/apt-get" ]; then
  command -v debootstrap >/dev/null || apt-get install -y -q --no-install-recommends debootstrap
  # Into a side directory first: an interrupted bootstrap is never reused.
  rm -rf "$root.partial" && mkdir -p "$root.partial"
  debootstrap --variant=minbase trixie "$root.partial" "$mirror" > "$root.partial.log" 2>&1 ||
    { tail -n 20 "$root.partial.log"; echo "check-libtorch2: debootstrap from $mirror failed (log: $root.partial.log)" >&2; exit 1; }
  rm -rf "$root" && mv "$root.partial" "$root" && rm -f "$root.partial.log"
fi

mounts=()
cleanup() {
  local i
  for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do umount -R "${mounts[$i]}" 2>/dev/null || umount -l "${mounts[$i]}" || true; done
}
trap cleanup EXIT
trap "exit 130" INT TERM
mountpoint -q "$root/proc" || { mount -t proc proc "$root/proc"; mounts+=("$root/proc"); }
mountpoint -q "$root/dev" || { mount --rbind /dev "$root/dev"; mount --make-rslave "$root/dev"; mounts+=("$root/dev"); }
cp /etc/resolv.conf "$root/etc/resolv.conf"

chroot "$root" /usr/bin/env -i HOME=/root PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
  bash -c "apt-get update -q && apt-get install -y -q --no-install-recommends ${packages[*]}" > "$root/root/apt.log" 2>&1 ||
  { tail -n 20 "$root/root/apt.log"; echo "check-libtorch2: installing the packages failed (log: $root/root/apt.log)" >&2; exit 1; }
echo "check-libtorch2: $(chroot "$root" dpkg-query -W -f='libtorch-dev ${Version}' libtorch-dev)"
if [ "$prepare_only" = 1 ]; then echo "check-libtorch2: prepared $root in $SECONDS s"; exit 0; fi

mkdir -p "$root/gradlens"
mount --bind "$src" "$root/gradlens"
mounts+=("$root/gradlens")
mount -o remount,bind,ro "$root/gradlens"

jobs=$(nproc)
targets=${GRADLENS_TORCH2_TARGETS:-}
# A subset builds apart from the whole tree, so that no executable left from
# an earlier whole build (stale, untargeted) runs with it.
build=/root/build${targets:+-subset}
# Tests of executables not built are listed by CTest as <exe>_NOT_BUILT; the
# Python module's test runs only when its target (_gradlens) is built.
exclude='ReportRendersInHeadlessChromium|_NOT_BUILT$'
if [ -n "$targets" ] && [[ " $targets " != *" _gradlens "* ]]; then exclude+='|PythonApiPeer'; fi
chroot "$root" /usr/bin/env -i HOME=/root PATH=/usr/sbin:/usr/bin:/sbin:/bin CCACHE_DIR=/root/.ccache \
  bash -c "t0=\$(date +%s)
           cmake -S /gradlens -B $build -DCMAKE_BUILD_TYPE=Release >/root/build.log 2>&1 &&
           cmake --build $build -j$jobs ${targets:+--target $targets} >>/root/build.log 2>&1 ||
           { tail -n 60 /root/build.log; echo 'check-libtorch2: the build failed (log: $root/root/build.log)'; exit 1; }
           echo \"check-libtorch2: built ${targets:-everything} in \$((\$(date +%s) - t0)) s\"
           ctest --test-dir $build --output-on-failure -j$jobs -E '$exclude' $(printf '%q ' "$@")"
