"""The journal against an attacker with file access and against damage (issue 8, items 7-9, 13).

A damaged page loses only its rows (salvaged with a JOURNAL_SALVAGED event), `journal verify`
reports a damaged file instead of crashing, every file is private whatever the umask, the
fallback directory is never another account's, one teller's flood cannot push another teller's
events out, and every tampering with the keyed chain is caught by the real `journal verify`.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from guard.delivery.journal import (
    GENESIS_HASH,
    SHIPPED,
    Journal,
    fallback_dir,
    key_path,
    row_hash,
)
from guard.events import EventType
from guard.model import Channel, Device, Event

ROOT = Path(__file__).resolve().parents[3]
DEVICE = Device(id="dev-attack", hostname="teller-pc-02", branch="0102")


def _event(i: int, teller: str = "teller-a", pad: int = 0) -> Event:
    return Event(type="CLIPBOARD_COPY", device=DEVICE, channel=Channel.CLIPBOARD, teller=teller,
                 detail={"i": i, "pad": "p" * pad})


def _journal(path: Path, **kw: object) -> Journal:
    return Journal(path, device=DEVICE, fallback_dir=path.parent / "fallback",
                   **kw)  # type: ignore[arg-type]


def _raw(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(str(path), isolation_level=None)


def _verify_cli(path: Path) -> subprocess.CompletedProcess[str]:
    """The real command, in its own process, as an administrator would run it."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "guard.cli", "journal", "verify", "--path",
                           str(path), "--json"], capture_output=True, text=True, env=env,
                          timeout=120)


