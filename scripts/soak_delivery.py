"""Delivery under faults: journal events while the shipper is SIGKILLed and collectors die.

Runs the real pieces: a shipping process (journal + shipper, as in single-process mode) that
records events as fast as asked and is killed with SIGKILL at random moments, and one or more real
`teller-guard collector` processes that are killed and restarted. At the end every event the
shipping process ever reported as recorded must be in the collector's store exactly once, in
journal order, and the journal's hash chain must verify.

    python scripts/soak_delivery.py --cycles 500                 # SQLite collector
    python scripts/soak_delivery.py --cycles 300 --postgres      # two collectors, one PostgreSQL

`tests/guard/delivery/test_delivery.py` runs the same driver with fewer cycles. The `ship` and
`drain` sub-commands are the shipping process itself.
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

EVENT_TYPE = "DELIVERY_CHECK"


# ----------------------------------------------------------------------------- shipping process


def _shipping_parts(data_dir: Path, endpoint: str | None, max_events: int):  # type: ignore[no-untyped-def]
    from guard.delivery.enrolment import DeviceKeyStore
    from guard.delivery.journal import Journal
    from guard.delivery.shipper import Shipper, ShipperSettings
    from guard.model import Device

    store = DeviceKeyStore(data_dir)
    creds = store.load()
    if creds is None:
        raise SystemExit(f"{data_dir} is not enrolled")
    meta = store.enrollment() or {}
    device = Device(id=creds.device_id, hostname=meta.get("hostname", "soak-pc"), branch="soak")
    if endpoint:
        creds = type(creds)(endpoint=endpoint, device_id=creds.device_id, key=creds.key)
    journal = Journal(data_dir / "journal.db", device=device)
    settings = ShipperSettings(max_events=max_events, max_bytes=256 * 1024, heartbeat_s=3600,
                               backoff_base_s=0.05, backoff_max_s=0.4, timeout_s=5.0,
                               idle_poll_s=0.05)
    shipper = Shipper(journal, creds, device=device, settings=settings, agent_version="soak")
    return journal, shipper, device


def ship_main(data_dir: Path, endpoint: str | None, rate: float, max_events: int) -> int:
    """Record events forever while the shipper thread ships; print each id once durable."""
    from guard.model import Channel, Event

    journal, shipper, device = _shipping_parts(data_dir, endpoint, max_events)
    shipper.start()
    out = sys.stdout
    out.write("ready\n")
    out.flush()
    pause = 1.0 / rate if rate > 0 else 0.0
    n = 0
    while True:
        ev = Event(type=EVENT_TYPE, device=device, channel=Channel.CLIPBOARD,
                   detail={"n": n, "pid": os.getpid()})
        journal.record(ev)
        out.write(f"{ev.id}\n")  # only after record() returned: the event is durable
        out.flush()
        n += 1
        if pause:
            time.sleep(pause)


def drain_main(data_dir: Path, endpoint: str | None, timeout: float) -> int:
    journal, shipper, _ = _shipping_parts(data_dir, endpoint, 200)
    ok = shipper.drain(timeout)
    left = journal.pending_count()
    print(f"drained: {ok}, pending {left}")
    return 0 if ok and left == 0 else 1


# ----------------------------------------------------------------------------- driver


@dataclass
class Terminal:
    """One simulated teller PC: its data directory and every id it reported as recorded."""

    name: str
    data_dir: Path
    device_id: str = ""
    reported: list[str] = field(default_factory=list)


@dataclass
class SoakReport:
    cycles: int
    events: int
    collector_kills: int
    collector_stops: int
    shipper_kills: int
    seconds: float


def enroll_terminal(term: Terminal, url: str, token: str) -> None:
    from guard.delivery.enrolment import DeviceKeyStore, enroll

    term.data_dir.mkdir(parents=True, exist_ok=True)
    result = enroll(url, token, hostname=f"pc-{term.name}", branch="soak",
                    store=DeviceKeyStore(term.data_dir))
    term.device_id = result.device_id


def _child_env(data_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["TELLER_GUARD_DATA_DIR"] = str(data_dir)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    env.pop("TELLER_GUARD_ENDPOINT", None)
    return env


def _spawn(term: Terminal, endpoint: str, rate: float, max_events: int) -> subprocess.Popen[str]:
    # stderr goes to a file beside the journal so a failed start can say why
    with open(term.data_dir / "ship.stderr", "ab") as err:
        return subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "ship", "--data-dir",
             str(term.data_dir), "--endpoint", endpoint, "--rate", str(rate),
             "--max-events", str(max_events)],
            stdout=subprocess.PIPE, stderr=err, text=True, env=_child_env(term.data_dir),
        )


def _collect(term: Terminal, proc: subprocess.Popen[str]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout.read().splitlines():
        line = line.strip()
        if len(line) == 36:  # a cut-off last line was never reported complete
            term.reported.append(line)


def run_cycles(terminals: Sequence[Terminal], collectors: Sequence[object], *, cycles: int,
               rng: random.Random, rate: float = 400.0, log: bool = False) -> SoakReport:
    """Kill-and-restart cycles over the shipping processes and the collectors.

    `collectors` are `tests.support.servers.CollectorProcess` objects (a URL with start/stop/kill).
    Each cycle starts one shipping process per terminal against a random running collector, lets
    it run 0.1–0.3 s after it is ready (sometimes kills it before it is ready), SIGKILLs it, and
    now and then kills, stops or restarts a collector.
    """
    started = time.monotonic()
    kills = stops = shipper_kills = 0
    for cycle in range(cycles):
        for c in collectors:
            roll = rng.random()
            if c.running and roll < 0.08:  # type: ignore[attr-defined]
                c.kill()  # type: ignore[attr-defined]
                kills += 1
            elif c.running and roll < 0.12:  # type: ignore[attr-defined]
                c.stop()  # type: ignore[attr-defined]
                stops += 1
            elif not c.running and roll < 0.5:  # type: ignore[attr-defined]
                c.start()  # type: ignore[attr-defined]
        procs = []
        for term in terminals:
            target = rng.choice(list(collectors))
            procs.append((term, _spawn(term, str(target), rate, rng.choice((5, 20, 100, 500)))))
        for term, proc in procs:
            assert proc.stdout is not None
            if rng.random() < 0.1:
                time.sleep(rng.uniform(0.0, 0.4))  # may land while the journal is being opened
            else:
                first = proc.stdout.readline()
                if first.strip() != "ready":
                    proc.wait()
                    tail = (term.data_dir / "ship.stderr").read_text(errors="replace")[-2000:]
                    raise RuntimeError(
                        f"shipping process for {term.name} failed to start:\n{tail}")
                time.sleep(rng.uniform(0.1, 0.3))
        for _term, proc in procs:
            proc.kill()  # SIGKILL on POSIX
            shipper_kills += 1
        for term, proc in procs:
            proc.wait()
            _collect(term, proc)
        if log and cycle % 10 == 0:
            total = sum(len(t.reported) for t in terminals)
            print(f"cycle {cycle}: {total} events reported", flush=True)
    return SoakReport(cycles=cycles, events=sum(len(t.reported) for t in terminals),
                      collector_kills=kills, collector_stops=stops, shipper_kills=shipper_kills,
                      seconds=time.monotonic() - started)


def drain(term: Terminal, endpoint: str, timeout: float = 120.0) -> None:
    r = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "drain", "--data-dir", str(term.data_dir),
         "--endpoint", endpoint, "--timeout", str(timeout)],
        capture_output=True, text=True, env=_child_env(term.data_dir), timeout=timeout + 60,
    )
    if r.returncode != 0:
        raise RuntimeError(f"drain of {term.name} failed: {r.stdout}{r.stderr[-2000:]}")


def stored_events(db_url: str, device_id: str) -> list[tuple[str, int]]:
    """(event id, received time in µs) of one device in the collector's store, in store order."""
    import sqlalchemy as sa

    from guard.collector.store import events

    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.select(events.c.id, events.c.received_us)
                .where(events.c.device_id == device_id).order_by(events.c.seq)).all()
    finally:
        engine.dispose()
    return [(str(r[0]), int(r[1])) for r in rows]


