"""`[smtp]` and `[remind]`: customer reminder emails."""

from __future__ import annotations

from durability.config.schema import Settings, setting


class SmtpSettings(Settings):
    """The provider's outgoing mail server."""

    host: str = setting("127.0.0.1", help="SMTP server.")
    port: int = setting(25, minimum=1, maximum=65535, help="SMTP port (587 starttls, 465 tls).")
    security: str = setting(
        "starttls", choices=("starttls", "tls", "none"), help="Transport security."
    )
    username: str | None = setting(None, help="Login name, if the server wants one.")
    password_file: str | None = setting(None, help="File holding the SMTP password.")
    from_: str = setting(
        "backups@localhost",
        help="From address, 'addr@example.com' or 'Name <addr@example.com>' (the key is "
        "'from' in the file; without a name, remind.provider_name is shown).",
        check=lambda text: _address_problem(text),
    )
    reply_to: str | None = setting(None, help="Reply-To address.",
                                   check=lambda text: _address_problem(text))
    max_per_hour: int = setting(
        200, minimum=1, help="Messages handed to the server in any rolling 60 minutes."
    )
    timeout: float = setting(30.0, kind="duration", help="Network timeout.")
    ca_file: str | None = setting(None, help="CA bundle to verify the server certificate.")
    retries: int = setting(
        2, minimum=0, maximum=10,
        help="Further attempts within a run after a temporary (4xx) answer; after that "
        "the message waits for the next run.",
    )
    retry_delay: float = setting(5.0, kind="duration", help="Wait before each retry.")


class RemindSettings(Settings):
    """Who writes, when, and how often."""

    enabled: bool = setting(True, help="Run reminders from `durability run`.")
    provider_name: str = setting("Example Hosting", help="Who is writing, in the emails.")
    service_name: str = setting("hosting", help="Which service the reminder is about.")
    interval_days: int = setting(30, minimum=1, help="Default days between own copies.")
    max_reminders: int = setting(6, minimum=1, help="Reminders per due period at most.")
    gaps_days: tuple[int, ...] = setting(
        factory=lambda: (7, 14, 30),
        help="Days after a reminder before the next one; the last gap repeats.",
        check=lambda gaps: None if gaps and all(g >= 1 for g in gaps)
        else "give at least one gap, each at least 1 day",
    )
    timezone: str | None = setting(
        None, help="Time zone of sending_window (default: the system's).",
        example='"Europe/Warsaw"', check=lambda name: _zone_problem(name),
    )
    sending_window: str | None = setting(
        None, help="Send only between these local hours, 'HH:MM-HH:MM'.",
        example='"09:00-18:00"', check=lambda text: _window_problem(text),
    )
    unsubscribe_mailto: str | None = setting(
        None, help="mailto address for List-Unsubscribe.", example='"unsubscribe@example.com"',
        check=lambda text: _bare_address_problem(text),
    )
    helper_url: str | None = setting(
        None, help="Where customers can read about durability-helper."
    )
    panel_url: str | None = setting(
        None, help="The customer panel's address, named in the emails' advice on telling a "
        "genuine reminder from a fake one.", example='"https://panel.example.com"',
    )
    contact: str | None = setting(
        None, help="How customers reach the provider (shown on link pages); default: the "
        "Reply-To, else the From address.", example='"pomoc@example.com, +48 22 123 45 67"',
    )


def parse_window(text: str) -> tuple[int, int]:
    """Given "HH:MM-HH:MM", return (start, end) in minutes after midnight.

    The window may wrap past midnight ("22:00-06:00"). Raise ValueError if unreadable.
    """
    try:
        start_text, end_text = text.split("-")
        start, end = (_minutes(part.strip()) for part in (start_text, end_text))
    except ValueError as error:
        raise ValueError(f"expected 'HH:MM-HH:MM', got {text!r}") from error
    if start == end:
        raise ValueError(f"an empty window: {text!r}")
    return start, end


def _minutes(text: str) -> int:
    hours, minutes = text.split(":")
    value = int(hours) * 60 + int(minutes)
    if not (0 <= int(hours) <= 24 and 0 <= int(minutes) < 60 and value <= 1440):
        raise ValueError(text)
    return value


def _window_problem(text: str | None) -> str | None:
    if text is None:
        return None
    try:
        parse_window(text)
    except ValueError as error:
        return str(error)
    return None


def _address_problem(text: str | None) -> str | None:
    from durability.remind.addresses import problem

    return problem(text)


def _bare_address_problem(text: str | None) -> str | None:
    from durability.remind.addresses import bare_problem

    return bare_problem(text)


def _zone_problem(name: str | None) -> str | None:
    if name is None:
        return None
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return f"unknown time zone {name!r}"
    return None
