"""`smtp.from = "Name <addr>"`: validated in config, sent right, and clean for SpamAssassin."""

from __future__ import annotations

import email
import email.policy
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from durability.remind.addresses import bare_problem, parse_mailbox, problem
from tests.remind.conftest import MailServer

NOW = "2026-11-25T10:00:00Z"


@pytest.mark.parametrize(("text", "name", "address"), [
    ("kopie@hosting.example", "", "kopie@hosting.example"),
    ("Kopie <kopie@hosting.example>", "Kopie", "kopie@hosting.example"),
    ("Hosting Żółw <kopie@hosting.example>", "Hosting Żółw", "kopie@hosting.example"),
    ('"Hosting, kopie" <kopie@hosting.example>', "Hosting, kopie", "kopie@hosting.example"),
    ("backups@localhost", "", "backups@localhost"),
])
def test_parse_mailbox_accepts(text: str, name: str, address: str) -> None:
    mailbox = parse_mailbox(text)
    assert (mailbox.name, mailbox.address) == (name, address)


@pytest.mark.parametrize(("text", "reason"), [
    ("Name <addr>", "has no domain"),
    ("Example Hosting", "has no domain"),
    ("a@example.com, b@example.com", "expected one address, found 2"),
    ("<a@example.com>>", "not a valid address"),
    ("x@", "not a mail address"),
    ("a@example.com\r\nBcc: x@example.com", "line break"),
    ("", "an empty address"),
    ("a@intranet", "has no dot"),
])
def test_parse_mailbox_refuses_with_reason(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=re.escape(reason)):
        parse_mailbox(text)
    assert reason in (problem(text) or "")


def test_bare_address_setting_refuses_a_name() -> None:
    assert bare_problem("wypisz@hosting.example") is None
    assert "without a name" in (bare_problem("Wypisz <wypisz@hosting.example>") or "")


def test_config_validate_names_each_bad_address(
    cli: Any, write_config: Callable[[str], Path],
) -> None:
    config = write_config('[smtp]\nfrom = "Name <addr>"\nreply_to = "a@x.example, b@x.example"\n'
                          '[remind]\nunsubscribe_mailto = "W <w@x.example>"\n')
    result = cli("config", "validate", "--config", config)
    assert result.code == 3
    assert "3 problems" in result.stderr
    assert "At 'smtp.from': 'Name <addr>' has no domain" in result.stderr
    assert "At 'smtp.reply_to': expected one address, found 2" in result.stderr
    assert "At 'remind.unsubscribe_mailto': give the bare address here" in result.stderr


def test_config_validate_accepts_name_and_address(
    cli: Any, write_config: Callable[[str], Path],
) -> None:
    config = write_config('[smtp]\nfrom = "Hosting Żółw <kopie@hosting.example>"\n')
    result = cli("config", "validate", "--config", config)
    assert result.code == 0, result.stderr


def _named_config(remind_config: Callable[..., Path], server: MailServer | None) -> Path:
    path = remind_config(server, extra='panel_url = "https://panel.hosting.example"\n'
                                       'helper_url = "https://hosting.example/helper"\n')
    text = path.read_text(encoding="utf-8").replace(
        'from = "kopie@hosting.example"', 'from = "Kopie Żółwia <kopie@hosting.example>"')
    path.write_text(text, encoding="utf-8")
    return path


def _import(cli: Any, config: Path, csv: Path) -> None:
    result = cli("--config", config, "customers", "--now", "2026-11-25T09:00:00Z", "import", csv)
    assert result.code == 0, result.stderr


def test_named_from_sent_through_smtp_reads_back_clean(
    cli: Any, mail_server: Callable[..., MailServer], remind_config: Callable[..., Path],
    customers_csv: Callable[..., Path],
) -> None:
    server = mail_server()
    config = _named_config(remind_config, server)
    _import(cli, config, customers_csv(["c-1,jan@example.com,Jan Nowak,pl,,"]))
    result = cli("--config", config, "remind", "--now", NOW)
    assert result.code == 0, result.stdout + result.stderr
    assert [r.mail_from for r in server.handler.received] == ["kopie@hosting.example"]
    raw = server.handler.received[0].data
    assert b">>" not in raw
    message = email.message_from_bytes(raw, policy=email.policy.default)
    sender = message["From"]
    assert not sender.defects
    assert [(a.display_name, a.addr_spec) for a in sender.addresses] == [
        ("Kopie Żółwia", "kopie@hosting.example")]
    assert not message["Message-ID"].defects
    assert re.fullmatch(r"<remind\.[0-9a-f]{32}@hosting\.example>", str(message["Message-ID"]))


