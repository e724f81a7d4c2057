#!/usr/bin/env bash
# Set up a virtual environment with durability installed.
#   scripts/setup.sh            the provider install (what the main job needs)
#   scripts/setup.sh --test     also the Debian packages and pinned tools the tests use
set -euo pipefail
cd "$(dirname "$0")/.."

test_mode=0
[ "${1:-}" = "--test" ] && test_mode=1

apt_packages=(restic)
if [ "$test_mode" = 1 ]; then
    # smartmontools: SMART probing; postgresql: the store's second backend;
    # chromium: pages clicked in a real browser; dosfstools/e2fsprogs: disk images.
    apt_packages+=(smartmontools postgresql chromium dosfstools e2fsprogs util-linux openssl)
fi
missing=()
for pkg in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
        echo "setup: installing Debian packages: ${missing[*]}" >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    else
        echo "setup: please install (as root): apt-get install ${missing[*]}" >&2
    fi
fi

python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
if [ "$test_mode" = 1 ]; then
    .venv/bin/python -m pip install -q -r requirements/ci.txt
    .venv/bin/python -m pip install -q --no-deps -e .
else
    .venv/bin/python -m pip install -q -c requirements/ci.txt -e '.[provider,postgresql]'
fi

# axe-core: the accessibility audit the browser tests inject into the pages (under var/).
axe_version=4.14.1
if [ "$test_mode" = 1 ] && ! grep -qs "\"version\": \"$axe_version\"" var/npm/node_modules/axe-core/package.json; then
    if ! command -v npm >/dev/null && [ "$(id -u)" = 0 ]; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends npm >/dev/null
    fi
    npm install --silent --no-audit --no-fund --prefix var/npm "axe-core@$axe_version" >/dev/null
fi
