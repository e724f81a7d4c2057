#!/usr/bin/env bash
# Set up durability and run the main job on this machine with the example config:
# state in ./var/state.db, local data only.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
mkdir -p var
export PATH="$PWD/.venv/bin:$PATH"
status=0
durability --config examples/durability.toml check || status=$?
echo "durability check exited $status (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN)"
