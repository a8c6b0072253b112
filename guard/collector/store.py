"""The collector's storage: devices, events, issued one-time codes and the replay cache.

SQLite (WAL) by default, PostgreSQL by URL. Several collector processes may share one database:
events are inserted with `ON CONFLICT DO NOTHING` on their id (a repeated id is acknowledged, not
stored twice), and the replay cache lives in the database so a batch replayed to another process is
still recognised. Times are stored as integer microseconds since the Unix epoch (UTC), which
compares and groups the same way on every backend. Written with SQLAlchemy Core.

Issued one-time approval codes are recorded by their id (device, channel, slot, slots, counter),
never the code: the code is a MAC under the device key, which the collector keeps wrapped. The
PC's `APPROVAL_CODE_SPENT` event marks its code spent when the batch is stored; a second one for
the same code (a restored journal, a copied device key) is a `code_reused` alert, a spend of a
code never recorded here a `code_unrecorded` one.
"""

from __future__ import annotations

import contextlib
import json
import os
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

from guard.collector import keywrap
from guard.delivery import approval_code
from guard.events import EventType
from guard.model import Event

US = 1_000_000
HOUR_US = 3600 * US
RESPONSE_OUTCOMES = ("acknowledged", "justified")
HEARTBEAT = EventType.HEARTBEAT.value
CODE_SPENT = EventType.APPROVAL_CODE_SPENT.value
CODE_STATUSES = ("valid", "spent", "reused", "expired", "unrecorded")

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
    # receipt time of the newest heartbeat (what the silent-terminals alarm uses) and the time
    # the device claimed for it, kept beside it for the record
    sa.Column("last_heartbeat_us", sa.BigInteger, nullable=True),
    sa.Column("last_heartbeat_device_us", sa.BigInteger, nullable=True),
    # the journal chain head of the last batch that carried one (X-TG-Chain)
    sa.Column("chain_seq", sa.BigInteger, nullable=True),
    sa.Column("chain_hash", sa.String(128), nullable=True),
    sa.Column("chain_us", sa.BigInteger, nullable=True),
)

events = sa.Table(
    "tg_events",
    metadata,
    sa.Column("seq", _BigInt, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(36), nullable=False),
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
    # an id is unique per device: one device cannot pre-empt another's event
    sa.UniqueConstraint("device_id", "id", name="tg_events_device_event"),
)

alerts = sa.Table(
    "tg_alerts",
    metadata,
    sa.Column("seq", _BigInt, primary_key=True, autoincrement=True),
    sa.Column("device_id", sa.String(128), nullable=False, index=True),
    sa.Column("kind", sa.String(32), nullable=False),  # chain_rewind, chain_gap, chain_wipe
    sa.Column("detail", sa.String(512), nullable=False),
    sa.Column("created_us", sa.BigInteger, nullable=False, index=True),
)

# Events refused because they carried an unmasked identifier: where and what, never the value.
refusals = sa.Table(
    "tg_refusals",
    metadata,
    sa.Column("device_id", sa.String(128), primary_key=True),
    sa.Column("event_id", sa.String(36), primary_key=True),
    sa.Column("field", sa.String(128), nullable=False),
    sa.Column("what", sa.String(128), nullable=False),
    sa.Column("received_us", sa.BigInteger, nullable=False, index=True),
)

meta = sa.Table(
    "tg_meta",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.String(256), nullable=False),
)

replays = sa.Table(
    "tg_replays",
    metadata,
    sa.Column("signature", sa.String(64), primary_key=True),
    sa.Column("device_id", sa.String(128), nullable=False),
    sa.Column("ts", sa.BigInteger, nullable=False, index=True),
)


