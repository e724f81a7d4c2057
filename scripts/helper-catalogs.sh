#!/usr/bin/env bash
# Rebuild the helper's message catalogs with Babel (a build-time tool; the helper reads
# the compiled .mo files with the standard library's gettext).
#   scripts/helper-catalogs.sh           extract the messages, update the .po files, compile
#   scripts/helper-catalogs.sh compile   only compile the .po files into .mo files
# After an update, translate every new or fuzzy entry in
# durability/helper/locale/*/LC_MESSAGES/durability-helper.po and run it again.
set -euo pipefail
cd "$(dirname "$0")/.."
pybabel=${PYBABEL:-.venv/bin/pybabel}
locale=durability/helper/locale
domain=durability-helper
if [ "${1:-}" != "compile" ]; then
    "$pybabel" -q extract --no-location --sort-output --project=durability-helper \
        --copyright-holder="durability" --msgid-bugs-address="" \
        -k _ -k N_ -k ngettext:1,2 -k pgettext:1c,2 \
        -o "$locale/$domain.pot" durability/helper
    for lang in pl; do
        po="$locale/$lang/LC_MESSAGES/$domain.po"
        if [ -f "$po" ]; then
            "$pybabel" -q update --no-wrap --ignore-obsolete --no-fuzzy-matching \
                -i "$locale/$domain.pot" -d "$locale" -D "$domain" -l "$lang"
        else
            "$pybabel" -q init --no-wrap -i "$locale/$domain.pot" -d "$locale" \
                -D "$domain" -l "$lang"
        fi
    done
fi
"$pybabel" compile --statistics -d "$locale" -D "$domain"