def _spamassassin_rules(eml: Path, home: Path) -> list[str]:
    """Return the names of the rules SpamAssassin (local tests only) finds in a message."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "LANG": "C"}
    done = subprocess.run(
        ["spamassassin", "-t", "-L", "-p", str(home / "user_prefs")],
        input=eml.read_bytes(), capture_output=True, env=env, timeout=120, check=False,
    )
    report = done.stdout.decode("utf-8", "replace")
    assert "Content analysis details" in report, done.stderr.decode("utf-8", "replace")
    table = report.split("Content analysis details", 1)[1]
    return re.findall(r"^\s*-?\d+(?:\.\d+)?\s+([A-Z][A-Z0-9_]+)\s", table, re.MULTILINE)


BAD_RULES = re.compile(r"^(INVALID_MSGID|MISSING_\w+|MIME_HTML_ONLY\w*|HTML_MIME_NO_HTML_TAG|"
                       r"FROM_EXCESS_BASE64|INVALID_DATE|MPART_ALT_DIFF\w*|HTML_SHORT_LINK\w*|"
                       r"\w*FORGED\w*|TVD_\w+|URI_PHISH|HTML_IMAGE_ONLY\w*)$")


@pytest.mark.slow
def test_spamassassin_finds_no_header_or_html_only_rule(
    cli: Any, remind_config: Callable[..., Path], customers_csv: Callable[..., Path],
    tmp_path: Path,
) -> None:
    if shutil.which("spamassassin") is None:
        pytest.skip("SpamAssassin is not installed (Debian package spamassassin)")
    config = _named_config(remind_config, None)
    _import(cli, config, customers_csv(["c-1,jan@example.com,Jan Nowak,pl,,",
                                        "c-2,ann@example.com,Ann Smith,en,,2026-09-01"]))
    folder = tmp_path / "eml"
    result = cli("--config", config, "remind", "--dry-run", "--eml-dir", folder, "--now", NOW)
    assert result.code == 0, result.stderr
    files = sorted(folder.glob("*.eml"))
    assert len(files) == 2
    home = tmp_path / "sa-home"
    home.mkdir()
    for eml in files:
        rules = _spamassassin_rules(eml, home)
        assert "HTML_MESSAGE" in rules  # the HTML part is seen, next to the text part
        assert [rule for rule in rules if BAD_RULES.match(rule)] == [], (eml.name, rules)
    # The same check catches the broken Message-ID this address once produced.
    broken = tmp_path / "broken.eml"
    text = files[0].read_bytes()
    broken.write_bytes(re.sub(rb"Message-ID: <([^>]+)>", rb"Message-ID: <\1>>", text, count=1))
    assert "INVALID_MSGID" in _spamassassin_rules(broken, home)


def test_dry_run_prints_a_readable_preview(
    cli: Any, mail_server: Callable[..., MailServer], remind_config: Callable[..., Path],
    customers_csv: Callable[..., Path],
) -> None:
    server = mail_server()
    config = _named_config(remind_config, server)
    _import(cli, config, customers_csv(["c-1,jan@example.com,Łukasz Żółć,pl,,",
                                        "c-2,ann@example.com,Ann Smith,en,,"]))
    result = cli("--config", config, "remind", "--dry-run", "--now", NOW)
    assert result.code == 0, result.stderr
    out = result.stdout
    assert "Content-Transfer-Encoding" not in out and "=C5=" not in out and "=?utf-8?" not in out
    assert "To:       Łukasz Żółć <jan@example.com>" in out
    assert "Language: pl" in out and "Language: en" in out
    assert "Step:     1 of at most 6" in out
    assert "Subject:  Hosting Żółw: przypomnienie o własnej kopii zapasowej" in out
    assert "Piszemy w sprawie Twojego konta c-1" in out
    assert "This is Hosting Żółw writing about your hosting account c-2." in out
    assert "2 of 2 due reminders rendered, nothing sent" in result.stderr
    assert server.recipients() == []


def test_dry_run_eml_files_parse_back(
    cli: Any, remind_config: Callable[..., Path], customers_csv: Callable[..., Path],
    tmp_path: Path,
) -> None:
    config = _named_config(remind_config, None)
    _import(cli, config, customers_csv(["c-1,jan@example.com,Jan,pl,,"]))
    folder = tmp_path / "eml"
    result = cli("--config", config, "remind", "--dry-run", "--eml-dir", folder, "--now", NOW)
    assert result.code == 0, result.stderr
    (eml,) = folder.glob("*.eml")
    assert f"c-1 (pl, step 1): {eml}" in result.stdout
    message = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    assert message["From"].addresses[0].display_name == "Kopie Żółwia"
