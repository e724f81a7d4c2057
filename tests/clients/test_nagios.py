"""Nagios 4 (Debian package nagios4-core) runs the shipped command definitions.

A private Nagios in a temporary folder (its own status file, spool, query socket and
log; one-second interval length) runs `check_durability_raid` from
examples/nagios/durability.cfg against captured trees and bad input; `status.dat` is
read back for each service's state, plugin output, long output and perfdata.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.clients.conftest import capture_tree, tool
from tests.conftest import REPO

COMMANDS = REPO / "examples" / "nagios" / "durability.cfg"
TIMEOUT = 60.0

OBJECTS = """\
define timeperiod {
    timeperiod_name always
    alias           always
    sunday          00:00-24:00
    monday          00:00-24:00
    tuesday         00:00-24:00
    wednesday       00:00-24:00
    thursday        00:00-24:00
    friday          00:00-24:00
    saturday        00:00-24:00
}
define command {
    command_name    notify_none
    command_line    /bin/true
}
define contact {
    contact_name                    nobody
    host_notifications_enabled      0
    service_notifications_enabled   0
    host_notification_period        always
    service_notification_period     always
    host_notification_options       n
    service_notification_options    n
    host_notification_commands      notify_none
    service_notification_commands   notify_none
}
define host {
    host_name               node
    address                 127.0.0.1
    max_check_attempts      1
    check_period            always
    active_checks_enabled   0
    contacts                nobody
    notification_period     always
}
"""

SERVICE = """\
define service {{
    host_name               node
    service_description     {name}
    check_command           {command}
    max_check_attempts      1
    check_interval          2
    retry_interval          2
    check_period            always
    contacts                nobody
    notification_period     always
}}
"""


def nagios_config(folder: Path, services: dict[str, str]) -> Path:
    (folder / "spool").mkdir(parents=True)
    (folder / "tmp").mkdir()
    (folder / "objects.cfg").write_text(
        OBJECTS
        + "".join(SERVICE.format(name=name, command=command) for name, command in services.items())
    )
    # $USER2$ is where the durability command lives (resource.cfg, as the example says).
    (folder / "resource.cfg").write_text(f"$USER2$={Path(sys.executable).parent}\n")
    main = folder / "nagios.cfg"
    main.write_text(
        "\n".join(
            [
                f"log_file={folder}/nagios.log",
                f"cfg_file={folder}/objects.cfg",
                f"cfg_file={COMMANDS}",
                f"resource_file={folder}/resource.cfg",
                f"object_cache_file={folder}/objects.cache",
                f"precached_object_file={folder}/objects.precache",
                f"status_file={folder}/status.dat",
                "status_update_interval=1",
                f"temp_file={folder}/nagios.tmp",
                f"temp_path={folder}/tmp",
                f"check_result_path={folder}/spool",
                f"lock_file={folder}/nagios.lock",
                f"query_socket={folder}/nagios.qh",
                f"state_retention_file={folder}/retention.dat",
                "retain_state_information=0",
                "use_retained_program_state=0",
                "nagios_user=root" if _root() else "",
                "nagios_group=root" if _root() else "",
                "check_external_commands=0",
                "interval_length=1",
                "use_syslog=0",
                "enable_notifications=0",
                "enable_flap_detection=0",
                "check_result_reaper_frequency=1",
                # every service checked at once, not spread over the first minutes
                "service_inter_check_delay_method=n",
                "max_service_check_spread=1",
                "max_concurrent_checks=0",
                "illegal_macro_output_chars=`~$&|'\"<>",
                "service_check_timeout=30",
                "",
            ]
        )
    )
    return main


def _root() -> bool:
    import os

    return os.geteuid() == 0


def parse_status(text: str) -> dict[str, dict[str, str]]:
    """Return {service_description: fields} of the servicestatus blocks of status.dat."""
    services: dict[str, dict[str, str]] = {}
    block: dict[str, str] | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped == "servicestatus {":
            block = {}
        elif stripped == "}" and block is not None:
            services[block.get("service_description", "")] = block
            block = None
        elif block is not None and "=" in stripped:
            key, _, value = stripped.partition("=")
            block[key] = value
    return services


def run_nagios(folder: Path, services: dict[str, str]) -> dict[str, dict[str, str]]:
    """Run a private Nagios until every service has been checked once; return status.dat."""
    nagios = tool("nagios4")
    main = nagios_config(folder, services)
    verify = subprocess.run(
        [nagios, "-v", str(main)], capture_output=True, text=True, timeout=60, check=False
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    log = (folder / "nagios.out").open("wb")
    process = subprocess.Popen([nagios, str(main)], stdout=log, stderr=subprocess.STDOUT)
    status = folder / "status.dat"
    try:
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(
                    f"nagios exited {process.returncode}: {(folder / 'nagios.out').read_text()}"
                )
            if status.exists():
                found = parse_status(status.read_text(errors="replace"))
                if set(found) >= set(services) and all(
                    found[name].get("has_been_checked") == "1" for name in services
                ):
                    return found
            time.sleep(0.2)
        pytest.fail(f"nagios did not check every service within {TIMEOUT}s")
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)
        log.close()


def test_nagios_runs_the_shipped_raid_command_on_captures(tmp_path: Path) -> None:
    trees = {
        s: capture_tree(tmp_path / "trees", s)
        for s in ("raid1-clean", "raid1-faulty", "raid1-recovery", "raid1-mismatch")
    }
    garbage = tmp_path / "garbage"
    garbage.mkdir()
    (garbage / "mdstat").write_bytes(
        b"Personalities : [raid1]\nmd0 : active raid1 sdb1[1] sda1[0]\n"
        b"      1048512 blocks super 1.2 [2/2] [UU]\n      \x01\xff; junk | here\n\n"
    )
    services = {
        name: f"check_durability_raid!--proc-root {proc} --sys-root {sys} --expect md0:2"
        for name, (proc, sys) in trees.items()
    }
    services["garbage"] = f"check_durability_raid!--proc-root {garbage} --sys-root {garbage}"
    services["usage-error"] = "check_durability_raid!--expect bogus"
    services["missing-array"] = (
        f"check_durability_raid!--proc-root {trees['raid1-clean'][0]} "
        f"--sys-root {trees['raid1-clean'][1]} --expect md1"
    )
    found = run_nagios(tmp_path / "nagios", services)

    def state(name: str) -> tuple[str, str, str, str]:
        s = found[name]
        return (
            s["current_state"],
            s["plugin_output"],
            s.get("long_plugin_output", ""),
            s.get("performance_data", ""),
        )

    current, output, long_output, perfdata = state("raid1-clean")
    assert current == "0" and output.startswith("DURABILITY OK - md0: raid1 clean: 2 of 2")
    assert "md0_raid_members_in_sync=2;;;0;2" in perfdata
    current, output, long_output, perfdata = state("raid1-faulty")
    assert current == "2" and output.startswith("DURABILITY CRITICAL - md0 degraded")
    assert "md0_raid_degraded_devices=1" in perfdata
    assert "member vdb" in long_output
    current, output, _, perfdata = state("raid1-recovery")
    assert current == "1" and "rebuilding" in output
    assert "md0_raid_sync_progress_ratio=" in perfdata
    current, output, _, perfdata = state("raid1-mismatch")
    assert current == "1" and "mismatch_cnt" in output
    mismatch = [p for p in perfdata.split() if p.startswith("md0_raid_mismatch_sectors=")]
    assert mismatch and not mismatch[0].split(";")[0].endswith("c")  # not a counter
    current, output, _, _ = state("garbage")
    assert current == "3" and output.startswith("DURABILITY UNKNOWN - md0 cannot parse mdstat")
    assert ";" not in output and "\ufffd" not in output and "\x01" not in output
    current, output, _, _ = state("usage-error")
    assert current == "3" and output.startswith("DURABILITY UNKNOWN - ") and "bogus" in output
    current, output, _, _ = state("missing-array")
    assert current == "2" and "md1 missing" in output
    for name, fields in found.items():
        # Nagios rewrites ";" in plugin output: none of ours may carry one
        assert ";" not in fields["plugin_output"], (name, fields["plugin_output"])
