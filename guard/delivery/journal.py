"""The local event journal: a durable, keyed hash-chained SQLite outbox that the shipper drains.

Every event is written (WAL, ``synchronous=FULL``) before `record()` returns, so it survives a
SIGKILL of the process and a power cut. Each row stores the hash of the previous row and an
HMAC-SHA256, with the journal's chain key, over that hash, its own sequence number and its body;
the key lives in a 0600 file beside the journal (``journal.db.key``), so only the journal's owner
(root/SYSTEM under the machine service, the teller in single-process mode) can extend the chain.
Keyed records in the meta table close the ends: the anchor (where pruning cut the start), the head
(the last row ever appended) and a row's shipped or quarantined state. An edited, inserted,
deleted or re-chained row, a cut tail, a forged anchor, a pending row marked shipped or a wiped
journal all break `verify()`, which names the first broken link. Rows leave the outbox only after
the collector acknowledged them (`mark_shipped`) or refused them for good (`quarantine`).

Done rows (shipped or quarantined) older than the policy's ``journal.max_age_days`` are pruned
(`prune_expired`); pending rows never are. The journal is also bounded in rows and bytes: done
rows are pruned first; if pending rows must go too, they go from the source (teller) with the
most pending rows first, oldest first within it, so one teller's flood cannot push another's
events out, and one ``EVENTS_DROPPED`` event with the counts per source is appended. A row
removed from the middle leaves a keyed link over the gap, so the remaining chain still verifies.

A journal file that is corrupt or cannot be written is moved aside (renamed with a timestamp), a
clear line is logged, a new journal is started and the readable rows of the old one (pending ones
first) are salvaged into it with one ``JOURNAL_SALVAGED`` event saying how many were kept and
lost; if the directory itself cannot be written, a fallback directory is used (under the temporary
directory, only when it is this user's and private), and as a last resort an in-memory journal:
the guard keeps protecting. Every file the journal writes is created 0600 whatever the umask.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import heapq
import hmac
import json
import logging
import os
import secrets
import sqlite3
import stat
import tempfile
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from guard.events import EventType, new_event
from guard.model import Device, Event, Outcome, utc_now_iso

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
META_CHAIN = "chain"  # the chain scheme; absent: an unkeyed journal of an older version
META_ANCHOR_MAC = "anchor_mac"
META_HEAD = "head"  # "seq:hash:mac" of the last row ever appended

CHAIN_SCHEME = "hmac-sha256-v1"
KEY_SUFFIX = ".key"
FILE_MODE = 0o600
DIR_MODE = 0o700
SIDE_SUFFIXES = ("-wal", "-shm")
# How many sources an EVENTS_DROPPED event names (the largest); the rest are summed.
MAX_SOURCES_NAMED = 20

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL,
    body TEXT NOT NULL,
    size INTEGER NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    state INTEGER NOT NULL DEFAULT 0,
    reason TEXT,
    source TEXT,
    state_mac TEXT,
    link_mac TEXT
);
CREATE INDEX IF NOT EXISTS events_pending ON events(state, seq);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

# The row's source (its teller; "" for the machine's own events), read from its JSON body.
_SOURCE_SQL = ("CASE WHEN json_valid({0}) THEN COALESCE(json_extract({0}, '$.teller'), '') "
               "ELSE '' END")

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


class ChainKeyError(JournalError):
    """The journal's chain key cannot be read or made; the message names the file."""


class _ChainGone(sqlite3.DatabaseError):
    """The journal lost its keyed chain records while its key survived: wiped or replaced."""


@dataclass(frozen=True, slots=True)
class JournalRecord:
    """One journaled event as the shipper sees it: an opaque JSON body and its row number."""

    seq: int
    event_id: str
    body: str
    hash: str = ""  # the row's chain hash: the shipper sends the batch's last one (X-TG-Chain)


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """The outcome of `Journal.verify()`: `ok`, or the first broken link and why."""

    ok: bool
    rows: int
    first_seq: int | None = None
    last_seq: int | None = None
    broken_seq: int | None = None
    reason: str = ""
    bridged: int = 0  # gaps left by pruning inside the chain, each closed by a keyed link


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


def row_hash(prev_hash: str, seq: int, body: str, key: bytes | None = None) -> str:
    """The chain hash of one row over the previous hash, the row number and the body:
    HMAC-SHA256 with the chain key, or plain SHA-256 (`key` None) as older versions wrote it."""
    msg = prev_hash.encode("ascii") + b"\n" + str(seq).encode("ascii") + b"\n" + body.encode(
        "utf-8")
    if key is None:
        return hashlib.sha256(msg).hexdigest()
    return hmac.new(key, msg, hashlib.sha256).hexdigest()


def chain_mac(key: bytes, kind: str, *parts: object) -> str:
    """A keyed record of one fact about the chain (its anchor, head, a row's state, a link)."""
    msg = "\n".join([kind, *(str(p) for p in parts)]).encode("utf-8")
    return hmac.new(key, msg, hashlib.sha256).hexdigest()


def _same(a: object, b: str) -> bool:
    return isinstance(a, str) and hmac.compare_digest(a.encode(), b.encode())


def key_path(journal_path: Path) -> Path:
    """Where the chain key of the journal at `journal_path` lives."""
    return journal_path.with_name(journal_path.name + KEY_SUFFIX)


