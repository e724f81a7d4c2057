"""The `durability-helper` command line: enroll, copy, confirm, status.

Exit codes: 0 done, 1 failed (one line on stderr says why), 2 usage error. This is not
a monitoring plugin, so argparse's usual 2 for a usage error stays. `main` is the only
place that exits.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import NoReturn

from durability.errors import DurabilityError
from durability.helper.folder import Folder, HelperError, default_cache, default_folder
from durability.helper.i18n import _, ngettext, pgettext


def epilog() -> str:
    """Return the text after the options in --help."""
    return _("""\
three steps:
  durability-helper enroll /media/you/BACKUP     once per external disk
  durability-helper copy ~/Documents ~/backup-2026-11.tar.gz
  durability-helper confirm 'https://…/l/confirm/…'   the link from the reminder email

`copy --confirm-url URL` does the last two at once; `copy` alone copies the folders of
the previous copy (that is what the plug-in trigger runs). Settings, passwords and
receipts live in $XDG_CONFIG_HOME/durability-helper (mode 0700).

exit codes: 0 done, 1 failed (the reason is on stderr), 2 wrong usage.
""")


log = logging.getLogger("durability.helper")


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of durability-helper."""
    parser = argparse.ArgumentParser(
        prog="durability-helper",
        description=_wrap(_("Copy your data to your own external disk, verified, and tell "
        "your provider it is done.")),
        epilog=epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=_version(),
                        help=_("show program's version number and exit"))
    parser.add_argument(
        "--config-dir", metavar=pgettext("metavar", "DIR"),
        help=_("settings, passwords and receipts (default: $XDG_CONFIG_HOME/durability-helper)"),
    )
    parser.add_argument("--restic", metavar=pgettext("metavar", "PATH"), default="restic",
                        help=_("the restic program"))
    parser.add_argument("-v", "--verbose", action="count", default=0, help=_("say more"))
    commands = parser.add_subparsers(dest="command", metavar=pgettext("metavar", "COMMAND"),
                                     required=True, help=_("one of these commands:"))

    enroll = commands.add_parser(
        "enroll", help=_("make an external disk a backup disk"),
        description=_("Mark the disk mounted at MOUNTPOINT and create an encrypted restic "
        "repository on it. Nothing is written to a disk that was not enrolled."),
    )
    enroll.add_argument("mountpoint", metavar=pgettext("metavar", "MOUNTPOINT"),
                        help=_("the folder the external disk is mounted at, for example "
                               "/media/you/BACKUP"))
    enroll.add_argument(
        "--password-command", metavar=pgettext("metavar", "CMD"), default="",
        help=_("get the password from this command (e.g. 'pass show backup-disk') instead "
        "of a generated password file"),
    )

    copy = commands.add_parser(
        "copy", help=_("copy folders or files to every enrolled disk that is plugged in"),
        description=_("Back up PATHs to every enrolled disk that is mounted, verify each copy "
        "by reading it back, and keep a receipt. Without PATHs, the PATHs of the previous "
        "copy are used."),
    )
    copy.add_argument("paths", nargs="*", metavar=pgettext("metavar", "PATH"),
                      help=_("the folders and files to copy"))
    copy.add_argument(
        "--confirm-url", metavar=pgettext("metavar", "URL"),
        help=_("the confirm link from your reminder email: send the receipt to your provider"),
    )
    copy.add_argument(
        "--wait", type=_seconds, default=0.0, metavar=pgettext("metavar", "SECONDS"),
        help=_("wait up to SECONDS for an enrolled disk to be mounted (for the plug-in trigger)"),
    )
    copy.add_argument(
        "--read-data-subsets", type=_positive, default=10, metavar=pgettext("metavar", "N"),
        help=_("read back 1/N of the disk's data per copy, a different part each time "
        "(1 = all of it; default 10)"),
    )
    copy.add_argument(
        "--sample", type=_non_negative, default=20, metavar=pgettext("metavar", "N"),
        help=_("restore N files at random and compare them with the originals (default 20)"),
    )
    copy.add_argument(
        "--progress", choices=("auto", "always", "never"), default="auto",
        help=_("show the steps on stderr: auto (on a terminal only), always or never"),
    )
    copy.add_argument(
        "--notify", choices=("auto", "always", "never"), default="auto",
        help=_("a desktop notification at the end: auto (where notify-send and a desktop "
             "exist), always or never"),
    )

    confirm = commands.add_parser(
        "confirm", help=_("tell your provider about your latest verified copy"),
        description=_("Send the newest receipt, and any still waiting, to the confirm link "
        "from your reminder email."),
    )
    confirm.add_argument("url", nargs="?", metavar=pgettext("metavar", "URL"),
                         help=_("the confirm link"))

    status = commands.add_parser("status", help=_("enrolled disks and their last copies"))
    status.add_argument("--json", action="store_true", help=_("machine-readable output"))
    return parser


