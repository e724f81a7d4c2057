#!/bin/bash
# node-lab.sh OUT: run durability on a real (virtual) node and check what it says.
#
# Builds (once, cached under var/node-lab/ by package versions) a small Debian 12 guest
# with the stock kernel, systemd, udev, mdadm, python3, smartmontools and restic; boots
# it under QEMU (KVM when it works, else TCG) with virtio disks that carry serials;
# installs durability in it from a wheel built here and its dependencies fetched here
# (the guest has no network), with the shipped systemd units, mdadm PROGRAM hook and
# helper udev rule; drives real md arrays and USB hot-plugs through the scenarios of
# docs/node-lab.md; and checks every scenario's result in OUT/<scenario>/.
#
# Prints one line per scenario; exit 0 only when every scenario holds.
#
# Knobs: NODELAB_ACCEL=auto|kvm|tcg, NODELAB_TIMEOUT (s, one boot, default 2700),
# NODELAB_SCENARIOS="clean member-failed ..." (a prefix of the list: later scenarios
# build on earlier ones), NODELAB_MEM (MiB, 1024), NODELAB_SMP (2), NODELAB_CACHE
# (default var/node-lab in the checkout).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${1:?usage: scripts/node-lab.sh OUT}
CACHE=${NODELAB_CACHE:-$ROOT/var/node-lab}
T0=$(date +%s)
log() { printf '[node-lab %4ss] %s\n' "$(( $(date +%s) - T0 ))" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

case "$OUT" in *[,:\ ]*) die "OUT must not contain ',', ':' or spaces (QEMU option syntax)";; esac
PY=$ROOT/.venv/bin/python
[ -x "$PY" ] || PY=python3
"$PY" -m pip --version >/dev/null 2>&1 || die "$PY has no pip (run scripts/setup.sh --test)"

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
if [ -n "$(ls -A "$OUT")" ]; then
    [ -f "$OUT/.node-lab" ] || die "$OUT is not empty and not an earlier node-lab result"
    find "$OUT" -mindepth 1 -delete
fi
touch "$OUT/.node-lab"
mkdir -p "$CACHE"
missing=()
command -v qemu-system-x86_64 >/dev/null || missing+=(qemu-system-x86)
command -v mmdebstrap >/dev/null || missing+=(mmdebstrap)
command -v mkfs.ext4 >/dev/null || missing+=(e2fsprogs)
if [ ${#missing[@]} -gt 0 ]; then
    [ "$(id -u)" = 0 ] || die "please install (as root): apt-get install ${missing[*]}"
    log "installing Debian packages: ${missing[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        -o DPkg::Lock::Timeout=600 --no-install-recommends "${missing[@]}" >&2 \
        || die "apt-get install ${missing[*]} failed"
fi

# 1. the guest image (cached by package versions)
IMAGE=$(bash "$ROOT/lab/build-image.sh" "$CACHE") || die "building the guest image failed"
log "guest image: $IMAGE ($(cat "$IMAGE/kernel.txt"))"

# 2. durability as an operator gets it: a wheel, and the base dependencies as wheels,
#    pinned as in requirements/ci.txt
work=$(mktemp -d "$CACHE/run.XXXXXX")
trap 'rm -rf "$work"' EXIT
pins=()
for dep in pyudev nagiosplugin prometheus-client; do
    pin=$(grep -i -E "^${dep//-/[-_]}==" "$ROOT/requirements/ci.txt" | head -n1)
    [ -n "$pin" ] || die "$dep is not pinned in requirements/ci.txt"
    pins+=("$pin")
done
deps=$CACHE/wheels-$(printf '%s\n' "${pins[@]}" | sha256sum | cut -c1-16)
if [ ! -f "$deps/complete" ]; then
    rm -rf "$deps"; mkdir -p "$deps"
    log "fetching ${pins[*]} as wheels"
    "$PY" -m pip wheel --quiet --wheel-dir "$deps" "${pins[@]}" >&2 || die "pip wheel of the dependencies failed"
    touch "$deps/complete"
fi
mkdir -p "$work/payload/wheels" "$work/payload/lab"
cp "$deps"/*.whl "$work/payload/wheels/"
"$PY" -m pip wheel --quiet --no-deps --wheel-dir "$work/payload/wheels" "$ROOT" >&2 \
    || die "pip wheel of durability failed"
cp -r "$ROOT/examples" "$work/payload/examples"
cp "$ROOT/lab/guest.sh" "$work/payload/lab/"
if [ -n "${NODELAB_SCENARIOS:-}" ]; then echo "$NODELAB_SCENARIOS" > "$work/payload/lab/scenarios.txt"; fi
tar -cf "$work/payload.tar" -C "$work/payload" .
log "payload: $(ls "$work/payload/wheels" | tr '\n' ' ')"

# 3. boot, run the scenarios, unpack the results
rc=0
"$PY" "$ROOT/lab/vm.py" --image "$IMAGE" --payload "$work/payload.tar" --work "$work/vm" \
    --out "$OUT" --accel "${NODELAB_ACCEL:-auto}" --timeout "${NODELAB_TIMEOUT:-2700}" \
    --mem "${NODELAB_MEM:-1024}" --smp "${NODELAB_SMP:-2}" || rc=$?
cp "$work/vm"/qemu-*.log "$OUT/" 2>/dev/null || true
log "guest finished (vm.py exit $rc) after $(( $(date +%s) - T0 ))s"

# 4. check every scenario
vrc=0
"$PY" "$ROOT/lab/verify.py" "$OUT" ${NODELAB_SCENARIOS:+--only "$NODELAB_SCENARIOS"} || vrc=$?
log "total $(( $(date +%s) - T0 ))s; results in $OUT"
[ $rc -eq 0 ] && [ $vrc -eq 0 ]
