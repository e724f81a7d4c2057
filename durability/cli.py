"""The `durability` command line: parse, dispatch, and the only place that exits.

Each command lives in its own module, imported only when that command runs, so the
cron job (`durability raid`) pays for nothing it does not use. A command module
provides `add_arguments(parser)` and `run(args, ctx) -> int`.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from durability.context import Context
from durability.errors import ConfigError, DurabilityError

TYPE_CHECKING = False  # typing costs the cron job more than the check
if TYPE_CHECKING:
    from typing import Any, NoReturn

# name: (module, one-line help). Order is the order shown by --help.
COMMANDS: dict[str, tuple[str, str]] = {
    "check": ("durability.commands.check", "every check enabled in the config, one report"),
    "raid": ("durability.raid.command", "md RAID health of this node"),
    "snapshots": (
        "durability.snapshots.command",
        "provider snapshots: exist, fresh, complete, not shrinking",
    ),
    "restore-test": (
        "durability.restore.command",
        "restore one snapshot into scratch space, verify it, time it, clean up",
    ),
    "remind": ("durability.remind.command", "plan and send due backup reminders"),
    "customers": (
        "durability.remind.customers_command",
        "import / list / show customers and their reminder state",
    ),
    "serve": (
        "durability.web.command",
        "HTTP: customer links (confirm, snooze, unsubscribe) and the status page",
    ),
    "run": ("durability.service.command", "the scheduled service (all jobs, one process)"),
    "history": ("durability.commands.history", "past results from the state store"),
    "config": ("durability.commands.config", "validate | sample"),
    "users": ("durability.web.users_command", "add | remove | list: status-page accounts"),
    "nodes": ("durability.web.nodes_command", "add | remove | list: fleet node tokens"),
}

EPILOG = """\
exit codes of check commands: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (also: usage or
config error, unreadable input, missing tool).

config: --config FILE, else $DURABILITY_CONFIG, else /etc/durability/durability.toml
(optional for `durability raid`). `durability config sample` prints every key.

examples:
  durability raid                          this node's md arrays, human readable
  durability raid --format nagios          for Nagios/Icinga (exit code + one line)
  durability raid --format prometheus \\
      --output /var/lib/prometheus/node-exporter/durability_raid.prom
  durability check --config examples/durability.toml --format json
  durability COMMAND --help                options of one command