def check_terminal(term: Terminal, db_url: str) -> list[str]:
    """Every problem found for one terminal (empty when delivery was perfect)."""
    from guard.delivery.journal import Journal

    problems: list[str] = []
    with Journal(term.data_dir / "journal.db", read_only=True) as journal:
        result = journal.verify()
        if not result.ok:
            problems.append(f"{term.name}: journal verify failed at {result.broken_seq}: "
                            f"{result.reason}")
        journal_ids = [r.event_id for r in journal.records()]
        if journal.pending_count():
            problems.append(f"{term.name}: {journal.pending_count()} events still pending")
        if journal.quarantined():
            problems.append(f"{term.name}: {len(journal.quarantined())} events quarantined")
    stored = stored_events(db_url, term.device_id)
    stored_ids = [s[0] for s in stored]
    if len(stored_ids) != len(set(stored_ids)):
        problems.append(f"{term.name}: an event is stored twice")
    missing = set(term.reported) - set(stored_ids)
    if missing:
        problems.append(f"{term.name}: {len(missing)} reported events never reached the store")
    if sorted(stored_ids) != sorted(journal_ids):
        problems.append(f"{term.name}: store ({len(stored_ids)}) and journal "
                        f"({len(journal_ids)}) hold different events")
    # In order: walking the journal's order, the store received them at non-decreasing times.
    received = dict(stored)
    times = [received[i] for i in journal_ids if i in received]
    if any(b < a for a, b in itertools.pairwise(times)):
        problems.append(f"{term.name}: a later event was stored before an earlier one")
    pos = {i: n for n, i in enumerate(term.reported)}
    if [i for i in journal_ids if i in pos] != term.reported:
        problems.append(f"{term.name}: the journal's order differs from the recording order")
    return problems


