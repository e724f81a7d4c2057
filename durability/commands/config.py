"""`durability config validate | sample`."""

from __future__ import annotations

import argparse
import sys

from durability.context import Context

DESCRIPTION = "Validate the config file (listing every problem at once) or print a sample."
EPILOG = """\
examples:
  durability config validate --config /etc/durability/durability.toml
  durability config sample > /etc/durability/durability.toml
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the config subcommands."""
    parser.add_argument("action", choices=("validate", "sample"), help="what to do")


def run(args: argparse.Namespace, ctx: Context) -> int:
    """Validate or print the sample config; exit 3 on an invalid file."""
    if args.action == "sample":
        from durability.config import sample_config

        sys.stdout.write(sample_config())
        return 0
    from durability.config import missing_input_files
    from durability.errors import ConfigError

    config = ctx.config()
    config.validate()
    missing = missing_input_files(config)
    if missing:
        raise ConfigError(missing, config.path or "config")
    where = config.path or f"(defaults: {config.origin})"
    sources = len(config.snapshots.sources)
    sys.stdout.write(
        f"OK: {where} is valid ({sources} snapshot source{'s' if sources != 1 else ''})\n"
    )
    return 0
