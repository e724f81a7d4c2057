#!/bin/bash
# The node lab inside the guest (Debian 12 with systemd and udev), run at boot by
# nodelab-boot.service from the payload disk:
#
#   1. installs durability the way docs/raid.md and README tell an operator: a venv
#      from the wheels on the payload (no network), the shipped systemd timer and
#      service, the mdadm.conf PROGRAM hook, a config with a short raid.stall_after;
#   2. drives a real md RAID1 on virtio disks with serials through the scenarios and, in
#      each state, starts durability-raid.service and keeps what it produced;
#   3. plugs USB disks through the host (QEMU monitor) for the helper's udev rule.
#
# Results go to /var/tmp/nodelab/out/<scenario>/, written as a tar onto the virtio disk
# with serial nodelab-out after every scenario. Facts the host checks are in each
# scenario's facts.txt (key=value). Lines starting with "NODELAB:" are the lab's log.
set -u
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1

P=/var/tmp/nodelab/payload
R=/var/tmp/nodelab/out
OUTDEV=/dev/disk/by-id/virtio-nodelab-out
CTL=/dev/virtio-ports/nodelab.ctl
UNIT=durability-raid.service
JSON=/var/lib/nodelab/raid.json
STALL_AFTER=60
SLOW_KBS=500
T0=$(cut -d. -f1 /proc/uptime)
mkdir -p "$R" /var/lib/nodelab

say() { echo "NODELAB: [$(( $(cut -d. -f1 /proc/uptime) - T0 ))s] $*"; }
save() { tar -cf "$OUTDEV" -C "$R" . && sync; }
fact() { echo "$2=$3" >> "$R/$1/facts.txt"; }
fatal() { say "FATAL: $*"; echo "$*" >> "$R/fatal.txt"; save; exit 1; }
run() {  # run CMD...: log the command and its output to the scenario's commands.txt
    local t=$(cut -d. -f1 /proc/uptime) rc
    echo "+ $*" >> "$R/commands.txt"
    "$@" > /tmp/nodelab-run.out 2>&1
    rc=$?
    cat /tmp/nodelab-run.out >> "$R/commands.txt"
    [ $rc -eq 0 ] || { echo "  (exit $rc)" >> "$R/commands.txt"; tail -n 5 /tmp/nodelab-run.out; }
    say "+ $* (exit $rc, $(( $(cut -d. -f1 /proc/uptime) - t ))s)"
    return $rc
}
uptime_s() { cut -d. -f1 /proc/uptime; }
wait_for() {  # wait_for SECONDS WHAT CMD...: poll CMD until it succeeds, for SECONDS at most
    local t=$1 what=$2 end; shift 2
    end=$(( $(uptime_s) + t ))
    while [ "$(uptime_s)" -lt "$end" ]; do
        "$@" > /dev/null 2>&1 && return 0
        sleep 0.5
    done
    say "timeout (${t}s) waiting for $what"
    echo "timeout waiting for $what" >> "$R/warnings.txt"
    return 1
}

# ------------------------------------------------------------------ the host channel
REQ=0
host() {  # host VERB ARG: ask the host (QEMU monitor) and wait for its answer
    REQ=$((REQ + 1))
    echo "REQ $REQ $*" >&3
    local line
    while read -r -t 60 line <&3; do
        case "$line" in
            "ACK $REQ ok"*) echo "host: $* -> ${line#ACK $REQ }" >> "$R/commands.txt"; return 0 ;;
            "ACK $REQ "*) say "host refused '$*': $line"; return 1 ;;
        esac
    done
    say "no answer from the host to '$*'"
    return 1
}

# ------------------------------------------------------------------ md helpers
md() { cat "/sys/block/md0/md/$1" 2>/dev/null; }
syncing() { case "$(md sync_completed)" in [1-9]*" / "*) return 0 ;; *) return 1 ;; esac; }
idle() { [ "$(md sync_action)" = idle ] && ! grep -qE 'resync|recovery|check|repair' /proc/mdstat; }
throttle() { echo 100 > /proc/sys/dev/raid/speed_limit_min; echo "$1" > /proc/sys/dev/raid/speed_limit_max; }
unthrottle() { echo 1000 > /proc/sys/dev/raid/speed_limit_min; echo 200000 > /proc/sys/dev/raid/speed_limit_max; }
events() {  # the mdadm events recorded by the PROGRAM hook in durability's state store
    python3 - /var/lib/durability/state.db <<'PY'
import sqlite3, sys
try:
    db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
    rows = db.execute("SELECT at, event, device, component FROM raid_events ORDER BY id").fetchall()
except sqlite3.Error as error:
    print(f"# no events: {error}")
    rows = []
for at, event, device, component in rows:
    print(at, event, device, component or "")
PY
}
finished_twice() { [ "$(events | awk '$2 == "RebuildFinished"' | wc -l)" -ge 2 ]; }
has_event() { events | awk '{print $2}' | grep -qx "$1"; }
wait_event() { wait_for "${2:-90}" "mdadm event $1" has_event "$1"; }

