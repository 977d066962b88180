#!/usr/bin/env bash
# Installs the Debian packages volumed's build and test tiers need. Idempotent: does nothing when all are present.
set -euo pipefail
packages=(
  cryptsetup-bin swtpm swtpm-tools tpm2-tools libtss2-dev pkg-config
  tang clevis clevis-luks jose socat curl
  fuse3 libfuse3-dev xfsprogs e2fsprogs dosfstools btrfs-progs lvm2 dmsetup util-linux util-linux-extra fdisk gdisk
  qemu-system-x86 busybox-static kmod
  systemd
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-system-deps: missing Debian packages (${missing[*]}); run as root to install them" >&2
  exit 1
fi
echo "install-system-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
