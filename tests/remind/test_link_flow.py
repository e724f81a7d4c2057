"""Links taken from real reminder emails stop (or pause) the reminders."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from werkzeug.test import Client

from durability.config import load_config
from durability.remind.customers import parse_copy_time
from durability.state.store import open_store
from durability.web.app import make_app
from tests.remind.conftest import MailServer

IMPORTED = "2026-11-25T09:00:00Z"
NOW = "2026-11-25T10:00:00Z"


def _client(config_path: Path, now: str) -> Client:
    config = load_config(str(config_path))
    moment = parse_copy_time(now)
    return Client(make_app(config, lambda: open_store(config.state.path, config.state.url),
                           clock=lambda: moment))


def test_one_click_from_list_unsubscribe_header_stops_reminders(
    cli: Any, mail_server: Callable[..., MailServer], remind_config: Callable[..., Path],
    customers_csv: Callable[..., Path],
) -> None:
    server = mail_server()
    config = remind_config(server)
    csv = customers_csv(["c-1,a@example.com,A,en,,", "c-2,b@example.com,B,pl,,"])
    assert cli("--config", config, "customers", "--now", IMPORTED, "import", csv).code == 0
    assert "2 sent" in cli("--config", config, "remind", "--now", NOW).stdout
    message = next(m for m in server.messages if m["To"].addresses[0].addr_spec ==
                   "a@example.com")
    https = re.search(r"<(https://[^>]+)>", str(message["List-Unsubscribe"]))
    assert https is not None
    path = https.group(1).removeprefix("https://links.hosting.example")
    response = _client(config, "2026-11-25T11:00:00Z").post(
        path, data="List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded")
    assert response.status_code == 200
    later = cli("--config", config, "remind", "--now", "2026-12-02T10:00:00Z")
    assert "1 due, 1 sent" in later.stdout
    assert server.recipients().count("a@example.com") == 1
    assert server.recipients().count("b@example.com") == 2


def test_snooze_from_email_pauses_until_its_end(
    cli: Any, mail_server: Callable[..., MailServer], remind_config: Callable[..., Path],
    customers_csv: Callable[..., Path],
) -> None:
    server = mail_server()
    config = remind_config(server)
    csv = customers_csv(["c-1,a@example.com,A,pl,,"])
    assert cli("--config", config, "customers", "--now", IMPORTED, "import", csv).code == 0
    assert "1 sent" in cli("--config", config, "remind", "--now", NOW).stdout
    text = server.messages[0].get_body(("plain",))
    assert text is not None
    snooze = re.search(r"https://links\.hosting\.example(/l/snooze/\S+)", text.get_content())
    assert snooze is not None
    response = _client(config, "2026-11-25T12:00:00Z").post(snooze.group(1),
                                                            data={"days": "30"})
    assert response.status_code == 200
    for quiet in ("2026-12-02T10:00:00Z", "2026-12-24T10:00:00Z"):
        assert "0 due" in cli("--config", config, "remind", "--now", quiet).stdout
    back = cli("--config", config, "remind", "--now", "2026-12-25T12:00:01Z")
    assert "1 due, 1 sent" in back.stdout
    assert server.messages[1]["Subject"] == \
        "Hosting Żółw: przypomnienie o własnej kopii zapasowej"
