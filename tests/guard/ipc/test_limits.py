"""The local channel's per-user limits and the service's hashing, with the real client and server
in this process (the attacks as other accounts are in test_local_attacks.py)."""

from __future__ import annotations

import hmac
import json
from pathlib import Path

from guard.delivery.journal import Journal
from guard.ipc.client import LocalChannelClient
from guard.ipc.server import LocalChannelServer
from guard.model import Device, FindingSummary
from tests.guard.ipc.conftest import event, eventually

KEY = b"k" * 32
CARD = "6222021234567890128"


def _bodies(journal: Journal) -> list[dict[str, object]]:
    return [json.loads(r.body) for r in journal.records()]


def _client(path: Path, tmp_path: Path) -> LocalChannelClient:
    from tests.guard.ipc.conftest import login

    return LocalChannelClient(path, tmp_path / "spool", device=Device(id="pc", hostname="pc"),
                              teller=login())


def test_events_over_the_rate_stay_in_the_agents_spool_and_arrive_later(
        journal: Journal, short_dir: Path, tmp_path: Path) -> None:
    """Issue 8 item 8: above the per-user rate the service answers refused-with-retry; the
    agent keeps the events spooled and they all arrive once the bucket refills."""
    server = LocalChannelServer(journal, short_dir / "r.sock", events_per_s=2.0,
                                events_burst=3)
    server.start()
    client = _client(short_dir / "r.sock", tmp_path)
    try:
        sent = [event(i) for i in range(10)]
        delivered = [client.send(e) for e in sent]
        assert delivered[:3] == [True] * 3 and not all(delivered)
        assert client.spooled() and server.throttled > 0
        eventually("the spool delivered", lambda: client.flush() or None)
        assert not client.spooled()
    finally:
        client.close()
        server.stop()
    bodies = _bodies(journal)
    assert {str(e.id) for e in sent} <= {str(b["id"]) for b in bodies}  # nothing lost
    (throttled,) = [b for b in bodies if b["type"] == "LOCAL_EVENTS_THROTTLED"]
    assert throttled["detail"]["refused"] == server.throttled  # one event, counts only


def test_values_over_the_hashing_rate_are_refused_with_retry(
        journal: Journal, short_dir: Path, tmp_path: Path) -> None:
    server = LocalChannelServer(journal, short_dir / "q.sock", hash_key=KEY, hashes_per_min=2)
    server.start()
    client = _client(short_dir / "q.sock", tmp_path)
    summary = FindingSummary(type="BANK_CARD", count=1, masked=["622202*********0128"])
    events = [event(i).model_copy(update={"findings": [summary]}) for i in range(3)]
    try:
        assert client.send(events[0], [[CARD]]) and client.send(events[1], [[CARD]])
        assert not client.send(events[2], [[CARD]])  # spooled, without its value
        assert CARD not in "".join(p.read_text() for p in client.spooled())
        assert client.flush()  # sent again without a value: journaled, no hashes
    finally:
        client.close()
        server.stop()
    by_id = {b["id"]: b for b in _bodies(journal)}
    assert by_id[str(events[2].id)]["findings"][0]["hashes"] == []
    assert by_id[str(events[0].id)]["findings"][0]["hashes"] != []


def test_the_service_hashes_handed_over_values_and_counts_them(
        journal: Journal, short_dir: Path, tmp_path: Path) -> None:
    server = LocalChannelServer(journal, short_dir / "h.sock", hash_key=KEY)
    server.start()
    client = _client(short_dir / "h.sock", tmp_path)
    e = event(0).model_copy(update={"findings": [FindingSummary(
        type="BANK_CARD", count=2, masked=["622202*********0128"])]})
    try:
        assert client.send(e, [[CARD]])
    finally:
        client.close()
        eventually("the connection closed", lambda: server.connections == 0 or None)
        server.stop()
    bodies = _bodies(journal)
    (copy,) = [b for b in bodies if b["id"] == str(e.id)]
    assert copy["findings"][0]["hashes"] == [hmac.new(KEY, CARD.encode(), "sha256").hexdigest()]
    (usage,) = [b for b in bodies if b["type"] == "HASHES_COMPUTED"]
    assert usage["detail"]["values"] == 1 and usage["detail"]["events"] == 1
    assert CARD not in json.dumps(bodies)
