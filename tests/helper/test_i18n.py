"""The helper in Polish and English: language from the locale, plural forms by Babel's
rules, catalogs complete and compiled, local dates, friendly network reasons."""

from __future__ import annotations

import gettext
import os
import shutil
import socket
import ssl
import string
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from durability.helper import i18n
from durability.helper.folder import Folder
from durability.helper.receipts import (
    Receipt,
    flush_pending,
    network_reason,
    pending,
    queue_receipt,
    send_receipt,
)
from tests.helper.test_receipts import _free_port

REPO = Path(__file__).resolve().parents[2]
LOCALE = REPO / "durability" / "helper" / "locale"
PO = LOCALE / "pl" / "LC_MESSAGES" / "durability-helper.po"
MO = PO.with_suffix(".mo")
RECEIPT = Receipt("2026-11-25T10:00:00Z", "a" * 64, 3, 1234, True, "d" * 64)


@pytest.mark.parametrize(("environ", "language"), [
    ({"LANG": "pl_PL.UTF-8"}, "pl"),
    ({"LANG": "en_GB.UTF-8"}, "en"),
    ({"LANG": "C.UTF-8"}, "en"),
    ({"LANG": "POSIX"}, "en"),
    ({"LANG": "de_DE.UTF-8"}, "en"),
    ({}, "en"),
    ({"LANG": "en_US.UTF-8", "LC_MESSAGES": "pl_PL.UTF-8"}, "pl"),
    ({"LANG": "pl_PL.UTF-8", "LC_ALL": "C"}, "en"),
    ({"LC_ALL": "pl_PL@euro", "LC_MESSAGES": "en_US"}, "pl"),
    ({"LC_ALL": "", "LC_MESSAGES": "", "LANG": "pl"}, "pl"),
])
def test_language_from_lc_all_lc_messages_lang(environ: dict[str, str], language: str) -> None:
    assert i18n.language_from(environ) == language


# Babel's Polish categories (one; few: 2-4, 22-24 but not 12-14; many: the rest) are the
# three gettext forms of the catalog.
COUNTS = (1, 2, 3, 4, 5, 11, 12, 13, 14, 21, 22, 23, 24, 25, 101, 102, 112, 122)


def test_polish_plural_forms_follow_babel(polish: None) -> None:
    from babel import Locale

    rule = Locale.parse("pl").plural_form
    forms = {"one": "potwierdzenie czeka", "few": "potwierdzenia czekają",
             "many": "potwierdzeń czeka"}
    for count in COUNTS:
        text = i18n.ngettext("{count} receipt waiting to be sent to your provider",
                             "{count} receipts waiting to be sent to your provider",
                             count).format(count=count)
        assert text.startswith(f"{count} {forms[rule(count)]} "), (count, text)
    files = {"one": "plik", "few": "pliki", "many": "plików"}
    for count in COUNTS:
        text = i18n.ngettext(
            "disk {disk}: copied {count} file ({size}), verified; snapshot {snapshot}",
            "disk {disk}: copied {count} files ({size}), verified; snapshot {snapshot}",
            count).format(disk="D", count=count, size="1 B", snapshot="x")
        assert f"skopiowano {count} {files[rule(count)]} " in text, text


def test_catalog_header_has_babel_plural_rule() -> None:
    from babel.messages.plurals import get_plural

    assert f"Plural-Forms: {get_plural('pl').plural_forms}" in PO.read_text(encoding="utf-8")


def _source_messages() -> set[str | tuple[str, str]]:
    from babel.messages.extract import extract_from_dir

    keywords = {"_": None, "N_": None, "ngettext": (1, 2), "pgettext": ((1, "c"), 2)}
    found: set[str | tuple[str, str]] = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
            str(REPO / "durability" / "helper"), keywords=keywords):
        found.add(message if isinstance(message, str) else tuple(message))  # type: ignore[arg-type]
    return found


def _placeholders(text: str) -> set[str]:
    """Return the {name} and %(name)s / %s placeholders of a message."""
    import re

    braces = {f for _t, f, _s, _c in string.Formatter().parse(text) if f}
    return braces | set(re.findall(r"%(?:\(\w+\))?[sr]", text))