# ----------------------------------------------------------------------------- command line


def soak(args: argparse.Namespace) -> int:
    from tests.support.servers import create_database, run_collector, start_postgres

    rng = random.Random(args.seed)
    root = Path(tempfile.mkdtemp(prefix="tg-soak-"))
    terminals = [Terminal(f"t{i}", root / f"t{i}") for i in range(args.terminals)]
    if args.postgres:
        with start_postgres() as server:
            db_url = create_database(server, "soak")
            with run_collector(db_url) as a, run_collector(db_url) as b:
                return _soak_with(args, rng, terminals, [a, b], db_url)
    db_url = f"sqlite:///{root / 'collector.db'}"
    with run_collector(db_url) as c:
        return _soak_with(args, rng, terminals, [c], db_url)


def _soak_with(args: argparse.Namespace, rng: random.Random, terminals: list[Terminal],
               collectors: list[object], db_url: str) -> int:
    first = collectors[0]
    for term in terminals:
        enroll_terminal(term, str(first), first.enroll_token)  # type: ignore[attr-defined]
    report = run_cycles(terminals, collectors, cycles=args.cycles, rng=rng, rate=args.rate,
                        log=True)
    for c in collectors:
        if not c.running:  # type: ignore[attr-defined]
            c.start()  # type: ignore[attr-defined]
    for term in terminals:
        drain(term, str(rng.choice(collectors)))
    problems = [p for t in terminals for p in check_terminal(t, db_url)]
    print(f"{report.cycles} cycles in {report.seconds:.1f} s: {report.events} events recorded, "
          f"{report.shipper_kills} shipping processes SIGKILLed, {report.collector_kills} "
          f"collector kills, {report.collector_stops} collector stops")
    for term in terminals:
        print(f"  {term.name}: {len(term.reported)} reported, "
              f"{len(stored_events(db_url, term.device_id))} stored")
    if problems:
        print("FAILED:\n  " + "\n  ".join(problems))
        return 1
    print("OK: every event stored exactly once, in order; journal verify passed")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="cmd")
    s = sub.add_parser("ship", help="(internal) the shipping process")
    s.add_argument("--data-dir", type=Path, required=True)
    s.add_argument("--endpoint")
    s.add_argument("--rate", type=float, default=400.0)
    s.add_argument("--max-events", type=int, default=100)
    d = sub.add_parser("drain", help="(internal) ship everything left, then exit")
    d.add_argument("--data-dir", type=Path, required=True)
    d.add_argument("--endpoint")
    d.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--cycles", type=int, default=500)
    parser.add_argument("--terminals", type=int, default=2)
    parser.add_argument("--rate", type=float, default=400.0, help="events per second per PC")
    parser.add_argument("--postgres", action="store_true",
                        help="two collectors sharing one PostgreSQL instead of SQLite")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    if args.cmd == "ship":
        return ship_main(args.data_dir, args.endpoint, args.rate, args.max_events)
    if args.cmd == "drain":
        return drain_main(args.data_dir, args.endpoint, args.timeout)
    return soak(args)


if __name__ == "__main__":
    sys.exit(main())
