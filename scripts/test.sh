#!/usr/bin/env bash
# Set up everything the tests need, then lint, type-check and run the whole suite.
# The tests start their own servers (SeaweedFS, aiosmtpd, PostgreSQL, moto) on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
export PATH="$PWD/.venv/bin:$PATH"
# In CI the browser tests keep their screenshots under var/ for a person to look at.
[ "${CI:-}" = true ] && export DURABILITY_SCREENSHOT_DIR="${DURABILITY_SCREENSHOT_DIR:-$PWD/var/screenshots}"
echo "== ruff" && ruff check durability tests benchmarks
echo "== mypy --strict" && mypy
echo "== pytest" && pytest "$@"
# The same store-using tests again, each on a fresh database of a private PostgreSQL.
echo "== pytest (state store on PostgreSQL)" && DURABILITY_TEST_STATE=postgresql pytest -m state "$@"
