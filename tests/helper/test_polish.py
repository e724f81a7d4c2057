"""The helper read in Polish: --help with Polish placeholders, argparse's own words,
enroll and disk messages, link kinds said in whole sentences, and no message that
silently stays English."""

from __future__ import annotations

import ast
import gettext
import os
import re
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from durability.helper import disks, i18n
from durability.helper.enroll import Enrolled, check_password_command, recovery_text, run_enroll
from durability.helper.folder import DiskRecord, Folder, HelperError
from durability.helper.receipts import check_confirm_url
from tests.helper.conftest import Helper, LoopDisk

REPO = Path(__file__).resolve().parents[2]
HELPER_SOURCE = REPO / "durability" / "helper"
PO = HELPER_SOURCE / "locale" / "pl" / "LC_MESSAGES" / "durability-helper.po"

# English placeholders of --help; none of them may show in the Polish help.
ENGLISH_METAVARS = ("DIR", "PATH", "PATHS", "COMMAND", "MOUNTPOINT", "CMD", "URL", "SECONDS")
# Messages whose Polish is rightly the same text as the English.
SAME_IN_POLISH = {
    ("metavar", "N"),
    "{day} {month} {year}, {time}", "argument %(argument_name)s: %(message)s",
}


def _run(*argv: str, tmp_path: Path, lang: str = "pl_PL.UTF-8") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LANG": lang, "XDG_CONFIG_HOME": str(tmp_path / "config"),
           "XDG_CACHE_HOME": str(tmp_path / "cache")}
    env.pop("LC_ALL", None)
    env.pop("LC_MESSAGES", None)
    return subprocess.run([sys.executable, "-m", "durability.helper.cli", *argv], env=env,
                          capture_output=True, text=True, timeout=60, check=False)


def _words(text: str) -> set[str]:
    return set(re.findall(r"[A-Za-z_.]+", text))


