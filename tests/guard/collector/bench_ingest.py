"""Collector ingestion throughput: signed gzip batches into a collector process; prints events/s.

Run from the repository root: .venv/bin/python -m tests.guard.collector.bench_ingest [N]
A script, not a test: it prints figures and asserts nothing about speed.
"""

from __future__ import annotations

import sys
import tempfile
import threading
import time

from tests.support.servers import create_database, run_collector, start_postgres

from ._helpers import Terminal, stored_ids

BATCH = 500


def _run(db_url: str, label: str, total: int, senders: int) -> None:
    with run_collector(db_url) as c:
        terms = [Terminal(c, c.enroll_token, f"dev-bench-{i}") for i in range(senders)]
        per = total // senders
        bodies = [[Terminal.body([t.finding_event(justification="业务办理需要")
                                  for _ in range(BATCH)], compress=True)
                   for _ in range(per // BATCH)] for t in terms]
        latencies: list[float] = []
        lock = threading.Lock()

        def send(i: int) -> None:
            for body in bodies[i]:
                t0 = time.perf_counter()
                r = terms[i].post(body, compress=True)
                dt = time.perf_counter() - t0
                assert r.status_code == 200, r.text
                with lock:
                    latencies.append(dt)

        threads = [threading.Thread(target=send, args=(i,)) for i in range(senders)]
        start = time.perf_counter()
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        elapsed = time.perf_counter() - start
        n = len(stored_ids(db_url))
        latencies.sort()
        p50 = latencies[len(latencies) // 2] * 1000
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000
        print(f"{label:<10} senders={senders} events={n:>6} batch={BATCH} gzip  "
              f"{n / elapsed:>8.0f} events/s  batch p50 {p50:.0f} ms  p99 {p99:.0f} ms")


def main() -> int:
    total = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    with tempfile.TemporaryDirectory() as tmp:
        _run(f"sqlite:///{tmp}/a.db", "sqlite", total, 1)
        _run(f"sqlite:///{tmp}/b.db", "sqlite", total, 2)
    with start_postgres() as pg:
        _run(create_database(pg, "bench1"), "postgres", total, 1)
        _run(create_database(pg, "bench2"), "postgres", total, 2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
