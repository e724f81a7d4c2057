"""Receipts: the proof of one verified copy, kept locally and sent to the provider.

A receipt holds the time, the snapshot id, how many files and bytes, whether the copy
was verified, and a SHA-256 of the disk id: never a file name. Receipts for the
provider wait in `pending/` until `durability serve` has answered; an unreachable
provider only delays them, a refusal (tampered or expired link) drops them with a
message, since sending again cannot help.
"""

from __future__ import annotations

import hashlib
import json
import logging
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from durability.helper.folder import HelperError, write_private
from durability.helper.i18n import _

log = logging.getLogger(__name__)

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class Receipt:
    """One verified copy, as the provider receives it."""

    time: str
    snapshot_id: str
    files: int
    bytes: int
    verified: bool
    disk: str


@dataclass(frozen=True)
class SendOutcome:
    """What happened to one receipt sent to the provider.

    `kind` is "confirmed", "unreachable" (it waits for the next run), or "refused"
    (the provider said no: the receipt is dropped from the queue).
    """

    kind: str
    message: str
    customer: str = ""
    url: str = ""


def disk_hash(disk_id: str) -> str:
    """Given a disk id, return the hex SHA-256 that receipts carry instead of it."""
    return hashlib.sha256(disk_id.encode("utf-8")).hexdigest()


def receipt_body(receipt: Receipt) -> dict[str, Any]:
    """Return the JSON body POSTed to the confirm URL."""
    return {"receipt": asdict(receipt)}


def parse_receipt(raw: Any) -> Receipt:
    """Given a decoded receipt object, return it. Raise ValueError if it is not one."""
    if not isinstance(raw, dict):
        raise ValueError("not an object")
    try:
        return Receipt(
            time=str(raw["time"]),
            snapshot_id=str(raw["snapshot_id"]),
            files=int(raw["files"]),
            bytes=int(raw["bytes"]),
            verified=bool(raw["verified"]),
            disk=str(raw["disk"]),
        )
    except (KeyError, TypeError) as error:
        raise ValueError(f"missing or wrong field: {error}") from error


def check_confirm_url(url: str) -> str:
    """Given a confirm link from a reminder email, return it cleaned up.

    Raise HelperError if it is not an HTTPS link to `/l/confirm/TOKEN` (plain HTTP is
    accepted for a server on this machine only).
    """
    cleaned = url.strip().strip("<>\"'")
    parts = urllib.parse.urlsplit(cleaned)
    host = parts.hostname or ""
    if parts.scheme not in ("https", "http") or not host:
        raise HelperError(_("not a web link: {link} (copy the confirm link from your email)")
                          .format(link=repr(cleaned)))
    if parts.scheme == "http" and host not in LOOPBACK_HOSTS:
        raise HelperError(_("the confirm link must start with https:// (copy it from your "
                            "email)"))
    segments = [s for s in parts.path.split("/") if s]
    if len(segments) < 3 or segments[-3] != "l" or not segments[-1]:
        raise HelperError(_("this is not a confirm link: it should contain /l/confirm/…"))
    if segments[-2] != "confirm":
        raise HelperError(wrong_link_message(segments[-2]))
    return cleaned


def wrong_link_message(kind: str) -> str:
    """Return why a link of another kind than confirm cannot be used, a sentence per kind."""
    if kind == "snooze":
        return _("this is the link that postpones the reminder, not the confirm link: copy "
                 "the link for confirming the copy from your email")
    if kind == "unsubscribe":
        return _("this is the link that turns the reminders off, not the confirm link: copy "
                 "the link for confirming the copy from your email")
    return _("this is not a confirm link: it should contain /l/confirm/…")


def save_receipt(folder: Path, receipt: Receipt) -> Path:
    """Keep a receipt in the folder's `receipts/` and return its file."""
    stamp = receipt.time.replace(":", "").replace("-", "")
    path = folder / "receipts" / f"{stamp}-{receipt.snapshot_id[:12]}-{receipt.disk[:8]}.json"
    write_private(path, json.dumps(receipt_body(receipt), indent=2) + "\n")
    return path