"""


class UsageError(Exception):
    """The command line is wrong; exit 3 (Nagios reads argparse's 2 as CRITICAL)."""


class _Exit(Exception):
    def __init__(self, code: int) -> None:
        self.code = code


class Parser(argparse.ArgumentParser):
    """An ArgumentParser that raises instead of exiting, so `main` decides the code."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}\n{self.format_usage().strip()}")

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        if message:
            sys.stderr.write(message)
        raise _Exit(status)


def _global_options(parser: argparse.ArgumentParser, suppress: bool) -> None:
    default: Any = argparse.SUPPRESS if suppress else None
    parser.add_argument(
        "--config",
        metavar="FILE",
        default=default,
        help="config file (default: $DURABILITY_CONFIG or /etc/durability/durability.toml)",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=argparse.SUPPRESS if suppress else 0,
        help="log more to stderr (-vv for debug)",
    )


def build_top_parser() -> Parser:
    """Return the top-level parser; commands are parsed by their own modules."""
    parser = Parser(
        prog="durability",
        description="Backup verification and data-durability checks for hosting providers.",
        epilog=EPILOG,
        formatter_class=_DescriptionFormatter,
    )
    _global_options(parser, suppress=False)
    parser.add_argument("--version", action="version", version=_version())
    listing = "\n".join(f"  {name:<13} {help_}" for name, (_, help_) in COMMANDS.items())
    parser.add_argument(
        "command",
        metavar="COMMAND",
        nargs="?",
        choices=list(COMMANDS),
        help="one of:\n" + listing,
    )
    parser.add_argument("args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    parser.formatter_class = _CommandListFormatter
    return parser


def _columns() -> int:
    """Return the terminal width for help text, without importing shutil."""
    import os

    try:
        return int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        pass
    try:
        return os.get_terminal_size(sys.stderr.fileno()).columns
    except (OSError, ValueError):
        return 80


class _DescriptionFormatter(argparse.RawDescriptionHelpFormatter):
    # argparse builds a formatter for every add_argument call, and its default width
    # comes from shutil (with bz2 and lzma behind it): a cost on every cron run.
    def __init__(self, prog: str, **kwargs: Any) -> None:
        kwargs.setdefault("width", _columns() - 2)
        super().__init__(prog, **kwargs)


class _CommandListFormatter(argparse.RawTextHelpFormatter):
    def __init__(self, prog: str, **kwargs: Any) -> None:
        kwargs.setdefault("width", _columns() - 2)
        super().__init__(prog, **kwargs)


def _version() -> str:
    from durability import __version__

    return f"durability {__version__}"


def command_parser(name: str, module: Any) -> Parser:
    """Return the parser of one command, built by its module."""
    parser = Parser(
        prog=f"durability {name}",
        description=getattr(module, "DESCRIPTION", COMMANDS[name][1]),
        epilog=getattr(module, "EPILOG", None),
        formatter_class=_DescriptionFormatter,
    )
    _global_options(parser, suppress=True)
    module.add_arguments(parser)
    return parser


def _setup_logging(verbosity: int, lightweight: bool) -> None:
    from durability import log

    log.set_verbosity(verbosity)
    if lightweight:
        return  # the cron path logs through durability.log without importing logging
    import logging

    level = logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    logging.basicConfig(
        level=level, stream=sys.stderr, format="durability: %(levelname)s: %(message)s"
    )


def dispatch(argv: Sequence[str]) -> int:
    """Parse argv, run the command and return its exit code (never exits)."""
    top = build_top_parser()
    namespace = top.parse_args(list(argv))
    if namespace.command is None:
        raise UsageError(
            "durability: no command given\n"
            + top.format_usage().strip()
            + "\ncommands: "
            + ", ".join(COMMANDS)
            + "\n`durability --help` explains each; `durability COMMAND --help` its options"
        )
    module_name, _ = COMMANDS[namespace.command]
    module = importlib.import_module(module_name)
    parser = command_parser(namespace.command, module)
    args = parser.parse_args(namespace.args)
    config_path = getattr(args, "config", None) or namespace.config
    verbosity = int(getattr(args, "verbose", 0) or 0) + int(namespace.verbose or 0)
    lightweight = bool(getattr(module, "LIGHTWEIGHT", False))
    _setup_logging(verbosity, lightweight)
    ctx = Context(
        config_path=config_path,
        verbosity=verbosity,
        command=namespace.command,
        lazy_config=lightweight,
    )
    try:
        code = int(module.run(args, ctx))
        if code == 3 and ctx.preloaded is not None and ctx.preloaded.looked_for:
            sys.stderr.write(f"durability: note: {ctx.preloaded.origin}\n")
        return code
    except ConfigError as error:
        return _fail(
            args, namespace.command, _config_message(error), ctx, tuple(error.problems)
        )
    except DurabilityError as error:
        return _fail(args, namespace.command, str(error), ctx)
    finally:
        ctx.close()


def _config_message(error: ConfigError) -> str:
    """Return the one-line reason of a config error: its first problem and a count."""
    count = len(error.problems)
    head = f"config error in {error.source} ({count} problem{'s' if count != 1 else ''})"
    if not error.problems:
        return head
    more = f" (+{count - 1} more, listed below)" if count > 1 else ""
    return f"{head}: {error.problems[0]}{more}"


def _fail(
    args: argparse.Namespace,
    check: str,
    reason: str,
    ctx: Context,
    problems: tuple[str, ...] = (),
) -> int:
    """Report a command that could not run: UNKNOWN, exit 3, reason on stderr.

    The first stderr line is the one-line reason; with several problems (a config
    file), each follows on a line of its own. In a machine-readable format the UNKNOWN
    is also rendered to stdout, so a monitor that only reads stdout still sees why.
    """
    sys.stderr.write(f"durability: {reason}\n")
    if len(problems) > 1:
        sys.stderr.write("".join(f"  {problem}\n" for problem in problems))
    fmt = getattr(args, "format", None)
    if fmt in ("json", "nagios", "prometheus"):
        from durability.model import unknown_report
        from durability.records import replace
        from durability.render import render

        report = unknown_report(check, reason)
        if len(problems) > 1:
            report = replace(
                report, results=(replace(report.results[0], details=problems),)
            )
        text = render(report, fmt)
        output = getattr(args, "output", None)
        if output:
            from durability.render import write_output

            try:
                write_output(text, output)
            except OSError as error:
                sys.stderr.write(f"durability: cannot write {output}: {error}\n")
        else:
            sys.stdout.write(text)
    return 3


def _requested_format(argv: Sequence[str]) -> str | None:
    """Return the --format value of a command line that could not be parsed, if any."""
    words = list(argv)
    for index, word in enumerate(words):
        if word == "--format" and index + 1 < len(words):
            return words[index + 1]
        if word.startswith("--format="):
            return word.partition("=")[2]
    return None


def _usage_on_stdout(argv: Sequence[str], message: str) -> None:
    """Give a monitor reading stdout the usage error in the format it asked for."""
    fmt = _requested_format(argv)
    if fmt not in ("json", "nagios", "prometheus"):
        return
    from durability.model import unknown_report
    from durability.render import render

    check = next((word for word in argv if word in COMMANDS), "durability")
    reason = "usage error: " + message.splitlines()[0].removeprefix("durability").lstrip(": ")
    sys.stdout.write(render(unknown_report(check, reason), fmt))


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Entry point of the `durability` command."""
    try:
        code = dispatch(sys.argv[1:] if argv is None else argv)
    except UsageError as error:
        sys.stderr.write(f"{error}\n")
        _usage_on_stdout(sys.argv[1:] if argv is None else argv, str(error))
        code = 3
    except _Exit as done:
        code = 3 if done.code == 2 else done.code
    except KeyboardInterrupt:
        sys.stderr.write("durability: interrupted\n")
        code = 3
    except BrokenPipeError:
        code = 3
    except Exception as error:  # a crash is still a one-line UNKNOWN for the monitor
        if "-vv" in (argv or sys.argv) or "--verbose" in (argv or sys.argv):
            import traceback

            traceback.print_exc()
        sys.stderr.write(
            f"durability: internal error: {type(error).__name__}: {error}"
            " (run with -vv for details)\n"
        )
        code = 3
    sys.exit(code)


if __name__ == "__main__":
    main()