# ------------------------------------------------------------------ the scheduled unit
TEXTFILE=
unit_idle() { case "$(systemctl show -p ActiveState --value "$UNIT")" in inactive|failed) return 0 ;; esac; return 1; }
unit_run() {  # unit_run DIR: start the shipped service once, keep what it produced in DIR
    local dir=$1 since rc
    mkdir -p "$dir"
    # A run already under way (the timer's) may have started before this state: wait it out.
    wait_for 300 "$UNIT to be idle" unit_idle
    rm -f "$JSON"
    since=$(date +%s)
    sleep 1
    systemctl start "$UNIT"
    rc=$?
    cp /proc/mdstat "$dir/mdstat"
    cp "$TEXTFILE" "$dir/durability_raid.prom" 2>/dev/null || echo "no textfile at $TEXTFILE" >> "$dir/warnings.txt"
    cp "$JSON" "$dir/raid.json" 2>/dev/null || echo "no JSON document" >> "$dir/warnings.txt"
    journalctl --no-pager -o short-iso --since "@$since" -u "$UNIT" -u mdmonitor.service > "$dir/journal.txt" 2>&1
    events > "$dir/mdadm-events.txt"
    {
        echo "systemctl_start_rc=$rc"
        echo "unit_result=$(systemctl show -p Result --value "$UNIT")"
        echo "unit_exit_status=$(systemctl show -p ExecMainStatus --value "$UNIT")"
        echo "textfile=$TEXTFILE"
    } >> "$dir/facts.txt"
}

capture() {  # capture NAME: the unit's output plus the md, udev and event evidence
    local name=$1 d=$R/$1
    mkdir -p "$d"
    mv "$R/commands.txt" "$d/commands.txt" 2>/dev/null
    [ -f "$R/warnings.txt" ] && mv "$R/warnings.txt" "$d/warnings.txt"
    unit_run "$d"
    mdadm --detail /dev/md0 > "$d/mdadm-detail.txt" 2>&1
    for x in /sys/block/md0/md/dev-*; do
        [ -e "$x" ] || continue
        udevadm info --query=property "/dev/${x##*/dev-}" > "$d/udev-${x##*/dev-}.txt" 2>&1
    done
    fact "$name" uptime_s "$(cut -d. -f1 /proc/uptime)"
    fact "$name" sync_action "$(md sync_action)"
    fact "$name" sync_completed "$(md sync_completed | tr -d ' ')"
    systemctl list-timers --all --no-pager durability-raid.timer > "$d/timer.txt" 2>&1
    say "captured $name: $(grep -o 'durability_check_status{[^}]*} [0-9]' "$d/durability_raid.prom" 2>/dev/null | head -n1)"
    save
}

