"""One reminder run: plan, respect the cap and the window, claim, hand over, record.

The order for every message is claim (committed) -> SMTP -> record the answer. A run
holds the store's remind lock, so claims it finds at the start were left by a dead run
and become `uncertain` instead of being sent again.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage, Message
from pathlib import Path
from typing import TextIO

from durability.config import Config
from durability.remind import smtp, state
from durability.remind.messages import Sender, render_reminder
from durability.remind.planner import Attention, Plan, Planned, Policy, plan_reminders
from durability.remind.records import FAILED, REFUSED, SENT, UNCERTAIN
from durability.state.store import Store

log = logging.getLogger(__name__)

HEARTBEAT_EVERY = 20


@dataclass
class RunSummary:
    """What one run did."""

    due: int = 0
    sent: int = 0
    held: int = 0
    abandoned: int = 0
    uncertain: int = 0
    refused: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    skipped: int = 0
    attention: tuple[Attention, ...] = ()
    outside_window: bool = False
    stopped: str | None = None
    rendered: int = 0

    @property
    def exit_code(self) -> int:
        """Return 0 when every due message was sent or held back by the cap, else 1."""
        return 1 if (self.refused or self.failed or self.uncertain or self.stopped) else 0


def policy_from(config: Config) -> Policy:
    """Return the planner policy of the config."""
    remind = config.remind
    return Policy(remind.interval_days, remind.max_reminders, tuple(remind.gaps_days))


def sender_from(config: Config, secret: bytes) -> Sender:
    """Return the message sender settings of the config."""
    return Sender(
        provider=config.remind.provider_name, service=config.remind.service_name,
        from_addr=config.smtp.from_, reply_to=config.smtp.reply_to,
        base_url=config.web.base_url, secret=secret,
        unsubscribe_mailto=config.remind.unsubscribe_mailto,
        helper_url=config.remind.helper_url,
        max_reminders=config.remind.max_reminders, panel_url=config.remind.panel_url,
    )


def envelope_sender(config: Config) -> str:
    """Return the bare address of `smtp.from` (MAIL FROM takes no display name)."""
    from durability.remind.addresses import parse_mailbox

    return parse_mailbox(config.smtp.from_).address


def in_window(now: datetime, window: str | None, zone: str | None) -> bool:
    """Return True when `now` is inside the sending window (always, when unset)."""
    if not window:
        return True
    from zoneinfo import ZoneInfo

    from durability.config.remind import parse_window

    start, end = parse_window(window)
    local = now.astimezone(ZoneInfo(zone)) if zone else now.astimezone()
    minute = local.hour * 60 + local.minute
    return start <= minute < end if start < end else (minute >= start or minute < end)


def plan_now(store: Store, config: Config, now: datetime) -> Plan:
    """Load every customer and return the plan for `now`."""
    policy = policy_from(config)
    return plan_reminders(state.load_states(store, now, policy.interval_days), policy, now)


def write_dry_run(
    plan: Plan, sender: Sender, now: datetime, limit: int, folder: Path | None, out: TextIO,
) -> int:
    """Render what would be sent: a readable preview of each message on `out`, and with
    `folder` one .eml file each there (a line per file on `out` instead of the preview)."""
    count = 0
    for planned in plan.due[:limit]:
        message = render_reminder(planned, sender, now)
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
            name = "".join(c if c.isalnum() or c in "-_." else "_" for c in planned.key)
            path = folder / f"{name}.eml"
            path.write_bytes(message.as_bytes())
            out.write(f"{planned.customer.id} ({planned.customer.language}, step "
                      f"{planned.step}): {path}\n")
        else:
            out.write(preview(message, planned, sender))
        count += 1
    return count


def preview(message: Message, planned: Planned, sender: Sender) -> str:
    """Return a message as a person reads it: who, language, step, subject, the text."""
    import email
    import email.policy

    parsed = email.message_from_bytes(message.as_bytes(), policy=email.policy.default)
    body = parsed.get_body(("plain",)) if isinstance(parsed, EmailMessage) else None
    text = body.get_content() if isinstance(body, EmailMessage) else ""
    customer = planned.customer
    steps = max(sender.max_reminders, planned.step)
    rule = "=" * 72
    return (
        f"{rule}\n"
        f"To:       {parsed['To']}\n"
        f"Customer: {customer.id}\n"
        f"Language: {customer.language}\n"
        f"Step:     {planned.step} of at most {steps}\n"
        f"Subject:  {parsed['Subject']}\n"
        f"{'-' * 72}\n"
        f"{text.rstrip()}\n\n"
    )


def run_reminders(
    store: Store,
    config: Config,
    secret: bytes,
    now: datetime,
    session_factory: Callable[[], smtp.SmtpSession],
    sleep: Callable[[float], None] = time.sleep,
) -> RunSummary:
    """Plan and send the due reminders of `now`; return what happened.

    Raise StateError if the store cannot be used or another run holds the lock, and
    SmtpUnavailable if the server cannot be reached before anything was handed over.
    """
    summary = RunSummary()
    lock = state.RunLock(store)
    lock.acquire()
    try:
        summary.abandoned = state.mark_abandoned_claims(store, now)
        plan = plan_now(store, config, now)
        summary.due = len(plan.due)
        summary.attention = plan.attention
        if not in_window(now, config.remind.sending_window, config.remind.timezone):
            summary.outside_window = True
            summary.held = len(plan.due)
            return summary
        budget = max(0, config.smtp.max_per_hour
                     - state.handed_since(store, now - timedelta(hours=1)))
        batch = plan.due[:budget]
        summary.held = len(plan.due) - len(batch)
        if batch:
            _send_batch(store, config, sender_from(config, secret), now, batch,
                        session_factory, sleep, lock, summary)
    finally:
        lock.release()
    return summary


def _send_batch(
    store: Store, config: Config, sender: Sender, now: datetime, batch: tuple[Planned, ...],
    session_factory: Callable[[], smtp.SmtpSession], sleep: Callable[[float], None],
    lock: state.RunLock, summary: RunSummary,
) -> None:
    started = time.monotonic()

    def clock() -> datetime:
        # `now` may be set by --now; time moves on from there during the batch.
        return now + timedelta(seconds=int(time.monotonic() - started))

    session = session_factory()
    session.open()  # SmtpUnavailable here: nothing was claimed, the run could not start
    try:
        for index, planned in enumerate(batch):
            if index and index % HEARTBEAT_EVERY == 0:
                lock.heartbeat()
            if not session.connected:
                try:
                    session.open()
                except smtp.SmtpUnavailable as error:
                    summary.stopped = str(error)
                    log.warning("stopping: %s", error)
                    return
            customer = planned.customer
            message = render_reminder(planned, sender, clock())
            message_id = str(message["Message-ID"])
            if not state.claim(store, planned.key, customer.id, planned.period_start,
                               planned.step, message_id, customer.email, clock(), customer):
                summary.skipped += 1
                continue
            outcome = _hand_over(session, message, config, customer.email, sleep,
                                 functools.partial(state.mark_handing, store, planned.key))
            _record(store, planned, outcome, clock(), summary)
    finally:
        session.close()


def _hand_over(
    session: smtp.SmtpSession, message: Message, config: Config, recipient: str,
    sleep: Callable[[float], None], before_body: Callable[[], None],
) -> smtp.Outcome:
    outcome = smtp.Outcome(smtp.TEMPORARY, None, "not attempted")
    for attempt in range(config.smtp.retries + 1):
        if attempt:
            sleep(config.smtp.retry_delay)
            if not session.connected:
                try:
                    session.open()
                except smtp.SmtpUnavailable as error:
                    return smtp.Outcome(smtp.TEMPORARY, None, str(error))
        outcome = session.send(message, envelope_sender(config), recipient, before_body)
        if outcome.kind != smtp.TEMPORARY:
            return outcome
        log.info("temporary answer for %s: %s", recipient, outcome.answer)
    return outcome


def _record(
    store: Store, planned: Planned, outcome: smtp.Outcome, at: datetime, summary: RunSummary,
) -> None:
    customer = planned.customer
    if outcome.kind == smtp.SENT:
        state.finish(store, planned.key, SENT, outcome.answer, at)
        summary.sent += 1
    elif outcome.kind == smtp.REFUSED:
        state.finish(store, planned.key, REFUSED, outcome.answer, at, customer.id,
                     customer.email)
        summary.refused.append((customer.id, outcome.answer))
    elif outcome.kind == smtp.UNCERTAIN:
        state.finish(store, planned.key, UNCERTAIN, outcome.answer, at)
        summary.uncertain += 1
        summary.failed.append((customer.id, outcome.answer))
    else:
        state.finish(store, planned.key, FAILED, outcome.answer, at)
        summary.failed.append((customer.id, outcome.answer))
