"""Tests of the event journal: durability, outbox, hash chain, bounds, recovery from bad files."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from guard.delivery.journal import GENESIS_HASH, Journal, JournalError, row_hash
from guard.events import EventType
from guard.model import Channel, Device, Event

DEVICE = Device(id="dev-journal", hostname="teller-pc-01", branch="0101")


def _event(i: int, **detail: str | int) -> Event:
    return Event(type="CLIPBOARD_COPY", device=DEVICE, channel=Channel.CLIPBOARD,
                 detail={"i": i, **detail})


def _journal(tmp_path: Path, **kw: object) -> Journal:
    return Journal(tmp_path / "journal.db", device=DEVICE,
                   fallback_dir=tmp_path / "fallback", **kw)  # type: ignore[arg-type]


def _raw(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(str(path), isolation_level=None)


def test_record_then_batches_in_order_and_shipped_only_when_marked(tmp_path: Path) -> None:
    j = _journal(tmp_path)
    events = [_event(i) for i in range(25)]
    for e in events:
        j.record(e)
    batch = j.next_batch(max_events=10, max_bytes=1 << 20)
    assert [r.event_id for r in batch] == [str(e.id) for e in events[:10]]
    assert Event.from_json(batch[0].body) == events[0]
    # Not marked: the same batch comes again.
    assert [r.seq for r in j.next_batch(10, 1 << 20)] == [r.seq for r in batch]
    j.mark_shipped([r.seq for r in batch])
    nxt = j.next_batch(100, 1 << 20)
    assert [r.event_id for r in nxt] == [str(e.id) for e in events[10:]]
    status = j.status()
    assert (status.pending, status.shipped, status.quarantined) == (15, 10, 0)
    assert status.last_ack is not None


def test_next_batch_respects_bytes_but_never_returns_empty_for_one_big_event(
        tmp_path: Path) -> None:
    j = _journal(tmp_path)
    j.record(_event(0, pad="x" * 5000))
    for i in range(1, 5):
        j.record(_event(i))
    first = j.next_batch(100, max_bytes=1000)
    assert len(first) == 1  # the big one alone, so it can be tried and quarantined if refused
    j.mark_shipped([first[0].seq])
    one = len(j.next_batch(1, 1 << 20)[0].body)
    small = j.next_batch(100, max_bytes=2 * one + 10)
    assert len(small) == 2


def test_quarantine_takes_rows_out_of_the_queue_and_keeps_them(tmp_path: Path) -> None:
    j = _journal(tmp_path)
    for i in range(3):
        j.record(_event(i))
    first = j.next_batch(1, 1 << 20)[0]
    j.quarantine([first.seq], "422: schema")
    assert [r.seq for r in j.next_batch(10, 1 << 20)] == [first.seq + 1, first.seq + 2]
    [(kept, reason)] = j.quarantined()
    assert kept.event_id == first.event_id and reason == "422: schema"
    assert j.status().quarantined == 1


def test_events_survive_reopen_and_chain_verifies(tmp_path: Path) -> None:
    j = _journal(tmp_path)
    ids = []
    for i in range(50):
        e = _event(i)
        ids.append(str(e.id))
        j.record(e)
    j.close()
    j2 = _journal(tmp_path)
    assert [r.event_id for r in j2.records()] == ids
    result = j2.verify()
    assert result.ok and result.rows == 50 and result.first_seq == 1 and result.last_seq == 50
    # Uses WAL and a full sync, as the durability promise relies on both.
    assert _raw(tmp_path / "journal.db").execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_record_is_durable_against_sigkill(tmp_path: Path) -> None:
    """A child prints an id only after record() returned; SIGKILL it; every printed id is there."""
    path = tmp_path / "journal.db"
    code = textwrap.dedent(f"""
        import sys
        from guard.delivery.journal import Journal
        from guard.model import Channel, Device, Event
        d = Device(id="dev-kill", hostname="h")
        j = Journal({str(path)!r}, device=d)
        i = 0
        while True:
            e = Event(type="T", device=d, channel=Channel.SYSTEM, detail={{"i": i}})
            j.record(e)
            sys.stdout.write(str(e.id) + "\\n"); sys.stdout.flush()
            i += 1
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    printed = [proc.stdout.readline().strip() for _ in range(300)]
    proc.kill()  # SIGKILL
    rest = proc.stdout.read().split()
    proc.wait()
    j = Journal(path, device=DEVICE)
    stored = [r.event_id for r in j.records()]
    lines = printed + [x for x in rest if len(x) == 36]  # a cut-off last line was never complete
    assert stored[: len(lines)] == lines
    assert j.verify().ok