# ------------------------------------------------------------------ install (as an operator)
install_durability() {
    say "installing durability from the payload's wheels"
    # A venv, filled by Debian's own pip wheel (python3-pip-whl): ensurepip's private copy
    # of pip takes minutes to install under software emulation and adds nothing here.
    local pip; pip=$(ls /usr/share/python-wheels/pip-*.whl 2>/dev/null | head -n1)
    [ -n "$pip" ] || fatal "no pip wheel in /usr/share/python-wheels (python3-pip-whl)"
    run python3 -m venv --without-pip /opt/durability || fatal "python3 -m venv failed"
    run /opt/durability/bin/python "$pip/pip" install --no-index --find-links "$P/wheels" durability \
        || fatal "pip install --no-index durability failed"
    ln -sf /opt/durability/bin/durability /usr/local/bin/durability
    ln -sf /opt/durability/bin/durability-helper /usr/local/bin/durability-helper
    run durability --version || true
    mkdir -p /etc/durability
    cat > /etc/durability/durability.toml <<EOF
# node lab: the defaults, with a stall rule short enough to wait for
[raid]
stall_after = "${STALL_AFTER}s"
EOF
    run durability config validate || fatal "the lab's config does not validate"

    say "installing the shipped systemd units and the mdadm PROGRAM hook"
    install -m 0644 "$P/examples/systemd/durability-raid.service" "$P/examples/systemd/durability-raid.timer" \
        /etc/systemd/system/
    # The lab's only addition to the shipped unit: the same run's verdict as JSON too.
    mkdir -p /etc/systemd/system/durability-raid.service.d
    cat > /etc/systemd/system/durability-raid.service.d/nodelab.conf <<EOF
[Service]
ExecStartPost=-/usr/local/bin/durability raid --format json --output $JSON
EOF
    TEXTFILE=$(grep -o -- '--output [^ ]*' "$P/examples/systemd/durability-raid.service" | head -n1 | cut -d' ' -f2)
    [ -n "$TEXTFILE" ] || fatal "no --output in the shipped durability-raid.service"
    mkdir -p "$(dirname "$TEXTFILE")"   # node_exporter's textfile folder
    install -m 0755 "$P/examples/mdadm/durability-mdadm-event" /usr/local/sbin/
    grep -v '^#' "$P/examples/mdadm/mdadm.conf" >> /etc/mdadm/mdadm.conf
    run systemd-analyze verify --man=no /etc/systemd/system/durability-raid.service /etc/systemd/system/durability-raid.timer || true
    run systemctl daemon-reload
    run systemctl enable --now durability-raid.timer || fatal "cannot enable durability-raid.timer"
    mkdir -p "$R/install"
    mv "$R/commands.txt" "$R/install/commands.txt"
    cp /etc/mdadm/mdadm.conf "$R/install/mdadm.conf"
    save
}

# ------------------------------------------------------------------ scenarios
disk() { readlink -f "/dev/disk/by-id/virtio-nodelab-$1"; }

scn_clean() {
    run mdadm --create /dev/md0 --run --level=1 --raid-devices=2 --metadata=1.2 "$D0" "$D1" \
        || fatal "mdadm --create failed"
    wait_for 120 "the initial resync" idle
    mdadm --detail --scan >> /etc/mdadm/mdadm.conf
    run udevadm settle
    # After editing mdadm.conf the monitor is (re)started so it reads the PROGRAM line.
    run systemctl restart mdmonitor.service
    wait_for 30 "mdmonitor" systemctl -q is-active mdmonitor.service
    capture clean
    fact clean mdmonitor "$(systemctl is-active mdmonitor.service)"
    fact clean mdmonitor_cmdline "$(tr '\0' ' ' < "/proc/$(systemctl show -p MainPID --value mdmonitor.service)/cmdline" 2>/dev/null)"
    save
}

scn_member_failed() {
    run mdadm /dev/md0 --fail "$D1"
    wait_event Fail
    capture member-failed
}

scn_rebuilding() {
    run mdadm /dev/md0 --remove "$D1"
    throttle $SLOW_KBS
    run mdadm /dev/md0 --add "$D2"
    wait_for 60 "the rebuild to start" syncing
    wait_event RebuildStarted 60
    capture rebuilding
}

scn_rebuilt() {
    unthrottle
    wait_for 300 "the rebuild to finish" idle
    wait_event RebuildFinished 90
    # What the unit says right after a disk swap, then after the operator's ack.
    unit_run "$R/rebuilt/before-ack"
    run durability raid ack md0
    capture rebuilt
}

scn_check_scrub() {
    throttle $SLOW_KBS
    run bash -c "echo check > /sys/block/md0/md/sync_action"
    wait_for 60 "the check to start" syncing
    capture check-scrub
}

scn_scrub_done() {
    unthrottle
    wait_for 300 "the check to finish" idle
    wait_for 90 "the check's RebuildFinished" finished_twice
    capture scrub-done
}

scn_rebuild_stalled() {
    run mdadm /dev/md0 --fail "$D2"
    run mdadm /dev/md0 --remove "$D2"
    throttle $SLOW_KBS
    run mdadm /dev/md0 --add "$D3"
    wait_for 60 "the rebuild onto d3 to start" syncing
    # d3 stops accepting writes (QEMU I/O throttle): the rebuild hangs for real.
    host throttle d3 || fatal "host could not throttle d3"
    sleep 5
    local at; at=$(md sync_completed)
    echo "# rebuild held at $at" >> "$R/commands.txt"
    unit_run "$R/rebuild-stalled/first-seen"
    local t=$(( STALL_AFTER + 15 ))
    say "rebuild held at '$at'; waiting ${t}s (raid.stall_after is ${STALL_AFTER}s)"
    sleep $t
    fact rebuild-stalled held_at "$(echo "$at" | tr -d ' ')"
    capture rebuild-stalled
    host unthrottle d3 || fatal "host could not release d3"
    unthrottle
    wait_for 300 "the rebuild onto d3 to finish" idle
    fact rebuild-stalled finished_after_release "$(idle && echo yes || echo no)"
    save
}

