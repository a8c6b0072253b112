"""Two collector processes sharing one database store every event once, even under a race."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.support.servers import CollectorProcess, run_collector

from ._helpers import Terminal, admin_get, stored_ids


@pytest.fixture
def pair(db_url: str) -> Iterator[tuple[CollectorProcess, CollectorProcess]]:
    with run_collector(db_url) as a, run_collector(db_url) as b:
        yield a, b


def _race(*calls: Callable[[], httpx.Response]) -> list[httpx.Response]:
    """Run the calls at the same moment from separate threads."""
    barrier = threading.Barrier(len(calls))
    out: list[httpx.Response | None] = [None] * len(calls)

    def run(i: int) -> None:
        barrier.wait()
        out[i] = calls[i]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r is not None for r in out)
    return [r for r in out if r is not None]


def test_same_events_raced_to_two_processes_are_stored_once(
    pair: tuple[CollectorProcess, CollectorProcess], db_url: str
) -> None:
    a, b = pair
    t = Terminal(a, a.enroll_token, "dev-shared-1")  # enrolled at A, known to B through the DB
    expected: list[str] = []
    for _round in range(15):
        events = [t.event() for _ in range(40)]
        expected += [str(e.id) for e in events]
        body = t.body(events)
        # reversed order on B: the two writers meet the same rows from opposite ends
        body_b = t.body(list(reversed(events)))
        ts = int(time.time())
        ra, rb = _race(lambda: t.post(body, ts=ts, base_url=a),  # noqa: B023
                       lambda: t.post(body_b, ts=ts - 1, base_url=b))  # noqa: B023
        assert ra.status_code == 200, ra.text
        assert rb.status_code == 200, rb.text
        ids = [str(e.id) for e in events]
        assert ra.json()["acked"] == ids
        assert rb.json()["acked"] == list(reversed(ids))
        # every id was stored by exactly one of the two processes
        newly_a = set(ids) - set(ra.json()["duplicates"])
        newly_b = set(ids) - set(rb.json()["duplicates"])
        assert newly_a.isdisjoint(newly_b)
        assert newly_a | newly_b == set(ids)
    stored = stored_ids(db_url)
    assert Counter(stored) == Counter(expected)


def test_one_signed_batch_raced_to_two_processes_is_accepted_once(
    pair: tuple[CollectorProcess, CollectorProcess], db_url: str
) -> None:
    a, b = pair
    t = Terminal(a, a.enroll_token, "dev-shared-2")
    for _round in range(10):
        events = [t.event() for _ in range(20)]
        body = t.body(events)
        ts = int(time.time())
        responses = _race(lambda: t.post(body, ts=ts, base_url=a),  # noqa: B023
                          lambda: t.post(body, ts=ts, base_url=b))  # noqa: B023
        assert sorted(r.status_code for r in responses) == [200, 409], [r.text for r in responses]
    assert len(stored_ids(db_url)) == 10 * 20
    assert len(set(stored_ids(db_url))) == 10 * 20


def test_both_processes_answer_queries_from_the_shared_store(
    pair: tuple[CollectorProcess, CollectorProcess],
) -> None:
    a, b = pair
    t = Terminal(a, a.enroll_token, "dev-shared-3")
    assert t.send([t.event() for _ in range(5)], base_url=a).status_code == 200
    assert t.send([t.event() for _ in range(5)], base_url=b).status_code == 200
    for proc in (a, b):
        page = admin_get(proc, proc.admin_token, "/api/v1/events", device="dev-shared-3").json()
        assert len(page["events"]) == 10


def test_processes_starting_together_on_an_empty_database(db_url: str) -> None:
    """Both create the schema at the same moment; both serve."""
    from contextlib import ExitStack

    results: list[str] = []
    errors: list[BaseException] = []
    stack = ExitStack()
    barrier = threading.Barrier(3)

    def start() -> None:
        barrier.wait()
        try:
            results.append(stack.enter_context(run_collector(db_url)))
        except BaseException as exc:  # re-raised below, in the test's thread
            errors.append(exc)

    with stack:
        threads = [threading.Thread(target=start) for _ in range(3)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert errors == []
        assert len(results) == 3
        t = Terminal(results[0], "test-enroll-token", "dev-shared-4")
        for url in results:
            assert t.send([t.event()], base_url=url).status_code == 200