def test_every_message_translated_with_the_same_placeholders() -> None:
    from babel.messages.pofile import read_po

    with PO.open("rb") as stream:
        catalog = read_po(stream)
    entries = {m.id if isinstance(m.id, str) else tuple(m.id): m for m in catalog if m.id}
    missing = _source_messages() - set(entries)
    assert missing == set(), "run scripts/helper-catalogs.sh and translate the new messages"
    for key, message in entries.items():
        assert "fuzzy" not in message.flags, key
        strings = [message.string] if isinstance(message.string, str) else list(message.string)
        assert all(strings), key
        original = key if isinstance(key, str) else key[1]
        for text in strings:
            assert _placeholders(text) == _placeholders(original), key


def test_shipped_mo_is_the_compiled_po(tmp_path: Path) -> None:
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    with PO.open("rb") as stream:
        catalog = read_po(stream)
    fresh = tmp_path / "fresh.mo"
    with fresh.open("wb") as stream:
        write_mo(stream, catalog)
    with fresh.open("rb") as a, MO.open("rb") as b:
        built, shipped = gettext.GNUTranslations(a), gettext.GNUTranslations(b)
    assert built._catalog == shipped._catalog, (  # type: ignore[attr-defined]
        "the .mo is stale: run scripts/helper-catalogs.sh compile")