# One-time approval codes by their id (never the code itself); `issued_us` None: first seen when
# a device reported it spent (issued by an older collector, or not here at all).
codes = sa.Table(
    "tg_codes",
    metadata,
    sa.Column("seq", _BigInt, primary_key=True, autoincrement=True),
    sa.Column("device_id", sa.String(128), nullable=False, index=True),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("slot", sa.BigInteger, nullable=False),
    sa.Column("slots", sa.Integer, nullable=False),
    sa.Column("counter", sa.Integer, nullable=False),
    sa.Column("issued_us", sa.BigInteger, nullable=True, index=True),
    sa.Column("valid_from_us", sa.BigInteger, nullable=False),
    sa.Column("valid_until_us", sa.BigInteger, nullable=False, index=True),
    sa.Column("issuer", sa.String(128), nullable=False, default=""),
    sa.Column("reason", sa.String(512), nullable=False, default=""),
    sa.Column("uses", sa.Integer, nullable=False, default=0),
    sa.Column("spent_us", sa.BigInteger, nullable=True),  # the device's time of the first use
    sa.Column("spent_event", sa.String(36), nullable=True),
    sa.Column("last_use_us", sa.BigInteger, nullable=True),
    sa.UniqueConstraint("device_id", "channel", "slot", "slots", "counter", name="tg_codes_id"),
)
_CODE_ID = [codes.c.device_id, codes.c.channel, codes.c.slot, codes.c.slots, codes.c.counter]


class StoreUnavailable(Exception):
    """The database cannot be reached or stays locked; the request may be retried later."""


class StoreRejected(Exception):
    """The database refused a value of the request (too long, invalid characters)."""


class ReplayedBatch(Exception):
    """This exact signed batch was accepted before (same signature): a replay."""


class DeviceExists(Exception):
    """The device id is enrolled already; giving it a new key needs the admin."""


class StoreKeyError(Exception):
    """The stored device keys do not decrypt with the collector key given: wrong key file."""


class CodesExhausted(Exception):
    """Every counter of this device, channel, slot and length is taken: wait for the next slot
    (five minutes) or choose another length."""


@dataclass(frozen=True, slots=True)
class ChainHead:
    """The journal chain head a batch declared (`X-TG-Chain: seq:hash`)."""

    seq: int
    hash: str


@dataclass(frozen=True, slots=True)
class Alert:
    """Something the dashboard raises about a device (a rewound, gapped or wiped journal)."""

    device_id: str
    kind: str
    detail: str
    created_us: int


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
    last_heartbeat_us: int | None  # when the collector received it
    last_heartbeat_device_us: int | None = None  # the time the device claimed


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
class IssuedCode:
    """One one-time code as the collector recorded it (its id, never the code)."""

    seq: int
    device_id: str
    channel: str
    slot: int
    slots: int
    counter: int
    issued_us: int | None  # None: not recorded when issued, first seen spent
    valid_from_us: int
    valid_until_us: int
    issuer: str
    reason: str
    uses: int
    spent_us: int | None
    spent_event: str | None
    last_use_us: int | None
    hostname: str = ""
    branch: str = ""

    def status(self, now: int) -> str:
        """``reused`` (reported used more than once), ``spent``, ``unrecorded`` (spent, never
        issued here), ``expired`` (never used) or ``valid``."""
        if self.uses > 1:
            return "reused"
        if self.uses == 1:
            return "spent" if self.issued_us is not None else "unrecorded"
        return "expired" if self.valid_until_us <= now else "valid"

    @property
    def code_id(self) -> approval_code.CodeId:
        return approval_code.CodeId(self.channel, self.slot, self.slots, self.counter)


