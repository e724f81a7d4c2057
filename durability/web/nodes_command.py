"""`durability nodes add|remove|list`: the fleet nodes allowed to report (their tokens)."""

from __future__ import annotations

import argparse
import sys

from durability.context import Context
from durability.errors import DurabilityError

DESCRIPTION = "Add, remove and list the fleet nodes allowed to report to this server."
EPILOG = """\
`add` makes a new random token for the node and prints it once, on standard output;
only its SHA-256 is kept in the state store. Put the token in the node's
`schedule.report_token_file` (mode 0600). Adding a node that exists replaces its token
(the old one stops working); `remove` stops the node's reports at once, also when
`status.node_tokens_file` still names it.

examples:
  durability nodes add edge-1 > edge-1.token
  durability nodes remove edge-1
  durability nodes list
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the add, remove and list subcommands."""
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = sub.add_parser("add", help="make a token for a node (printed once)",
                         description="Make a new token for a node and print it once.")
    add.add_argument("node", metavar="NODE")
    remove = sub.add_parser("remove", help="stop accepting a node's reports",
                            description="Forget a node's token.")
    remove.add_argument("node", metavar="NODE")
    sub.add_parser("list", help="the nodes allowed to report",
                   description="List the nodes allowed to report.")


def run(args: argparse.Namespace, ctx: Context) -> int:
    """Run the chosen subcommand."""
    from durability.web import accounts

    if args.action == "list":
        nodes = accounts.list_nodes(ctx.store())
        for node in nodes:
            sys.stdout.write(f"{node.node}\tadded {node.created_at}\n")
        if not nodes:
            sys.stderr.write("durability: no nodes yet (durability nodes add NODE)\n")
        return 0
    problem = accounts.name_problem(args.node, "node name")
    if problem:
        raise DurabilityError(f"node {args.node!r} refused: {problem}")
    if args.action == "remove":
        from durability.web.fleet import read_node_tokens

        in_file = args.node in read_node_tokens(ctx.config().status.node_tokens_file)
        if not in_file and args.node not in accounts.node_digests(ctx.store()):
            raise DurabilityError(f"no node {args.node!r}")
        accounts.remove_node(ctx.store(), args.node, ctx.now)
        sys.stdout.write(f"removed node {args.node}; its token is no longer accepted\n")
        return 0
    token = accounts.add_node(ctx.store(), args.node, ctx.now)
    sys.stdout.write(f"{token}\n")
    sys.stderr.write(f"durability: the token of node {args.node} is shown once; put it in "
                     "the node's schedule.report_token_file (mode 0600)\n")
    return 0
