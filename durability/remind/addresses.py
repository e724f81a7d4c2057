"""Mail addresses as the config gives them: "addr@example.com" or "Name <addr@example.com>".

Parsed with the standard library's header parser (`email.headerregistry`), so what the
config accepts is exactly what a mail header can carry, and headers are built from the
parts (`email.utils.formataddr`), never by pasting the configured text.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Mailbox:
    """One address: an optional display name and the bare address (the envelope's)."""

    name: str
    address: str

    @property
    def domain(self) -> str:
        """Return the part after the @."""
        return self.address.rpartition("@")[2]

    def header(self, default_name: str = "") -> str:
        """Return the header form, with `default_name` when the config gave no name.

        Non-ASCII names come out as RFC 2047 encoded-words.
        """
        from email.utils import formataddr

        return formataddr((self.name or default_name, self.address), "utf-8")


def parse_mailbox(text: str) -> Mailbox:
    """Given "addr@example.com" or "Name <addr@example.com>", return the Mailbox.

    Raise ValueError with a sentence saying what is wrong (not one address, no domain,
    stray characters, a line break).
    """
    import email.policy

    if any(c in text for c in "\r\n\0"):
        raise ValueError("an address cannot contain a line break")
    if not text.strip():
        raise ValueError("an empty address")
    try:
        header = email.policy.default.header_factory("From", text)
        found = header.addresses
        defects = header.defects
    except (IndexError, ValueError, TypeError) as error:
        raise ValueError(f"not a mail address: {text!r}") from error
    if len(found) != 1:
        raise ValueError(f"expected one address, found {len(found)}: {text!r}")
    mailbox = found[0]
    if not mailbox.domain or not mailbox.username:
        raise ValueError(
            f"{text!r} has no domain; write 'addr@example.com' or 'Name <addr@example.com>'")
    if defects:
        raise ValueError(f"not a valid address: {text!r} ({defects[0]})")
    if "." not in mailbox.domain and mailbox.domain != "localhost":
        raise ValueError(f"{text!r}: the domain {mailbox.domain!r} has no dot")
    return Mailbox(str(mailbox.display_name), str(mailbox.addr_spec))


def problem(text: str | None) -> str | None:
    """Return what is wrong with an address setting, or None (also for an unset one)."""
    if text is None:
        return None
    try:
        parse_mailbox(text)
    except ValueError as error:
        return str(error)
    return None


def bare_problem(text: str | None) -> str | None:
    """Return what is wrong with a setting that must be a bare address (no name)."""
    if text is None:
        return None
    try:
        mailbox = parse_mailbox(text)
    except ValueError as error:
        return str(error)
    if mailbox.name or mailbox.address != text.strip():
        return f"give the bare address here, without a name: {mailbox.address!r}"
    return None
