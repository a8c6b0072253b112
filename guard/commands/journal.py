"""`teller-guard journal verify`: check the local journal's hash chain and name the first break."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("journal", help="inspect the local event journal")
    jsub = p.add_subparsers(dest="journal_command", metavar="ACTION", required=True)
    v = jsub.add_parser("verify", help="check that no journaled event was edited or deleted",
                        description="Walk the journal's hash chain; exit 0 when intact, 1 at the "
                        "first broken link (which row, and why).")
    v.add_argument("--path", type=Path, help="journal file (default: the running agent's journal, "
                   "else the machine's)")
    v.add_argument("--json", action="store_true", help="print the result as JSON")
    v.set_defaults(func=verify)


def verify(args: argparse.Namespace) -> int:
    from guard.commands.agent_dir import resolve
    from guard.delivery.journal import JOURNAL_FILE, Journal, JournalError

    chosen = None if args.path else resolve()
    path = args.path if chosen is None else chosen.path / JOURNAL_FILE
    if not path.exists():
        why = f" ({chosen.why})" if chosen else ""
        print(f"teller-guard journal verify: no journal at {path}{why}", file=sys.stderr)
        return 2
    try:
        with Journal(path, read_only=True) as journal:
            result = journal.verify()
    except JournalError as exc:
        print(f"teller-guard journal verify: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({"ok": result.ok, "rows": result.rows, "first_seq": result.first_seq,
                          "last_seq": result.last_seq, "broken_seq": result.broken_seq,
                          "reason": result.reason, "path": str(path),
                          "why": chosen.why if chosen else "--path"}))
    elif result.ok:
        span = f" (rows {result.first_seq}..{result.last_seq})" if result.rows else ""
        print(f"journal OK: {result.rows} rows verified{span} in {path}")
        if chosen:
            print(f"({chosen.why})")
    else:
        print(f"journal BROKEN at row {result.broken_seq}: {result.reason} "
              f"({result.rows} rows verified before it) in {path}")
    return 0 if result.ok else 1
