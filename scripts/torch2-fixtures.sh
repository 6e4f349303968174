#!/usr/bin/env bash
# Re-creates tests/fixtures/torch2: TorchScript files written by the PyTorch
# 2.x that users train with. Builds (once) a Debian 13 "trixie" chroot with
# python3-torch and python3-torchvision (PyTorch 2.6), and runs
# tests/fixtures/torch2/export.py inside it. Needs root, debootstrap and
# Debian's mirror; about 1.7 GB of disk for the chroot.
#
# usage: scripts/torch2-fixtures.sh [CHROOT_DIR]   (default: build/trixie)
set -euo pipefail
cd "$(dirname "$0")/.."
root="${1:-build/trixie}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"

if [ ! -x "$root/usr/bin/python3" ]; then
  command -v debootstrap >/dev/null || apt-get install -y -q --no-install-recommends debootstrap
  mkdir -p "$root"
  debootstrap --variant=minbase --include=python3-torch,python3-torchvision trixie "$root" "$mirror"
fi
work="$root/tmp/gradlens-torch2"
rm -rf "$work"
mkdir -p "$work"
cp tests/fixtures/torch2/export.py "$work/"
chroot "$root" /usr/bin/python3 /tmp/gradlens-torch2/export.py /tmp/gradlens-torch2
cp "$work"/*.pt "$work/VERSION" tests/fixtures/torch2/
echo "torch2-fixtures: wrote tests/fixtures/torch2 with $(head -1 "$work/VERSION")"
