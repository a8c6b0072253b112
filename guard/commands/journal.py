"""`teller-guard journal verify`: check the local journal's keyed chain and name the first break."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("journal", help="inspect the local event journal")
    jsub = p.add_subparsers(dest="journal_command", metavar="ACTION", required=True)
    v = jsub.add_parser("verify", help="check that no journaled event was edited or deleted",
                        description="Walk the journal's keyed hash chain; exit 0 when intact, 1 "
                        "at the first broken link or a damaged file (which row, and why), 2 when "
                        "the journal or its chain key cannot be read.")
    v.add_argument("--path", type=Path, help="journal file (default: the running agent's journal, "
                   "else the machine's)")
    v.add_argument("--json", action="store_true", help="print the result as JSON")
    v.set_defaults(func=verify)


def verify(args: argparse.Namespace) -> int:
    from guard.commands.agent_dir import resolve
    from guard.delivery.journal import JOURNAL_FILE, Journal, JournalError, VerifyResult, key_path

    chosen = None if args.path else resolve()
    path = args.path if chosen is None else chosen.path / JOURNAL_FILE
    if not path.exists():
        if not key_path(path).exists():
            why = f" ({chosen.why})" if chosen else ""
            print(f"teller-guard journal verify: no journal at {path}{why}", file=sys.stderr)
            return 2
        # Its chain key is still there: the journal was deleted, not never made.
        result = VerifyResult(False, 0, reason=f"the journal is gone but its chain key "
                                               f"{key_path(path)} is there: it was deleted")
    else:
        try:
            with Journal(path, read_only=True) as journal:
                result = journal.verify()
        except JournalError as exc:
            print(f"teller-guard journal verify: {exc}", file=sys.stderr)
            return 2
    if args.json:
        print(json.dumps({"ok": result.ok, "rows": result.rows, "first_seq": result.first_seq,
                          "last_seq": result.last_seq, "broken_seq": result.broken_seq,
                          "reason": result.reason, "bridged": result.bridged,
                          "path": str(path), "why": chosen.why if chosen else "--path"}))
    elif result.ok:
        span = f" (rows {result.first_seq}..{result.last_seq})" if result.rows else ""
        print(f"journal OK: {result.rows} rows verified{span} in {path}")
        if chosen:
            print(f"({chosen.why})")
    else:
        at = f" at row {result.broken_seq}" if result.broken_seq is not None else ""
        print(f"journal BROKEN{at}: {result.reason} "
              f"({result.rows} rows verified before it) in {path}")
    return 0 if result.ok else 1