def list_receipts(folder: Path) -> list[Receipt]:
    """Return the kept receipts, oldest first (damaged files are skipped with a warning)."""
    receipts = []
    for path in sorted((folder / "receipts").glob("*.json")):
        try:
            receipts.append(parse_receipt(json.loads(path.read_text("utf-8"))["receipt"]))
        except (OSError, ValueError, KeyError, TypeError) as error:
            log.warning("%s", _("the file {file} is damaged, so it is skipped").format(file=path))
            log.debug("%s: %s", path, error)
    return receipts


def queue_receipt(folder: Path, receipt: Receipt, url: str, now: float | None = None) -> Path:
    """Put a receipt in the queue for `url` and return its file (one per snapshot and disk).

    The time it was first queued is kept, so that a receipt that never gets through is
    given up after PENDING_DAYS instead of being retried for ever.
    """
    import time

    stamp = receipt.time.replace(":", "").replace("-", "")
    path = folder / "pending" / f"{stamp}-{receipt.snapshot_id[:12]}-{receipt.disk[:8]}.json"
    queued = _queued_at(path) or (time.time() if now is None else now)
    write_private(path, json.dumps({"url": url, "queued_at": queued, **receipt_body(receipt)},
                                   indent=2) + "\n")
    return path


# Confirm links expire after 60 days: a receipt still waiting after that cannot succeed.
PENDING_DAYS = 60


def _queued_at(path: Path) -> float | None:
    try:
        raw = json.loads(path.read_text("utf-8"))
        queued = raw.get("queued_at")
        return float(queued) if isinstance(queued, int | float) else path.stat().st_mtime
    except (OSError, ValueError, AttributeError):
        return None


def pending(folder: Path) -> list[tuple[Path, str, Receipt]]:
    """Return the queued receipts (file, url, receipt), oldest first."""
    found = []
    for path in sorted((folder / "pending").glob("*.json")):
        try:
            raw = json.loads(path.read_text("utf-8"))
            found.append((path, str(raw["url"]), parse_receipt(raw["receipt"])))
        except (OSError, ValueError, KeyError, TypeError) as error:
            log.warning("%s", _("the file {file} is damaged, so it is skipped").format(file=path))
            log.debug("%s: %s", path, error)
    return found


def send_receipt(url: str, receipt: Receipt, timeout: float = 15.0) -> SendOutcome:
    """POST one receipt to the confirm URL and return what the provider answered."""
    data = json.dumps(receipt_body(receipt)).encode("utf-8")
    request = urllib.request.Request(  # noqa: S310 - the scheme was checked
        url,
        data=data,
        method="POST",
        headers={"Content-Type": "application/json", "Accept": "application/json"},
    )
    host = urllib.parse.urlsplit(url).netloc
    later = _("the receipt will be sent next time the helper runs")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            answer = _json_or_empty(response.read())
    except urllib.error.HTTPError as error:
        answer = _json_or_empty(error.read())
        # The server's own words are English: each answer is said here in the customer's.
        if error.code == 403:
            return SendOutcome("refused", refused_link_message(host, str(answer.get("reason", ""))))
        if error.code == 404:
            return SendOutcome("refused", _(
                "{host} no longer knows the account of this confirm link: contact your "
                "provider; this receipt is dropped").format(host=host))
        if error.code == 422:
            return SendOutcome("refused", _(
                "{host} did not accept the receipt, because the copy was not verified")
                .format(host=host))
        if error.code == 429:
            return SendOutcome("refused", _(
                "{host} takes no more receipts on this confirm link: use the confirm link "
                "from your latest reminder email").format(host=host))
        if 400 <= error.code < 500:
            return SendOutcome("refused", _(
                "{host} answered with error {code}: check the confirm link; this receipt is "
                "dropped").format(host=host, code=error.code))
        return SendOutcome("unreachable", _("{host} has a problem right now (answer {code}); "
                                            "{later}").format(host=host, code=error.code,
                                                              later=later))
    except (urllib.error.URLError, OSError, TimeoutError) as error:
        cause = error.reason if isinstance(error, urllib.error.URLError) else error
        return SendOutcome("unreachable", _("cannot reach {host}: {why}; {later}").format(
            host=host, why=network_reason(cause, urllib.parse.urlsplit(url).hostname or host,
                                          timeout), later=later))
    if answer.get("status") != "confirmed":
        return SendOutcome("unreachable", _("{host} gave an unexpected answer; {later}")
                           .format(host=host, later=later))
    customer = str(answer.get("customer", ""))
    return SendOutcome("confirmed", _("{host} confirmed the copy").format(host=host), customer)


