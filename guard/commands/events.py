"""`teller-guard events status`: how many events wait to be shipped, the last ack and last error."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("events", help="the state of event delivery to the collector")
    esub = p.add_subparsers(dest="events_command", metavar="ACTION", required=True)
    s = esub.add_parser("status", help="queue depth, last acknowledgement, last error")
    s.add_argument("--path", type=Path, help="journal file (default: the running agent's journal, "
                   "else the machine's)")
    s.add_argument("--json", action="store_true", help="print the status as JSON")
    s.set_defaults(func=status)


def status(args: argparse.Namespace) -> int:
    from guard.commands.agent_dir import resolve
    from guard.delivery.enrolment import DeviceKeyError, DeviceKeyStore
    from guard.delivery.journal import JOURNAL_FILE, Journal, JournalError
    from guard.ipc.status import format_status, read_status

    chosen = None if args.path else resolve()
    path = args.path if chosen is None else chosen.path / JOURNAL_FILE
    data_dir = path.parent if chosen is None else chosen.path
    if not path.exists():
        why = f" ({chosen.why})" if chosen else ""
        print(f"teller-guard events status: no journal at {path}{why}: no event recorded yet",
              file=sys.stderr)
        return 2
    try:
        with Journal(path, read_only=True) as journal:
            st = journal.status()
    except JournalError as exc:
        print(f"teller-guard events status: {exc}", file=sys.stderr)
        return 2
    try:
        enrolment = DeviceKeyStore(data_dir).enrollment()
    except DeviceKeyError as exc:
        enrolment = {"error": str(exc)}
    service = read_status(data_dir)
    if args.json:
        print(json.dumps({**dataclasses.asdict(st), "enrolment": enrolment,
                          "data_dir": str(data_dir), "data_dir_why": chosen.why if chosen else
                          "--path",
                          "service": dataclasses.asdict(service) if service else None}))
        return 0
    for line in format_status(service):
        print(line)
    print(f"journal:      {st.path}")
    if chosen:
        print(f"              ({chosen.why})")
    if enrolment is None:
        print("collector:    not enrolled (run `teller-guard enroll URL --token-file FILE`)")
    elif "error" in enrolment:
        print(f"collector:    {enrolment['error']}")
    else:
        print(f"collector:    {enrolment['endpoint']} as device {enrolment['device_id']}")
    print(f"queue depth:  {st.pending} event(s) waiting to be shipped")
    print(f"shipped:      {st.shipped} kept in the journal, {st.quarantined} quarantined, "
          f"{st.dropped_total} dropped over the bounds")
    print(f"last ack:     {st.last_ack or 'never'}")
    if st.last_error:
        print(f"last error:   {st.last_error} (at {st.last_error_time})")
    else:
        print("last error:   none")
    return 0
