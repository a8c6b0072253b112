"""Benchmark: journal record() latency and end-to-end shipping to a real local collector (SQLite).

    .venv/bin/python tests/bench/bench_ship.py [--events 100000]

1. Live: events are journaled as fast as one thread can while the shipper thread ships them to a
   `teller-guard collector` process on loopback; prints record() p50/p99 and end-to-end events/s
   (first record to last acknowledgement).
2. Offline backlog: the collector is stopped, the same number of events is journaled, the
   collector comes back; prints the time to drain the backlog.
Targets: >= 2,000 events/s end to end, record() p99 < 5 ms.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from guard.delivery.enrolment import DeviceKeyStore, enroll  # noqa: E402
from guard.delivery.journal import Journal  # noqa: E402
from guard.delivery.shipper import Shipper, ShipperSettings  # noqa: E402
from guard.model import (  # noqa: E402
    Action,
    Channel,
    Device,
    Event,
    FindingSummary,
    Outcome,
)
from tests.support.servers import run_collector  # noqa: E402


def _event(device: Device, i: int) -> Event:
    """A typical clipboard event: two finding types with masked values and keyed hashes."""
    return Event(
        type="CLIPBOARD_COPY", device=device, teller="teller01", channel=Channel.CLIPBOARD,
        action=Action.REDACT, decision="redact-cards", outcome=Outcome.REDACTED,
        findings=[
            FindingSummary(type="BANK_CARD", count=1, masked=["622202******1234"],
                           hashes=[f"{i:064x}"]),
            FindingSummary(type="CN_MOBILE", count=1, masked=["138****5678"],
                           hashes=[f"{i * 7:064x}"]),
        ],
        source_app="core-banking.exe", agent_version="0.1.0", policy_version="2026-11-01",
        detail={"n": i},
    )


def _percentile(sorted_values: list[float], p: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * p))]


def _wait_drained(journal: Journal, timeout: float) -> float:
    deadline = time.monotonic() + timeout
    while journal.pending_count() and time.monotonic() < deadline:
        time.sleep(0.02)
    if journal.pending_count():
        raise SystemExit(f"not drained within {timeout} s: {journal.pending_count()} left")
    return time.monotonic()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=100_000)
    args = parser.parse_args()
    n = args.events
    root = Path(tempfile.mkdtemp(prefix="tg-bench-ship-"))
    with run_collector(f"sqlite:///{root / 'collector.db'}") as collector:
        store = DeviceKeyStore(root / "pc")
        result = enroll(str(collector), collector.enroll_token, hostname="bench-pc",
                        branch="0101", store=store)
        device = Device(id=result.device_id, hostname="bench-pc", branch="0101")
        journal = Journal(root / "pc" / "journal.db", device=device,
                          max_rows=4 * n, max_bytes=1 << 31)
        settings = ShipperSettings(idle_poll_s=0.05, backoff_base_s=0.05, backoff_max_s=1.0)
        shipper = Shipper(journal, store.load, device=device, settings=settings)
        events = [_event(device, i) for i in range(n)]
        size = len(events[0].to_json())

        # 1. Live.
        shipper.start()
        lat: list[float] = []
        t0 = time.monotonic()
        for ev in events:
            s = time.perf_counter()
            journal.record(ev)
            lat.append(time.perf_counter() - s)
        t_recorded = time.monotonic()
        t_done = _wait_drained(journal, 600)
        lat.sort()
        live_rate = n / (t_done - t0)
        print(f"events: {n}, ~{size} bytes of JSON each, batches of up to "
              f"{settings.max_events} (gzip)")
        print(f"record() while shipping: p50 {_percentile(lat, 0.50) * 1e3:.3f} ms, "
              f"p99 {_percentile(lat, 0.99) * 1e3:.3f} ms, max {lat[-1] * 1e3:.3f} ms, "
              f"mean {statistics.fmean(lat) * 1e3:.3f} ms")
        print(f"live: recorded in {t_recorded - t0:.1f} s, all acknowledged after "
              f"{t_done - t0:.1f} s -> {live_rate:,.0f} events/s end to end")

        # 2. Offline backlog.
        collector.stop()
        backlog = [_event(device, n + i) for i in range(n)]
        lat2: list[float] = []
        for ev in backlog:
            s = time.perf_counter()
            journal.record(ev)
            lat2.append(time.perf_counter() - s)
        lat2.sort()
        print(f"record() offline: p50 {_percentile(lat2, 0.50) * 1e3:.3f} ms, "
              f"p99 {_percentile(lat2, 0.99) * 1e3:.3f} ms")
        collector.start()
        t1 = time.monotonic()
        shipper.wake()
        t_drained = _wait_drained(journal, 900)
        # The shipper may still be in a backoff pause when the collector returns; that pause is
        # part of the real drain time (at most backoff_max_s).
        print(f"offline backlog of {n} drained in {t_drained - t1:.1f} s "
              f"({n / (t_drained - t1):,.0f} events/s)")
        shipper.stop()
        print(f"shipper: {shipper.stats.batches} batches, {shipper.stats.acked} acked, "
              f"{shipper.stats.failures} failed attempts; journal verify: "
              f"{'OK' if journal.verify().ok else 'BROKEN'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