@pytest.mark.parametrize(("argv", "placeholders"), [
    ((), ("[--config-dir FOLDER]", "[--restic ŚCIEŻKA]", "POLECENIE ...")),
    (("copy",), ("[--confirm-url LINK]", "[--wait SEKUNDY]", "[ŚCIEŻKA ...]",
                 "podane jako ŚCIEŻKA", "--sample N")),
    (("enroll",), ("[--password-command POLECENIE]", "PUNKT_MONTOWANIA",
                   "w folderze PUNKT_MONTOWANIA")),
    (("confirm",), ("confirm [-h] [LINK]",)),
    (("status",), ("pokaż tę pomoc i zakończ",)),
])
def test_polish_help_has_polish_placeholders(
    tmp_path: Path, argv: tuple[str, ...], placeholders: tuple[str, ...],
) -> None:
    shown = _run(*argv, "--help", tmp_path=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("użycie: durability-helper")
    flat = " ".join(shown.stdout.split())
    for placeholder in placeholders:
        assert placeholder in flat, placeholder
    leftover = _words(shown.stdout) & set(ENGLISH_METAVARS)
    assert leftover == set(), leftover
    for english in ("usage:", "options:", "positional arguments", "show this help",
                    "(auto: on a terminal)"):
        assert english not in flat


def test_english_help_keeps_english_placeholders(tmp_path: Path) -> None:
    shown = _run("copy", "--help", tmp_path=tmp_path, lang="C.UTF-8")
    assert shown.stdout.startswith("usage: durability-helper copy")
    assert "[--wait SECONDS]" in shown.stdout and "[PATH ...]" in shown.stdout
    assert "auto (on a terminal only), always or never" in " ".join(shown.stdout.split())


@pytest.mark.parametrize(("argv", "expected"), [
    ((), "durability-helper: błąd: brakuje wymaganych argumentów: POLECENIE"),
    (("frob",), "błąd: argument POLECENIE: nieprawidłowy wybór: 'frob' (do wyboru: 'enroll',"),
    (("--ver",), "błąd: niejednoznaczna opcja: --ver może oznaczać --version, --verbose"),
    (("status", "--json=1"), "błąd: argument --json: ta opcja nie przyjmuje wartości: '1'"),
    (("status", "extra"), "błąd: nierozpoznane argumenty: extra"),
    (("copy", "--sample"), "błąd: argument --sample: oczekiwano jednego argumentu"),
    (("copy", "--wait", "soon"), "błąd: argument --wait: to nie jest liczba sekund: 'soon'"),
    (("copy", "--wait", "-5"), "błąd: argument --wait: musi wynosić co najmniej 0"),
    (("copy", "--read-data-subsets", "0"),
     "błąd: argument --read-data-subsets: musi wynosić co najmniej 1"),
    (("copy", "--progress", "loud"), "błąd: argument --progress: nieprawidłowy wybór: 'loud'"),
])
def test_usage_errors_in_polish(tmp_path: Path, argv: tuple[str, ...], expected: str) -> None:
    done = _run(*argv, tmp_path=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith("użycie: durability-helper")
    assert expected in done.stderr, done.stderr
    assert "error:" not in done.stderr and "usage:" not in done.stderr


def test_wait_seconds_accepts_a_fraction(helper: Helper, tmp_path: Path) -> None:
    # A number of seconds is still a number (0.5 waits half a second); nothing enrolled.
    result = helper("copy", "--wait", "0.5", tmp_path)
    assert result.code == 1
    assert "no disk is enrolled yet" in result.stderr


@pytest.mark.parametrize(("kind", "expected"), [
    ("snooze", "to jest link do odłożenia przypomnienia, a nie link potwierdzający: skopiuj z "
               "wiadomości link do potwierdzenia kopii"),
    ("unsubscribe", "to jest link do wyłączenia przypomnień, a nie link potwierdzający: "
                    "skopiuj z wiadomości link do potwierdzenia kopii"),
    ("delete", "to nie jest link potwierdzający: powinien zawierać /l/confirm/…"),
])
def test_link_of_another_kind_said_in_a_whole_polish_sentence(
    tmp_path: Path, kind: str, expected: str,
) -> None:
    done = _run("confirm", f"https://hosting.example/l/{kind}/token", tmp_path=tmp_path)
    assert done.returncode == 1
    assert done.stderr == f"durability-helper: {expected}\n"
    assert kind not in done.stderr.replace("/l/confirm/", "")


def test_link_kinds_in_english() -> None:
    with pytest.raises(HelperError, match=r"^this is the link that postpones the reminder, "):
        check_confirm_url("https://hosting.example/l/snooze/t")
    with pytest.raises(HelperError, match=r"^this is the link that turns the reminders off, "):
        check_confirm_url("https://hosting.example/l/unsubscribe/t")


def test_enroll_refusals_in_polish(polish: None, tmp_path: Path) -> None:
    folder = Folder(tmp_path / "helper")
    with pytest.raises(HelperError) as missing:
        run_enroll(str(tmp_path / "nope"), folder, _now())
    assert str(missing.value) == f"{tmp_path / 'nope'} nie jest folderem"
    with pytest.raises(HelperError) as plain:
        run_enroll(str(tmp_path), folder, _now())
    assert str(plain.value) == (
        f"w {tmp_path} nie jest podłączony żaden dysk: podaj folder, w którym widać zawartość "
        "dysku (na przykład /media/użytkownik/KOPIA)")
    with pytest.raises(HelperError) as root:
        run_enroll("/", folder, _now())
    assert str(root.value).startswith("/ nie jest dyskiem zewnętrznym (")
    assert not folder.path.exists()


@pytest.mark.parametrize(("command", "expected"), [
    ("", "polecenie podające hasło jest puste"),
    ("false", "polecenie podające hasło zakończyło się błędem (kod wyjścia 1)"),
    ("true", "polecenie podające hasło nie wypisało hasła"),
    ("'unclosed", "nie można odczytać polecenia podającego hasło: "),
    ("/nonexistent/pass", "polecenie podające hasło nie zadziałało: "),
])
def test_password_command_problems_in_polish(polish: None, command: str, expected: str) -> None:
    with pytest.raises(HelperError) as refused:
        check_password_command(command)
    assert str(refused.value).startswith(expected)


def _now() -> datetime:
    return datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _enrolled(password_command: str = "") -> Enrolled:
    record = DiskRecord(disk_id="d" * 32, fs_uuid="ABCD-1234", label="KOPIA",
                        enrolled_at="2026-12-01T12:00:00Z", repository="durability-backup",
                        password_command=password_command)
    return Enrolled(record, "/media/ola/KOPIA", "/media/ola/KOPIA/durability-backup",
                    "" if password_command else "/home/ola/.config/durability-helper/keys/d")


def test_recovery_text_in_polish(polish: None) -> None:
    text = recovery_text(_enrolled())
    assert text == (
        "Dodano dysk podłączony w /media/ola/KOPIA (nazwa: KOPIA).\n"
        "Hasło jest w pliku /home/ola/.config/durability-helper/keys/d. Zachowaj kopię tego "
        "pliku (albo samego\nhasła) poza tym komputerem, na przykład w menedżerze haseł: bez "
        "tego\nhasła nikt, nawet Twój dostawca usług, nie odczyta dysku.\n\n"
        "Aby odzyskać dane bez programu durability-helper (wystarczy sam restic):\n"
        "  restic -r /media/ola/KOPIA/durability-backup --password-file "
        "/home/ola/.config/durability-helper/keys/d snapshots\n"
        "  restic -r /media/ola/KOPIA/durability-backup --password-file "
        "/home/ola/.config/durability-helper/keys/d restore latest --target ~/odtworzone\n"
        "Następny krok: durability-helper copy ŚCIEŻKA...\n")
    command = recovery_text(_enrolled("pass show kopia"))
    assert ("Hasło podaje polecenie ustawione w --password-command; zadbaj, żeby nadal "
            "działało.") in command
    assert "--password-command 'pass show kopia'" in command


def test_recovery_text_in_english() -> None:
    text = recovery_text(_enrolled())
    assert text.startswith("Enrolled /media/ola/KOPIA (disk KOPIA).\nThe password is in ")
    assert "restore latest --target ~/restored\nNext: durability-helper copy FOLDER...\n" in text


MOUNTINFO = ("36 1 8:17 / /media/ola/KOPIA rw,relatime shared:1 - ext4 /dev/sdb1 rw\n")


def test_disk_passed_over_notes_in_polish(
    polish: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    proc = tmp_path / "proc" / "self"
    proc.mkdir(parents=True)
    (proc / "mountinfo").write_text(MOUNTINFO)
    marker = disks.Marker(disk_id="a" * 32, repository="durability-backup", enrolled_at="")
    monkeypatch.setattr(disks, "read_marker", lambda _mountpoint: marker)
    volume = {"uuid": ""}

    def describe(entry: disks.MountEntry, **_kw: object) -> disks.Volume:
        return disks.Volume(entry.mountpoint, entry.source, entry.device, volume["uuid"], "",
                            "ext4", "usb", True, False, entry.mount_id)

    monkeypatch.setattr(disks, "describe", describe)
    _present, notes = disks.find_enrolled([("a" * 32, "ABCD-1234")], str(tmp_path / "proc"))
    assert notes == [
        "nie można odczytać identyfikatora UUID systemu plików na /dev/sdb1 w /media/ola/KOPIA, "
        "więc ten dysk zostaje pominięty (uruchom program jako root albo w systemie, w którym "
        "działa udev)"]
    volume["uuid"] = "FFFF-0000"
    _present, notes = disks.find_enrolled([("a" * 32, "ABCD-1234")], str(tmp_path / "proc"))
    assert notes == [
        "w /media/ola/KOPIA jest znacznik dodanego dysku, ale system plików ma UUID FFFF-0000 "
        "zamiast ABCD-1234, więc ten dysk zostaje pominięty (może to kopia dysku?)"]


def test_damaged_marker_warning_in_polish(
    polish: None, tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    (tmp_path / disks.MARKER_NAME).write_text("{not json")
    with caplog.at_level("WARNING", logger="durability.helper.disks"):
        assert disks.read_marker(str(tmp_path)) is None
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == [
        f"plik znacznika {tmp_path / disks.MARKER_NAME} jest uszkodzony lub nie można go "
        "odczytać, więc ten dysk zostaje pominięty"]


@pytest.mark.root
def test_enroll_on_a_real_disk_in_polish(
    helper: Helper, loop_disk: Callable[..., LoopDisk], monkeypatch: pytest.MonkeyPatch,
) -> None:
    disk = loop_disk(label="KOPIA")
    monkeypatch.setenv("LANG", "pl_PL.UTF-8")
    done = helper("enroll", disk.mountpoint)
    assert done.code == 0, done.stderr
    assert done.stdout.startswith(f"Dodano dysk podłączony w {disk.mountpoint} (nazwa: KOPIA).\n")
    assert "Aby odzyskać dane bez programu durability-helper" in done.stdout
    assert done.stdout.endswith("Następny krok: durability-helper copy ŚCIEŻKA...\n\n")
    again = helper("enroll", disk.mountpoint)
    assert again.code == 1
    assert again.stderr == (f"durability-helper: dysk podłączony w {disk.mountpoint} jest już "
                            "dodany jako KOPIA\n")


def _catalog_messages() -> list[tuple[str | tuple[str, str], str | tuple[str, ...]]]:
    from babel.messages.pofile import read_po

    with PO.open("rb") as stream:
        catalog = read_po(stream)
    found: list[tuple[str | tuple[str, str], str | tuple[str, ...]]] = []
    for message in catalog:
        if not message.id:
            continue
        singular = message.id if isinstance(message.id, str) else message.id[0]
        key: str | tuple[str, str] = (message.context, singular) if message.context else singular
        found.append((key, message.string if isinstance(message.string, str)
                      else tuple(message.string)))
    return found


def test_no_message_falls_back_to_english(polish: None) -> None:
    """Every catalog entry reads differently in Polish (but for a few that are the same
    in both) and the shipped .mo gives that Polish at run time."""
    same = []
    for key, translation in _catalog_messages():
        if isinstance(key, tuple):
            shown = i18n.pgettext(key[0], key[1])
            english = key[1]
        else:
            english = key
            shown = i18n._(key) if isinstance(translation, str) else i18n.ngettext(key, key, 1)
        expected = translation if isinstance(translation, str) else translation[0]
        assert shown == expected, key
        if shown == english and key not in SAME_IN_POLISH:
            same.append(key)
    assert same == [], "still English in Polish"


def test_gettext_finds_the_catalog_for_polish() -> None:
    found = gettext.find(i18n.DOMAIN, str(i18n.LOCALE_DIR), ["pl"])
    assert found is not None and found.endswith("durability-helper.mo")


# Exceptions whose text the customer reads: their message must come from the catalog.
CUSTOMER_ERRORS = {"HelperError", "VerifyError"}


def test_customer_messages_go_through_the_catalog() -> None:
    """No HelperError is raised with a bare string, and no note or warning is written in
    plain English: they must be `_(...)` (or a function returning a translated text)."""
    offenders = []
    for path in sorted(HELPER_SOURCE.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            func = node.func
            name = func.id if isinstance(func, ast.Name) else (
                func.attr if isinstance(func, ast.Attribute) else "")
            first = node.args[0]
            literal = isinstance(first, ast.JoinedStr) or (
                isinstance(first, ast.Constant) and isinstance(first.value, str))
            if name in CUSTOMER_ERRORS and literal:
                offenders.append(f"{path.name}:{node.lineno}")
            if name == "append" and isinstance(func, ast.Attribute) and \
                    isinstance(func.value, ast.Name) and func.value.id == "notes" and literal:
                offenders.append(f"{path.name}:{node.lineno}")
            if name in ("warning", "error") and isinstance(func, ast.Attribute) and \
                    isinstance(func.value, ast.Name) and func.value.id == "log" and \
                    not (isinstance(first, ast.Constant) and first.value == "%s"):
                offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == []
