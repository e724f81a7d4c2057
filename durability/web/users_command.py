"""`durability users add|remove|list`: the status page accounts (in the state store)."""

from __future__ import annotations

import argparse
import sys

from durability.context import Context
from durability.errors import DurabilityError

DESCRIPTION = "Add, remove and list the status page accounts."
EPILOG = """\
A password follows the provider's policy: at least 8 characters with upper and lower
case letters and digits, not a known-common password and not containing the user name.
`add` asks for it twice on the terminal, or reads it from --password-file FILE (the
whole file, one trailing newline removed; the file must not be readable by other
users) or from standard input with --password-file -. Adding a user that exists sets a
new password. A new password and `remove` end the user's open sessions at once.
A refused name or password exits 3 with the reason on one line.

examples:
  durability users add ops
  printf '%s\\n' "$PASSWORD" | durability users add ops --password-file -
  durability users remove ops
  durability users list
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the add, remove and list subcommands."""
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = sub.add_parser("add", help="add a user, or set a new password for one",
                         description="Add a status page user, or set a new password.")
    add.add_argument("user", metavar="USER")
    add.add_argument("--password-file", metavar="FILE",
                     help="read the password from FILE ('-': standard input) instead of "
                          "asking on the terminal")
    remove = sub.add_parser("remove", help="remove a user and end their sessions",
                            description="Remove a status page user and end their sessions.")
    remove.add_argument("user", metavar="USER")
    sub.add_parser("list", help="the users who may log in",
                   description="List the status page users.")


def run(args: argparse.Namespace, ctx: Context) -> int:
    """Run the chosen subcommand."""
    from durability.web import accounts

    if args.action == "list":
        users = accounts.list_users(ctx.store())
        for user in users:
            origin = " (from status.users_file)" if user.source == "file" else ""
            sys.stdout.write(f"{user.name}\tchanged {user.changed_at}{origin}\n")
        if not users:
            sys.stderr.write("durability: no users yet (durability users add USER)\n")
        return 0
    problem = accounts.name_problem(args.user)
    if problem:
        raise DurabilityError(f"user {args.user!r} refused: {problem}")
    if args.action == "remove":
        if not accounts.remove_user(ctx.store(), args.user, ctx.now):
            raise DurabilityError(f"no user {args.user!r}")
        sys.stdout.write(f"removed user {args.user}; their sessions are ended\n")
        return 0
    password = read_new_password(args.password_file)
    problem = accounts.password_problem(password, args.user)
    if problem:
        raise DurabilityError(f"password refused: {problem}")
    new = accounts.set_user(ctx.store(), args.user, accounts.hash_password(password), ctx.now)
    sys.stdout.write(f"added user {args.user}\n" if new else
                     f"new password for user {args.user}; their sessions are ended\n")
    return 0


def read_new_password(path: str | None) -> str:
    """Return a new password from FILE, '-' (stdin) or, asked twice, the terminal.

    Raise DurabilityError if none can be read or the two answers differ.
    """
    if path == "-":
        text = sys.stdin.read()
        return text[:-1] if text.endswith("\n") else text
    if path:
        from durability.secrets import read_secret_text

        return read_secret_text(path, "--password-file")
    if not sys.stdin.isatty():
        raise DurabilityError("no terminal to ask for the password on: "
                              "give --password-file FILE (or - for standard input)")
    import getpass

    try:
        first = getpass.getpass("New password: ")
        second = getpass.getpass("Again: ")
    except EOFError as error:
        raise DurabilityError("no password given") from error
    if first != second:
        raise DurabilityError("the two passwords differ; nothing changed")
    return first
