"""Real mail servers (aiosmtpd on loopback) and reminder configs for the reminder tests."""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

CSV_HEADER = "id,email,name,language,interval_days,last_copy_at\n"


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Received:
    """One message as the server got it."""

    mail_from: str
    rcpt_tos: list[str]
    data: bytes

    def parsed(self) -> EmailMessage:
        """Return the message parsed with the modern email policy."""
        message = email.message_from_bytes(self.data, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        return message


@dataclass
class Handler:
    """An aiosmtpd handler that records, refuses, defers or stalls on request."""

    refuse: set[str] = field(default_factory=set)
    tempfail: dict[str, int] = field(default_factory=dict)
    stall_rcpt_at: int | None = None
    stall_data_at: int | None = None
    received: list[Received] = field(default_factory=list)
    rcpt_count: int = 0
    data_count: int = 0
    down_after: int | None = None
    controller: Any = None
    reached: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    async def _stall(self) -> None:
        self.reached.set()
        while not self.release.is_set():
            await asyncio.sleep(0.05)

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str,
                          mail_options: list[str]) -> str:
        if self.down_after is not None and len(self.received) >= self.down_after:
            # The server goes down mid-batch: stop listening, drop this connection.
            self.controller.server.close()
            server.transport.close()
            return "421 4.3.2 going down"
        envelope.mail_from = address
        return "250 OK"

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        self.rcpt_count += 1
        if address in self.refuse:
            return "550 5.1.1 mailbox unavailable"
        if self.tempfail.get(address, 0) > 0:
            self.tempfail[address] -= 1
            return "451 4.3.0 try again later"
        if self.stall_rcpt_at == self.rcpt_count:
            await self._stall()
            return "421 4.3.0 going away"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.data_count += 1
        self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos),
                                      bytes(envelope.original_content or envelope.content)))
        if self.stall_data_at == self.data_count:
            # The message is with the server, but the client never hears so.
            await self._stall()
        return "250 2.0.0 queued"


@dataclass
class MailServer:
    """A running aiosmtpd server and how to reach it."""

    handler: Handler
    port: int
    security: str
    controller: Any

    @property
    def messages(self) -> list[EmailMessage]:
        """Return every received message, parsed."""
        return [r.parsed() for r in self.handler.received]

    def recipients(self) -> list[str]:
        """Return the recipient of every received message, in order."""
        return [to for r in self.handler.received for to in r.rcpt_tos]


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Return (certificate, key) of a self-signed test certificate for 127.0.0.1."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    return cert, key


@pytest.fixture
def mail_server(tls_files: tuple[Path, Path]) -> Iterator[Callable[..., MailServer]]:
    """Return a function starting an aiosmtpd server; every server stops at teardown.

    start(security="none"|"starttls"|"tls", login=("user", "password") or None, **handler)
    """
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    started: list[Any] = []

    def start(security: str = "none", login: tuple[str, str] | None = None,
              **options: Any) -> MailServer:
        handler = Handler(**options)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(tls_files[0]), str(tls_files[1]))
        kwargs: dict[str, Any] = {}
        server_kwargs: dict[str, Any] = {"server_hostname": "mx.test"}
        if security == "starttls":
            server_kwargs.update(tls_context=context, require_starttls=True)
        if login is not None:

            def authenticate(server: Any, session: Any, envelope: Any, mechanism: str,
                             auth_data: Any) -> AuthResult:
                ok = (isinstance(auth_data, LoginPassword)
                      and auth_data.login.decode() == login[0]
                      and auth_data.password.decode() == login[1])
                return AuthResult(success=ok, handled=False)

            server_kwargs.update(authenticator=authenticate, auth_required=True,
                                 auth_require_tls=security == "starttls")
        if security == "tls":
            kwargs["ssl_context"] = context
        port = free_port()
        controller = Controller(handler, hostname="127.0.0.1", port=port,
                                **kwargs, **server_kwargs)
        handler.controller = controller
        controller.start()
        started.append(controller)
        return MailServer(handler, port, security, controller)

    yield start
    for controller in started:
        controller.handler.release.set()
        if controller._thread is not None:  # a test may have stopped it already
            controller.stop()


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    """Return a file holding a link-signing secret."""
    path = tmp_path / "web-secret"
    path.write_text("test-secret-0123456789abcdef0123456789\n", encoding="utf-8")
    path.chmod(0o600)
    return path


@pytest.fixture
def remind_config(
    write_config: Callable[[str], Path], secret_file: Path, tls_files: tuple[Path, Path],
    tmp_path: Path,
) -> Callable[..., Path]:
    """Return a function writing a reminder config for a mail server; returns its path."""

    def write(server: MailServer | None = None, extra: str = "", max_per_hour: int = 1000,
              login: tuple[str, str] | None = None, port: int | None = None) -> Path:
        security = server.security if server else "none"
        smtp_port = port if port is not None else (server.port if server else free_port())
        lines = [
            "[smtp]", 'host = "127.0.0.1"', f"port = {smtp_port}",
            f'security = "{security}"', 'from = "kopie@hosting.example"',
            'reply_to = "pomoc@hosting.example"', f"max_per_hour = {max_per_hour}",
            'timeout = "5s"', 'retry_delay = "0s"', f'ca_file = "{tls_files[0]}"',
        ]
        if login:
            password = tmp_path / "smtp-password"
            password.write_text(login[1] + "\n", encoding="utf-8")
            lines += [f'username = "{login[0]}"', f'password_file = "{password}"']
        lines += ["", "[web]", 'base_url = "https://links.hosting.example"',
                  f'secret_file = "{secret_file}"', "",
                  "[remind]", 'provider_name = "Hosting Żółw"', 'service_name = "hosting"',
                  'unsubscribe_mailto = "wypisz@hosting.example"']
        return write_config("\n".join(lines) + "\n" + extra)

    return write


@pytest.fixture
def customers_csv(tmp_path: Path) -> Callable[..., Path]:
    """Return a function writing an import CSV from rows (strings) and its path."""

    def write(rows: list[str], name: str = "customers.csv", header: str = CSV_HEADER) -> Path:
        path = tmp_path / name
        path.write_text(header + "".join(row + "\n" for row in rows), encoding="utf-8")
        return path

    return write
