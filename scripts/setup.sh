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
    # The real monitoring clients the outputs are checked with: promtool, node_exporter,
    # Nagios 4 and systemd-analyze (tests/clients/).
    apt_packages+=(prometheus prometheus-node-exporter nagios4-core systemd)
    apt_packages+=(spamassassin)  # reminder emails checked as a receiving server would
fi
# Every apt-get waits (up to 10 minutes) for another apt or unattended-upgrades to
# release the dpkg lock instead of failing at once.
apt_wait=(-o DPkg::Lock::Timeout=600)
missing=()
for pkg in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
        echo "setup: installing Debian packages: ${missing[*]}" >&2
        # Wait (up to 10 minutes) for another apt or unattended-upgrades to release the
        # dpkg lock instead of failing at once.
        apt-get "${apt_wait[@]}" update -qq
        DEBIAN_FRONTEND=noninteractive apt-get "${apt_wait[@]}" install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
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

# restic 0.18 (Debian 13's package) for the test suite, unpacked, never installed: the
# suite runs every restic test on Debian 12's restic and on this one. A separate
# sources list and its own apt folders under var/ leave the system's apt untouched; the
# unpacked program is kept per package version in var/tools/.
if [ "$test_mode" = 1 ]; then
    tools=var/tools
    apt_root=var/apt-trixie
    mkdir -p "$tools" "$apt_root/lists/partial" "$apt_root/cache/archives/partial" "$apt_root/debs"
    cat > "$apt_root/sources.list" <<'SOURCES'
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main
SOURCES
    apt_opts=(-o "Dir::Etc::SourceList=$PWD/$apt_root/sources.list" -o Dir::Etc::SourceParts=/dev/null
              -o "Dir::State::Lists=$PWD/$apt_root/lists" -o "Dir::Cache=$PWD/$apt_root/cache"
              -o Acquire::Retries=3)
    if apt-get "${apt_wait[@]}" "${apt_opts[@]}" -qq update >/dev/null 2>&1; then
        version=$(apt-cache "${apt_opts[@]}" show restic 2>/dev/null | sed -n 's/^Version: //p' | sort -V | tail -1)
    else
        version=""
        echo "setup: cannot reach deb.debian.org for restic 0.18; using the cached copy if any" >&2
    fi
    if [ -n "$version" ] && [ ! -x "$tools/restic-$version/usr/bin/restic" ]; then
        (cd "$apt_root/debs" && rm -f restic_*.deb && apt-get "${apt_wait[@]}" "${apt_opts[@]}" -o APT::Sandbox::User=root -qq download "restic=$version")
        rm -rf "$tools/restic-$version.tmp"
        dpkg-deb -x "$apt_root"/debs/restic_*.deb "$tools/restic-$version.tmp"
        mv "$tools/restic-$version.tmp" "$tools/restic-$version"
    fi
    if [ -n "$version" ]; then
        ln -sfn "restic-$version/usr/bin/restic" "$tools/restic-0.18"
    fi
    if [ -x "$tools/restic-0.18" ]; then
        "$tools/restic-0.18" version >&2
    else
        echo "setup: restic 0.18 is not available: its test parameters will be skipped" >&2
    fi
fi

# axe-core: the accessibility audit the browser tests inject into the pages (under var/).
axe_version=4.14.1
if [ "$test_mode" = 1 ] && ! grep -qs "\"version\": \"$axe_version\"" var/npm/node_modules/axe-core/package.json; then
    if ! command -v npm >/dev/null && [ "$(id -u)" = 0 ]; then
        DEBIAN_FRONTEND=noninteractive apt-get "${apt_wait[@]}" install -y -qq --no-install-recommends npm >/dev/null
    fi
    npm install --silent --no-audit --no-fund --prefix var/npm "axe-core@$axe_version" >/dev/null
fi
