"""The local event journal: a durable, hash-chained SQLite outbox that the shipper drains.

Every event is written (WAL, ``synchronous=FULL``) before `record()` returns, so it survives a
SIGKILL of the process and a power cut. Each row stores the hash of the previous row and a hash of
its own sequence number and canonical body, so an edited, inserted or deleted row breaks the chain
and `verify()` names the first broken link. Rows leave the outbox only after the collector
acknowledged them (`mark_shipped`) or the collector refused them for good (`quarantine`).

Done rows (shipped or quarantined) older than the policy's ``journal.max_age_days`` are pruned
(`prune_expired`); pending rows never are. The journal is also bounded in rows and bytes: done
rows are pruned first; if pending rows must go too, the oldest go and one ``EVENTS_DROPPED`` event
with their count is appended in their place. Pruning only ever removes the oldest rows and records
the hash of the last removed row as the chain's anchor, so the remaining chain still verifies.

A journal file that is corrupt or cannot be written is moved aside (renamed with a timestamp), a
clear line is logged and a new journal is started; if the directory itself cannot be written, a
fallback directory is used, and as a last resort an in-memory journal: the guard keeps protecting.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import sqlite3
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from guard.events import EventType, new_event
from guard.model import Device, Event, utc_now_iso

log = logging.getLogger(__name__)

JOURNAL_FILE = "journal.db"
GENESIS_HASH = "0" * 64

PENDING = 0
SHIPPED = 1
QUARANTINED = 2

DEFAULT_MAX_ROWS = 200_000
DEFAULT_MAX_BYTES = 256 * 1024 * 1024

# Meta keys.
META_ANCHOR_SEQ = "anchor_seq"
META_ANCHOR_HASH = "anchor_hash"
META_LAST_ACK = "last_ack"
META_LAST_ERROR = "last_error"
META_LAST_ERROR_TIME = "last_error_time"
META_DROPPED_TOTAL = "dropped_total"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL,
    body TEXT NOT NULL,
    size INTEGER NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    state INTEGER NOT NULL DEFAULT 0,
    reason TEXT
);
CREATE INDEX IF NOT EXISTS events_pending ON events(state, seq);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

# SQLite result codes (primary) that mean "this file cannot be used any more".
_SQLITE_CORRUPT = 11
_SQLITE_NOTADB = 26
_SQLITE_FULL = 13
_SQLITE_READONLY = 8
_SQLITE_IOERR = 10
_SQLITE_CANTOPEN = 14
_SQLITE_PERM = 3


class JournalError(Exception):
    """The journal cannot do what was asked; the message says what and how to fix it."""


@dataclass(frozen=True, slots=True)
class JournalRecord:
    """One journaled event as the shipper sees it: an opaque JSON body and its row number."""

    seq: int
    event_id: str
    body: str


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """The outcome of `Journal.verify()`: `ok`, or the first broken link and why."""

    ok: bool
    rows: int
    first_seq: int | None = None
    last_seq: int | None = None
    broken_seq: int | None = None
    reason: str = ""


@dataclass(frozen=True, slots=True)
class JournalStatus:
    """What `teller-guard events status` shows."""

    path: str
    pending: int
    shipped: int
    quarantined: int
    dropped_total: int
    last_ack: str | None
    last_error: str | None
    last_error_time: str | None


def default_path() -> Path:
    """The journal file in the machine's data directory."""
    from guard import paths

    return paths.data_dir() / JOURNAL_FILE


def row_hash(prev_hash: str, seq: int, body: str) -> str:
    """The chain hash of one row: SHA-256 over the previous hash, the row number and the body."""
    h = hashlib.sha256()
    h.update(prev_hash.encode("ascii"))
    h.update(b"\n")
    h.update(str(seq).encode("ascii"))
    h.update(b"\n")
    h.update(body.encode("utf-8"))
    return h.hexdigest()


def _error_code(exc: sqlite3.Error) -> int | None:
    code = getattr(exc, "sqlite_errorcode", None)
    return None if code is None else int(code) & 0xFF


