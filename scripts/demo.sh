#!/usr/bin/env bash
# Set up durability and run the main job on this machine, all local (SQLite in ./var):
# a small restic repository of example data is made, then `durability check` judges
# this node's md arrays, proves the repository's snapshots are fresh and complete, and
# restores the newest one into scratch space to verify it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
mkdir -p var
python scripts/demo_setup.py var
status=0
durability --config var/demo.toml check || status=$?
echo
echo "durability check exited $status (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN)."
echo "History so far:"
durability --config var/demo.toml history --limit 10 || true