def refused_link_message(host: str, reason: str) -> str:
    """Return why the provider refused a confirm link, for the server's reason code
    ("expired", "damaged", "action"; anything else, from an older server, reads as
    invalid or expired). The server's own English words are never shown."""
    if reason == "expired":
        return _("{host} refused the confirm link because it has expired: use the confirm "
                 "link from your latest reminder email").format(host=host)
    if reason == "damaged":
        return _("{host} refused the confirm link because it is incomplete or damaged: copy "
                 "the whole link again from your latest reminder email").format(host=host)
    if reason == "action":
        return _("{host} refused the link because it is not a confirm link: use the confirm "
                 "link from your latest reminder email").format(host=host)
    return _("{host} refused the confirm link (it is invalid or has expired): use the "
             "confirm link from your latest reminder email").format(host=host)


def network_reason(cause: object, host: str, timeout: float) -> str:
    """Return why a connection failed, in words (never "[Errno 111]")."""
    import socket
    import ssl

    if isinstance(cause, socket.gaierror):
        return _("the name {name} cannot be found (is this computer online, and is the "
                 "link complete?)").format(name=host)
    if isinstance(cause, ConnectionRefusedError):
        return _("the server does not answer (it may be down for maintenance)")
    if isinstance(cause, socket.timeout | TimeoutError):
        return _("no answer within {seconds} seconds").format(seconds=f"{timeout:g}")
    if isinstance(cause, ssl.SSLCertVerificationError):
        return _("its certificate cannot be verified, so the connection is not safe")
    if isinstance(cause, ssl.SSLError):
        return _("a secure connection could not be made")
    if isinstance(cause, ConnectionResetError | ConnectionAbortedError | BrokenPipeError):
        return _("the connection was cut off")
    if isinstance(cause, OSError) and cause.errno in (101, 113):  # network/host unreachable
        return _("there is no network connection to it (is this computer online?)")
    if isinstance(cause, OSError) and cause.strerror:
        return cause.strerror.lower()
    return str(cause) or type(cause).__name__


def _json_or_empty(data: bytes) -> dict[str, Any]:
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def flush_pending(folder: Path, timeout: float = 15.0,
                  now: float | None = None) -> list[SendOutcome]:
    """Send every queued receipt; keep those the provider could not take yet.

    Receipts for the same link are sent in order; once the provider is unreachable
    the rest of that link's queue waits too, without a delay per receipt.
    """
    import time

    outcomes = []
    unreachable: set[str] = set()
    oldest = (time.time() if now is None else now) - PENDING_DAYS * 86400
    for path, url, receipt in pending(folder):
        if url in unreachable:
            continue
        outcome = replace(send_receipt(url, receipt, timeout), url=url)
        if outcome.kind == "unreachable":
            queued = _queued_at(path)
            if queued is not None and queued < oldest:
                path.unlink(missing_ok=True)
                host = urllib.parse.urlsplit(url).netloc
                outcomes.append(SendOutcome("refused", _(
                    "{host} could not be reached for more than {days} days, so this receipt "
                    "is dropped (its link has expired); use the confirm link from your latest "
                    "reminder email").format(host=host, days=PENDING_DAYS), url=url))
                continue
            outcomes.append(outcome)
            unreachable.add(url)
            continue
        outcomes.append(outcome)
        path.unlink(missing_ok=True)
    return outcomes
