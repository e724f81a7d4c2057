"""Send one node's report to the central `durability serve` (the fleet endpoint).

The node authenticates with its own token (an `Authorization: Bearer` header, never a
URL parameter, so it stays out of access logs); the body is the JSON schema 1 document
plus the node's name. Only the standard library is used, so the cron job stays light.
"""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request

from durability.errors import ProbeError
from durability.model import Report
from durability.render import report_to_dict


def fleet_payload(report: Report, node: str) -> bytes:
    """Given a report and the node's name, return the JSON body a node POSTs."""
    return json.dumps(
        {"schema_version": 1, "node": node, "report": report_to_dict(report)},
        sort_keys=True,
    ).encode("utf-8")


def read_token(path: str) -> str:
    """Given the path of a token file, return the token. Raise ProbeError if unusable."""
    from durability.secrets import SecretFileError, read_secret_text

    try:
        return read_secret_text(path, "schedule.report_token_file")
    except SecretFileError as error:
        raise ProbeError(str(error)) from error


def send_report(
    url: str, token: str, report: Report, timeout: float, node: str | None = None
) -> None:
    """POST the report to the central fleet endpoint at `url`.

    Raise ProbeError with a clear reason (refused token, HTTP error, unreachable) if
    the central server did not accept it. The token never appears in the message.
    """
    if not url.startswith(("http://", "https://")):
        raise ProbeError(f"fleet URL must be http:// or https://, got {url!r}")
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked above
        url,
        data=fleet_payload(report, node or socket.gethostname()),
        method="POST",
        headers={
            "Content-Type": "application/json",
            "Authorization": f"Bearer {token}",
            "User-Agent": "durability-fleet/1",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            response.read()
    except urllib.error.HTTPError as error:
        detail = _error_detail(error)
        if error.code in (401, 403):
            raise ProbeError(
                f"fleet report to {url} refused ({error.code}): {detail or 'token not accepted'}"
            ) from error
        raise ProbeError(f"fleet report to {url} failed: HTTP {error.code} {detail}".rstrip()) \
            from error
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise ProbeError(f"cannot reach fleet server {url}: {reason}") from error


def _error_detail(error: urllib.error.HTTPError) -> str:
    try:
        body = json.loads(error.read().decode("utf-8", "replace"))
    except (ValueError, OSError):
        return ""
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return " ".join(body["error"].split())[:200]
    return ""
