"""The collector's storage: devices, events and the replay cache, with SQLAlchemy Core.

SQLite (WAL) by default, PostgreSQL by URL. Several collector processes may share one database:
events are inserted with `ON CONFLICT DO NOTHING` on their id (a repeated id is acknowledged, not
stored twice), and the replay cache lives in the database so a batch replayed to another process is
still recognised. Times are stored as integer microseconds since the Unix epoch (UTC), which
compares and groups the same way on every backend.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DataError, DBAPIError, OperationalError

from guard.model import Event

US = 1_000_000
HOUR_US = 3600 * US
RESPONSE_OUTCOMES = ("acknowledged", "justified")
HEARTBEAT = "HEARTBEAT"

_BigInt = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

metadata = sa.MetaData()

devices = sa.Table(
    "tg_devices",
    metadata,
    sa.Column("id", sa.String(128), primary_key=True),
    sa.Column("hostname", sa.String(255), nullable=False, default=""),
    sa.Column("branch", sa.String(128), nullable=False, default=""),
    sa.Column("key", sa.LargeBinary(64), nullable=False),
    sa.Column("enrolled_us", sa.BigInteger, nullable=False),
    sa.Column("last_seen_us", sa.BigInteger, nullable=True),
    sa.Column("last_heartbeat_us", sa.BigInteger, nullable=True),
)

events = sa.Table(
    "tg_events",
    metadata,
    sa.Column("seq", _BigInt, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(36), nullable=False, unique=True),
    sa.Column("device_id", sa.String(128), nullable=False, index=True),
    sa.Column("hostname", sa.String(255), nullable=False),
    sa.Column("branch", sa.String(128), nullable=False, index=True),
    sa.Column("teller", sa.String(128), nullable=False),
    sa.Column("type", sa.String(64), nullable=False, index=True),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("outcome", sa.String(16), nullable=False, index=True),
    sa.Column("time_us", sa.BigInteger, nullable=False, index=True),
    sa.Column("hour", sa.BigInteger, nullable=False, index=True),
    sa.Column("received_us", sa.BigInteger, nullable=False),
    # "|TYPE_A|TYPE_B|" so one type is found with a LIKE on "|TYPE|"
    sa.Column("finding_types", sa.String(2100), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
)

replays = sa.Table(
    "tg_replays",
    metadata,
    sa.Column("signature", sa.String(64), primary_key=True),
    sa.Column("device_id", sa.String(128), nullable=False),
    sa.Column("ts", sa.BigInteger, nullable=False, index=True),
)


class StoreUnavailable(Exception):
    """The database cannot be reached or stays locked; the request may be retried later."""


class StoreRejected(Exception):
    """The database refused a value of the request (too long, invalid characters)."""


class ReplayedBatch(Exception):
    """This exact signed batch was accepted before (same signature): a replay."""


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What one accepted batch did: every id acknowledged, the ones already stored, the new ones."""

    acked: list[str]
    duplicates: list[str]
    stored: list[Event]


@dataclass(frozen=True, slots=True)
class DeviceRecord:
    """A device as the collector knows it (the key is never rendered anywhere)."""

    id: str
    hostname: str
    branch: str
    enrolled_us: int
    last_seen_us: int | None
    last_heartbeat_us: int | None


@dataclass(frozen=True, slots=True)
class EventQuery:
    """Filters of the query API; times are microseconds since the epoch."""

    since_us: int | None = None
    until_us: int | None = None
    branch: str | None = None
    device: str | None = None
    teller: str | None = None
    channel: str | None = None
    type: str | None = None
    finding_type: str | None = None
    outcome: str | None = None
    limit: int = 100
    offset: int = 0
    descending: bool = False


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """One stored event: the event exactly as received plus when the collector received it."""

    seq: int
    received_us: int
    event: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Overview:
    """Aggregates for the dashboard."""

    now_us: int
    hourly: list[tuple[int, int]]  # (hour index since epoch, count) over the last 24 hours
    by_branch_channel: list[tuple[str, str, int]]
    by_type: list[tuple[str, int]]  # finding type, events with it, last 24 hours
    total_24h: int  # events in the hours of `hourly`
    responses: list[dict[str, Any]] = field(default_factory=list)
    silent: list[DeviceRecord] = field(default_factory=list)
    device_count: int = 0
    responses_24h: int = 0