def test_verify_detects_an_edited_row(tmp_path: Path) -> None:
    j = _journal(tmp_path)
    for i in range(10):
        j.record(_event(i))
    db = _raw(tmp_path / "journal.db")
    body = db.execute("SELECT body FROM events WHERE seq = 4").fetchone()[0]
    edited = json.loads(body)
    edited["teller"] = "someone-else"
    db.execute("UPDATE events SET body = ? WHERE seq = 4", (json.dumps(edited),))
    result = j.verify()
    assert not result.ok and result.broken_seq == 4 and "changed" in result.reason


def test_verify_detects_an_edit_that_also_rewrote_the_row_hash(tmp_path: Path) -> None:
    j = _journal(tmp_path)
    for i in range(10):
        j.record(_event(i))
    db = _raw(tmp_path / "journal.db")
    prev = db.execute("SELECT prev_hash FROM events WHERE seq = 6").fetchone()[0]
    db.execute("UPDATE events SET body = 'x', hash = ? WHERE seq = 6", (row_hash(prev, 6, "x"),))
    result = j.verify()
    # The chain is keyed: a hash recomputed without the key is caught at the edited row itself.
    assert not result.ok and result.broken_seq == 6 and "changed" in result.reason


@pytest.mark.parametrize(("deleted", "broken"), [(5, 5), (1, 1), (10, 10)])
def test_verify_detects_a_deleted_row(tmp_path: Path, deleted: int, broken: int) -> None:
    j = _journal(tmp_path)
    for i in range(10):
        j.record(_event(i))
    _raw(tmp_path / "journal.db").execute("DELETE FROM events WHERE seq = ?", (deleted,))
    result = j.verify()
    assert not result.ok
    assert result.broken_seq == broken
    assert "missing" in result.reason


def test_bounds_prune_shipped_rows_first_and_chain_still_verifies(tmp_path: Path) -> None:
    j = _journal(tmp_path, max_rows=20)
    for i in range(15):
        j.record(_event(i))
    j.mark_shipped([r.seq for r in j.next_batch(15, 1 << 20)])
    pending = [_event(100 + i) for i in range(10)]
    for e in pending:
        j.record(e)
    ids = [r.event_id for r in j.records()]
    assert len(ids) <= 20
    # Every unshipped event is still there; only shipped ones were pruned.
    assert [str(e.id) for e in pending] == ids[-10:]
    assert j.status().dropped_total == 0
    assert not any(EventType.EVENTS_DROPPED in r.body for r in j.records())
    result = j.verify()
    assert result.ok and result.first_seq is not None and result.first_seq > 1


def _aged(i: int, days: float) -> Event:
    return Event(type="CLIPBOARD_COPY", device=DEVICE, channel=Channel.CLIPBOARD,
                 time=datetime.now(UTC) - timedelta(days=days), detail={"i": i})


