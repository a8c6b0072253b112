"""The `teller-guard` command line: one entry point, one sub-command module per job."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from guard import __version__
from guard.commands import (
    approval,
    collector,
    enroll,
    events,
    journal,
    policy,
    quarantine,
    scan,
    selftest,
    service,
    sweep,
)

# Every sub-command module, imported statically so a frozen build carries them all (no
# entry-point discovery, no importlib). Each has `register(subparsers)`, which adds its parser and
# sets `func(args) -> int` as the handler; their heavy imports happen inside the handlers.
COMMANDS = (scan, sweep, journal, events, collector, enroll, policy, service, selftest,
            approval, quarantine)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="teller-guard",
        description="Teller Guard (柜面隐私卫士): find and guard customer data on teller PCs.",
    )
    parser.add_argument("--version", action="version", version=f"teller-guard {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS:
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