def test_polish_date_in_local_time(polish: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Europe/Warsaw")
    time.tzset()
    try:
        assert i18n.format_time("2026-12-01T13:05:00Z") == "1 grudnia 2026, 14:05"
        assert i18n.format_time("2026-07-31T22:30:00Z") == "1 sierpnia 2026, 00:30"
        assert i18n.format_time("", "nigdy") == "nigdy"
        assert i18n.format_time("not a time") == "not a time"
        i18n.use("en")
        assert i18n.format_time("2026-12-01T13:05:00Z") == "1 December 2026, 14:05"
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_polish_sizes_and_durations(polish: None) -> None:
    assert i18n.format_bytes(1536 * 1024) == "1,5 MiB"
    assert i18n.format_duration(20) == "mniej niż minuta"
    assert i18n.format_duration(185) == "około 3 min"
    assert i18n.format_duration(2 * 3600 + 600) == "około 2 godz. 10 min"


@pytest.mark.parametrize(("cause", "expected"), [
    (ConnectionRefusedError(111, "Connection refused"), "the server does not answer"),
    (socket.gaierror(-2, "Name or service not known"), "the name links.example cannot be found"),
    (TimeoutError("timed out"), "no answer within 15 seconds"),
    (ssl.SSLCertVerificationError(1, "certificate verify failed"), "certificate cannot be verified"),
    (ConnectionResetError(104, "Connection reset by peer"), "the connection was cut off"),
    (OSError(101, "Network is unreachable"), "no network connection"),
])
def test_network_reasons_in_words(cause: Exception, expected: str) -> None:
    reason = network_reason(cause, "links.example", 15.0)
    assert expected in reason
    assert "Errno" not in reason and "[" not in reason


def test_send_receipt_to_a_closed_port_says_so_plainly(polish: None) -> None:
    port = _free_port()
    outcome = send_receipt(f"http://127.0.0.1:{port}/l/confirm/t", RECEIPT, timeout=2)
    assert outcome.kind == "unreachable"
    assert outcome.message == (
        f"nie można połączyć się z 127.0.0.1:{port}: serwer nie odpowiada (być może trwa "
        "przerwa techniczna); potwierdzenie zostanie wysłane przy następnym uruchomieniu "
        "programu")


def test_receipt_waiting_past_the_link_lifetime_dropped(tmp_path: Path) -> None:
    folder = Folder(tmp_path / "helper")
    port = _free_port()
    url = f"http://127.0.0.1:{port}/l/confirm/t"
    start = 1_790_000_000.0
    queue_receipt(folder.path, RECEIPT, url, now=start)
    queue_receipt(folder.path, RECEIPT, url, now=start + 86400)  # re-queued: keeps its age
    waiting = flush_pending(folder.path, timeout=2, now=start + 59 * 86400)
    assert [o.kind for o in waiting] == ["unreachable"]
    assert len(pending(folder.path)) == 1
    dropped = flush_pending(folder.path, timeout=2, now=start + 61 * 86400)
    assert [o.kind for o in dropped] == ["refused"]
    assert "could not be reached for more than 60 days" in dropped[0].message
    assert pending(folder.path) == []


def test_cli_speaks_polish_from_lang(tmp_path: Path) -> None:
    env = {**os.environ, "LANG": "pl_PL.UTF-8", "XDG_CONFIG_HOME": str(tmp_path)}
    env.pop("LC_ALL", None)
    env.pop("LC_MESSAGES", None)
    done = subprocess.run([sys.executable, "-m", "durability.helper.cli", "status"], env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        "nie dodano jeszcze żadnego dysku: uruchom `durability-helper enroll PUNKT_MONTOWANIA`")
    copy = subprocess.run([sys.executable, "-m", "durability.helper.cli", "copy", "/nowhere"],
                          env=env, capture_output=True, text=True, timeout=60, check=False)
    assert copy.returncode == 1
    assert "nie dodano jeszcze żadnego dysku" in copy.stderr


def test_helper_runs_without_babel_or_jinja(tmp_path: Path) -> None:
    """The customer's install is light: gettext from the standard library is enough."""
    code = ("import sys, builtins\n"
            "real = builtins.__import__\n"
            "def guard(name, *a, **k):\n"
            "    if name.split('.')[0] in ('babel', 'jinja2'):\n"
            "        raise ImportError(name)\n"
            "    return real(name, *a, **k)\n"
            "builtins.__import__ = guard\n"
            "from durability.helper.cli import main\n"
            "main(['status'])\n")
    env = {**os.environ, "LANG": "pl_PL.UTF-8", "XDG_CONFIG_HOME": str(tmp_path)}
    env.pop("LC_ALL", None)
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "nie dodano jeszcze żadnego dysku" in done.stdout


@pytest.mark.slow
def test_wheel_ships_the_compiled_catalog(tmp_path: Path) -> None:
    tree = tmp_path / "src"
    tree.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, tree / name)
    shutil.copytree(REPO / "durability", tree / "durability",
                    ignore=shutil.ignore_patterns("__pycache__"))
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
         "-w", str(tmp_path / "dist"), str(tree)],
        capture_output=True, text=True, timeout=300, check=False)
    if done.returncode != 0 and "No module named" in done.stderr:
        pytest.skip(f"cannot build a wheel here: {done.stderr.strip().splitlines()[-1]}")
    assert done.returncode == 0, done.stderr
    (wheel,) = (tmp_path / "dist").glob("durability-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "durability/helper/locale/pl/LC_MESSAGES/durability-helper.mo" in names


def test_help_and_usage_errors_in_polish(tmp_path: Path) -> None:
    env = {**os.environ, "LANG": "pl_PL.UTF-8", "XDG_CONFIG_HOME": str(tmp_path)}
    env.pop("LC_ALL", None)
    env.pop("LC_MESSAGES", None)
    shown = subprocess.run([sys.executable, "-m", "durability.helper.cli", "--help"], env=env,
                           capture_output=True, text=True, timeout=60, check=False)
    assert shown.returncode == 0
    assert shown.stdout.startswith("użycie: durability-helper")
    for phrase in ("opcje:", "pokaż tę pomoc i zakończ", "pokaż wersję programu i zakończ",
                   "trzy kroki:", "kody wyjścia: 0 \u2013 sukces, 1 \u2013 błąd"):
        assert phrase in shown.stdout, phrase
    bad = subprocess.run([sys.executable, "-m", "durability.helper.cli", "copy", "--sample",
                          "x"], env=env, capture_output=True, text=True, timeout=60,
                         check=False)
    assert bad.returncode == 2
    assert "błąd: argument --sample: to nie jest liczba całkowita: 'x'" in bad.stderr
