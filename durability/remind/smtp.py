"""The one seam to the mail server (smtplib).

A message is handed over in three steps so that the caller knows exactly what the
server may have: MAIL FROM and RCPT TO (a refusal there means the server has nothing),
then DATA. Only when the connection breaks after the message body was sent and before
the server answered is the outcome uncertain.
"""

from __future__ import annotations

import logging
import re
import smtplib
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message

from durability.config.remind import SmtpSettings
from durability.errors import DurabilityError

log = logging.getLogger(__name__)

# Outcomes of one hand-over.
SENT, REFUSED, TEMPORARY, UNCERTAIN = "sent", "refused", "temporary", "uncertain"


class SmtpUnavailable(DurabilityError):
    """The mail server cannot be reached or will not take mail from us (login, TLS)."""


@dataclass(frozen=True)
class Outcome:
    """What the server answered to one message."""

    kind: str
    code: int | None
    answer: str

    @property
    def connection_lost(self) -> bool:
        """Return True when the session is gone and must be reopened."""
        return self.code is None


def read_password(path: str | None) -> str | None:
    """Return the SMTP password from `smtp.password_file`, or None when unset.

    Raise DurabilityError naming the file (never its content) if it cannot be read.
    """
    from durability.secrets import read_secret_text

    if not path:
        return None
    return read_secret_text(path, "smtp.password_file")


class SmtpSession:
    """One connection to the mail server, opened with `open()` and reopened as needed."""

    def __init__(self, settings: SmtpSettings, password: str | None) -> None:
        self.settings = settings
        self._password = password
        self._conn: smtplib.SMTP | None = None

    def _tls_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.settings.ca_file)

    def open(self) -> None:
        """Connect, secure and log in. Raise SmtpUnavailable with the reason."""
        settings = self.settings
        where = f"{settings.host}:{settings.port}"
        try:
            conn: smtplib.SMTP
            if settings.security == "tls":
                conn = smtplib.SMTP_SSL(settings.host, settings.port, timeout=settings.timeout,
                                        context=self._tls_context())
            else:
                conn = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
            conn.ehlo()
            if settings.security == "starttls":
                if not conn.has_extn("starttls"):
                    conn.close()
                    raise SmtpUnavailable(f"SMTP {where}: the server does not offer STARTTLS")
                conn.starttls(context=self._tls_context())
                conn.ehlo()
            if settings.username:
                conn.login(settings.username, self._password or "")
        except smtplib.SMTPAuthenticationError as error:
            raise SmtpUnavailable(
                f"SMTP {where}: login as {settings.username!r} refused ({error.smtp_code})"
            ) from error
        except smtplib.SMTPNotSupportedError as error:
            raise SmtpUnavailable(f"SMTP {where}: {error}") from error
        except (smtplib.SMTPException, OSError, ssl.SSLError) as error:
            raise SmtpUnavailable(f"SMTP {where}: cannot connect: {_reason(error)}") from error
        self._conn = conn

    def send(
        self, message: Message, sender: str, recipient: str,
        before_body: Callable[[], None] = lambda: None,
    ) -> Outcome:
        """Hand one message for one recipient to the server and return its answer.

        `before_body` runs when the server is ready for the body, just before it is sent
        (the point after which the server may have the message); if it raises, the
        session is dropped without sending the body and the error propagates.
        Never raises for an answer of the server: a refusal is an Outcome. A lost
        connection before the body is TEMPORARY (the server has nothing), after it
        UNCERTAIN.
        """
        if self._conn is None:
            return Outcome(TEMPORARY, None, "not connected")
        conn = self._conn
        try:
            code, answer = conn.mail(sender)
            if code != 250:
                self._reset()
                return _refusal(code, answer, "sender")
            code, answer = conn.rcpt(recipient)
            if code not in (250, 251):
                self._reset()
                return _refusal(code, answer, "recipient")
            conn.putcmd("data")
            code, answer = conn.getreply()
            if code != 354:
                self._reset()
                return _refusal(code, answer, "data")
        except (smtplib.SMTPException, OSError) as error:
            self._drop()
            return Outcome(TEMPORARY, None, f"connection lost before the message: "
                                            f"{_reason(error)}")
        payload = _dot_stuff(message.as_bytes())
        try:
            before_body()
        except BaseException:
            self._drop()  # the server discards a message whose body never ended
            raise
        try:
            conn.send(payload + b".\r\n")
            code, answer = conn.getreply()
        except (smtplib.SMTPException, OSError) as error:
            self._drop()
            return Outcome(UNCERTAIN, None, f"connection lost after the message was sent: "
                                            f"{_reason(error)}")
        text = answer.decode("utf-8", "replace")
        if code == 250:
            return Outcome(SENT, code, text)
        return Outcome(REFUSED if code >= 500 else TEMPORARY, code, text)

    def _reset(self) -> None:
        try:
            if self._conn is not None:
                self._conn.rset()
        except (smtplib.SMTPException, OSError):
            self._drop()

    def _drop(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None

    @property
    def connected(self) -> bool:
        """Return True while a session is open."""
        return self._conn is not None

    def close(self) -> None:
        """Say QUIT and close; errors on the way out are ignored."""
        if self._conn is not None:
            try:
                self._conn.quit()
            except (smtplib.SMTPException, OSError):
                pass
            finally:
                self._drop()


def _refusal(code: int, answer: bytes, stage: str) -> Outcome:
    text = answer.decode("utf-8", "replace")
    kind = REFUSED if 500 <= code < 600 and stage == "recipient" else TEMPORARY
    if 500 <= code < 600 and stage != "recipient":
        # A refused sender or message body is our problem, not the customer's address:
        # retry next run rather than suppress the customer.
        kind = TEMPORARY
    return Outcome(kind, code, f"{stage}: {code} {text}")


def _dot_stuff(data: bytes) -> bytes:
    data = re.sub(rb"(?:\r\n|\n|\r(?!\n))", b"\r\n", data)
    data = re.sub(rb"(?m)^\.", b"..", data)
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data


def _reason(error: BaseException) -> str:
    if isinstance(error, socket.timeout | TimeoutError):
        return "timed out"
    if isinstance(error, smtplib.SMTPResponseException):
        detail = error.smtp_error
        if isinstance(detail, bytes):
            detail = detail.decode("utf-8", "replace")
        return f"{error.smtp_code} {detail}"
    text = str(error) or type(error).__name__
    return text
