#!/bin/bash
# build-image.sh CACHE_DIR: build (or reuse) the node lab's Debian 12 guest image.
#
# Prints the folder holding root.img (ext4, label nodelab), vmlinuz, initrd.img and
# packages.txt (every installed package with its version). The folder's name is a hash
# of the package list and hooks below, the files in lab/image/ and the candidate
# versions of the packages, so a new kernel, systemd, mdadm... builds a new image and
# an unchanged set reuses the cached one. Needs root (mmdebstrap's root mode, mkfs.ext4 -d); no loop
# mount.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${1:?usage: build-image.sh CACHE_DIR}
SUITE=bookworm
PACKAGES=(linux-image-amd64 systemd systemd-sysv udev mdadm python3 python3-venv
          smartmontools restic kmod initramfs-tools busybox e2fsprogs util-linux)
# What goes into the image besides the packages (part of the cache key).
HOOKS=(
    --customize-hook='echo nodelab > "$1/etc/hostname"'
    --customize-hook='printf "127.0.0.1 localhost\n127.0.1.1 nodelab\n" > "$1/etc/hosts"'
    --customize-hook='echo "LABEL=nodelab / ext4 defaults 0 1" > "$1/etc/fstab"'
    --customize-hook='mkdir -p "$1/usr/local/lib/nodelab"'
    --customize-hook="copy-in $HERE/image/boot /usr/local/lib/nodelab/"
    --customize-hook="copy-in $HERE/image/nodelab-boot.service /etc/systemd/system/"
    --customize-hook='chroot "$1" systemctl enable nodelab-boot.service'
    --customize-hook='chroot "$1" systemctl mask serial-getty@ttyS0.service getty@tty1.service apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer mdcheck_start.timer mdcheck_continue.timer mdmonitor-oneshot.timer systemd-timesyncd.service'
    --customize-hook='chroot "$1" passwd -d root'
)

log() { printf '[node-lab image] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

for tool in mmdebstrap mkfs.ext4 apt-cache sha256sum; do
    command -v "$tool" >/dev/null || die "missing $tool (apt-get install mmdebstrap e2fsprogs)"
done
[ "$(id -u)" = 0 ] || die "building the image needs root (mmdebstrap into a folder, device nodes)"

candidates() {
    apt-cache policy "${PACKAGES[@]}" 2>/dev/null \
        | awk '/^[^ ]/{sub(":$","",$1); p=$1} /Candidate:/{print p "=" $2}'
}
all_known() {
    local p
    for p in "${PACKAGES[@]}"; do
        case "$versions" in *"$p="[0-9]*) ;; *) return 1 ;; esac
    done
}
versions=$(candidates)
if ! all_known; then
    log "package lists lack some of ${PACKAGES[*]}: apt-get update"
    apt-get update -qq >&2 || die "apt-get update failed"
    versions=$(candidates)
    all_known || die "no candidate version of some of ${PACKAGES[*]} in $SUITE"
fi
versions+=$'\n'
key=$( { printf '%s\n' "$SUITE" "${PACKAGES[@]}" "${HOOKS[@]//$HERE/}"; cat "$HERE"/image/*; printf '%s' "$versions"; } | sha256sum | cut -c1-16)
dest=$CACHE/image-$key
if [ -f "$dest/complete" ]; then
    log "cached: $dest"
    echo "$dest"
    exit 0
fi

mkdir -p "$CACHE"
work=$(mktemp -d "$CACHE/build.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/root
mirror=()
[ -f /etc/apt/sources.list.d/debian.sources ] && grep -q "$SUITE" /etc/apt/sources.list.d/debian.sources \
    && mirror=(/etc/apt/sources.list.d/debian.sources)
include=$(IFS=,; echo "${PACKAGES[*]}")
log "mmdebstrap $SUITE ($include) into $root"
t0=$(date +%s)
mmdebstrap --mode=root --variant=minbase --include="$include" \
    "${HOOKS[@]}" \
    "$SUITE" "$root" "${mirror[@]}" >&2
log "root filesystem in $(( $(date +%s) - t0 ))s ($(du -sh "$root" | cut -f1))"

kver=$(ls "$root/boot" | sed -n 's/^vmlinuz-//p' | sort -V | tail -n1)
[ -n "$kver" ] || die "no kernel in the image"
[ -f "$root/boot/initrd.img-$kver" ] || die "no initrd for $kver in the image"
out=$work/image
mkdir -p "$out"
cp "$root/boot/vmlinuz-$kver" "$out/vmlinuz"
cp "$root/boot/initrd.img-$kver" "$out/initrd.img"
chroot "$root" dpkg-query -W -f '${Package} ${Version}\n' > "$out/packages.txt"
printf '%s' "$versions" > "$out/key.txt"
echo "$kver" > "$out/kernel.txt"
mb=$(( $(du -sm "$root" | cut -f1) + 400 ))
t1=$(date +%s)
mkfs.ext4 -q -F -L nodelab -d "$root" "$out/root.img" "${mb}M" >&2  # it prints "Creating regular file" even with -q
log "root.img (${mb} MiB, sparse) in $(( $(date +%s) - t1 ))s"
rm -rf "$root"
touch "$out/complete"
rm -rf "$dest"
mv "$out" "$dest"
echo "$dest"