def now_us() -> int:
    return time.time_ns() // 1000


def to_us(t: datetime) -> int:
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    delta = t - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86400 + delta.seconds) * US + delta.microseconds


def from_us(us: int) -> datetime:
    return datetime.fromtimestamp(us / US, tz=UTC)


def _sqlite_url(url: str) -> bool:
    return url.startswith("sqlite")


class Store:
    """Storage shared by every request of one collector process (thread-safe)."""

    def __init__(self, url: str, *, replay_window_s: int = 300) -> None:
        self.url = url
        self._sqlite = _sqlite_url(url)
        self._replay_window_s = replay_window_s
        self._last_prune = 0.0
        self._prune_lock = threading.Lock()
        try:
            if self._sqlite:
                self.engine = self._sqlite_engine(url, immediate=True)
                self._reader = self._sqlite_engine(url, immediate=False)
            else:
                self.engine = sa.create_engine(url, pool_pre_ping=True, pool_size=8)
                self._reader = self.engine
        except (sa.exc.ArgumentError, ImportError) as exc:
            raise ValueError(f"cannot use database URL {sa.engine.make_url(url)!r}: {exc}") from exc
        self._insert: Any = sqlite.insert if self._sqlite else postgresql.insert
        if not self._sqlite and self.engine.dialect.name != "postgresql":
            raise ValueError("the collector supports sqlite:/// and postgresql+psycopg:// URLs")

    @staticmethod
    def _sqlite_engine(url: str, *, immediate: bool) -> Engine:
        engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @sa.event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            # The driver's own transaction handling is switched off so that writers can take the
            # write lock up front (BEGIN IMMEDIATE) and wait for it, instead of failing to upgrade.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @sa.event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine

    def create_schema(self) -> None:
        """Create the tables if missing (safe when several processes start at once)."""
        with self._guard():
            try:
                metadata.create_all(self.engine)
            except DBAPIError:
                # another process created them between the check and the CREATE
                metadata.create_all(self.engine)

    def close(self) -> None:
        self.engine.dispose()
        if self._reader is not self.engine:
            self._reader.dispose()

    @contextmanager
    def _guard(self) -> Iterator[None]:
        try:
            yield
        except DataError as exc:
            raise StoreRejected(
                f"the database refused a value ({type(exc.orig).__name__})"
            ) from exc
        except OperationalError as exc:
            reason = (str(exc.orig).strip().splitlines() or [type(exc.orig).__name__])[0][:200]
            raise StoreUnavailable(f"database unavailable ({reason}); retry later") from exc

    # -- devices ------------------------------------------------------------------------------

    def enroll(self, device_id: str, hostname: str, branch: str) -> bytes:
        """Give `device_id` a new random key (replacing any previous one) and return it."""
        key = secrets.token_bytes(32)
        row = {
            "id": device_id,
            "hostname": hostname,
            "branch": branch,
            "key": key,
            "enrolled_us": now_us(),
        }
        stmt = self._insert(devices).values(**row)
        stmt = stmt.on_conflict_do_update(
            index_elements=[devices.c.id],
            set_={"key": key, "hostname": hostname, "branch": branch,
                  "enrolled_us": row["enrolled_us"]},
        )
        with self._guard(), self.engine.begin() as conn:
            conn.execute(stmt)
        return key

    def device_key(self, device_id: str) -> bytes | None:
        with self._guard(), self._reader.begin() as conn:
            key = conn.execute(
                sa.select(devices.c.key).where(devices.c.id == device_id)
            ).scalar_one_or_none()
        return bytes(key) if key is not None else None

    def devices(self) -> list[DeviceRecord]:
        with self._guard(), self._reader.begin() as conn:
            rows = conn.execute(sa.select(devices).order_by(devices.c.branch, devices.c.hostname))
            return [_device(r) for r in rows]

    # -- events -------------------------------------------------------------------------------

    def ingest(
        self, device_id: str, signature: str, ts: int, batch: Sequence[Event]
    ) -> IngestResult:
        """Store one verified batch atomically; raise `ReplayedBatch` if it was seen before."""
        received = now_us()
        order: list[str] = []
        unique: dict[str, Event] = {}
        for ev in batch:
            key = str(ev.id)
            if key not in unique:
                unique[key] = ev
                order.append(key)
        # Sorted by id so concurrent writers take row locks in the same order (no deadlock).
        rows = [_row(unique[k], received) for k in sorted(unique)]
        inserted: set[str] = set()
        last_hb = max((to_us(e.time) for e in unique.values() if e.type == HEARTBEAT), default=None)
        for attempt in range(3):
            try:
                with self._guard(), self.engine.begin() as conn:
                    first_time = conn.execute(
                        self._insert(replays)
                        .values(signature=signature, device_id=device_id, ts=ts)
                        .on_conflict_do_nothing(index_elements=[replays.c.signature])
                        .returning(replays.c.signature)
                    ).first()
                    if first_time is None:
                        raise ReplayedBatch(signature)
                    if rows:
                        result = conn.execute(
                            self._insert(events)
                            .on_conflict_do_nothing(index_elements=[events.c.id])
                            .returning(events.c.id),
                            rows,
                        )
                        inserted = {r[0] for r in result}
                    values: dict[str, Any] = {"last_seen_us": received}
                    if last_hb is not None:
                        values["last_heartbeat_us"] = sa.case(
                            (devices.c.last_heartbeat_us.is_(None), last_hb),
                            (devices.c.last_heartbeat_us < last_hb, last_hb),
                            else_=devices.c.last_heartbeat_us,
                        )
                    conn.execute(devices.update().where(devices.c.id == device_id).values(values))
                break
            except StoreUnavailable as exc:
                # PostgreSQL may abort one of two conflicting transactions; try it again.
                if attempt == 2 or not _retryable(exc):
                    raise
                time.sleep(0.05 * (attempt + 1))
        self._maybe_prune()
        return IngestResult(
            acked=order,
            duplicates=[k for k in order if k not in inserted],
            stored=[unique[k] for k in order if k in inserted],
        )

    def _maybe_prune(self) -> None:
        """Drop replay-cache entries whose timestamp the window already rejects."""
        now = time.monotonic()
        with self._prune_lock:
            if now - self._last_prune < 60:
                return
            self._last_prune = now
        horizon = int(time.time()) - 2 * self._replay_window_s - 60
        with self._guard(), self.engine.begin() as conn:
            conn.execute(replays.delete().where(replays.c.ts < horizon))

    def query(self, q: EventQuery) -> list[StoredEvent]:
        stmt = sa.select(events.c.seq, events.c.received_us, events.c.body)
        stmt = stmt.where(*_filters(q))
        if q.descending:
            stmt = stmt.order_by(events.c.time_us.desc(), events.c.seq.desc())
        else:
            stmt = stmt.order_by(events.c.time_us, events.c.seq)
        stmt = stmt.limit(q.limit).offset(q.offset)
        with self._guard(), self._reader.begin() as conn:
            return [
                StoredEvent(seq=r.seq, received_us=r.received_us, event=json.loads(r.body))
                for r in conn.execute(stmt)
            ]

    def overview(self, heartbeat_window_s: int, responses: int = 15) -> Overview:
        """Everything the dashboard shows, in one read transaction."""
        now = now_us()
        day_ago = now - 24 * HOUR_US
        week_ago = now - 7 * 24 * HOUR_US
        with self._guard(), self._reader.begin() as conn:
            hourly = conn.execute(
                sa.select(events.c.hour, sa.func.count())
                .where(events.c.hour > now // HOUR_US - 24, events.c.type != HEARTBEAT)
                .group_by(events.c.hour)
                .order_by(events.c.hour)
            ).all()
            by_bc = conn.execute(
                sa.select(events.c.branch, events.c.channel, sa.func.count())
                .where(events.c.time_us >= week_ago, events.c.type != HEARTBEAT)
                .group_by(events.c.branch, events.c.channel)
            ).all()
            # grouped by the set of finding types first: few distinct sets, whatever the volume
            combos = conn.execute(
                sa.select(events.c.finding_types, sa.func.count())
                .where(events.c.time_us >= day_ago, events.c.finding_types != "")
                .group_by(events.c.finding_types)
            ).all()
            latest = conn.execute(
                sa.select(events.c.body)
                .where(events.c.outcome.in_(RESPONSE_OUTCOMES))
                .order_by(events.c.time_us.desc(), events.c.seq.desc())
                .limit(responses)
            ).all()
            responses_24h = conn.execute(
                sa.select(sa.func.count()).select_from(events)
                .where(events.c.time_us >= day_ago, events.c.outcome.in_(RESPONSE_OUTCOMES))
            ).scalar_one()
            horizon = now - heartbeat_window_s * US
            silent = conn.execute(
                sa.select(devices)
                .where(sa.or_(devices.c.last_heartbeat_us.is_(None),
                              devices.c.last_heartbeat_us < horizon))
                .order_by(devices.c.last_heartbeat_us, devices.c.branch, devices.c.hostname)
                .limit(50)
            ).all()
            device_count = conn.execute(
                sa.select(sa.func.count()).select_from(devices)).scalar_one()
        per_type: dict[str, int] = {}
        for combo, n in combos:
            for t in {t for t in str(combo).split("|") if t}:
                per_type[t] = per_type.get(t, 0) + int(n)
        by_type = sorted(per_type.items(), key=lambda kv: (-kv[1], kv[0]))[:12]
        return Overview(
            now_us=now,
            hourly=[(int(h), int(c)) for h, c in hourly],
            by_branch_channel=[(str(b), str(ch), int(c)) for b, ch, c in by_bc],
            by_type=by_type,
            total_24h=sum(int(c) for _h, c in hourly),
            responses=[json.loads(r.body) for r in latest],
            silent=[_device(r) for r in silent],
            device_count=int(device_count),
            responses_24h=int(responses_24h),
        )


def _retryable(exc: StoreUnavailable) -> bool:
    cause = exc.__cause__
    orig = getattr(cause, "orig", None)
    name = type(orig).__name__
    return name in {"DeadlockDetected", "SerializationFailure"} or "locked" in str(orig)


def _device(r: Any) -> DeviceRecord:
    return DeviceRecord(
        id=r.id,
        hostname=r.hostname,
        branch=r.branch,
        enrolled_us=r.enrolled_us,
        last_seen_us=r.last_seen_us,
        last_heartbeat_us=r.last_heartbeat_us,
    )


def _row(ev: Event, received: int) -> dict[str, Any]:
    t = to_us(ev.time)
    types = "|" + "|".join(f.type for f in ev.findings) + "|" if ev.findings else ""
    return {
        "id": str(ev.id),
        "device_id": ev.device.id,
        "hostname": ev.device.hostname,
        "branch": ev.device.branch,
        "teller": ev.teller,
        "type": ev.type,
        "channel": str(ev.channel),
        "action": str(ev.action),
        "outcome": str(ev.outcome),
        "time_us": t,
        "hour": t // HOUR_US,
        "received_us": received,
        "finding_types": types,
        "body": ev.to_json(),
    }


def _filters(q: EventQuery) -> list[Any]:
    out: list[Any] = []
    if q.since_us is not None:
        out.append(events.c.time_us >= q.since_us)
    if q.until_us is not None:
        out.append(events.c.time_us < q.until_us)
    for col, value in (
        (events.c.branch, q.branch),
        (events.c.device_id, q.device),
        (events.c.teller, q.teller),
        (events.c.channel, q.channel),
        (events.c.type, q.type),
        (events.c.outcome, q.outcome),
    ):
        if value is not None:
            out.append(col == value)
    if q.finding_type is not None:
        out.append(events.c.finding_types.contains(f"|{q.finding_type}|", autoescape=True))
    return out
