"""Prepare the main job's local demo: a restic repository of example data and a config.

Writes var/demo/ (repository, password file, example data, scratch space) and
var/demo.toml: this node's RAID, the repository as a snapshot source, and a restore test
of it. Run by scripts/demo.sh; safe to run again (each run adds a snapshot).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from durability.restore.demo import build_demo_repository


def main() -> None:
    """Build the demo repository and write the config next to it."""
    var = Path(sys.argv[1] if len(sys.argv) > 1 else "var").resolve()
    demo = var / "demo"
    demo.mkdir(parents=True, exist_ok=True)
    os.chmod(demo, 0o700)
    repo = build_demo_repository(
        str(demo / "restic-repo"), str(demo / "restic-password"), str(demo / "site-data")
    )
    config = var / "demo.toml"
    config.write_text(
        "# Written by scripts/demo_setup.py: everything local, nothing leaves this machine.\n"
        f'[state]\npath = "{var / "state.db"}"\n\n'
        "[raid]\n# expect = [\"md0:2\"]\n\n"
        "[snapshots]\nmax_age = \"26h\"\nmax_shrink = \"30%\"\n\n"
        "[[snapshots.sources]]\n"
        'name = "demo-restic"\nkind = "restic"\n'
        f'repository = "{repo.repository}"\npassword_file = "{repo.password_file}"\n\n'
        f'[restore]\nsource = "demo-restic"\nscratch_dir = "{demo / "scratch"}"\n'
        'rto_target = "1h"\n',
        encoding="utf-8",
    )
    print(f"demo repository {repo.repository}: snapshot {repo.snapshot_id[:8]} of {repo.data_dir}")
    print(f"config written to {config}")


if __name__ == "__main__":
    main()
