"""`durability remind` against a real SMTP server (aiosmtpd on loopback)."""

from __future__ import annotations

import email.utils
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.remind.conftest import MailServer

IMPORTED = "2026-11-25T09:00:00Z"
NOW = "2026-11-25T10:00:00Z"


def _import(cli: Any, config: Path, csv: Path) -> None:
    result = cli("--config", config, "customers", "--now", IMPORTED, "import", csv)
    assert result.code == 0, result.stderr


def _show(cli: Any, config: Path, customer: str) -> dict[str, Any]:
    result = cli("--config", config, "customers", "--now", NOW, "show", customer,
                 "--format", "json")
    assert result.code == 0, result.stderr
    return dict(json.loads(result.stdout)["customer"])


# aiosmtpd cannot tell that an implicit-TLS session is encrypted, hence its warning.
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
@pytest.mark.parametrize("security", ["none", "starttls", "tls"])
def test_remind_each_security_delivers_checked_headers(
    cli: Any, mail_server: Callable[..., MailServer], remind_config: Callable[..., Path],
    customers_csv: Callable[..., Path], security: str,
) -> None:
    login = ("mailer", "s3cret-pass") if security != "none" else None
    server = mail_server(security, login=login)
    config = remind_config(server, login=login)
    _import(cli, config, customers_csv([
        "c-1,jan@example.com,Łukasz Żółć,pl,,2026-10-20",
        "c-2,ann@example.com,Ann Smith,en,30,2026-10-01",
        "c-3,fresh@example.com,Fresh,en,30,2026-11-20",
    ]))
    result = cli("--config", config, "remind", "--now", NOW)
    assert result.code == 0, result.stdout + result.stderr
    assert "2 due, 2 sent" in result.stdout
    assert sorted(server.recipients()) == ["ann@example.com", "jan@example.com"]
    by_to = {m["To"].addresses[0].addr_spec: m for m in server.messages}
    polish = by_to["jan@example.com"]
    assert polish["Subject"] == "Hosting Żółw: przypomnienie o własnej kopii zapasowej"
    assert polish["To"].addresses[0].display_name == "Łukasz Żółć"
    assert polish["From"].addresses[0].display_name == "Hosting Żółw"
    assert polish["From"].addresses[0].addr_spec == "kopie@hosting.example"
    assert str(polish["Reply-To"]) == "pomoc@hosting.example"
    assert email.utils.parsedate_to_datetime(polish["Date"]).isoformat() == \
        "2026-11-25T10:00:00+00:00"
    assert polish["Message-ID"].startswith("<remind.")
    assert polish["Message-ID"].endswith("@hosting.example>")
    unsubscribe = str(polish["List-Unsubscribe"])
    assert unsubscribe.startswith("<https://links.hosting.example/l/unsubscribe/")
    assert "<mailto:wypisz@hosting.example?subject=unsubscribe%20" in unsubscribe
    assert "c-1" not in unsubscribe
    assert str(polish["List-Unsubscribe-Post"]) == "List-Unsubscribe=One-Click"
    assert polish.get_content_type() == "multipart/alternative"
    parts = list(polish.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert all(p.get_content_charset() == "utf-8" for p in parts)
    text = parts[0].get_content()
    assert text.startswith("Dzień dobry,") and "Łukasz" not in text
    assert "20 października 2026, czyli 36 dni temu" in " ".join(text.split())
    assert "https://links.hosting.example/l/confirm/" in text
    assert "durability-helper copy" in text
    html = parts[1].get_content()
    assert '<a href="https://links.hosting.example/l/snooze/' in html
    assert "<img" not in html  # no tracking pixels
    english = by_to["ann@example.com"]
    plain = english.get_body(("plain",))
    assert plain is not None
    assert "October 1, 2026, 55 days ago" in " ".join(plain.get_content().split())


def test_remind_rerun_sends_none(
    cli: Any, mail_server: Callable[..., MailServer], remind_config: Callable[..., Path],
    customers_csv: Callable[..., Path],
) -> None:
    server = mail_server()
    config = remind_config(server)
    # Every third customer has a recent copy (not due), every fifth a 60-day interval.
    rows = []
    for i in range(300):
        copy = "2026-11-10" if i % 3 == 0 else ("2026-10-10" if i % 3 == 1 else "")
        interval = "60" if i % 5 == 0 else ""
        rows.append(f"c-{i},user{i}@example.com,User {i},{'pl' if i % 2 else 'en'},"
                    f"{interval},{copy}")
    _import(cli, config, customers_csv(rows))
    due = {f"user{i}@example.com" for i in range(300)
           if i % 3 == 2 or (i % 3 == 1 and i % 5 != 0)}
    first = cli("--config", config, "remind", "--now", NOW)
    assert first.code == 0, first.stdout + first.stderr
    assert f"{len(due)} due, {len(due)} sent" in first.stdout
    again = cli("--config", config, "remind", "--now", "2026-11-25T12:00:00Z")
    assert again.code == 0
    assert "0 due, 0 sent" in again.stdout
    assert sorted(server.recipients()) == sorted(due)
    assert len({m["Message-ID"] for m in server.messages}) == len(due)


def test_remind_escalation_sends_next_step_after_gap(
    cli: Any, mail_server: Callable[..., MailServer], remind_config: Callable[..., Path],
    customers_csv: Callable[..., Path],
) -> None:
    server = mail_server()
    config = remind_config(server)
    _import(cli, config, customers_csv(["c-1,jan@example.com,Jan,pl,,2026-09-01"]))
    assert cli("--config", config, "remind", "--now", NOW).code == 0
    assert "0 sent" in cli("--config", config, "remind", "--now",
                           "2026-12-01T10:00:00Z").stdout
    later = cli("--config", config, "remind", "--now", "2026-12-02T10:00:00Z")
    assert "1 due, 1 sent" in later.stdout
    subjects = [m["Subject"] for m in server.messages]
    assert subjects[1] == "Hosting Żółw: przypomnienie nr 2 o własnej kopii zapasowej"
    assert server.messages[0]["Message-ID"] != server.messages[1]["Message-ID"]


def test_remind_refused_recipient_recorded_batch_continues(
    cli: Any, mail_server: Callable[..., MailServer], remind_config: Callable[..., Path],
    customers_csv: Callable[..., Path], tmp_path: Path,
) -> None:
    server = mail_server(refuse={"gone@example.com"})
    config = remind_config(server)
    csv = customers_csv([
        "c-1,a@example.com,A,en,,", "c-2,gone@example.com,B,en,,", "c-3,c@example.com,C,en,,",
    ])
    _import(cli, config, csv)
    result = cli("--config", config, "remind", "--now", NOW)
    assert result.code == 1
    assert "refused: c-2: recipient: 550" in result.stdout
    assert sorted(server.recipients()) == ["a@example.com", "c@example.com"]
    shown = _show(cli, config, "c-2")
    assert shown["refused"]["email"] == "gone@example.com"
    assert shown["state"].startswith("attention")
    # Suppressed while the address is the same...
    week = cli("--config", config, "remind", "--now", "2026-12-03T10:00:00Z")
    assert "attention: c-2" in week.stdout
    assert "gone@example.com" not in server.recipients()
    # ...and reminded again once it changes.
    customers_csv(["c-1,a@example.com,A,en,,", "c-2,new@example.com,B,en,,",
                   "c-3,c@example.com,C,en,,"], name="fixed.csv")
    _import(cli, config, tmp_path / "fixed.csv")
    fixed = cli("--config", config, "remind", "--now", "2026-12-03T11:00:00Z")
    assert fixed.code == 0, fixed.stdout
    assert server.recipients().count("new@example.com") == 1


def test_remind_temporary_failure_retried_then_sent(
    cli: Any, mail_server: Callable[..., MailServer], remind_config: Callable[..., Path],
    customers_csv: Callable[..., Path],
) -> None:
    server = mail_server(tempfail={"slow@example.com": 1, "later@example.com": 5})
    config = remind_config(server)
    _import(cli, config, customers_csv(["c-1,slow@example.com,A,en,,",
                                        "c-2,later@example.com,B,en,,"]))
    first = cli("--config", config, "remind", "--now", NOW)
    # slow: 451 once, then accepted within the run; later: still 451 after 2 retries.
    assert first.code == 1
    assert "failed: c-2" in first.stdout
    assert server.recipients() == ["slow@example.com"]
    second = cli("--config", config, "remind", "--now", "2026-11-25T11:00:00Z")
    assert second.code == 0, second.stdout
    assert server.recipients() == ["slow@example.com", "later@example.com"]


def test_remind_rate_limit_holds_across_runs(
    cli: Any, mail_server: Callable[..., MailServer], remind_config: Callable[..., Path],
    customers_csv: Callable[..., Path],
) -> None:
    server = mail_server()
    config = remind_config(server, max_per_hour=4)
    _import(cli, config, customers_csv([f"c-{i},u{i}@example.com,U,en,,"
                                        for i in range(10)]))
    first = cli("--config", config, "remind", "--now", NOW)
    assert first.code == 0
    assert "10 due, 4 sent, 6 held back" in first.stdout
    within = cli("--config", config, "remind", "--now", "2026-11-25T10:30:00Z")
    assert "6 due, 0 sent, 6 held back" in within.stdout
    after = cli("--config", config, "remind", "--now", "2026-11-25T11:00:01Z")
    assert "6 due, 4 sent, 2 held back" in after.stdout
    assert len(server.recipients()) == 8
    assert len(set(server.recipients())) == 8


def test_remind_smtp_unreachable_exits_3_sends_nothing(
    cli: Any, remind_config: Callable[..., Path], customers_csv: Callable[..., Path],
) -> None:
    config = remind_config(None)
    _import(cli, config, customers_csv(["c-1,a@example.com,A,en,,"]))
    result = cli("--config", config, "remind", "--now", NOW)
    assert result.code == 3
    assert "cannot connect" in result.stderr
    assert _show(cli, config, "c-1")["messages"] == []


def test_remind_wrong_login_exits_3_password_not_shown(
    cli: Any, mail_server: Callable[..., MailServer], remind_config: Callable[..., Path],
    customers_csv: Callable[..., Path],
) -> None:
    server = mail_server("starttls", login=("mailer", "right-password"))
    config = remind_config(server, login=("mailer", "wrong-password"))
    _import(cli, config, customers_csv(["c-1,a@example.com,A,en,,"]))
    result = cli("--config", config, "remind", "--now", NOW)
    assert result.code == 3
    assert "login as 'mailer' refused" in result.stderr
    assert "wrong-password" not in result.stderr + result.stdout
    assert server.recipients() == []


def test_remind_outside_sending_window_holds_all(
    cli: Any, mail_server: Callable[..., MailServer], remind_config: Callable[..., Path],
    customers_csv: Callable[..., Path],
) -> None:
    server = mail_server()
    config = remind_config(server, extra='sending_window = "09:00-17:00"\n'
                                          'timezone = "Europe/Warsaw"\n')
    _import(cli, config, customers_csv(["c-1,a@example.com,A,en,,"]))
    night = cli("--config", config, "remind", "--now", "2026-11-25T20:00:00Z")
    assert night.code == 0
    assert "outside the sending window" in night.stdout
    day = cli("--config", config, "remind", "--now", "2026-11-26T08:30:00Z")
    assert "1 sent" in day.stdout
    assert server.recipients() == ["a@example.com"]


def test_remind_dry_run_writes_eml_sends_nothing(
    cli: Any, mail_server: Callable[..., MailServer], remind_config: Callable[..., Path],
    customers_csv: Callable[..., Path], tmp_path: Path,
) -> None:
    server = mail_server()
    config = remind_config(server)
    _import(cli, config, customers_csv(["c-1,a@example.com,A,en,,", "c-2,b@example.com,B,pl,,"]))
    out = tmp_path / "eml"
    result = cli("--config", config, "remind", "--dry-run", "--eml-dir", out, "--now", NOW)
    assert result.code == 0, result.stderr
    files = sorted(out.glob("*.eml"))
    assert len(files) == 2
    assert b"List-Unsubscribe-Post: List-Unsubscribe=One-Click" in files[0].read_bytes()
    assert server.recipients() == []
    real = cli("--config", config, "remind", "--now", NOW)
    assert "2 sent" in real.stdout


def test_remind_smtp_down_mid_batch_no_duplicate_no_loss(
    cli: Any, mail_server: Callable[..., MailServer], remind_config: Callable[..., Path],
    customers_csv: Callable[..., Path],
) -> None:
    from aiosmtpd.controller import Controller

    server = mail_server(down_after=3)
    config = remind_config(server)
    _import(cli, config, customers_csv([f"c-{i},u{i}@example.com,U,en,," for i in range(8)]))
    broken = cli("--config", config, "remind", "--now", NOW)
    assert broken.code == 1, broken.stdout + broken.stderr
    assert "8 due, 3 sent" in broken.stdout
    assert "stopped: SMTP 127.0.0.1" in broken.stdout
    server.controller.stop()
    server.handler.down_after = None
    restarted = Controller(server.handler, hostname="127.0.0.1", port=server.port)
    restarted.start()
    try:
        again = cli("--config", config, "remind", "--now", "2026-11-25T10:30:00Z")
    finally:
        restarted.stop()
    assert again.code == 0, again.stdout
    assert "5 due, 5 sent" in again.stdout
    assert sorted(server.recipients()) == sorted(f"u{i}@example.com" for i in range(8))


def test_remind_without_link_secret_exits_3_sends_nothing(
    cli: Any, mail_server: Callable[..., MailServer], write_config: Callable[[str], Path],
    customers_csv: Callable[..., Path],
) -> None:
    server = mail_server()
    config = write_config(f'[smtp]\nport = {server.port}\nsecurity = "none"\n')
    _import(cli, config, customers_csv(["c-1,a@example.com,A,en,,"]))
    result = cli("--config", config, "remind", "--now", NOW)
    assert result.code == 3
    assert "At 'web.secret_file': required to sign customer links" in result.stderr
    assert server.recipients() == []
