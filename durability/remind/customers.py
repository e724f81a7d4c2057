"""Parse the customer import file (CSV). Pure: text in, rows or every problem out."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime

from durability.errors import DurabilityError
from durability.remind.records import CustomerRow

REQUIRED_COLUMNS = ("id", "email", "name", "language")
OPTIONAL_COLUMNS = ("interval_days", "last_copy_at")
LANGUAGES = ("pl", "en")

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$")
# A deliberately plain addr-spec: what a provider's customer panel would accept.
_EMAIL = re.compile(
    r"^[A-Za-z0-9!#$%&'*+/=?^_`{}|~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{}|~-]+)*"
    r"@([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$"
)


class CustomerFileError(DurabilityError):
    """The import file has problems; `problems` lists each, with its line number."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        count = len(problems)
        super().__init__(
            f"{source}: {count} problem{'s' if count != 1 else ''}, nothing imported: "
            + "; ".join(problems[:5]) + ("; ..." if count > 5 else "")
        )


def parse_customers_csv(text: str, source: str = "customers.csv") -> list[CustomerRow]:
    """Given the CSV text of an import file, return its customers.

    The header names the columns (`id,email,name,language`, optional `interval_days`,
    `last_copy_at`). Raise CustomerFileError naming every bad row by line number
    (malformed values, duplicate ids, duplicate addresses); nothing is returned then.
    """
    problems: list[str] = []
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff"), newline=""), strict=True)
    try:
        header = next(reader, None)
    except csv.Error as error:
        raise CustomerFileError(source, [f"line 1: {error}"]) from error
    if header is None:
        raise CustomerFileError(source, ["the file is empty (expected a header line)"])
    columns = [name.strip().lower() for name in header]
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    unknown = [c for c in columns if c not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    if missing:
        problems.append(f"line 1: missing column(s) {', '.join(missing)}")
    if unknown:
        problems.append(f"line 1: unknown column(s) {', '.join(unknown)}")
    if repeated:
        problems.append(f"line 1: repeated column(s) {', '.join(repeated)}")
    if problems:
        raise CustomerFileError(source, problems)
    rows: list[CustomerRow] = []
    ids: dict[str, int] = {}
    emails: dict[str, int] = {}
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as error:
            problems.append(f"line {reader.line_num}: {error}")
            break
        line = reader.line_num
        if not any(field.strip() for field in fields):
            continue
        if len(fields) != len(columns):
            problems.append(
                f"line {line}: expected {len(columns)} fields, found {len(fields)}")
            continue
        record = dict(zip(columns, (f.strip() for f in fields), strict=True))
        row, row_problems = _row(record)
        problems.extend(f"line {line}: {p}" for p in row_problems)
        if row is None:
            continue
        if row.id in ids:
            problems.append(f"line {line}: duplicate id {row.id!r} (first on line {ids[row.id]})")
        else:
            ids[row.id] = line
        address = row.email.lower()
        if address in emails:
            problems.append(
                f"line {line}: duplicate address {row.email!r} (first on line {emails[address]})")
        else:
            emails[address] = line
        rows.append(row)
    if problems:
        raise CustomerFileError(source, problems)
    return rows


def _row(record: dict[str, str]) -> tuple[CustomerRow | None, list[str]]:
    problems: list[str] = []
    customer_id = record["id"]
    if not _ID.match(customer_id):
        problems.append(
            f"invalid id {customer_id!r} (letters, digits and . _ @ + - only, at most 128)")
    email = record["email"]
    if not valid_email(email):
        problems.append(f"invalid address {email!r}")
    name = record["name"]
    if any(ch in name for ch in "\r\n") or len(name) > 200:
        problems.append("invalid name (one line, at most 200 characters)")
    language = record["language"].lower()
    if language not in LANGUAGES:
        problems.append(f"language must be one of {', '.join(LANGUAGES)}, got {language!r}")
    interval: int | None = None
    interval_text = record.get("interval_days", "")
    if interval_text:
        if not interval_text.isdigit() or not 1 <= int(interval_text) <= 3650:
            problems.append(f"interval_days must be a whole number from 1 to 3650, "
                            f"got {interval_text!r}")
        else:
            interval = int(interval_text)
    last_copy: datetime | None = None
    copy_text = record.get("last_copy_at", "")
    if copy_text:
        try:
            last_copy = parse_copy_time(copy_text)
        except ValueError:
            problems.append(f"last_copy_at must be an ISO-8601 date or time, got {copy_text!r}")
    if problems:
        return None, problems
    return CustomerRow(customer_id, email, name, language, interval, last_copy), []


def valid_email(address: str) -> bool:
    """Return True if `address` is a plain, deliverable-looking addr-spec."""
    return len(address) <= 254 and _EMAIL.match(address) is not None


def parse_copy_time(text: str) -> datetime:
    """Given "2026-10-01" or an ISO-8601 time, return an aware UTC datetime.

    A time without an offset is taken as UTC. Raise ValueError if unreadable.
    """
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