def test_max_age_prunes_old_shipped_rows_and_never_pending_ones(tmp_path: Path) -> None:
    j = _journal(tmp_path, max_age_days=30)
    old_shipped = [_aged(i, 40) for i in range(5)]
    young_shipped = [_aged(10, 2)]
    old_pending = [_aged(20, 90)]
    old_shipped_later = [_aged(30, 60)]
    for e in old_shipped + young_shipped:
        j.record(e)
    j.mark_shipped([r.seq for r in j.next_batch(100, 1 << 20)])
    for e in old_pending + old_shipped_later:
        j.record(e)
    j.mark_shipped([j.records()[-1].seq])  # shipped, but behind the pending row

    assert j.prune_expired() == 5  # the young shipped row ends the cut
    kept = [r.event_id for r in j.records()]
    assert kept == [str(e.id) for e in young_shipped + old_pending + old_shipped_later]
    assert j.verify().ok

    # Much later: everything is old, yet the pending row stays (nothing unshipped is lost).
    assert j.prune_expired(now=datetime.now(UTC) + timedelta(days=365)) == 1
    assert [r.event_id for r in j.records()] == [str(e.id) for e in old_pending
                                                 + old_shipped_later]
    assert j.pending_count() == 1 and j.status().dropped_total == 0
    assert j.verify().ok
    assert j.prune_expired(now=datetime.now(UTC) + timedelta(days=365)) == 0


def test_without_an_age_limit_nothing_is_pruned_by_age(tmp_path: Path) -> None:
    j = _journal(tmp_path)
    j.record(_aged(0, 4000))
    j.mark_shipped([r.seq for r in j.next_batch(10, 1 << 20)])
    assert j.prune_expired() == 0 and len(j.records()) == 1


def test_bounds_drop_oldest_unshipped_with_an_events_dropped_event(tmp_path: Path) -> None:
    j = _journal(tmp_path, max_rows=20)
    events = [_event(i) for i in range(30)]
    for e in events:
        j.record(e)
    records = j.records()
    assert len(records) <= 20
    bodies = [Event.from_json(r.body) for r in records]
    notices = [b for b in bodies if b.type == EventType.EVENTS_DROPPED]
    assert notices and all(n.channel == Channel.SYSTEM for n in notices)
    dropped = sum(int(n.detail["count"] or 0) for n in notices)
    kept_ids = {r.event_id for r in records}
    lost = [e for e in events if str(e.id) not in kept_ids]
    # The count says how many real events went, and they are the oldest.
    assert dropped == len(lost) == j.status().dropped_total
    assert lost == events[: len(lost)]
    assert notices[-1].detail["total"] == len(lost)
    assert j.verify().ok


def test_bounds_by_bytes(tmp_path: Path) -> None:
    j = _journal(tmp_path, max_bytes=20_000)
    for i in range(60):
        j.record(_event(i, pad="p" * 400))
    total = sum(len(r.body.encode()) for r in j.records())
    assert total <= 20_000
    assert j.status().dropped_total > 0
    assert j.verify().ok


def test_verify_still_detects_tampering_after_pruning(tmp_path: Path) -> None:
    j = _journal(tmp_path, max_rows=20)
    for i in range(40):
        j.record(_event(i))
    first = j.verify().first_seq
    assert first is not None and first > 1
    _raw(tmp_path / "journal.db").execute("DELETE FROM events WHERE seq = ?", (first,))
    result = j.verify()
    assert not result.ok and result.broken_seq == first


