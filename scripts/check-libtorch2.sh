#!/usr/bin/env bash
# Builds gradlens against Debian 13 (trixie)'s LibTorch 2.6 and runs its tests
# there, in a trixie chroot made with debootstrap from Debian's mirror (or
# reused). Needs root. The checkout is bind-mounted read-only; the build
# directory and ccache live in the chroot, so a second run is incremental.
#
#   bash scripts/check-libtorch2.sh                  every test (but the browser test)
#   bash scripts/check-libtorch2.sh -L 'unit|peer'   CTest arguments go to ctest
#
# GRADLENS_TRIXIE_ROOT  the chroot (default: ~/.cache/gradlens/trixie)
# DEBIAN_MIRROR         default http://deb.debian.org/debian
set -euo pipefail
cd "$(dirname "$0")/.."
src=$(pwd)
root=${GRADLENS_TRIXIE_ROOT:-${XDG_CACHE_HOME:-$HOME/.cache}/gradlens/trixie}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
[ "$(id -u)" -eq 0 ] || { echo "check-libtorch2: run as root (debootstrap, chroot, mount)" >&2; exit 2; }

# The README's set-up packages (scripts/setup.sh), in their trixie versions;
# without chromium: only the report's browser test uses it (excluded below),
# and it exercises no LibTorch code.
mapfile -t packages < <(sed -n '/^PACKAGES=(/,/^)/p' scripts/setup.sh | sed '1d;$d' | sed 's/#.*//' |
                        tr ' ' '\n' | grep -v -e '^$' -e '^chromium$')

if [ ! -x "$root/usr/bin/apt-get" ]; then
  command -v debootstrap >/dev/null || apt-get install -y -q --no-install-recommends debootstrap
  mkdir -p "$root"
  debootstrap --variant=minbase trixie "$root" "$mirror"
fi

mounts=()
cleanup() {
  local i
  for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do umount -R "${mounts[$i]}" 2>/dev/null || umount -l "${mounts[$i]}" || true; done
}
trap cleanup EXIT INT TERM
mountpoint -q "$root/proc" || { mount -t proc proc "$root/proc"; mounts+=("$root/proc"); }
mountpoint -q "$root/dev" || { mount --rbind /dev "$root/dev"; mount --make-rslave "$root/dev"; mounts+=("$root/dev"); }
mkdir -p "$root/gradlens"
mount --bind "$src" "$root/gradlens"
mounts+=("$root/gradlens")
mount -o remount,bind,ro "$root/gradlens"
cp /etc/resolv.conf "$root/etc/resolv.conf"

chroot "$root" /usr/bin/env -i HOME=/root PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
  bash -c "apt-get update -q && apt-get install -y -q --no-install-recommends ${packages[*]}" >/dev/null
echo "check-libtorch2: $(chroot "$root" dpkg-query -W -f='libtorch-dev ${Version}' libtorch-dev)"

jobs=$(nproc)
chroot "$root" /usr/bin/env -i HOME=/root PATH=/usr/sbin:/usr/bin:/sbin:/bin CCACHE_DIR=/root/.ccache \
  bash -c "cmake -S /gradlens -B /root/build -DCMAKE_BUILD_TYPE=Release >/root/build.log 2>&1 &&
           cmake --build /root/build -j$jobs >>/root/build.log 2>&1 ||
           { tail -n 60 /root/build.log; echo 'check-libtorch2: the build failed (log: $root/root/build.log)'; exit 1; }
           ctest --test-dir /root/build --output-on-failure -j$jobs -E ReportRendersInHeadlessChromium $(printf '%q ' "$@")"