def _private(path: Path) -> None:
    """Owner read/write only, whatever the umask made of it (no-op where modes do not exist)."""
    if os.name == "posix" and os.path.lexists(path) and not os.path.islink(path):
        os.chmod(path, FILE_MODE)


def load_chain_key(journal_path: Path, *, create: bool) -> tuple[bytes | None, bool]:
    """(the chain key of that journal, whether it existed before); None when absent and not
    `create`. Made once: 32 random bytes in a 0600 file beside the journal."""
    path = key_path(journal_path)
    existed = path.exists()
    if not existed and not create:
        return None, False
    try:
        if not existed:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
            try:
                if hasattr(os, "fchmod"):
                    os.fchmod(fd, FILE_MODE)
                os.write(fd, secrets.token_hex(32).encode("ascii") + b"\n")
                os.fsync(fd)
            finally:
                os.close(fd)
        _private(path)
        text = path.read_text(encoding="ascii").strip()
    except FileExistsError:  # another process made it first: use that one
        return load_chain_key(journal_path, create=False)[0], True
    except (OSError, UnicodeDecodeError) as exc:
        raise ChainKeyError(f"cannot read or create the journal's chain key {path}: {exc} (run "
                            "as the administrator or root if the journal belongs to the machine "
                            "service)") from exc
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) < 32:
        raise ChainKeyError(f"the journal's chain key {path} is damaged (not 64 hex digits); "
                            "the journal cannot be verified or extended with it")
    return key, existed


