"""The `teller-guard` command line: one entry point, one sub-command module per job."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from guard import __version__

# Sub-command modules, each with `register(subparsers)` that adds its parser and sets
# `func(args) -> int` as the handler. Listed explicitly (no entry-point discovery) so a frozen
# build carries them all.
COMMAND_MODULES = (
    "guard.commands.scan",
    "guard.commands.journal",
    "guard.commands.events",
    "guard.commands.collector",
    "guard.commands.enroll",
    "guard.commands.policy",
    "guard.commands.service",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="teller-guard",
        description="Teller Guard (柜面隐私卫士): find and guard customer data on teller PCs.",
    )
    parser.add_argument("--version", action="version", version=f"teller-guard {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # not built yet in this checkout
                continue
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(func(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
