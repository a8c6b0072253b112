"""The `teller-guard` command line: one entry point, one sub-command module per job."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Collection, Sequence
from types import ModuleType

from guard import __version__

# Every sub-command: its name and the one-line help `teller-guard -h` lists. Only the module of
# the command that runs is imported (`_module`): importing all of them cost `teller-guard scan`
# ~25 ms of start-up, and some pull in pydantic. A test checks this table against each module's
# own `register`.
COMMANDS: dict[str, str] = {
    "scan": "find customer data in files",
    "sweep": "find retained ID-card images and customer files",
    "journal": "inspect the local event journal",
    "events": "the state of event delivery to the collector",
    "collector": "run the central collector (enrolment, signed events, policy, dashboard)",
    "enroll": "enrol this PC at the central collector (IT gives the URL and a token)",
    "policy": "check a policy file, show the policy in force, hash the IT credential",
    "service": "run the machine service (journal, shipper, policy, local channel for agents)",
    "selftest": "check every part of this installation and print a pass/fail report",
    "approval-code": "issue a one-time approval (or unlock recovery) code for one PC (IT)",
    "quarantine": "IT: make the quarantine key, list and restore quarantined files",
}


def _module(name: str) -> ModuleType:
    """The module of sub-command `name`. The imports are written out one by one (no importlib,
    no entry points) so that a frozen build sees and carries them all."""
    if name == "scan":
        from guard.commands import scan
        return scan
    if name == "sweep":
        from guard.commands import sweep
        return sweep
    if name == "journal":
        from guard.commands import journal
        return journal
    if name == "events":
        from guard.commands import events
        return events
    if name == "collector":
        from guard.commands import collector
        return collector
    if name == "enroll":
        from guard.commands import enroll
        return enroll
    if name == "policy":
        from guard.commands import policy
        return policy
    if name == "service":
        from guard.commands import service
        return service
    if name == "selftest":
        from guard.commands import selftest
        return selftest
    if name == "approval-code":
        from guard.commands import approval
        return approval
    if name == "quarantine":
        from guard.commands import quarantine
        return quarantine
    raise KeyError(name)


def build_parser(full: Collection[str] | None = None) -> argparse.ArgumentParser:
    """The parser; the commands in `full` (None: every one) are registered by their modules, the
    others only by name and help, which is all `teller-guard -h` shows of them."""
    parser = argparse.ArgumentParser(
        prog="teller-guard",
        description="Teller Guard (柜面隐私卫士): find and guard customer data on teller PCs.",
    )
    parser.add_argument("--version", action="version", version=f"teller-guard {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_text in COMMANDS.items():
        if full is None or name in full:
            # each module's `register(subparsers)` adds its parser and sets `func(args) -> int`
            # as the handler; their heavy imports happen inside the handlers
            _module(name).register(sub)
        else:
            sub.add_parser(name, help=help_text)
    return parser


def _command(argv: Sequence[str]) -> str | None:
    """The sub-command named on the command line: the first word that is not an option (the
    top-level options, -h and --version, take no value)."""
    for word in argv:
        if word == "--":
            return None
        if not word.startswith("-"):
            return word if word in COMMANDS else None
    return None


def main(argv: Sequence[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else list(argv)
    command = _command(words)
    # no command named (or an unknown one): the names are enough to list or refuse them
    parser = build_parser(() if command is None else (command,))
    args = parser.parse_args(words)
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