def fallback_dir() -> Path:
    """A journal directory under the temporary directory that only this user can write.

    ``$TMPDIR/teller-guard-<uid>`` when it is a real directory owned by this user and not
    writable by group or others (another account could have made it first, to read or swap the
    journal); else a new private directory.
    """
    base = Path(tempfile.gettempdir())
    if not hasattr(os, "getuid"):  # Windows: the temporary directory is the user's own
        return base / "teller-guard"
    uid = os.getuid()
    candidate = base / f"teller-guard-{uid}"
    try:
        candidate.mkdir(mode=DIR_MODE)
    except FileExistsError:
        pass
    except OSError as exc:
        log.error("journal: cannot make the fallback directory %s (%s)", candidate, exc)
    try:
        st = os.lstat(candidate)
        if (stat.S_ISDIR(st.st_mode) and st.st_uid == uid
                and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)):
            os.chmod(candidate, DIR_MODE)
            return candidate
        log.error("journal: %s is not a private directory of this user; using a new one",
                  candidate)
    except OSError:
        pass
    return Path(tempfile.mkdtemp(prefix=f"teller-guard-{uid}-", dir=base))


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
        chain_key: bytes | None = None,
    ) -> None:
        """`chain_key` None: the key in the 0600 file beside the journal (made on first use).
        `fallback_dir` None: `fallback_dir()`, worked out only when the journal needs it."""
        if max_rows < 10:
            raise JournalError("max_rows must be at least 10 (room for an EVENTS_DROPPED event)")
        if synchronous.upper() not in ("FULL", "EXTRA", "NORMAL"):
            raise JournalError("synchronous must be FULL, EXTRA or NORMAL")
        if chain_key is not None and len(chain_key) < 32:
            raise JournalError("the chain key must be at least 32 bytes")
        self._requested = Path(path) if path is not None else default_path()
        self._fallback_dir = Path(fallback_dir) if fallback_dir is not None else None
        self.max_rows = max_rows
        self.max_bytes = max_bytes
        self.max_age_days = max_age_days  # done rows older than this go (`prune_expired`)
        self._device = device
        self._synchronous = synchronous.upper()
        self._max_page_count = max_page_count
        self._reserve_bytes = 0 if read_only else reserve_bytes
        self.read_only = read_only
        self._given_key = chain_key
        self._key: bytes | None = chain_key
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

    @property
    def chain_key(self) -> bytes | None:
        """The key this journal's chain is computed with (None: read-only without its key)."""
        return self._key

    # ------------------------------------------------------------------ opening and recovery

    def _open_somewhere(self) -> None:
        """Open the requested file; on failure move it aside (salvaging what it holds), then try
        the fallback, then memory."""
        if self.read_only:  # inspection (status, verify) never moves or creates anything
            try:
                self._open(self._requested)
            except (sqlite3.Error, OSError) as exc:
                self._close_quietly()
                raise JournalError(
                    f"cannot read the journal {self._requested}: {exc} (run as the administrator "
                    "or root if it belongs to the machine service)") from exc
            return
        candidates: list[Path | None] = [self._requested, None]
        for candidate in candidates:
            if candidate is None:
                try:
                    base = self._fallback_dir or fallback_dir()
                except OSError as exc:
                    log.error("journal: no fallback directory (%s)", exc)
                    break
                candidate = base / self._requested.name
            moved: Path | None = None
            first_error: BaseException | None = None
            for attempt in (1, 2):
                try:
                    self._open(candidate, fresh=moved is not None)
                    if candidate != self._requested:
                        log.error("journal: %s cannot be used; journaling to fallback %s",
                                  self._requested, candidate)
                    if moved is not None:
                        self._salvage(moved, why=first_error)
                    return
                except (sqlite3.Error, OSError, ChainKeyError) as exc:
                    self._close_quietly()
                    if attempt == 1 and not isinstance(exc, ChainKeyError):
                        moved = self._move_aside(candidate, exc)
                        if moved is not None:
                            first_error = exc
                            continue
                    log.error("journal: cannot open %s (%s)", candidate, exc)
                    break
        log.critical("journal: no writable location for the journal; keeping events in memory "
                     "only until the data directory is fixed")
        self._open(None)

    def _open(self, path: Path | None, *, fresh: bool = False) -> None:
        """Open (or create) the journal at `path` (None: in memory). `fresh`: a new journal
        replaces a broken one, so a chain key without a chain is expected."""
        key_existed = False
        wiped = False
        if path is not None and self.read_only:
            if not path.is_file():
                raise sqlite3.OperationalError(f"no journal file at {path}")
            if self._given_key is None:
                self._key, _ = load_chain_key(path, create=False)
            conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True,
                                   isolation_level=None, check_same_thread=False, timeout=10.0)
        elif path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            if self._given_key is None:
                self._key, key_existed = load_chain_key(path, create=True)
            # The chain key exists but the journal does not: it was deleted (a broken file is
            # renamed, never deleted). Start again and say so.
            wiped = key_existed and not fresh and not os.path.lexists(path)
            # SQLite creates files 0644 less the umask; made 0600 first, the file and the WAL
            # and shared-memory files SQLite copies its mode to stay private.
            fd = os.open(path, os.O_RDWR | os.O_CREAT, FILE_MODE)
            os.close(fd)
            for f in (path, *(Path(str(path) + s) for s in SIDE_SUFFIXES)):
                _private(f)
            conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False,
                                   timeout=10.0)
        else:
            if self._given_key is None:
                self._key = secrets.token_bytes(32)
            conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        try:
            conn.execute("PRAGMA busy_timeout=10000")
            if self.read_only:
                conn.execute("SELECT 1 FROM events LIMIT 1").fetchall()
                conn.execute("SELECT 1 FROM meta LIMIT 1").fetchall()
                self._conn, self.path = conn, path
                return
            self._add_functions(conn)
            if path is not None:
                mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    raise sqlite3.OperationalError(f"journal mode is {mode}, WAL needed")
                for f in (Path(str(path) + s) for s in SIDE_SUFFIXES):
                    _private(f)
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
            # A write proves the file is writable now rather than at the first event.
            conn.execute("BEGIN IMMEDIATE")
            self._upgrade(conn, keyed_before=key_existed and not fresh and not wiped)
            conn.execute("INSERT OR IGNORE INTO meta(key, value) VALUES('created', ?)",
                         (utc_now_iso(),))
            conn.execute("COMMIT")
            rows, size = conn.execute(
                "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM events").fetchone()
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
        if wiped:
            log.error("journal: %s was deleted while its chain key %s remained; started a new "
                      "journal and recorded JOURNAL_SALVAGED", path, key_path(path or Path()))
            self._record_salvage_notice(_Salvaged(reason="the journal file was deleted",
                                                  lost_unknown=True))

    def _add_functions(self, conn: sqlite3.Connection) -> None:
        """SQL functions computing the keyed records inside statements (state changes)."""
        key = self._require_key()
        conn.create_function(
            "tg_state_mac", 3, lambda seq, h, state: chain_mac(key, "state", seq, h, state),
            deterministic=True)

    def _require_key(self) -> bytes:
        if self._key is None:
            raise ChainKeyError(f"the journal's chain key {key_path(self._requested)} is missing")
        return self._key

    def _upgrade(self, db: sqlite3.Connection, *, keyed_before: bool) -> None:
        """Bring an older journal to the keyed chain (inside a write transaction).

        A journal without the keyed chain is an older version's, to be re-chained with the key,
        unless the key existed before: then the chain records were removed (`_ChainGone`).
        """
        columns = {str(r[1]) for r in db.execute("PRAGMA table_info(events)")}
        for column in ("source", "state_mac", "link_mac"):
            if column not in columns:
                db.execute(f"ALTER TABLE events ADD COLUMN {column} TEXT")
        if self._get_meta_in(db, META_CHAIN) == CHAIN_SCHEME:
            return
        if keyed_before:  # only this version makes keys, and it marks every journal it keys
            raise _ChainGone("the journal's keyed chain records are gone while its chain key "
                             "exists: the journal was wiped or replaced")
        key = self._require_key()
        anchor_seq = int(self._get_meta_in(db, META_ANCHOR_SEQ) or 0)
        prev = str(self._get_meta_in(db, META_ANCHOR_HASH) or GENESIS_HASH)
        self._set_anchor(db, anchor_seq, prev)
        head_seq, n = anchor_seq, 0
        last = 0
        while True:  # re-chain in chunks: an old journal may hold 200,000 rows
            chunk = db.execute("SELECT seq, body FROM events WHERE seq > ? ORDER BY seq "
                               "LIMIT 1000", (last,)).fetchall()
            if not chunk:
                break
            for seq, body in chunk:
                h = row_hash(prev, int(seq), str(body), key)
                db.execute("UPDATE events SET prev_hash = ?, hash = ?, "
                           f"source = {_SOURCE_SQL.format('body')}, "
                           "state_mac = CASE WHEN state = 0 THEN NULL ELSE "
                           "tg_state_mac(seq, ?, state) END, link_mac = NULL WHERE seq = ?",
                           (prev, h, h, seq))
                prev, head_seq, last, n = h, int(seq), int(seq), n + 1
        self._set_head(db, head_seq, prev)
        self._set_meta_in(db, META_CHAIN, CHAIN_SCHEME)
        if n:
            log.warning("journal: re-chained %d rows of an older journal with the chain key", n)

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
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
            with open(fd, "wb") as f:
                _private(path)
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

    def _move_aside(self, path: Path, why: BaseException) -> Path | None:
        """Rename a journal that cannot be used (and its WAL files) with a timestamp suffix;
        the new name, or None when there was nothing to move or it could not be moved."""
        if not os.path.lexists(path):
            return None
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        target = path.with_name(f"{path.name}.broken-{stamp}")
        try:
            os.replace(path, target)
        except OSError as exc:
            log.error("journal: %s is unusable (%s) and cannot be moved aside (%s)", path, why, exc)
            return None
        for suffix in SIDE_SUFFIXES:
            side = Path(str(path) + suffix)
            if os.path.lexists(side):
                try:
                    os.replace(side, Path(str(target) + suffix))
                except OSError:
                    pass
        for f in (target, *(Path(str(target) + s) for s in SIDE_SUFFIXES)):
            try:
                _private(f)  # a copy made by an older version may be world-readable
            except OSError:
                pass
        log.error("journal: %s was unusable (%s); moved aside to %s and started a new journal",
                  path, why, target)
        return target

    def _recover(self, exc: sqlite3.Error) -> None:
        """After a fatal error on the open file: move it aside, start a new journal in its place
        and salvage the old one's readable rows into it."""
        with self._lock:
            path = self.path
            self._close_quietly()
            moved = self._move_aside(path, exc) if path is not None else None
            if path is not None and moved is not None:
                try:
                    self._open(path, fresh=True)
                    self._salvage(moved, why=exc)
                    return
                except (sqlite3.Error, OSError, ChainKeyError) as again:
                    self._close_quietly()
                    log.error("journal: cannot start a new journal at %s (%s)", path, again)
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

    def _insert_many(self, items: Sequence[tuple[str, str]],
                     states: Sequence[int] | None = None) -> None:
        db = self._db
        key = self._require_key()
        db.execute("BEGIN IMMEDIATE")
        try:
            prev_hash, next_seq = self._tail(db)
            added = 0
            for i, (event_id, body) in enumerate(items):
                state = PENDING if states is None else int(states[i])
                h = row_hash(prev_hash, next_seq, body, key)
                size = len(body.encode("utf-8"))
                db.execute(
                    "INSERT INTO events(seq, event_id, body, size, prev_hash, hash, state, "
                    f"source, state_mac) VALUES(?, ?, ?, ?, ?, ?, ?, {_SOURCE_SQL.format('?')}, "
                    "?)",
                    (next_seq, event_id, body, size, prev_hash, h, state, body, body,
                     None if state == PENDING else chain_mac(key, "state", next_seq, h, state)),
                )
                prev_hash, next_seq = h, next_seq + 1
                added += size
            if items:
                self._set_head(db, next_seq - 1, prev_hash)
            rows, nbytes = self._rows + len(items), self._bytes + added
            if rows > self.max_rows or nbytes > self.max_bytes:
                rows, nbytes = self._enforce_bounds(db, rows, nbytes)
            db.execute("COMMIT")
        except BaseException:
            self._rollback_quietly()
            raise
        self._rows, self._bytes = rows, nbytes

    def _tail(self, db: sqlite3.Connection) -> tuple[str, int]:
        """(hash of the last row appended, next sequence number) inside a write transaction."""
        head = _parse_head(self._get_meta_in(db, META_HEAD))
        if head is not None:
            return head[1], head[0] + 1
        row = db.execute("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1").fetchone()
        if row is not None:
            return str(row[1]), int(row[0]) + 1
        meta = dict(db.execute(
            "SELECT key, value FROM meta WHERE key IN (?, ?)",
            (META_ANCHOR_SEQ, META_ANCHOR_HASH)).fetchall())
        seqrow = db.execute("SELECT seq FROM sqlite_sequence WHERE name='events'").fetchone()
        last_seq = int(seqrow[0]) if seqrow else int(meta.get(META_ANCHOR_SEQ, 0))
        return str(meta.get(META_ANCHOR_HASH, GENESIS_HASH)), last_seq + 1

    def _set_head(self, db: sqlite3.Connection, seq: int, h: str) -> None:
        """The keyed record of the last row appended: a cut tail no longer ends the chain."""
        mac = chain_mac(self._require_key(), "head", seq, h)
        self._set_meta_in(db, META_HEAD, f"{seq}:{h}:{mac}")

    def _set_anchor(self, db: sqlite3.Connection, seq: int, h: str) -> None:
        """The keyed record of where pruning cut the start (the last row removed before it)."""
        self._set_meta_in(db, META_ANCHOR_SEQ, str(seq))
        self._set_meta_in(db, META_ANCHOR_HASH, h)
        self._set_meta_in(db, META_ANCHOR_MAC, chain_mac(self._require_key(), "anchor", seq, h))

    def _enforce_bounds(self, db: sqlite3.Connection, rows: int, nbytes: int) -> tuple[int, int]:
        """Prune rows until under the bounds (done ones first, then pending ones fairly between
        sources); inside a transaction. The newest row always stays.

        Bounds are enforced down to 90 % so that pruning does not run on every insert.
        """
        target_rows = max(1, int(self.max_rows * 0.9))
        target_bytes = int(self.max_bytes * 0.9)
        newest = int(db.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0])
        # 1. Done rows (shipped or quarantined), oldest first: nothing unshipped is lost.
        chosen: list[int] = []
        cut_rows = cut_bytes = 0
        cur = db.execute("SELECT seq, size FROM events WHERE state != ? AND seq < ? ORDER BY seq",
                         (PENDING, newest))
        try:
            for seq, size in cur:
                if cut_rows >= rows - target_rows and cut_bytes >= nbytes - target_bytes:
                    break
                chosen.append(int(seq))
                cut_rows, cut_bytes = cut_rows + 1, cut_bytes + int(size)
        finally:
            cur.close()
        dropped: dict[str, int] = {}
        earlier = 0
        if rows - cut_rows > self.max_rows or nbytes - cut_bytes > self.max_bytes:
            # 2. Still too big: pending rows go too, fairly; leave room for the notice. An
            # unshipped notice of earlier drops is folded into the new one, so a long flood
            # leaves one summary rather than crowding out events with notices.
            for seq, size, body in db.execute(
                    "SELECT seq, size, body FROM events WHERE state = ? AND source = '' AND "
                    "seq < ? AND json_valid(body) AND json_extract(body, '$.type') = ? AND "
                    "json_extract(body, '$.detail.max_rows') IS NOT NULL",
                    (PENDING, newest, EventType.EVENTS_DROPPED.value)).fetchall():
                chosen.append(int(seq))
                cut_rows, cut_bytes = cut_rows + 1, cut_bytes + int(size)
                detail = json.loads(str(body)).get("detail", {})
                earlier += int(detail.get("count") or 0)
                for k, v in detail.items():
                    if k.startswith("source.") and isinstance(v, int):
                        name = k.removeprefix("source.")
                        name = "" if name == "(machine)" else name
                        dropped[name] = dropped.get(name, 0) + v
            for seq, size, source in self._pick_fair(
                    db, rows - cut_rows - (target_rows - 1),
                    nbytes - cut_bytes - (target_bytes - 4096), newest, set(chosen)):
                chosen.append(seq)
                cut_rows, cut_bytes = cut_rows + 1, cut_bytes + size
                dropped[source] = dropped.get(source, 0) + 1
        if not chosen:
            return rows, nbytes
        self._delete_rows(db, sorted(chosen))
        rows -= cut_rows
        nbytes -= cut_bytes
        count = sum(dropped.values())
        if count > earlier:
            total = int(self._get_meta_in(db, META_DROPPED_TOTAL) or 0) + count - earlier
            self._set_meta_in(db, META_DROPPED_TOTAL, str(total))
            log.error("journal: over its bounds (%d rows / %d bytes); dropped %d unshipped events "
                      "from %d sources (the largest first) and recorded EVENTS_DROPPED",
                      self.max_rows, self.max_bytes, count - earlier, len(dropped))
            notice = self._dropped_event(count, total, dropped)
            body = notice.to_json()
            prev_hash, next_seq = self._tail(db)
            h = row_hash(prev_hash, next_seq, body, self._require_key())
            size = len(body.encode("utf-8"))
            db.execute(
                "INSERT INTO events(seq, event_id, body, size, prev_hash, hash, source) "
                "VALUES(?, ?, ?, ?, ?, ?, '')",
                (next_seq, str(notice.id), body, size, prev_hash, h))
            self._set_head(db, next_seq, h)
            rows += 1
            nbytes += size
        return rows, nbytes

    @staticmethod
    def _pick_fair(db: sqlite3.Connection, need_rows: int, need_bytes: int,
                   newest: int, skip: set[int]) -> list[tuple[int, int, str]]:
        """Pending rows to drop: (seq, size, source), each from the source that has the most
        pending rows left at that moment, the oldest of that source first."""
        by_source: dict[str, deque[tuple[int, int]]] = {}
        cur = db.execute("SELECT seq, size, COALESCE(source, '') FROM events WHERE state = ? "
                         "AND seq < ? ORDER BY seq", (PENDING, newest))
        try:
            for seq, size, source in cur:
                if int(seq) in skip:
                    continue
                by_source.setdefault(str(source), deque()).append((int(seq), int(size)))
        finally:
            cur.close()
        heap = [(-len(q), q[0][0], s) for s, q in by_source.items()]
        heapq.heapify(heap)
        out: list[tuple[int, int, str]] = []
        got_rows = got_bytes = 0
        while heap and (got_rows < need_rows or got_bytes < need_bytes):
            _, _, source = heapq.heappop(heap)
            q = by_source[source]
            seq, size = q.popleft()
            out.append((seq, size, source))
            got_rows, got_bytes = got_rows + 1, got_bytes + size
            if q:
                heapq.heappush(heap, (-len(q), q[0][0], source))
        return out

    def _delete_rows(self, db: sqlite3.Connection, seqs: list[int]) -> None:
        """Delete rows (sorted seqs, never the newest) and keep the chain verifiable: rows cut
        from the start move the keyed anchor; each gap inside gets a keyed link from the row
        before it to the row after it. Inside a write transaction."""
        if not seqs:
            return
        key = self._require_key()
        doomed = set(seqs)
        anchor: tuple[int, str] | None = None
        cur = db.execute("SELECT seq, hash FROM events ORDER BY seq")
        try:
            for seq, h in cur:  # the rows cut from the start, up to the first that stays
                if int(seq) not in doomed:
                    break
                anchor = (int(seq), str(h))
        finally:
            cur.close()
        for i in range(0, len(seqs), 500):
            chunk = seqs[i:i + 500]
            db.execute(f"DELETE FROM events WHERE seq IN ({','.join('?' * len(chunk))})", chunk)
        if anchor is not None:
            self._set_anchor(db, *anchor)
        linked = 0
        for seq in seqs:
            if (anchor is not None and seq <= anchor[0]) or seq < linked:
                continue
            after = db.execute("SELECT seq FROM events WHERE seq > ? ORDER BY seq LIMIT 1",
                               (seq,)).fetchone()
            before = db.execute("SELECT seq, hash FROM events WHERE seq < ? ORDER BY seq DESC "
                                "LIMIT 1", (seq,)).fetchone()
            if after is None or before is None:
                continue
            linked = int(after[0])
            db.execute("UPDATE events SET link_mac = ? WHERE seq = ?",
                       (chain_mac(key, "link", int(before[0]), str(before[1]), linked), linked))

    def _dropped_event(self, count: int, total: int, by_source: dict[str, int]) -> Event:
        device = self._device
        if device is None:
            from guard import identity

            device = identity.device()
        detail: dict[str, str | int | float | bool | None] = {
            "count": count, "total": total, "max_rows": self.max_rows,
            "max_bytes": self.max_bytes, "sources": len(by_source)}
        ranked = sorted(by_source.items(), key=lambda kv: (-kv[1], kv[0]))
        for source, n in ranked[:MAX_SOURCES_NAMED]:
            detail[f"source.{source or '(machine)'}"[:64]] = n
        rest = sum(n for _, n in ranked[MAX_SOURCES_NAMED:])
        if rest:
            detail["source.(others)"] = rest
        return new_event(EventType.EVENTS_DROPPED, device=device, detail=detail)

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
                self._set_anchor(db, cut, anchor)
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
                    self._set_anchor(db, cut, anchor)
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
                "SELECT seq, event_id, body, size, hash FROM events WHERE state = ? AND seq > ? "
                "ORDER BY seq LIMIT ?", (PENDING, after_seq, max_events))
            out: list[JournalRecord] = []
            total = 0
            try:
                for seq, event_id, body, size, h in cur:
                    if out and total + int(size) > max_bytes:
                        break
                    out.append(JournalRecord(int(seq), str(event_id), str(body), str(h)))
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
                    # The state is keyed: a pending row marked done by hand is caught.
                    db.execute(f"UPDATE events SET state = ?, reason = ?, "
                               f"state_mac = tg_state_mac(seq, hash, ?) WHERE seq IN ({marks})",
                               (state, reason, state, *chunk))
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
            rows = self._db.execute("SELECT seq, event_id, body, hash FROM events ORDER BY seq")
            return [JournalRecord(int(s), str(i), str(b), str(h)) for s, i, b, h in rows]

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
        """Walk the keyed chain from the anchor to the head; report the first broken link.

        A damaged file is reported (``damaged`` in the reason, the rows verified before it), not
        raised: the guard salvages what it can read when it next opens the journal.
        """
        with self._lock:
            db = self._db
            progress = _Progress()
            try:
                db.execute("BEGIN")  # one consistent snapshot
            except sqlite3.Error as exc:
                return VerifyResult(False, 0, reason=f"the journal cannot be read: {exc}")
            try:
                return self._verify_in(db, progress)
            except sqlite3.DatabaseError as exc:
                after = progress.last if progress.last is not None else progress.prev_seq
                return VerifyResult(
                    False, progress.rows, progress.first, progress.last, after + 1,
                    f"the journal file is damaged after row {after} ({exc}); the guard moves it "
                    "aside and salvages its readable rows when it next opens it",
                    progress.bridged)
            finally:
                with contextlib.suppress(sqlite3.Error):
                    db.execute("COMMIT")

    def _verify_in(self, db: sqlite3.Connection, p: _Progress) -> VerifyResult:
        def broken(seq: int | None, reason: str) -> VerifyResult:
            return VerifyResult(False, p.rows, p.first, p.last, seq, reason, p.bridged)

        meta = {str(k): str(v) for k, v in db.execute("SELECT key, value FROM meta")}
        if meta.get(META_CHAIN) != CHAIN_SCHEME:
            return broken(None, "the journal has no keyed chain: its chain records were removed "
                                "(wiped), or an older version wrote it (the guard re-chains it "
                                "when it next opens it)")
        key = self._key
        if key is None:
            where = key_path(self.path) if self.path is not None else "(in memory)"
            return broken(None, f"the journal's chain key {where} is missing or unreadable: "
                                "nothing can be verified without it")
        p.prev_seq = int(meta.get(META_ANCHOR_SEQ, "0"))
        prev_hash = meta.get(META_ANCHOR_HASH, GENESIS_HASH)
        if not _same(meta.get(META_ANCHOR_MAC), chain_mac(key, "anchor", p.prev_seq, prev_hash)):
            return broken(p.prev_seq + 1, "the chain's anchor (where pruning cut its start) was "
                                          "not written by this journal: rows were cut or "
                                          "replaced at the start")
        head = _parse_head(meta.get(META_HEAD))
        if head is None or not _same(head[2], chain_mac(key, "head", head[0], head[1])):
            return broken(None, "the chain's head record is missing or forged: the end of the "
                                "journal was cut or replaced")
        cur = db.execute("SELECT seq, body, prev_hash, hash, state, state_mac, link_mac "
                         "FROM events ORDER BY seq")
        try:
            for seq, body, stored_prev, h, state, state_mac, link_mac in cur:
                seq = int(seq)
                if p.first is None:
                    p.first = seq
                expect_seq = p.prev_seq + 1
                if seq != expect_seq or stored_prev != prev_hash:
                    if seq > p.prev_seq and _same(
                            link_mac, chain_mac(key, "link", p.prev_seq, prev_hash, seq)):
                        p.bridged += 1  # a gap pruning left, closed by a keyed link
                    elif seq != expect_seq:
                        return broken(expect_seq,
                                      f"row {expect_seq} is missing (next row is {seq})")
                    else:
                        return broken(seq, f"row {seq} does not link to the row before it")
                if not _same(row_hash(str(stored_prev), seq, str(body), key), str(h)):
                    return broken(seq, f"row {seq} was changed after it was written")
                if int(state) != PENDING and not _same(
                        state_mac, chain_mac(key, "state", seq, h, int(state))):
                    return broken(seq, f"row {seq} is marked "
                                       f"{'shipped' if int(state) == SHIPPED else 'done'} but "
                                       "the journal never marked it so")
                p.rows += 1
                p.last = p.prev_seq = seq
                prev_hash = str(h)
        finally:
            cur.close()
        if (p.prev_seq, prev_hash) != (head[0], head[1]):
            if head[0] > p.prev_seq:
                return broken(p.prev_seq + 1,
                              f"rows {p.prev_seq + 1}..{head[0]} at the end are missing")
            return broken(p.prev_seq, f"the last row {p.prev_seq} is not the chain's head "
                                      f"(row {head[0]}): the journal was replaced")
        return VerifyResult(True, p.rows, p.first, p.last, bridged=p.bridged)

    # ------------------------------------------------------------------ salvage

    def _salvage(self, broken: Path, why: BaseException | None) -> None:
        """Carry the readable rows of a moved-aside journal into this new one (pending rows
        first, then done ones as room allows) after one JOURNAL_SALVAGED event with the counts.
        Numbering continues after the old journal's, so the collector sees a gap, not a wipe."""
        key = self._given_key
        if key is None:  # the key beside the file's original name
            try:
                key = load_chain_key(broken.with_name(broken.name.split(".broken-")[0]),
                                     create=False)[0]
            except ChainKeyError as exc:
                log.error("journal: %s; salvaging without checking the rows' chain", exc)
        found = read_salvageable(broken, key, limit=max(4 * self.max_rows, 100_000))
        reason = f"{type(why).__name__}: {why}"[:200] if why is not None else ""
        summary = dataclasses.replace(found.summary, reason=reason, moved_to=broken.name)
        with self._lock:
            try:
                db = self._db
                if found.high and db.execute("SELECT 1 FROM events LIMIT 1").fetchone() is None:
                    db.execute("BEGIN IMMEDIATE")
                    self._set_anchor(db, found.high, GENESIS_HASH)
                    self._set_head(db, found.high, GENESIS_HASH)
                    db.execute("COMMIT")
                self._record_salvage_notice(summary)
                pending = [(i, b) for i, b, st in found.rows if st == PENDING]
                done = [(i, b, st) for i, b, st in found.rows if st != PENDING]
                for start in range(0, len(pending), 500):
                    self._insert_many(pending[start:start + 500])
                for start in range(0, len(done), 500):
                    chunk = done[start:start + 500]
                    self._insert_many([(i, b) for i, b, _ in chunk], [st for _, _, st in chunk])
            except (sqlite3.Error, JournalError) as exc:
                self._rollback_quietly()
                log.error("journal: could not carry every readable row of %s over (%s); the "
                          "file is kept", broken, exc)
                return
        log.error("journal: salvaged %d rows (%d unshipped) of %s; %d%s lost", summary.salvaged,
                  summary.salvaged_pending, broken, summary.lost,
                  " or more" if summary.lost_unknown else "")

    def _record_salvage_notice(self, s: _Salvaged) -> None:
        device = self._device
        if device is None:
            from guard import identity

            device = identity.device()
        notice = new_event(
            EventType.JOURNAL_SALVAGED, device=device,
            outcome=Outcome.FAILED if s.lost or s.lost_unknown else Outcome.RECORDED,
            detail={"salvaged": s.salvaged, "salvaged_pending": s.salvaged_pending,
                    "lost": s.lost, "lost_pending": s.lost_pending,
                    "lost_unknown": s.lost_unknown, "reason": s.reason[:200],
                    "moved_to": s.moved_to[:120]})
        self._insert_many([(str(notice.id), notice.to_json())])