def _whole_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            _("not a whole number: {text}").format(text=repr(text))) from None


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            _("not a number of seconds: {text}").format(text=repr(text))) from None
    if not value >= 0:  # also refuses nan
        raise argparse.ArgumentTypeError(_("must be 0 or more"))
    return value


def _wrap(text: str) -> str:
    """Return a paragraph wrapped for --help (the top parser keeps its text as written)."""
    import textwrap

    return textwrap.fill(text, width=78)


def _positive(text: str) -> int:
    value = _whole_number(text)
    if value < 1:
        raise argparse.ArgumentTypeError(_("must be 1 or more"))
    return value


def _non_negative(text: str) -> int:
    value = _whole_number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(_("must be 0 or more"))
    return value


def _version() -> str:
    from durability import __version__

    return f"durability-helper {__version__}"


def _say(message: str) -> None:
    sys.stdout.write(message + "\n")
    sys.stdout.flush()


def _warn(message: str) -> None:
    sys.stderr.write(f"durability-helper: {message}\n")


def cmd_enroll(args: argparse.Namespace, folder: Folder) -> int:
    """Run `enroll` and return the exit code."""
    from durability.helper.enroll import recovery_text, run_enroll

    with folder.locked():
        enrolled = run_enroll(
            args.mountpoint, folder, datetime.now(UTC),
            password_command=args.password_command,
            restic_binary=args.restic,
            cache_dir=str(default_cache() / "restic"),
        )
    _say(recovery_text(enrolled))
    return 0


def cmd_copy(args: argparse.Namespace, folder: Folder) -> int:
    """Run `copy` and return the exit code."""
    from durability.helper.copy import CopyOptions, resolve_paths, run_copy
    from durability.helper.notify import Progress, notify
    from durability.helper.receipts import check_confirm_url, queue_receipt

    url = check_confirm_url(args.confirm_url) if args.confirm_url else ""
    progress = Progress(mode=args.progress if not args.verbose else "always")
    options = CopyOptions(
        restic_binary=args.restic,
        cache_dir=str(default_cache() / "restic"),
        scratch_dir=str(default_cache() / "scratch"),
        subsets=args.read_data_subsets,
        sample_files=args.sample,
        wait_seconds=args.wait,
    )
    with folder.locked():
        state = folder.load()
        paths = list(args.paths) or list(state.paths)
        if not paths:
            raise HelperError(_("what should be copied? Give the folders or files: "
                                "copy PATH..."))
        try:
            outcome = run_copy(paths, folder, datetime.now(UTC), options, progress)
        except HelperError as error:
            notify(_("Backup copy not made"), str(error), urgent=True, mode=args.notify)
            raise
        state = folder.load()
        url = url or state.confirm_url
        folder.save(replace(state, paths=tuple(resolve_paths(paths)), confirm_url=url))
        for note in outcome.notes:
            _warn(note)
        for disk in outcome.disks:
            if disk.receipt is None:
                _warn(disk.error)
                continue
            receipt = disk.receipt
            _say(ngettext(
                "disk {disk}: copied {count} file ({size}), verified; snapshot {snapshot}",
                "disk {disk}: copied {count} files ({size}), verified; snapshot {snapshot}",
                receipt.files,
            ).format(disk=disk.disk, count=receipt.files, size=_size(receipt.bytes),
                     snapshot=receipt.snapshot_id[:8]))
            if url:
                queue_receipt(folder.path, receipt, url)
        # An unreachable provider only delays the receipt: the copy itself is done.
        _send_pending(folder)
    if outcome.ok:
        notify(_("Backup copy made"), _("Your copy was verified."), mode=args.notify)
    else:
        failed = [d.error for d in outcome.disks if d.receipt is None]
        notify(_("Backup copy failed"), failed[0], urgent=True, mode=args.notify)
    return 0 if outcome.ok else 1