def _is_fatal_file_error(exc: sqlite3.Error) -> bool:
    """Errors after which this file is not worth retrying: move it aside."""
    code = _error_code(exc)
    if code in (_SQLITE_CORRUPT, _SQLITE_NOTADB, _SQLITE_READONLY, _SQLITE_IOERR,
                _SQLITE_CANTOPEN, _SQLITE_PERM):
        return True
    text = str(exc).lower()
    return any(s in text for s in ("malformed", "not a database", "readonly", "unable to open",
                                   "disk i/o error"))


def _is_full(exc: sqlite3.Error) -> bool:
    return _error_code(exc) == _SQLITE_FULL or "full" in str(exc).lower()


class Journal:
    """The durable outbox of events. Thread-safe; one instance per process and file.

    Several processes may open the same file (the service ships, `teller-guard events status`
    reads); SQLite's WAL locking keeps them consistent.
    """

    def __init__(
        self,
        path: Path | str | None = None,
        *,
        max_rows: int = DEFAULT_MAX_ROWS,
        max_bytes: int = DEFAULT_MAX_BYTES,
        device: Device | None = None,
        fallback_dir: Path | str | None = None,
        synchronous: str = "FULL",
        max_page_count: int | None = None,
        reserve_bytes: int = 1024 * 1024,
        read_only: bool = False,
        max_age_days: int | None = None,
    ) -> None:
        if max_rows < 10:
            raise JournalError("max_rows must be at least 10 (room for an EVENTS_DROPPED event)")
        if synchronous.upper() not in ("FULL", "EXTRA", "NORMAL"):
            raise JournalError("synchronous must be FULL, EXTRA or NORMAL")
        self._requested = Path(path) if path is not None else default_path()
        self._fallback_dir = Path(fallback_dir) if fallback_dir is not None else Path(
            tempfile.gettempdir()) / f"teller-guard-{os.getuid() if hasattr(os, 'getuid') else 0}"
        self.max_rows = max_rows
        self.max_bytes = max_bytes
        self.max_age_days = max_age_days  # done rows older than this go (`prune_expired`)
        self._device = device
        self._synchronous = synchronous.upper()
        self._max_page_count = max_page_count
        self._reserve_bytes = 0 if read_only else reserve_bytes
        self.read_only = read_only
        self._lock = threading.RLock()
        self._listeners: list[Callable[[], None]] = []
        self._rows = 0
        self._bytes = 0
        self._conn: sqlite3.Connection | None = None
        # A second, read-only connection for the shipper's reads, so they do not wait for (or
        # hold up) record() in Python; WAL lets it read while the writer writes.
        self._rconn: sqlite3.Connection | None = None
        self._rlock = threading.Lock()
        self.path: Path | None = None  # None: in memory (last resort)
        self._open_somewhere()

    # ------------------------------------------------------------------ opening and recovery

    def _open_somewhere(self) -> None:
        """Open the requested file; on failure move it aside, then try the fallback, then memory."""
        if self.read_only:  # inspection (status, verify) never moves or creates anything
            try:
                self._open(self._requested)
            except (sqlite3.Error, OSError) as exc:
                self._close_quietly()
                raise JournalError(
                    f"cannot read the journal {self._requested}: {exc} (run as the administrator "
                    "or root if it belongs to the machine service)") from exc
            return
        candidates = [self._requested, self._fallback_dir / self._requested.name]
        for candidate in candidates:
            for attempt in (1, 2):
                try:
                    self._open(candidate)
                    if candidate != self._requested:
                        log.error("journal: %s cannot be used; journaling to fallback %s",
                                  self._requested, candidate)
                    return
                except (sqlite3.Error, OSError) as exc:
                    self._close_quietly()
                    if attempt == 1 and self._move_aside(candidate, exc):
                        continue
                    log.error("journal: cannot open %s (%s)", candidate, exc)
                    break
        log.critical("journal: no writable location for the journal; keeping events in memory "
                     "only until the data directory is fixed")
        self._open(None)

    def _open(self, path: Path | None) -> None:
        if path is not None and self.read_only:
            if not path.is_file():
                raise sqlite3.OperationalError(f"no journal file at {path}")
            conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True,
                                   isolation_level=None, check_same_thread=False, timeout=10.0)
        elif path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False,
                                   timeout=10.0)
        else:
            conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        try:
            conn.execute("PRAGMA busy_timeout=10000")
            if self.read_only:
                conn.execute("SELECT COUNT(*) FROM events").fetchone()
                conn.execute("SELECT COUNT(*) FROM meta").fetchone()
                self._conn, self.path = conn, path
                return
            if path is not None:
                mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    raise sqlite3.OperationalError(f"journal mode is {mode}, WAL needed")
            conn.execute(f"PRAGMA synchronous={self._synchronous}")
            # A short WAL, truncated after each checkpoint, so a full disk is not all WAL.
            conn.execute("PRAGMA wal_autocheckpoint=256")
            conn.execute("PRAGMA journal_size_limit=2097152")
            if self._max_page_count is not None:
                conn.execute(f"PRAGMA max_page_count={int(self._max_page_count)}")
            row = conn.execute("PRAGMA quick_check").fetchone()
            if row is None or row[0] != "ok":
                raise sqlite3.DatabaseError(f"database disk image is malformed ({row})")
            conn.executescript(_SCHEMA)
            rows, size = conn.execute(
                "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM events").fetchone()
            # A write proves the file is writable now rather than at the first event.
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT OR IGNORE INTO meta(key, value) VALUES('created', ?)",
                         (utc_now_iso(),))
            conn.execute("COMMIT")
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        self.path = path
        if path is not None:
            rconn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False,
                                    timeout=10.0)
            rconn.execute("PRAGMA busy_timeout=10000")
            rconn.execute("PRAGMA query_only=1")
            with self._rlock:
                self._rconn = rconn
        self._make_reserve()
        self._rows = int(rows)
        self._bytes = int(size)

    @property
    def _reserve_path(self) -> Path | None:
        return None if self.path is None else self.path.with_name(self.path.name + ".reserve")

    def _make_reserve(self) -> None:
        """Hold some disk space in a file, released when the disk is full so pruning can run."""
        path = self._reserve_path
        if path is None or self._reserve_bytes <= 0:
            return
        try:
            if path.exists() and path.stat().st_size >= self._reserve_bytes:
                return
            with open(path, "wb") as f:
                f.write(b"\0" * self._reserve_bytes)
                f.flush()
                os.fsync(f.fileno())
        except OSError:
            try:
                path.unlink(missing_ok=True)
            except OSError:
                pass

    def _release_reserve(self) -> bool:
        path = self._reserve_path
        if path is None or not path.exists():
            return False
        try:
            path.unlink()
        except OSError:
            return False
        log.error("journal: released the %d byte disk reserve %s to make room", self._reserve_bytes,
                  path)
        return True

    def _close_quietly(self) -> None:
        with self._rlock:
            if self._rconn is not None:
                try:
                    self._rconn.close()
                except sqlite3.Error:
                    pass
                self._rconn = None
        if self._conn is not None:
            try:
                self._conn.close()
            except sqlite3.Error:
                pass
            self._conn = None

    def _move_aside(self, path: Path, why: BaseException) -> bool:
        """Rename a journal that cannot be used (and its WAL files) with a timestamp suffix."""
        if not os.path.lexists(path):
            return False
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        target = path.with_name(f"{path.name}.broken-{stamp}")
        try:
            os.replace(path, target)
        except OSError as exc:
            log.error("journal: %s is unusable (%s) and cannot be moved aside (%s)", path, why, exc)
            return False
        for suffix in ("-wal", "-shm"):
            side = Path(str(path) + suffix)
            if os.path.lexists(side):
                try:
                    os.replace(side, Path(str(target) + suffix))
                except OSError:
                    pass
        log.error("journal: %s was unusable (%s); moved aside to %s and started a new journal",
                  path, why, target)
        return True

    def _recover(self, exc: sqlite3.Error) -> None:
        """After a fatal error on the open file: move it aside and start a new journal."""
        with self._lock:
            path = self.path
            self._close_quietly()
            if path is not None:
                self._move_aside(path, exc)
            self._open_somewhere()

    @property
    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise JournalError("the journal is closed")
        return self._conn

    def close(self) -> None:
        with self._lock:
            self._close_quietly()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ writing

    def add_listener(self, callback: Callable[[], None]) -> None:
        """Call `callback()` (from the recording thread, must not block) after each new event."""
        self._listeners.append(callback)

    def record(self, event: Event) -> None:
        """Append one event durably; returns only once it is on disk."""
        self.record_raw(str(event.id), event.to_json())

    def record_raw(self, event_id: str, body: str) -> None:
        """Append one already-validated event given as its JSON body (local channel, tests)."""
        self._write_with_recovery(lambda: self._insert_many([(event_id, body)]))
        for callback in list(self._listeners):
            callback()

    def _write_with_recovery(self, write: Callable[[], None]) -> None:
        with self._lock:
            try:
                write()
                return
            except sqlite3.Error as exc:
                self._rollback_quietly()
                if _is_full(exc):
                    self._write_when_full(write, exc)
                    return
                if not _is_fatal_file_error(exc):
                    raise JournalError(f"journal write failed: {exc}") from exc
                self._recover(exc)
            try:
                write()
            except sqlite3.Error as exc3:
                self._rollback_quietly()
                raise JournalError(
                    f"journal write failed even after starting a new journal: {exc3}; "
                    "check free space and permissions of the data directory") from exc3

    def _write_when_full(self, write: Callable[[], None], exc: sqlite3.Error) -> None:
        """The disk (or the page limit) is full: free pages inside the file, then retry.

        Done rows go first; then, as when over the bounds, the oldest pending rows with an
        EVENTS_DROPPED notice. A healthy but full journal is never moved aside: its pending
        events would never be shipped.
        """
        log.error("journal: %s is full (%s); pruning done rows and retrying", self.path, exc)
        self._release_reserve()
        for shed in (self._prune_done_for_space, self._checkpoint, self._drop_pending_for_space):
            shed()
            self._checkpoint()
            try:
                write()
                self._make_reserve()
                return
            except sqlite3.Error as again:
                self._rollback_quietly()
                if not _is_full(again):
                    raise JournalError(f"journal write failed: {again}") from again
        raise JournalError(f"the journal {self.path} is full and nothing can be pruned; free "
                           "disk space in the data directory")

    def _checkpoint(self) -> bool:
        """Copy the WAL into the database and truncate it: a full disk may be a long WAL."""
        if self.path is None:
            return False
        try:
            busy = self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
        except sqlite3.Error as exc:
            log.error("journal: checkpoint failed (%s)", exc)
            return False
        return not busy

    def _drop_pending_for_space(self) -> bool:
        """Drop the oldest rows (pending too) with an EVENTS_DROPPED notice."""
        db = self._db
        saved = (self.max_rows, self.max_bytes)
        try:
            db.execute("BEGIN IMMEDIATE")
            rows, nbytes = db.execute(
                "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM events").fetchone()
            if rows < 2:
                db.execute("ROLLBACK")
                return False
            self.max_rows = max(10, int(rows * 0.95))
            self.max_bytes = int(nbytes * 0.95)
            rows, nbytes = self._enforce_bounds(db, int(rows), int(nbytes))
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback_quietly()
            log.error("journal: could not drop old events to free space (%s)", exc)
            return False
        finally:
            self.max_rows, self.max_bytes = saved
        self._rows, self._bytes = rows, nbytes
        return True

    def _rollback_quietly(self) -> None:
        if self._conn is not None and self._conn.in_transaction:
            try:
                self._conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass

    def _insert_many(self, items: Sequence[tuple[str, str]]) -> None:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            prev_hash, next_seq = self._tail(db)
            added = 0
            for event_id, body in items:
                h = row_hash(prev_hash, next_seq, body)
                size = len(body.encode("utf-8"))
                db.execute(
                    "INSERT INTO events(seq, event_id, body, size, prev_hash, hash) "
                    "VALUES(?, ?, ?, ?, ?, ?)",
                    (next_seq, event_id, body, size, prev_hash, h),
                )
                prev_hash, next_seq = h, next_seq + 1
                added += size
            rows, nbytes = self._rows + len(items), self._bytes + added
            if rows > self.max_rows or nbytes > self.max_bytes:
                rows, nbytes = self._enforce_bounds(db, rows, nbytes)
            db.execute("COMMIT")
        except BaseException:
            self._rollback_quietly()
            raise
        self._rows, self._bytes = rows, nbytes

    @staticmethod
    def _tail(db: sqlite3.Connection) -> tuple[str, int]:
        """(hash of the last row or the anchor, next sequence number) inside a write transaction."""
        row = db.execute("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1").fetchone()
        if row is not None:
            return str(row[1]), int(row[0]) + 1
        meta = dict(db.execute(
            "SELECT key, value FROM meta WHERE key IN (?, ?)",
            (META_ANCHOR_SEQ, META_ANCHOR_HASH)).fetchall())
        seqrow = db.execute("SELECT seq FROM sqlite_sequence WHERE name='events'").fetchone()
        last_seq = int(seqrow[0]) if seqrow else int(meta.get(META_ANCHOR_SEQ, 0))
        return str(meta.get(META_ANCHOR_HASH, GENESIS_HASH)), last_seq + 1

    def _enforce_bounds(self, db: sqlite3.Connection, rows: int, nbytes: int) -> tuple[int, int]:
        """Prune the oldest rows (done ones first) until under the bounds; inside a transaction.

        Bounds are enforced down to 90 % so that pruning does not run on every insert.
        """
        target_rows = max(1, int(self.max_rows * 0.9))
        target_bytes = int(self.max_bytes * 0.9)
        # 1. The prefix of done rows (shipping is in order, so done rows are the oldest).
        first_pending = db.execute(
            "SELECT MIN(seq) FROM events WHERE state = ?", (PENDING,)).fetchone()[0]
        cut, cut_rows, cut_bytes = self._plan_cut(db, rows, nbytes, target_rows, target_bytes,
                                                  below=first_pending)
        dropped_pending = 0
        if rows - cut_rows > self.max_rows or nbytes - cut_bytes > self.max_bytes:
            # 2. Still too big: the oldest pending rows go too; leave room for the notice.
            cut, cut_rows, cut_bytes = self._plan_cut(db, rows, nbytes, target_rows - 1,
                                                      target_bytes - 4096, below=None)
            dropped_pending = int(db.execute(
                "SELECT COUNT(*) FROM events WHERE seq <= ? AND state = ?",
                (cut, PENDING)).fetchone()[0]) if cut is not None else 0
        if cut is None:
            return rows, nbytes
        anchor = db.execute("SELECT hash FROM events WHERE seq = ?", (cut,)).fetchone()[0]
        db.execute("DELETE FROM events WHERE seq <= ?", (cut,))
        self._set_meta_in(db, META_ANCHOR_SEQ, str(cut))
        self._set_meta_in(db, META_ANCHOR_HASH, str(anchor))
        rows -= cut_rows
        nbytes -= cut_bytes
        if dropped_pending:
            total = int(self._get_meta_in(db, META_DROPPED_TOTAL) or 0) + dropped_pending
            self._set_meta_in(db, META_DROPPED_TOTAL, str(total))
            log.error("journal: over its bounds (%d rows / %d bytes); dropped the %d oldest "
                      "unshipped events and recorded EVENTS_DROPPED", self.max_rows,
                      self.max_bytes, dropped_pending)
            notice = self._dropped_event(dropped_pending, total)
            body = notice.to_json()
            prev_hash, next_seq = self._tail(db)
            h = row_hash(prev_hash, next_seq, body)
            size = len(body.encode("utf-8"))
            db.execute(
                "INSERT INTO events(seq, event_id, body, size, prev_hash, hash) "
                "VALUES(?, ?, ?, ?, ?, ?)",
                (next_seq, str(notice.id), body, size, prev_hash, h))
            rows += 1
            nbytes += size
        return rows, nbytes

    @staticmethod
    def _plan_cut(db: sqlite3.Connection, rows: int, nbytes: int, target_rows: int,
                  target_bytes: int, below: int | None) -> tuple[int | None, int, int]:
        """The highest seq to delete (a prefix) to reach the targets, never reaching `below`."""
        need_rows = max(0, rows - target_rows)
        need_bytes = max(0, nbytes - target_bytes)
        if need_rows == 0 and need_bytes == 0:
            return None, 0, 0
        sql = "SELECT seq, size FROM events"
        params: tuple[int, ...] = ()
        if below is not None:
            sql += " WHERE seq < ?"
            params = (below,)
        sql += " ORDER BY seq"
        cut: int | None = None
        cut_rows = cut_bytes = 0
        for seq, size in db.execute(sql, params):
            if cut_rows >= need_rows and cut_bytes >= need_bytes:
                break
            cut, cut_rows, cut_bytes = int(seq), cut_rows + 1, cut_bytes + int(size)
        return cut, cut_rows, cut_bytes

    def _dropped_event(self, count: int, total: int) -> Event:
        device = self._device
        if device is None:
            from guard import identity

            device = identity.device()
        return new_event(EventType.EVENTS_DROPPED, device=device,
                         detail={"count": count, "total": total, "max_rows": self.max_rows,
                                 "max_bytes": self.max_bytes})

    def _prune_done_for_space(self, chunk: int = 256) -> bool:
        """When the disk is full: delete the done prefix so SQLite can reuse its pages.

        Deleting needs WAL space too, so it goes in small chunks with a checkpoint after each.
        """
        pruned = False
        while True:
            db = self._db
            try:
                db.execute("BEGIN IMMEDIATE")
                first_pending = db.execute(
                    "SELECT MIN(seq) FROM events WHERE state = ?", (PENDING,)).fetchone()[0]
                sql = "SELECT seq, hash FROM events"
                params: tuple[int, ...] = ()
                if first_pending is not None:
                    sql += " WHERE seq < ?"
                    params = (int(first_pending),)
                rows = db.execute(sql + " ORDER BY seq LIMIT ?", (*params, chunk)).fetchall()
                if not rows:
                    db.execute("ROLLBACK")
                    break
                cut, anchor = int(rows[-1][0]), str(rows[-1][1])
                db.execute("DELETE FROM events WHERE seq <= ?", (cut,))
                self._set_meta_in(db, META_ANCHOR_SEQ, str(cut))
                self._set_meta_in(db, META_ANCHOR_HASH, anchor)
                db.execute("COMMIT")
                pruned = True
            except sqlite3.Error as exc:
                self._rollback_quietly()
                log.error("journal: could not prune to free space (%s)", exc)
                break
            self._checkpoint()
        self._rows, self._bytes = self._db.execute(
            "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM events").fetchone()
        return pruned

    def prune_expired(self, now: datetime | None = None) -> int:
        """Delete the done rows whose event is older than `max_age_days`; returns how many.

        Only the oldest done rows go (the prefix before the first pending row, as when over the
        bounds), so the chain still verifies; the first row that is younger, pending or has no
        readable time ends the cut. Pending rows are never pruned by age: nothing unshipped is
        lost to it.
        """
        days = self.max_age_days
        if days is None or self.read_only:
            return 0
        cutoff = (now or datetime.now(UTC)) - timedelta(days=days)
        cutoff_jd = cutoff.timestamp() / 86400.0 + 2440587.5  # Julian day, as SQLite counts
        pruned = 0

        def write() -> None:
            nonlocal pruned
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                first_pending = db.execute(
                    "SELECT MIN(seq) FROM events WHERE state = ?", (PENDING,)).fetchone()[0]
                sql = ("SELECT seq, hash, size, CASE WHEN json_valid(body) THEN "
                       "julianday(json_extract(body, '$.time')) END FROM events")
                params: tuple[int, ...] = ()
                if first_pending is not None:
                    sql += " WHERE seq < ?"
                    params = (int(first_pending),)
                cut: int | None = None
                anchor = ""
                rows = nbytes = 0
                cur = db.execute(sql + " ORDER BY seq", params)
                try:
                    for seq, h, size, day in cur:
                        if day is None or float(day) >= cutoff_jd:
                            break
                        cut, anchor = int(seq), str(h)
                        rows, nbytes = rows + 1, nbytes + int(size)
                finally:
                    cur.close()
                if cut is not None:
                    db.execute("DELETE FROM events WHERE seq <= ?", (cut,))
                    self._set_meta_in(db, META_ANCHOR_SEQ, str(cut))
                    self._set_meta_in(db, META_ANCHOR_HASH, anchor)
                db.execute("COMMIT")
            except BaseException:
                self._rollback_quietly()
                raise
            self._rows, self._bytes = self._rows - rows, self._bytes - nbytes
            pruned = rows

        self._write_with_recovery(write)
        if pruned:
            log.info("journal: pruned %d done events older than %d days", pruned, days)
        return pruned

    # ------------------------------------------------------------------ the outbox

    def next_batch(self, max_events: int = 500, max_bytes: int = 1024 * 1024,
                   after_seq: int = 0) -> list[JournalRecord]:
        """The oldest pending events, in order: up to `max_events` and about `max_bytes`.

        A single event larger than `max_bytes` is still returned alone, so it can be tried (and
        quarantined if the collector refuses it) rather than block the queue.
        """
        with self._reading() as db:
            cur = db.execute(
                "SELECT seq, event_id, body, size FROM events WHERE state = ? AND seq > ? "
                "ORDER BY seq LIMIT ?", (PENDING, after_seq, max_events))
            out: list[JournalRecord] = []
            total = 0
            try:
                for seq, event_id, body, size in cur:
                    if out and total + int(size) > max_bytes:
                        break
                    out.append(JournalRecord(int(seq), str(event_id), str(body)))
                    total += int(size)
            finally:
                cur.close()  # end the read at once: an open read would hold back checkpoints
            return out

    def mark_shipped(self, seqs: Iterable[int], ack_time: str | None = None) -> None:
        """Mark rows acknowledged by the collector; call only after the acknowledgement."""
        self._set_state(list(seqs), SHIPPED, None, ack_time or utc_now_iso())

    def quarantine(self, seqs: Iterable[int], reason: str) -> None:
        """Take rows out of the queue for good (the collector refused them), keeping them."""
        self._set_state(list(seqs), QUARANTINED, reason[:500], None)

    def _set_state(self, seqs: list[int], state: int, reason: str | None,
                   ack_time: str | None) -> None:
        def write() -> None:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                for i in range(0, len(seqs), 500):
                    chunk = seqs[i:i + 500]
                    marks = ",".join("?" * len(chunk))
                    db.execute(f"UPDATE events SET state = ?, reason = ? WHERE seq IN ({marks})",
                               (state, reason, *chunk))
                if ack_time is not None:
                    self._set_meta_in(db, META_LAST_ACK, ack_time)
                db.execute("COMMIT")
            except BaseException:
                self._rollback_quietly()
                raise

        if seqs or ack_time is not None:
            self._write_with_recovery(write)

    @contextlib.contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        """The connection for reads that need no snapshot shared with a write."""
        with self._rlock:
            if self._rconn is not None:
                yield self._rconn
                return
        with self._lock:
            yield self._db

    def pending_count(self) -> int:
        with self._reading() as db:
            return int(db.execute(
                "SELECT COUNT(*) FROM events WHERE state = ?", (PENDING,)).fetchone()[0])

    def quarantined(self) -> list[tuple[JournalRecord, str]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, event_id, body, reason FROM events WHERE state = ? ORDER BY seq",
                (QUARANTINED,)).fetchall()
        return [(JournalRecord(int(s), str(i), str(b)), str(r or "")) for s, i, b, r in rows]

    def records(self) -> list[JournalRecord]:
        """Every row still in the journal, in order (tests, export)."""
        with self._lock:
            rows = self._db.execute("SELECT seq, event_id, body FROM events ORDER BY seq")
            return [JournalRecord(int(s), str(i), str(b)) for s, i, b in rows]

    # ------------------------------------------------------------------ meta and status

    @staticmethod
    def _set_meta_in(db: sqlite3.Connection, key: str, value: str) -> None:
        db.execute("INSERT INTO meta(key, value) VALUES(?, ?) "
                   "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, value))

    @staticmethod
    def _get_meta_in(db: sqlite3.Connection, key: str) -> str | None:
        row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def get_meta(self, key: str) -> str | None:
        with self._lock:
            return self._get_meta_in(self._db, key)

    def set_meta(self, key: str, value: str) -> None:
        def write() -> None:
            self._set_meta_in(self._db, key, value)

        self._write_with_recovery(write)

    def note_error(self, message: str) -> None:
        """Remember the last delivery error for `events status` (no customer data in it)."""
        def write() -> None:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            self._set_meta_in(db, META_LAST_ERROR, message[:500])
            self._set_meta_in(db, META_LAST_ERROR_TIME, utc_now_iso())
            db.execute("COMMIT")

        self._write_with_recovery(write)

    def status(self) -> JournalStatus:
        with self._lock:
            db = self._db
            counts = dict(db.execute("SELECT state, COUNT(*) FROM events GROUP BY state"))
            meta = dict(db.execute("SELECT key, value FROM meta"))
        return JournalStatus(
            path=str(self.path) if self.path is not None else ":memory:",
            pending=int(counts.get(PENDING, 0)),
            shipped=int(counts.get(SHIPPED, 0)),
            quarantined=int(counts.get(QUARANTINED, 0)),
            dropped_total=int(meta.get(META_DROPPED_TOTAL, 0)),
            last_ack=meta.get(META_LAST_ACK),
            last_error=meta.get(META_LAST_ERROR),
            last_error_time=meta.get(META_LAST_ERROR_TIME),
        )

    # ------------------------------------------------------------------ verification

    def verify(self) -> VerifyResult:
        """Walk the chain from the anchor to the last row; report the first broken link."""
        with self._lock:
            db = self._db
            db.execute("BEGIN")  # one consistent snapshot
            try:
                meta = dict(db.execute(
                    "SELECT key, value FROM meta WHERE key IN (?, ?)",
                    (META_ANCHOR_SEQ, META_ANCHOR_HASH)).fetchall())
                seqrow = db.execute(
                    "SELECT seq FROM sqlite_sequence WHERE name='events'").fetchone()
                high = int(seqrow[0]) if seqrow else 0
                expect_seq = int(meta.get(META_ANCHOR_SEQ, 0)) + 1
                expect_prev = str(meta.get(META_ANCHOR_HASH, GENESIS_HASH))
                rows = 0
                first: int | None = None
                last: int | None = None
                cur = db.execute("SELECT seq, body, prev_hash, hash FROM events ORDER BY seq")
                for seq, body, prev_hash, h in cur:
                    seq = int(seq)
                    if first is None:
                        first = seq
                    if seq != expect_seq:
                        return VerifyResult(False, rows, first, last, expect_seq,
                                            f"row {expect_seq} is missing (next row is {seq})")
                    if prev_hash != expect_prev:
                        return VerifyResult(False, rows, first, last, seq,
                                            f"row {seq} does not link to the row before it")
                    if row_hash(str(prev_hash), seq, str(body)) != h:
                        return VerifyResult(False, rows, first, last, seq,
                                            f"row {seq} was changed after it was written")
                    rows += 1
                    last = seq
                    expect_seq, expect_prev = seq + 1, str(h)
                if high >= expect_seq:
                    return VerifyResult(False, rows, first, last, expect_seq,
                                        f"rows {expect_seq}..{high} at the end are missing")
                return VerifyResult(True, rows, first, last)
            finally:
                db.execute("COMMIT")