@dataclass
class _Progress:
    """How far a verification got (for the report when the file turns out damaged)."""

    rows: int = 0
    first: int | None = None
    last: int | None = None
    prev_seq: int = 0
    bridged: int = 0


@dataclass(frozen=True, slots=True)
class _Salvaged:
    """What a salvage kept and lost (counts only)."""

    salvaged: int = 0
    salvaged_pending: int = 0
    lost: int = 0
    lost_pending: int = 0
    lost_unknown: bool = False  # the damaged file no longer tells how many rows it held
    reason: str = ""
    moved_to: str = ""


@dataclass(frozen=True, slots=True)
class Salvage:
    """The readable rows of a damaged journal, in order: (event id, body, state)."""

    rows: list[tuple[str, str, int]]
    summary: _Salvaged
    high: int  # the highest row number the damaged journal used


def _parse_head(value: str | None) -> tuple[int, str, str] | None:
    parts = (value or "").split(":")
    if len(parts) != 3 or not parts[0].isdigit():
        return None
    return int(parts[0]), parts[1], parts[2]


def read_salvageable(path: Path, key: bytes | None, *, limit: int = 1_000_000) -> Salvage:
    """Read every row of a damaged journal that can still be read and is whole.

    Row numbers come from the pending index (a separate b-tree), a table scan as far as it goes
    and the meta records; each row is then looked up alone, so one bad page costs only its rows.
    A row is kept when its body is the JSON of its event id and its chain hash matches (keyed when
    the journal was keyed and the key is known). A done state counts only with its keyed record;
    otherwise the row is shipped again (the collector acknowledges a duplicate).
    """
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True,
                               isolation_level=None)
    except sqlite3.Error:
        return Salvage([], _Salvaged(lost_unknown=True), 0)
    try:
        def scan(sql: str) -> tuple[list[tuple[object, ...]], bool]:
            out: list[tuple[object, ...]] = []
            try:
                for row in conn.execute(sql):
                    out.append(tuple(row))
            except sqlite3.DatabaseError:
                return out, False
            return out, True

        meta_rows, _ = scan("SELECT key, value FROM meta")
        meta = {str(k): str(v) for k, v in meta_rows}
        keyed = meta.get(META_CHAIN) == CHAIN_SCHEME
        indexed, index_whole = scan("SELECT seq, state FROM events INDEXED BY events_pending")
        known = {int(str(s)): int(str(st)) for s, st in indexed}
        scanned, _ = scan("SELECT seq FROM events ORDER BY seq")
        seen = set(known) | {int(str(r[0])) for r in scanned}
        highs = [int(str(r[0])) for r in scan(
            "SELECT seq FROM sqlite_sequence WHERE name='events'")[0]]
        head = _parse_head(meta.get(META_HEAD))
        if head is not None:
            highs.append(head[0])
        anchor = int(meta.get(META_ANCHOR_SEQ, "0")) if meta.get(
            META_ANCHOR_SEQ, "0").isdigit() else 0
        lo = min(seen | {anchor + 1})
        hi = max(seen | set(highs) | {lo - 1})
        hi = min(hi, lo + limit)
        columns = {str(r[1]) for r in scan("PRAGMA table_info(events)")[0]}
        mac_col = "state_mac" if "state_mac" in columns else "NULL"
        rows: list[tuple[str, str, int]] = []
        kept: set[int] = set()
        damaged: set[int] = set()
        pending_kept = 0
        for seq in range(lo, hi + 1):
            try:
                row = conn.execute(f"SELECT event_id, body, state, prev_hash, hash, {mac_col} "
                                   "FROM events WHERE seq = ?", (seq,)).fetchone()
            except sqlite3.DatabaseError:
                damaged.add(seq)
                continue
            if row is None:
                continue
            event_id, body, state, prev, h, mac = row
            if not _whole(seq, event_id, body, prev, h, key if keyed else None,
                          unkeyed=not keyed):
                damaged.add(seq)
                continue
            st = int(state) if state in (SHIPPED, QUARANTINED) else PENDING
            if st != PENDING and keyed and (key is None or not _same(
                    mac, chain_mac(key, "state", seq, h, st))):
                st = PENDING
            rows.append((str(event_id), str(body), st))
            kept.add(seq)
            pending_kept += st == PENDING
        # With the whole index the count is exact; without it, rows nothing names are unknown.
        existed = (set(known) | kept) if index_whole else (seen | damaged | kept)
        lost = existed - kept
        summary = _Salvaged(
            salvaged=len(rows), salvaged_pending=pending_kept, lost=len(lost),
            lost_pending=sum(1 for s in lost if known.get(s) == PENDING),
            lost_unknown=not index_whole)
        return Salvage(rows, summary, max(hi, anchor))
    finally:
        conn.close()


def _whole(seq: int, event_id: object, body: object, prev: object, h: object,
           key: bytes | None, *, unkeyed: bool) -> bool:
    """True when a salvaged row is intact: its body is its event's JSON and its hash holds."""
    if not isinstance(body, str) or not isinstance(prev, str) or not isinstance(h, str):
        return False
    try:
        obj = json.loads(body)
    except ValueError:
        return False
    if not isinstance(obj, dict) or str(obj.get("id")) != str(event_id):
        return False
    if key is not None:
        return _same(row_hash(prev, seq, body, key), h)
    if unkeyed:
        return row_hash(prev, seq, body) == h
    return True  # keyed, but the key is gone: the body is whole JSON, nothing more can be told