def _size(count: int) -> str:
    from durability.helper.i18n import format_bytes

    return format_bytes(count)


def _send_pending(folder: Folder) -> bool:
    """Send queued receipts, report each answer, and return True if none failed."""
    from durability.helper.receipts import flush_pending

    ok = True
    refused: set[str] = set()
    for outcome in flush_pending(folder.path):
        if outcome.kind == "confirmed":
            _say(outcome.message if not outcome.customer else _(
                "{message} (customer {customer})").format(message=outcome.message,
                                                          customer=outcome.customer))
        else:
            ok = False
            _warn(outcome.message)
            if outcome.kind == "refused":
                refused.add(outcome.url)
    state = folder.load()
    if state.confirm_url and state.confirm_url in refused:
        # A refused link stays refused: stop using it for the copies that follow.
        folder.save(replace(state, confirm_url=""))
        _warn(_("that confirm link will not be used again; give the one from your latest "
                "reminder email: durability-helper confirm URL"))
    return ok


def cmd_confirm(args: argparse.Namespace, folder: Folder) -> int:
    """Run `confirm` and return the exit code."""
    from durability.helper.receipts import (
        check_confirm_url,
        list_receipts,
        pending,
        queue_receipt,
    )

    with folder.locked():
        state = folder.load()
        url = check_confirm_url(args.url) if args.url else state.confirm_url
        if not url:
            raise HelperError(_("give the confirm link from your reminder email: "
                                "confirm URL"))
        receipts = [r for r in list_receipts(folder.path) if r.verified]
        if not receipts and not pending(folder.path):
            raise HelperError(_("no verified copy yet: run "
                                "`durability-helper copy PATH...` first"))
        if receipts:
            queue_receipt(folder.path, receipts[-1], url)
        if args.url:
            folder.save(replace(state, confirm_url=url))
        return 0 if _send_pending(folder) else 1


def cmd_status(args: argparse.Namespace, folder: Folder) -> int:
    """Run `status` and return the exit code."""
    from durability.helper.status import gather_status, render_status

    view = gather_status(folder)
    _say(json.dumps(view.as_json(), indent=2) if args.json else render_status(view))
    return 0


COMMANDS = {"enroll": cmd_enroll, "copy": cmd_copy, "confirm": cmd_confirm, "status": cmd_status}


def dispatch(argv: Sequence[str]) -> int:
    """Parse argv, run the command and return its exit code (argparse exits on usage)."""
    from durability.helper import i18n

    i18n.use()  # the language of this run's environment (LC_ALL, LC_MESSAGES, LANG)
    i18n.localize_argparse()
    args = build_parser().parse_args(list(argv))
    level = logging.WARNING if args.verbose == 0 else logging.INFO if args.verbose == 1 else (
        logging.DEBUG
    )
    logging.basicConfig(level=level, stream=sys.stderr,
                        format="durability-helper: %(message)s")
    folder = Folder(Path(args.config_dir) if args.config_dir else default_folder())
    try:
        return COMMANDS[args.command](args, folder)
    except DurabilityError as error:
        _warn(str(error))
        return 1


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Entry point of `durability-helper`."""
    try:
        code = dispatch(sys.argv[1:] if argv is None else argv)
    except KeyboardInterrupt:
        _warn(_("interrupted (no receipt was written for an unfinished copy)"))
        code = 1
    except BrokenPipeError:
        code = 1
    except OSError as error:
        _warn(f"{error.filename or ''}: {error.strerror or error}".lstrip(": "))
        code = 1
    sys.exit(code)


if __name__ == "__main__":
    main()