@dataclass(frozen=True, slots=True)
class CodeQuery:
    """Filters of the codes list (API and dashboard)."""

    device: str | None = None
    channel: str | None = None
    status: str | None = None  # one of CODE_STATUSES
    limit: int = 100
    offset: int = 0


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
    refused_24h: int = 0  # events refused for carrying an unmasked identifier
    alerts: list[Alert] = field(default_factory=list)


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

    def __init__(self, url: str, *, replay_window_s: int = 300,
                 server_key: bytes | None = None) -> None:
        self.url = url
        # device keys are stored wrapped with this key (`guard.collector.keywrap`)
        self._server_key = server_key or secrets.token_bytes(32)
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
        """Create the tables if missing and bring an older database up to date.

        Safe when several processes start at once. A SQLite database file (and its -wal/-shm)
        is made owner-only whatever the umask; device keys still stored in plain text by an older
        collector are encrypted in place; `StoreKeyError` when the stored keys do not decrypt
        with this collector's key (the wrong key file).
        """
        if self._sqlite:
            _private_sqlite_files(self.url)
        with self._guard():
            try:
                metadata.create_all(self.engine)
            except DBAPIError:
                # another process created them between the check and the CREATE
                metadata.create_all(self.engine)
            with self.engine.begin() as conn:
                if not self._sqlite:
                    # one migrating process at a time (the others wait, then find nothing to do)
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(847001)"))
                self._migrate(conn)
        if self._sqlite:
            _private_sqlite_files(self.url)

    def _migrate(self, conn: Connection) -> None:
        insp = sa.inspect(conn)
        have = {c["name"] for c in insp.get_columns("tg_devices")}
        for col in ("last_heartbeat_device_us", "chain_seq", "chain_hash", "chain_us"):
            if col not in have:
                kind = "VARCHAR(128)" if col == "chain_hash" else "BIGINT"
                conn.exec_driver_sql(f"ALTER TABLE tg_devices ADD COLUMN {col} {kind}")
        old_unique = [u for u in insp.get_unique_constraints("tg_events")
                      if list(u["column_names"]) == ["id"]]
        if old_unique:
            self._per_device_ids(conn, insp, old_unique[0].get("name"))
        rows = conn.execute(sa.select(devices.c.id, devices.c.key)).all()
        checked = False
        for r in rows:
            stored = bytes(r.key)
            if not keywrap.is_wrapped(stored):
                conn.execute(devices.update().where(devices.c.id == r.id)
                             .values(key=keywrap.wrap(self._server_key, r.id, stored)))
            elif not checked:
                try:
                    keywrap.unwrap(self._server_key, r.id, stored)
                except keywrap.UnwrapError:
                    raise StoreKeyError(
                        "the device keys in this database do not decrypt with this collector's "
                        "key: start it with the key file (or TELLER_GUARD_COLLECTOR_KEY) it was "
                        "first started with") from None
                checked = True

    def _per_device_ids(self, conn: Connection, insp: Any, name: str | None) -> None:
        """Older databases made event ids unique across devices; make them unique per device."""
        if not self._sqlite:
            conn.exec_driver_sql(f'ALTER TABLE tg_events DROP CONSTRAINT "{name}"')
            conn.exec_driver_sql("ALTER TABLE tg_events ADD CONSTRAINT tg_events_device_event "
                                 "UNIQUE (device_id, id)")
            return
        # SQLite cannot drop a table constraint: rebuild the table under the new definition
        for idx in insp.get_indexes("tg_events"):
            conn.exec_driver_sql(f'DROP INDEX IF EXISTS "{idx["name"]}"')
        conn.exec_driver_sql("ALTER TABLE tg_events RENAME TO tg_events_old")
        events.create(conn)
        cols = ", ".join(c.name for c in events.columns)
        conn.exec_driver_sql(f"INSERT INTO tg_events ({cols}) SELECT {cols} FROM tg_events_old")
        conn.exec_driver_sql("DROP TABLE tg_events_old")

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

    def enroll(self, device_id: str, hostname: str, branch: str, *,
               replace: bool = False) -> bytes:
        """Give `device_id` a new random key and return it.

        An id enrolled already raises `DeviceExists` unless `replace` (the admin asked): then
        its key is replaced (the old one stops working) and its chain head is forgotten.
        """
        key = secrets.token_bytes(32)
        stored = keywrap.wrap(self._server_key, device_id, key)
        enrolled = now_us()
        stmt = (self._insert(devices)
                .values(id=device_id, hostname=hostname, branch=branch, key=stored,
                        enrolled_us=enrolled)
                .on_conflict_do_nothing(index_elements=[devices.c.id])
                .returning(devices.c.id))
        with self._guard(), self.engine.begin() as conn:
            if conn.execute(stmt).first() is None:
                if not replace:
                    raise DeviceExists(device_id)
                conn.execute(devices.update().where(devices.c.id == device_id).values(
                    key=stored, hostname=hostname, branch=branch, enrolled_us=enrolled,
                    chain_seq=None, chain_hash=None, chain_us=None))
        return key

    def device_exists(self, device_id: str) -> bool:
        with self._guard(), self._reader.begin() as conn:
            return conn.execute(sa.select(devices.c.id).where(devices.c.id == device_id)
                                ).first() is not None

    def device_key(self, device_id: str) -> bytes | None:
        """The device's key, decrypted; `StoreKeyError` when it does not decrypt."""
        with self._guard(), self._reader.begin() as conn:
            stored = conn.execute(
                sa.select(devices.c.key).where(devices.c.id == device_id)
            ).scalar_one_or_none()
        if stored is None:
            return None
        try:
            return keywrap.unwrap(self._server_key, device_id, bytes(stored))
        except keywrap.UnwrapError as exc:
            raise StoreKeyError(f"the key of device {device_id} does not decrypt with this "
                                f"collector's key") from exc

    def record_refusal(self, device_id: str, event_id: str, where: str, what: str) -> None:
        """Count an event refused for carrying customer data (where and what, no value)."""
        stmt = (self._insert(refusals)
                .values(device_id=device_id, event_id=event_id[:36], field=where[:128],
                        what=what[:128], received_us=now_us())
                .on_conflict_do_nothing(index_elements=[refusals.c.device_id,
                                                        refusals.c.event_id]))
        with self._guard(), self.engine.begin() as conn:
            conn.execute(stmt)

    def alerts(self, device_id: str | None = None, limit: int = 50) -> list[Alert]:
        stmt = sa.select(alerts).order_by(alerts.c.seq.desc()).limit(limit)
        if device_id is not None:
            stmt = stmt.where(alerts.c.device_id == device_id)
        with self._guard(), self._reader.begin() as conn:
            return [Alert(r.device_id, r.kind, r.detail, r.created_us) for r in conn.execute(stmt)]

    def devices(self) -> list[DeviceRecord]:
        with self._guard(), self._reader.begin() as conn:
            rows = conn.execute(sa.select(devices).order_by(devices.c.branch, devices.c.hostname))
            return [_device(r) for r in rows]

    # -- events -------------------------------------------------------------------------------

    def ingest(
        self, device_id: str, signature: str, ts: int, batch: Sequence[Event],
        chain: ChainHead | None = None,
    ) -> IngestResult:
        """Store one verified batch atomically; raise `ReplayedBatch` if it was seen before.

        `chain` is the journal chain head the batch declared; a rewind, a gap or a wipe against
        the head stored for the device is recorded as an alert (the batch is stored anyway:
        refusing it would hide the events that came after the tampering).
        """
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
        # the silent-terminals alarm trusts the collector's clock, not the device's
        device_hb = max((to_us(e.time) for e in unique.values() if e.type == HEARTBEAT),
                        default=None)
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
                            .on_conflict_do_nothing(index_elements=[events.c.device_id,
                                                                events.c.id])
                            .returning(events.c.id),
                            rows,
                        )
                        inserted = {r[0] for r in result}
                    spends = [unique[k] for k in sorted(inserted)
                              if unique[k].type == CODE_SPENT]
                    if spends:
                        self._spend_codes(conn, device_id, spends, received)
                    values: dict[str, Any] = {"last_seen_us": received}
                    if device_hb is not None:
                        values["last_heartbeat_us"] = received
                        values["last_heartbeat_device_us"] = device_hb
                    if chain is not None:
                        self._check_chain(conn, device_id, chain, len(batch), received)
                        values.update(chain_seq=chain.seq, chain_hash=chain.hash,
                                      chain_us=received)
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

    def _spend_codes(self, conn: Connection, device_id: str, spends: Sequence[Event],
                     received: int) -> None:
        """Mark the codes these `APPROVAL_CODE_SPENT` events name as used (in the batch's
        transaction); a second use or a code never recorded here raises an alert."""
        for ev in spends:
            cid = approval_code.CodeId.from_detail(ev.detail)
            if cid is None:
                conn.execute(alerts.insert().values(
                    device_id=device_id, kind="code_unrecorded", created_us=received,
                    detail=f"event {ev.id} reports a one-time code used without a valid code "
                           f"id"))
                continue
            used_us = to_us(ev.time)
            ins = self._insert(codes).values(
                device_id=device_id, channel=cid.channel, slot=cid.slot, slots=cid.slots,
                counter=cid.counter, issued_us=None, valid_from_us=cid.valid_from() * US,
                valid_until_us=cid.valid_until() * US, issuer="", reason="", uses=1,
                spent_us=used_us, spent_event=str(ev.id), last_use_us=used_us)
            # one statement on both backends: concurrent collector processes count each use
            row = conn.execute(ins.on_conflict_do_update(
                index_elements=_CODE_ID,
                set_={"uses": codes.c.uses + 1,
                      "spent_us": sa.func.coalesce(codes.c.spent_us, ins.excluded.spent_us),
                      "spent_event": sa.func.coalesce(codes.c.spent_event,
                                                      ins.excluded.spent_event),
                      "last_use_us": ins.excluded.last_use_us},
            ).returning(codes.c.seq, codes.c.uses, codes.c.issued_us)).one()
            what = (f"one-time code #{row.seq} ({cid.channel}, "
                    f"{cid.slots * approval_code.SLOT_S // 60} min)")
            if row.uses > 1:
                conn.execute(alerts.insert().values(
                    device_id=device_id, kind="code_reused", created_us=received,
                    detail=f"{what} reported used {row.uses} times (event {ev.id}): a restored "
                           f"journal or this device's key on another PC"))
            elif row.issued_us is None:
                conn.execute(alerts.insert().values(
                    device_id=device_id, kind="code_unrecorded", created_us=received,
                    detail=f"{what} was used but never recorded as issued here (event "
                           f"{ev.id})"))

    def issue_code(self, device_id: str, channel: str, minutes: int, *, issuer: str,
                   reason: str, now: float | None = None) -> tuple[IssuedCode, bytes]:
        """Record a new one-time code for `device_id` and `channel`, valid about `minutes`;
        returns it with the device key to derive it from. Its counter is one no other code of
        the same slot and length uses, so two codes never coincide. Raises `CodesExhausted`
        when all 100 are taken; `approval_code.CodeError` for a bad channel or length; None
        device key: `LookupError` (unknown device)."""
        key = self.device_key(device_id)
        if key is None:
            raise LookupError(device_id)
        t = time.time() if now is None else now
        probe = approval_code.code_id(channel, minutes, 0, t)
        for _attempt in range(5):
            with self._guard(), self.engine.begin() as conn:
                taken = {int(c) for c in conn.execute(
                    sa.select(codes.c.counter).where(
                        codes.c.device_id == device_id, codes.c.channel == probe.channel,
                        codes.c.slot == probe.slot, codes.c.slots == probe.slots)).scalars()}
                free = [c for c in range(100) if c not in taken]
                if not free:
                    raise CodesExhausted(
                        f"100 codes for {device_id} on {channel} were issued in these five "
                        f"minutes already: wait for the next five minutes")
                cid = approval_code.CodeId(probe.channel, probe.slot, probe.slots,
                                           free[secrets.randbelow(len(free))])
                row = conn.execute(
                    self._insert(codes).values(
                        device_id=device_id, channel=cid.channel, slot=cid.slot,
                        slots=cid.slots, counter=cid.counter, issued_us=int(t * US),
                        valid_from_us=cid.valid_from() * US,
                        valid_until_us=cid.valid_until() * US, issuer=issuer[:128],
                        reason=reason[:512], uses=0)
                    .on_conflict_do_nothing(index_elements=_CODE_ID)
                    .returning(codes.c.seq)).first()
            if row is not None:  # else another process took this counter in between
                issued = self.code(int(row.seq))
                assert issued is not None
                return issued, key
        raise CodesExhausted(f"could not record a code for {device_id}: retry")

    def code(self, seq: int) -> IssuedCode | None:
        rows = self._codes_where([codes.c.seq == seq], limit=1, offset=0)
        return rows[0] if rows else None

    def codes(self, q: CodeQuery, now: int | None = None) -> list[IssuedCode]:
        """Issued codes, newest first, filtered by device, channel and status at `now`."""
        at = now_us() if now is None else now
        where: list[Any] = []
        if q.device is not None:
            where.append(codes.c.device_id == q.device)
        if q.channel is not None:
            where.append(codes.c.channel == q.channel)
        if q.status is not None:
            where.append({
                "reused": codes.c.uses > 1,
                "spent": sa.and_(codes.c.uses == 1, codes.c.issued_us.is_not(None)),
                "unrecorded": sa.and_(codes.c.uses == 1, codes.c.issued_us.is_(None)),
                "expired": sa.and_(codes.c.uses == 0, codes.c.valid_until_us <= at),
                "valid": sa.and_(codes.c.uses == 0, codes.c.valid_until_us > at),
            }[q.status])
        return self._codes_where(where, limit=q.limit, offset=q.offset)

    def _codes_where(self, where: list[Any], *, limit: int, offset: int) -> list[IssuedCode]:
        stmt = (sa.select(codes, devices.c.hostname, devices.c.branch)
                .select_from(codes.outerjoin(devices, devices.c.id == codes.c.device_id))
                .where(*where).order_by(codes.c.seq.desc()).limit(limit).offset(offset))
        with self._guard(), self._reader.begin() as conn:
            return [IssuedCode(
                seq=int(r.seq), device_id=r.device_id, channel=r.channel, slot=int(r.slot),
                slots=int(r.slots), counter=int(r.counter), issued_us=r.issued_us,
                valid_from_us=int(r.valid_from_us), valid_until_us=int(r.valid_until_us),
                issuer=r.issuer, reason=r.reason, uses=int(r.uses), spent_us=r.spent_us,
                spent_event=r.spent_event, last_use_us=r.last_use_us,
                hostname=r.hostname or "", branch=r.branch or "") for r in conn.execute(stmt)]

    def _check_chain(self, conn: Connection, device_id: str, head: ChainHead, n: int,
                     received: int) -> None:
        stmt = sa.select(devices.c.chain_seq, devices.c.chain_hash).where(
            devices.c.id == device_id)
        if not self._sqlite:
            stmt = stmt.with_for_update()  # two batches of one device compare in turn
        prev = conn.execute(stmt).first()
        if prev is None or prev.chain_seq is None:
            return
        kind = detail = ""
        if head.seq == prev.chain_seq:
            if head.hash != prev.chain_hash:
                kind, detail = "chain_rewind", (f"journal position {head.seq} came back with "
                                                f"another hash: the journal was rewritten")
        elif head.seq < prev.chain_seq:
            if head.seq <= max(n, 1):
                kind, detail = "chain_wipe", (f"journal restarted at {head.seq} after "
                                              f"{prev.chain_seq}: the journal was wiped")
            else:
                kind, detail = "chain_rewind", (f"journal went back from {prev.chain_seq} to "
                                                f"{head.seq}: rows were cut or replaced")
        elif head.seq - prev.chain_seq > n:
            missing = head.seq - prev.chain_seq - n
            kind, detail = "chain_gap", (f"{missing} journal rows between {prev.chain_seq} and "
                                         f"{head.seq} never arrived")
        if kind:
            conn.execute(alerts.insert().values(device_id=device_id, kind=kind,
                                                detail=detail, created_us=received))

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

    def event(self, seq: int) -> StoredEvent | None:
        """One stored event by its sequence number (the dashboard's detail page), or None."""
        stmt = sa.select(events.c.seq, events.c.received_us, events.c.body).where(
            events.c.seq == seq)
        with self._guard(), self._reader.begin() as conn:
            r = conn.execute(stmt).first()
        if r is None:
            return None
        return StoredEvent(seq=r.seq, received_us=r.received_us, event=json.loads(r.body))

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
            refused_24h = conn.execute(
                sa.select(sa.func.count()).select_from(refusals)
                .where(refusals.c.received_us >= day_ago)).scalar_one()
            recent_alerts = conn.execute(
                sa.select(alerts).where(alerts.c.created_us >= week_ago)
                .order_by(alerts.c.seq.desc()).limit(20)).all()
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
            refused_24h=int(refused_24h),
            alerts=[Alert(r.device_id, r.kind, r.detail, r.created_us) for r in recent_alerts],
        )


def _private_sqlite_files(url: str) -> None:
    """Create the SQLite file owner-only (0600, directory 0700 when made here), and make an
    existing one and its -wal/-shm owner-only, whatever the umask (SQLite gives -wal/-shm the
    mode of the database file)."""
    database = sa.engine.make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = os.path.abspath(database)
    parent = os.path.dirname(path)
    if not os.path.isdir(parent):
        os.makedirs(parent, mode=0o700, exist_ok=True)
        os.chmod(parent, 0o700)
    # Never open (and close) an existing database file here: closing any descriptor of it drops
    # this process's POSIX locks on it, which SQLite's own connections rely on. chmod by path.
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        os.chmod(path, 0o600)
    else:
        try:
            if hasattr(os, "fchmod"):
                os.fchmod(fd, 0o600)
        finally:
            os.close(fd)
    for suffix in ("-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError):
            os.chmod(path + suffix, 0o600)


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
        last_heartbeat_device_us=r.last_heartbeat_device_us,
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