COPY_UNIT=
T_PLUG=0
# systemd forgets a finished oneshot unit (its state reads "inactive", result "success"
# as if it never ran), so what the copy unit did is read from its journal.
copy_journal() { journalctl -q --no-pager -o cat -u "$COPY_UNIT" --since "@$T_PLUG" 2>/dev/null; }
copy_started() { copy_journal | grep -qE '^(Starting|Started) '; }
copy_finished() { copy_journal | grep -qE '^Finished |Failed with result|^Failed to start '; }
copy_result() {
    if copy_journal | grep -qE 'Failed with result|^Failed to start '; then echo failed
    elif copy_journal | grep -q '^Finished '; then echo success
    else echo none; fi
}
scn_replacing() {
    # A member replaced while the array stays whole: mdadm --replace copies onto a spare.
    # d0 has been in the array since it was created.
    run mdadm --zero-superblock "$D1"
    run mdadm /dev/md0 --add "$D1"
    throttle $SLOW_KBS
    run mdadm /dev/md0 --replace "$D0" --with "$D1"
    wait_for 60 "the replacement to start" syncing
    capture replacing
    unthrottle
    wait_for 300 "the replacement to finish" idle
    save
}

usb_dev() { readlink -f "/dev/disk/by-uuid/$1"; }

scn_usb_hotplug() {
    local name=usb-hotplug d=$R/usb-hotplug cfg=/root/.config/durability-helper
    mkdir -p "$d"
    # The customer data to copy.
    mkdir -p /srv/customer/site /srv/customer/db
    for i in $(seq 1 40); do head -c $((i * 997)) /dev/urandom > "/srv/customer/site/file$i.bin"; done
    echo "dump" > /srv/customer/db/dump.sql

    # 1. enroll the backup disk by hand (plugged, mounted, enrolled, first copy, unplugged)
    host plug backup || fatal "host could not plug the backup disk"
    wait_for 60 "the backup disk" test -b "/dev/disk/by-label/BACKUP"
    local uuid; uuid=$(blkid -s UUID -o value /dev/disk/by-label/BACKUP)
    mkdir -p /media/backup
    run mount /dev/disk/by-label/BACKUP /media/backup || fatal "cannot mount the backup disk"
    run durability-helper enroll /media/backup || fatal "durability-helper enroll failed"
    run durability-helper copy /srv/customer --progress never --notify never \
        || fatal "the first durability-helper copy failed"
    durability-helper status --json > "$d/status.json" 2>&1
    run umount /media/backup
    local before; before=$(ls "$cfg/receipts" 2>/dev/null | wc -l)
    fact $name receipts_after_hand_copy "$before"
    host unplug backup || fatal "host could not unplug the backup disk"
    wait_for 30 "the backup disk to go away" bash -c "! test -e /dev/disk/by-uuid/$uuid"

    # 2. install the plug-in trigger as docs/helper.md says for a machine without a desktop
    local status_uuid
    status_uuid=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["disks"][0]["fs_uuid"])' "$d/status.json")
    [ "$status_uuid" = "$uuid" ] || fatal "durability-helper status says UUID '$status_uuid', blkid says '$uuid'"
    fact $name status_uuid "$status_uuid"
    install -m 0644 "$P/examples/helper/durability-helper-copy-root@.service" /etc/systemd/system/
    echo "UUID=$status_uuid /media/backup ext4 noauto,nofail 0 2" >> /etc/fstab
    sed -E -e "/^ACTION==/s/ENV\{ID_FS_UUID\}==\"[^\"]*\"/ENV{ID_FS_UUID}==\"$status_uuid\"/" \
        -e '/^ACTION==/s/ENV\{SYSTEMD_USER_WANTS\}\+="durability-helper-copy.service"/ENV{SYSTEMD_WANTS}+="media-backup.mount durability-helper-copy-root@%k.service"/' \
        "$P/examples/helper/99-durability-helper.rules" > /etc/udev/rules.d/99-durability-helper.rules
    cp /etc/udev/rules.d/99-durability-helper.rules "$d/99-durability-helper.rules"
    run systemctl daemon-reload
    run udevadm control --reload

    # 3. an unenrolled disk is plugged and mounted (as a desktop would) ...
    host plug other || fatal "host could not plug the other disk"
    wait_for 60 "the other disk" test -b /dev/disk/by-label/OTHER
    local other; other=$(readlink -f /dev/disk/by-label/OTHER)
    mkdir -p /media/other
    run mount /dev/disk/by-label/OTHER /media/other
    echo "untouched" > /media/other/notes.txt
    (cd /media/other && find . | sort && sha256sum notes.txt) > "$d/other-before.txt"
    # ... then the enrolled one: udev should mount it and start the copy.
    T_PLUG=$(date +%s)
    local t_plug=$T_PLUG
    host plug backup || fatal "host could not plug the backup disk again"
    wait_for 60 "the backup disk again" test -b "/dev/disk/by-uuid/$uuid"
    local kname; kname=$(basename "$(usb_dev "$uuid")")
    fact $name backup_kernel_name "$kname"
    fact $name other_kernel_name "$(basename "$other")"
    COPY_UNIT="durability-helper-copy-root@$kname.service"
    local unit=$COPY_UNIT
    wait_for 60 "$unit to start" copy_started
    wait_for 600 "$unit to finish" copy_finished
    fact $name copy_unit_started "$(copy_started && echo yes || echo no)"
    fact $name copy_unit_result "$(copy_result)"
    fact $name copy_seconds_after_plug "$(( $(date +%s) - t_plug ))"
    fact $name backup_mounted_by "$(systemctl show -p ActiveState --value media-backup.mount)"
    fact $name receipts_after_plug "$(ls "$cfg/receipts" 2>/dev/null | wc -l)"
    fact $name other_units "$(systemctl list-units --all --no-legend "durability-helper-copy-root@$(basename "$other").service" | wc -l)"
    (cd /media/other && find . | sort && sha256sum notes.txt) > "$d/other-after.txt"
    fact $name other_marker "$(test -e /media/other/.durability-helper && echo present || echo absent)"
    fact $name backup_marker "$(test -e /media/backup/.durability-helper && echo present || echo absent)"
    mkdir -p "$d/receipts"
    cp "$cfg"/receipts/* "$d/receipts/" 2>/dev/null
    systemctl list-units --all --no-pager 'durability-helper-copy-root@*' 'media-*.mount' > "$d/units.txt" 2>&1
    journalctl --no-pager -o short-iso --since "@$t_plug" -u "$unit" -u media-backup.mount > "$d/journal.txt" 2>&1
    [ -f "$R/warnings.txt" ] && mv "$R/warnings.txt" "$d/warnings.txt"
    mv "$R/commands.txt" "$d/commands.txt"
    say "usb-hotplug: copy unit $(copy_result), receipts $before -> $(ls "$cfg/receipts" 2>/dev/null | wc -l)"
    save
}

# ------------------------------------------------------------------ main
say "guest started (kernel $(uname -r), systemd $(systemctl --version | head -n1 | cut -d' ' -f2))"
for i in $(seq 1 60); do [ -c "$CTL" ] && [ -b "$OUTDEV" ] && break; udevadm settle --timeout=2 || sleep 1; done
[ -b "$OUTDEV" ] || { echo "NODELAB: FATAL: no out disk"; exit 1; }
[ -c "$CTL" ] || fatal "no control port $CTL"
exec 3<> "$CTL"
D0=$(disk d0); D1=$(disk d1); D2=$(disk d2); D3=$(disk d3)
for x in "$D0" "$D1" "$D2" "$D3"; do [ -b "$x" ] || fatal "data disk missing ($D0 $D1 $D2 $D3)"; done
{ echo "kernel=$(uname -r)"; echo "disks=$D0 $D1 $D2 $D3"; } > "$R/guest.txt"
install_durability
SCENARIOS=$(cat "$P/lab/scenarios.txt" 2>/dev/null)
[ -n "$SCENARIOS" ] || SCENARIOS="clean member-failed rebuilding rebuilt check-scrub scrub-done rebuild-stalled usb-hotplug replacing"
say "scenarios: $SCENARIOS"
for s in $SCENARIOS; do
    say "=== $s"
    t=$(cut -d. -f1 /proc/uptime)
    "scn_$(echo "$s" | tr '-' '_')"
    mkdir -p "$R/$s"; fact "$s" scenario_seconds "$(( $(cut -d. -f1 /proc/uptime) - t ))"
    save
done
unthrottle
journalctl --no-pager -o short-iso -b > "$R/journal-boot.txt" 2>&1
save
say "ALL DONE in $(( $(cut -d. -f1 /proc/uptime) - T0 ))s"
