"""`[smtp]` and `[remind]`: customer reminder emails."""

from __future__ import annotations

from dataclasses import dataclass

from durability.config.schema import setting


@dataclass(frozen=True)
class SmtpSettings:
    """The provider's outgoing mail server."""

    host: str = setting("127.0.0.1", help="SMTP server.")
    port: int = setting(25, minimum=1, maximum=65535, help="SMTP port (587 starttls, 465 tls).")
    security: str = setting(
        "starttls", choices=("starttls", "tls", "none"), help="Transport security."
    )
    username: str | None = setting(None, help="Login name, if the server wants one.")
    password_file: str | None = setting(None, help="File holding the SMTP password.")
    from_: str = setting(
        "backups@localhost", help="From address (the key is 'from' in the file)."
    )
    reply_to: str | None = setting(None, help="Reply-To address.")
    max_per_hour: int = setting(
        200, minimum=1, help="Messages handed to the server in any rolling 60 minutes."
    )
    timeout: float = setting(30.0, kind="duration", help="Network timeout.")
    ca_file: str | None = setting(None, help="CA bundle to verify the server certificate.")


@dataclass(frozen=True)
class RemindSettings:
    """Who writes, when, and how often."""

    enabled: bool = setting(True, help="Run reminders from `durability run`.")
    provider_name: str = setting("Example Hosting", help="Who is writing, in the emails.")
    service_name: str = setting("hosting", help="Which service the reminder is about.")
    interval_days: int = setting(30, minimum=1, help="Default days between own copies.")
    max_reminders: int = setting(6, minimum=1, help="Reminders per due period at most.")
    sending_window: str | None = setting(
        None, help="Send only between these local hours, 'HH:MM-HH:MM'.", example='"09:00-18:00"'
    )
    unsubscribe_mailto: str | None = setting(
        None, help="mailto address for List-Unsubscribe.", example='"unsubscribe@example.com"'
    )
    helper_url: str | None = setting(
        None, help="Where customers can read about durability-helper."
    )