def test_corrupt_file_is_moved_aside_and_a_new_journal_works(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "journal.db"
    path.write_bytes(b"this is not a database, it is what a disk error left behind" * 100)
    with caplog.at_level(logging.ERROR, logger="guard.delivery.journal"):
        j = _journal(tmp_path)
    assert j.path == path
    aside = list(tmp_path.glob("journal.db.broken-*"))
    assert len(aside) == 1 and aside[0].read_bytes().startswith(b"this is not a database")
    assert any("moved aside" in r.getMessage() for r in caplog.records)
    j.record(_event(1))
    # The event, after the notice that says a journal was lost (nothing in it could be read).
    assert j.pending_count() == 2 and j.verify().ok
    notice = Event.from_json(j.records()[0].body)
    assert notice.type == EventType.JOURNAL_SALVAGED
    assert notice.detail["salvaged"] == 0 and notice.detail["lost_unknown"] is True


def test_file_corrupted_while_open_is_moved_aside_on_next_write(tmp_path: Path) -> None:
    j = _journal(tmp_path)
    for i in range(200):
        j.record(_event(i, pad="q" * 300))
    j.close()
    path = tmp_path / "journal.db"
    with open(path, "r+b") as f:  # smash pages in the middle, keep the header
        f.seek(8192)
        f.write(os.urandom(32768))
    j2 = _journal(tmp_path)
    j2.record(_event(999))
    assert any(tmp_path.glob("journal.db.broken-*"))
    assert "999" in j2.records()[-1].body
    assert j2.verify().ok


def test_unusable_path_falls_back_and_keeps_working(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # The data directory is a plain file: nothing can be created under it, even as root.
    blocker = tmp_path / "data"
    blocker.write_text("not a directory")
    with caplog.at_level(logging.ERROR, logger="guard.delivery.journal"):
        j = Journal(blocker / "journal.db", device=DEVICE, fallback_dir=tmp_path / "fb")
    assert j.path == tmp_path / "fb" / "journal.db"
    assert any("fallback" in r.getMessage() for r in caplog.records)
    j.record(_event(1))
    assert j.pending_count() == 1


def test_nowhere_writable_keeps_events_in_memory(tmp_path: Path) -> None:
    blocker = tmp_path / "data"
    blocker.write_text("not a directory")
    j = Journal(blocker / "journal.db", device=DEVICE, fallback_dir=blocker / "fb")
    assert j.path is None
    j.record(_event(1))
    assert j.pending_count() == 1 and j.verify().ok


def test_disk_full_prunes_shipped_rows_and_keeps_recording(tmp_path: Path) -> None:
    # max_page_count makes SQLite report SQLITE_FULL exactly as a full disk does.
    j = _journal(tmp_path, max_page_count=40)
    for i in range(2000):  # far more than 40 pages hold
        j.record(_event(i, pad="z" * 500))
        if i % 20 == 19:
            j.mark_shipped([r.seq for r in j.next_batch(20, 1 << 20)])
    assert j.status().dropped_total == 0  # shipped rows made room, nothing pending was lost
    assert not list(tmp_path.glob("*.broken-*"))  # a full journal is not "broken"
    assert j.verify().ok


def test_disk_full_with_nothing_shipped_drops_oldest_with_notice(tmp_path: Path) -> None:
    j = _journal(tmp_path, max_page_count=40)
    events = [_event(i, pad="z" * 500) for i in range(400)]
    for e in events:
        j.record(e)
    records = j.records()
    assert records[-1].event_id == str(events[-1].id)  # the newest event is always kept
    assert any(EventType.EVENTS_DROPPED in r.body for r in records)
    assert j.status().dropped_total > 0
    assert not list(tmp_path.glob("*.broken-*"))
    assert j.verify().ok


def test_disk_full_on_a_real_small_filesystem(tmp_path: Path) -> None:
    mnt = tmp_path / "small"
    mnt.mkdir()
    rc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)],
                        capture_output=True).returncode
    if rc != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        j = Journal(mnt / "journal.db", device=DEVICE, fallback_dir=tmp_path / "fb")
        for i in range(8000):
            j.record(_event(i, pad="y" * 500))
            j.mark_shipped([r.seq for r in j.next_batch(50, 1 << 20)])
        # 2000 x ~900 bytes is far beyond 4 MiB: done rows were pruned to make room.
        assert j.verify().ok
        assert j.path is not None
        j.close()
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_meta_status_keeps_last_error(tmp_path: Path) -> None:
    j = _journal(tmp_path)
    j.note_error("collector unreachable: ConnectError")
    status = j.status()
    assert status.last_error == "collector unreachable: ConnectError"
    assert status.last_error_time is not None


def test_genesis_and_hash_format(tmp_path: Path) -> None:
    j = _journal(tmp_path)
    j.record(_event(0))
    row = _raw(tmp_path / "journal.db").execute(
        "SELECT seq, body, prev_hash, hash FROM events").fetchone()
    assert row[2] == GENESIS_HASH
    assert row[3] == row_hash(GENESIS_HASH, row[0], row[1], j.chain_key)
    assert j.chain_key is not None and len(j.chain_key) == 32


def test_tiny_bounds_are_refused(tmp_path: Path) -> None:
    with pytest.raises(JournalError, match="max_rows"):
        _journal(tmp_path, max_rows=3)