def _smash_middle(path: Path, pages: int = 3) -> None:
    """Overwrite whole pages in the middle of the file, as a bad sector or a torn write does."""
    page = int(_raw(path).execute("PRAGMA page_size").fetchone()[0])
    count = path.stat().st_size // page
    assert count > 20, "the journal is too small to have a middle"
    with open(path, "r+b") as f:
        f.seek((count // 2) * page)
        f.write(b"\xa5" * (pages * page))


# ---------------------------------------------------------------- item 7: salvage, verify


@pytest.fixture
def damaged(tmp_path: Path) -> Iterator[tuple[Path, list[Event], list[Event]]]:
    """A real journal of 400 events (the first 150 shipped) with pages in its middle smashed."""
    path = tmp_path / "journal.db"
    j = _journal(path)
    events = [_event(i, pad=300) for i in range(400)]
    for e in events:
        j.record(e)
    j.mark_shipped([r.seq for r in j.next_batch(150, 1 << 30)])
    j.close()  # the last connection checkpoints the WAL into the file
    assert not Path(str(path) + "-wal").exists()
    _smash_middle(path)
    yield path, events[:150], events[150:]


def test_verify_reports_a_damaged_journal_instead_of_crashing(
        damaged: tuple[Path, list[Event], list[Event]]) -> None:
    path, _, _ = damaged
    proc = _verify_cli(path)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    report = json.loads(proc.stdout)
    assert report["ok"] is False and "damaged" in report["reason"]
    assert report["rows"] > 0 and report["broken_seq"] == report["last_seq"] + 1


def test_a_damaged_page_loses_only_its_rows_and_a_salvage_event_says_how_many(
        damaged: tuple[Path, list[Event], list[Event]]) -> None:
    path, shipped, pending = damaged
    j = _journal(path)
    assert j.path == path
    (aside,) = [p for p in path.parent.glob("journal.db.broken-*")
                if not p.name.endswith(("-wal", "-shm"))]
    records = j.records()
    notice = Event.from_json(records[0].body)
    assert notice.type == EventType.JOURNAL_SALVAGED and notice.channel == Channel.SYSTEM
    carried = {r.event_id for r in records[1:]}
    pending_ids = [str(e.id) for e in pending]
    kept_pending = [i for i in pending_ids if i in carried]
    # Most unshipped events survive (three smashed pages hold a few dozen rows of 400), in order,
    # and they are still unshipped: they will be delivered.
    assert len(kept_pending) >= len(pending) // 2
    queued = [r.event_id for r in j.next_batch(1000, 1 << 30) if r.event_id != str(notice.id)]
    assert queued == kept_pending
    # The pending rows come first, the shipped ones after them, still done.
    kept_shipped = [r.event_id for r in records[1 + len(kept_pending):]]
    assert set(kept_shipped) <= {str(e.id) for e in shipped}
    # The notice's counts are the truth: what came over, and what did not.
    d = notice.detail
    assert d["salvaged"] == len(records) - 1
    assert d["salvaged_pending"] == len(kept_pending)
    assert d["lost"] == 400 - (len(records) - 1) > 0
    assert d["lost_pending"] == len(pending) - len(kept_pending)
    assert d["moved_to"] == aside.name
    assert j.verify().ok
    # Numbering goes on after the damaged journal's, so the collector sees no wipe.
    assert records[0].seq > 400
    j.close()
    assert _verify_cli(path).returncode == 0


# ---------------------------------------------------------------- item 13: the keyed chain


def _rechain_without_key(db: sqlite3.Connection) -> None:
    """Edit row 8 and recompute every hash after it the way anyone can: without the key."""
    rows = db.execute("SELECT seq, body, prev_hash FROM events WHERE seq >= 8 ORDER BY seq")
    rows = rows.fetchall()
    prev = rows[0][2]
    for seq, body, _ in rows:
        if seq == 8:
            edited = json.loads(body)
            edited["teller"] = "someone-else"
            body = json.dumps(edited)
        h = row_hash(prev, seq, body)
        db.execute("UPDATE events SET body = ?, prev_hash = ?, hash = ? WHERE seq = ?",
                   (body, prev, h, seq))
        prev = h


def _cut_tail(db: sqlite3.Connection) -> None:
    db.execute("DELETE FROM events WHERE seq > 15")
    db.execute("UPDATE sqlite_sequence SET seq = 15 WHERE name = 'events'")


def _forge_anchor(db: sqlite3.Connection) -> None:
    """Cut the first rows and point the anchor at the last one cut, as pruning would."""
    h = db.execute("SELECT hash FROM events WHERE seq = 6").fetchone()[0]
    db.execute("DELETE FROM events WHERE seq <= 6")
    db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES('anchor_seq', '6')")
    db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES('anchor_hash', ?)", (h,))


def _mark_pending_shipped(db: sqlite3.Connection) -> None:
    db.execute("UPDATE events SET state = ? WHERE state = 0", (SHIPPED,))


def _wipe_rows(db: sqlite3.Connection) -> None:
    db.execute("DELETE FROM events")
    db.execute("DELETE FROM meta")
    db.execute("DELETE FROM sqlite_sequence")


TAMPERING: dict[str, Callable[[sqlite3.Connection], None]] = {
    "edit and re-chain without the key": _rechain_without_key,
    "cut the tail": _cut_tail,
    "forge the anchor": _forge_anchor,
    "mark pending rows shipped": _mark_pending_shipped,
    "wipe every row and record": _wipe_rows,
}


@pytest.mark.parametrize("attack", list(TAMPERING))
def test_journal_verify_catches_tampering(tmp_path: Path, attack: str) -> None:
    path = tmp_path / "journal.db"
    j = _journal(path)
    for i in range(20):
        j.record(_event(i))
    j.mark_shipped([r.seq for r in j.next_batch(5, 1 << 20)])
    j.close()
    before = _verify_cli(path)
    assert before.returncode == 0, before.stdout + before.stderr
    db = _raw(path)
    TAMPERING[attack](db)
    db.close()
    proc = _verify_cli(path)
    assert "Traceback" not in proc.stderr
    assert proc.returncode == 1, f"{attack}: {proc.stdout}"
    assert json.loads(proc.stdout)["ok"] is False


def test_journal_verify_catches_a_deleted_journal_and_the_guard_records_it(
        tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    j = _journal(path)
    for i in range(5):
        j.record(_event(i))
    j.close()
    for f in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        f.unlink(missing_ok=True)
    proc = _verify_cli(path)
    assert proc.returncode == 1 and "deleted" in json.loads(proc.stdout)["reason"]
    # The guard starts again, and says that a journal was lost.
    j2 = _journal(path)
    [notice] = [Event.from_json(r.body) for r in j2.records()]
    assert notice.type == EventType.JOURNAL_SALVAGED and notice.detail["lost_unknown"] is True
    assert j2.verify().ok


def test_an_unkeyed_journal_of_an_older_version_is_rechained_with_the_key(
        tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    db = _raw(path)
    db.executescript("""
        CREATE TABLE events (seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL,
            body TEXT NOT NULL, size INTEGER NOT NULL, prev_hash TEXT NOT NULL,
            hash TEXT NOT NULL, state INTEGER NOT NULL DEFAULT 0, reason TEXT);
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    """)
    prev = GENESIS_HASH
    events = [_event(i) for i in range(5)]
    for seq, e in enumerate(events, 1):
        body = e.to_json()
        h = row_hash(prev, seq, body)
        db.execute("INSERT INTO events(seq, event_id, body, size, prev_hash, hash) "
                   "VALUES(?, ?, ?, ?, ?, ?)", (seq, str(e.id), body, len(body), prev, h))
        prev = h
    db.close()
    assert not key_path(path).exists()
    j = _journal(path)
    assert [r.event_id for r in j.records()] == [str(e.id) for e in events]
    assert j.verify().ok and key_path(path).exists()
    j.close()
    assert _verify_cli(path).returncode == 0


# ---------------------------------------------------------------- item 8: fair pruning


def test_one_tellers_flood_does_not_push_another_tellers_events_out(tmp_path: Path) -> None:
    j = _journal(tmp_path / "journal.db", max_rows=100)
    alice = [_event(i, teller="alice") for i in range(12)]
    flood = [_event(i, teller="mallory") for i in range(600)]
    for i, e in enumerate(flood):
        if i % 50 == 0 and alice:
            j.record(alice.pop(0))  # alice works on while mallory floods
        j.record(e)
    alice_all = [str(e.id) for e in _alice_events(j)]
    assert len(alice_all) == 12  # every one of alice's events is still there
    records = [Event.from_json(r.body) for r in j.records()]
    assert len(records) <= 100
    notices = [e for e in records if e.type == EventType.EVENTS_DROPPED]
    assert len(notices) == 1  # the flood is one summary, not a notice per pruning
    dropped = sum(int(n.detail["count"] or 0) for n in notices)
    from_mallory = sum(int(n.detail.get("source.mallory") or 0) for n in notices)
    assert dropped == from_mallory == j.status().dropped_total > 0
    assert all("source.alice" not in n.detail for n in notices)
    # Rows went from the middle of the chain; keyed links close the gaps.
    result = j.verify()
    assert result.ok and result.bridged > 0


def _alice_events(j: Journal) -> list[Event]:
    return [e for e in (Event.from_json(r.body) for r in j.records()) if e.teller == "alice"]


def test_when_both_flood_the_larger_source_loses_first(tmp_path: Path) -> None:
    j = _journal(tmp_path / "journal.db", max_rows=100)
    for i in range(300):
        j.record(_event(i, teller="bob" if i % 4 == 0 else "mallory"))
    tellers = [Event.from_json(r.body).teller for r in j.records()]
    # Dropping evened them out instead of cutting the oldest of both.
    assert abs(tellers.count("bob") - tellers.count("mallory")) <= 2
    assert j.verify().ok


def test_deleting_a_row_beside_a_pruning_gap_is_still_caught(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    j = _journal(path, max_rows=50)
    for i in range(200):
        j.record(_event(i, teller="alice" if i % 20 == 0 else "mallory"))
    assert j.verify().bridged > 0
    db = _raw(path)
    (seq,) = db.execute("SELECT seq FROM events WHERE link_mac IS NOT NULL LIMIT 1").fetchone()
    db.execute("DELETE FROM events WHERE seq = (SELECT MAX(seq) FROM events WHERE seq < ?)",
               (seq,))
    assert not j.verify().ok


# ---------------------------------------------------------------- item 9: modes, fallback


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_every_journal_file_is_private_whatever_the_umask(tmp_path: Path,
                                                          open_umask: None) -> None:
    path = tmp_path / "journal.db"
    j = _journal(path)
    for i in range(30):
        j.record(_event(i, pad=200))
    made = [path, Path(f"{path}-wal"), Path(f"{path}-shm"), key_path(path),
            path.with_name(path.name + ".reserve")]
    for f in made:
        assert f.exists(), f
        assert _mode(f) == 0o600, f"{f.name}: {oct(_mode(f))}"
    j.close()
    path.write_bytes(b"garbage, as a disk error leaves it" * 200)
    os.chmod(path, 0o644)  # as an older version left it
    j2 = _journal(path)
    j2.record(_event(99))
    aside = list(tmp_path.glob("journal.db.broken-*"))
    assert aside
    for f in [*aside, path, Path(f"{path}-wal"), Path(f"{path}-shm")]:
        if f.exists():
            assert _mode(f) == 0o600, f"{f.name}: {oct(_mode(f))}"
    j2.close()


@pytest.fixture
def tmpdir_here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    base = tmp_path / "tmp"
    base.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(base))
    return base


@pytest.mark.skipif(not hasattr(os, "getuid"), reason="POSIX owners")
@pytest.mark.parametrize("planted", ["writable by others", "another user's", "a symlink"])
def test_a_fallback_directory_planted_by_another_account_is_not_used(
        tmpdir_here: Path, tmp_path: Path, planted: str) -> None:
    usual = tmpdir_here / f"teller-guard-{os.getuid()}"
    if planted == "a symlink":
        target = tmp_path / "elsewhere"
        target.mkdir(mode=0o700)
        usual.symlink_to(target)
    else:
        usual.mkdir()
        os.chmod(usual, 0o777 if planted == "writable by others" else 0o700)
        if planted == "another user's":
            if os.getuid() != 0:
                pytest.skip("making a directory another user's needs root")
            os.chown(usual, 65534, 65534)
    chosen = fallback_dir()
    assert chosen != usual and chosen.resolve() != usual.resolve()
    st = os.lstat(chosen)
    assert stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid()
    assert stat.S_IMODE(st.st_mode) == 0o700
    # The journal, pushed to its fallback, goes to the private directory.
    blocker = tmp_path / "data"
    blocker.write_text("not a directory")
    j = Journal(blocker / "journal.db", device=DEVICE)
    assert j.path is not None and j.path.parent != usual
    assert os.lstat(j.path.parent).st_uid == os.getuid()
    j.close()


@pytest.mark.skipif(not hasattr(os, "getuid"), reason="POSIX owners")
def test_the_users_own_private_fallback_directory_is_used(tmpdir_here: Path) -> None:
    usual = tmpdir_here / f"teller-guard-{os.getuid()}"
    usual.mkdir(mode=0o700)
    assert fallback_dir() == usual
