"""The machine service's end of the local channel: session agents connect, hand events over and
answer the prompts the service sends them.

One reactor thread (a selector over the listening socket and every connection) reads; messages
are handled on a small bounded thread pool, in order per connection. Idle connections cost a file
handle and no thread. The Windows named pipe (`guard.ipc.pipe`) feeds the same handlers.

What a teller's process may do here (issue 8): send events in its own name only, of the types a
teller records (`guard.events.SERVICE_ONLY` are refused) with the finding types the detectors
know; at most `events_per_s` per user (a token bucket; above it the answer is ``refused`` with
``retry`` so the agent keeps the event spooled) and `hashes_per_min` values hashed per user. The
install hash key never leaves this process: an event's finding summaries from a teller get their
hashes here, from the `hash_inputs` beside the event (in memory only, never written or logged).
Every value hashed is counted in a HASHES_COMPUTED event per connection per window, and the
events refused for the rate in one LOCAL_EVENTS_THROTTLED event per user per window.
"""


from __future__ import annotations

import dataclasses
import errno
import json
import logging
import selectors
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from pydantic import ValidationError

from guard.delivery.journal import Journal, JournalError
from guard.events import EventType, new_event, service_only
from guard.ipc.messages import (
    MAX_FRAME,
    MAX_LINE,
    SUPPORTED_VERSIONS,
    FrameDecoder,
    LineDecoder,
    Message,
    MessageType,
    ProtocolError,
    answer_from_body,
    approval_request_to_body,
    approval_try_from_body,
    credential_try_from_body,
    decode,
    encode,
    error_message,
    prompt_to_body,
    verdict_to_body,
)
from guard.ipc.status import STATUS_FILE
from guard.ipc.unix import Peer, _require_unix, default_socket_path, is_pipe_name, listen_unix
from guard.model import Device, Event, FindingSummary
from guard.pipeline.approval import ApprovalRequest, ApprovalResult, Check
from guard.pipeline.prompt import PromptAnswer, PromptRequest
from guard.scan.detectors import TYPES, mask
from guard.scan.engine import keyed_hash

log = logging.getLogger(__name__)

MAX_PER_UID = 8  # an agent needs one; a few more for `teller-guard` commands and restarts
IDLE_TIMEOUT_S = 90.0  # agents ping every third of this
SEND_TIMEOUT_S = 5.0  # a peer that does not read its answers is dropped
MAX_INBOX = 32  # messages read but not handled per connection before reading pauses
REFUSAL_LINGER_S = 1.0  # after a last answer, how long the peer may take to read it
EVENTS_PER_S = 10.0  # per user: a teller's agent records a few events a minute
EVENTS_BURST = 100  # a spool flushed after a service restart goes at EVENTS_PER_S after this
HASHES_PER_MIN = 600  # values hashed per user and minute (a copied table of 50 cards is 50)
USAGE_WINDOW_S = 60.0  # one HASHES_COMPUTED per connection, one LOCAL_EVENTS_THROTTLED per user
MAX_HASH_INPUT = 256  # characters: the longest normalised value (an e-mail address)
_KNOWN_TYPES = frozenset(EventType)
_FINDING_TYPES = frozenset(TYPES)
_OUT_OF_HANDLES = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}
REASON_GRACE_S = 5.0  # after an approving try, how long the agent may take to send the reason
CHECK_GRACE_S = 30.0  # at an approval's deadline, how long a try being checked may still take
_LISTENING = "listening"
_STOPPED = "stopped"


@dataclass(eq=False)
class _Waiter:
    """A prompt (or supervisor dialog) sent to an agent, waiting for its answer; `cond` is
    notified whenever `done` is set or an approval's state changes."""

    done: threading.Event = field(default_factory=threading.Event)
    answer: PromptAnswer | None = None
    cond: threading.Condition = field(default_factory=threading.Condition)

    def finish(self, answer: PromptAnswer | None = None) -> None:
        with self.cond:
            if answer is not None:
                self.answer = answer
            self.done.set()
            self.cond.notify_all()


@dataclass(eq=False)
class _Approval:
    """A supervisor dialog open in one agent connection (`cid`): the tries it relays are
    checked here with `check` (the service's own `Approver`, through the pipeline); `result` is
    the try that approved. All state changes under `waiter.cond`."""

    cid: int
    check: Check
    waiter: _Waiter
    result: ApprovalResult | None = None
    busy: bool = False  # a try is being checked
    closed: bool = False  # over (answered, timed out, connection gone): tries are refused


@dataclass(eq=False)
class Connection:
    """One agent connection as the handlers see it, whatever the transport.

    `send` writes bytes (blocking at most the transport's send timeout; raises OSError);
    `close` ends the connection from any thread (the transport then calls `closed()`).
    """

    cid: int
    peer: Peer
    send: Callable[[bytes], None]
    close: Callable[[], None]
    last_active: float = field(default_factory=time.monotonic)
    dialect: str = ""  # "", "framed" or "line" (the one-line-per-event dialect of old agents)
    decoder: FrameDecoder | LineDecoder | None = None
    refusal: str = ""  # why this peer may not use the channel (answered on its first bytes)
    linger_until: float | None = None  # last answer sent: discard input, close at this time
    inbox: deque[Message | bytes] = field(default_factory=deque)
    busy: bool = False
    hello: bool = False
    teller: str = ""
    prompts: bool = False
    approvals: bool = False  # the agent can show the supervisor dialog (APPROVE)
    waiters: dict[str, _Waiter] = field(default_factory=dict)
    wlock: threading.Lock = field(default_factory=threading.Lock)
    gone: bool = False


_Handler = Callable[["LocalChannelServer", Connection, Message], "Message | None"]
CredentialCheck = Callable[[str, str, str, str], ApprovalResult]
"""(teller, method ``supervisor`` or ``it``, supervisor id, secret) → the verdict, with the
back-off of that teller (the machine service's `ServiceApprovers.verify`)."""


@dataclass(eq=False)
class _Bucket:
    """A token bucket: `capacity` tokens, refilled at `rate` per second."""

    rate: float
    capacity: float
    tokens: float = -1.0
    at: float = field(default_factory=time.monotonic)

    def take(self, n: float = 1.0, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        if self.tokens < 0:
            self.tokens = self.capacity
        self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if n > self.tokens:
            return False
        self.tokens -= n
        return True


@dataclass(eq=False)
class _Usage:
    """What one user (or connection) made the service do in the current window; counts only."""

    uid: int
    teller: str
    pid: int = 0
    since: float = field(default_factory=time.monotonic)
    values: int = 0  # values hashed
    events: int = 0  # events whose values were hashed
    refused: int = 0  # events refused for the event rate
    hash_refused: int = 0  # events refused for the hashing rate


class _Refusal(Exception):
    """An event the service does not journal: `reason` for the agent; `retry` keep it."""

    def __init__(self, reason: str, *, retry: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry = retry


class LocalChannelServer:
    """The machine service's end: accepts events from session agents and journals them, and asks
    the teller's session agent when the service needs an answer (`ask`, `notify`), or shows the
    supervisor dialog there (`approve`), judging every try it relays with the service's own check.

    `allowed_uids` limits who may connect (None: any local user; each is still bound to its own
    login in the events it sends). `max_per_uid` connections per user (uid, or SID on Windows)
    and `idle_timeout_s` bound what one user can hold open. `status_provider` gives the body of
    a status reply (default: the status file the machine service writes next to the socket).
    `state` is the listener's real state: ``listening``, ``degraded: <reason>`` or ``stopped``.

    `credential_checker` checks, for a teller's own agent, a supervisor's credential or the IT
    credential (their verifiers are withheld from the policy agents get: `policy_provider`
    should give `PolicyStore.central_layer_for_agents`); None: every such check is refused.

    `hash_key` is the install key: the service hashes the values a teller's agent sends beside
    its events (None: such events are journaled without hashes). It is never sent. `events_per_s`
    / `events_burst` and `hashes_per_min` bound what one user can make the service journal and
    hash; `usage_window_s` is how often the counts become events. `device` names this PC in
    the service's own events (the delivery journal stamps the enrolled identity anyway).
    """

    def __init__(self, journal: Journal, path: Path | None = None, *,
                 allowed_uids: Iterable[int] | None = None,
                 on_event: Callable[[Event, Peer], None] | None = None,
                 hash_key: bytes | None = None,
                 status_provider: Callable[[], dict[str, Any]] | None = None,
                 policy_provider: Callable[[], tuple[str, str | None] | None] | None = None,
                 code_verifier: Callable[[str, str], bool] | None = None,
                 credential_checker: CredentialCheck | None = None,
                 max_per_uid: int = MAX_PER_UID, idle_timeout_s: float = IDLE_TIMEOUT_S,
                 workers: int = 4, max_frame: int = MAX_FRAME,
                 events_per_s: float = EVENTS_PER_S, events_burst: int = EVENTS_BURST,
                 hashes_per_min: int = HASHES_PER_MIN, usage_window_s: float = USAGE_WINDOW_S,
                 device: Device | None = None,
                 transport: Callable[[LocalChannelServer], Any] | None = None) -> None:
        _require_unix(path)
        self.journal = journal
        self._hash_key = hash_key
        self.events_per_s = events_per_s
        self.events_burst = events_burst
        self.hashes_per_min = hashes_per_min
        self.usage_window_s = usage_window_s
        self.device = device or Device(id="local", hostname=socket.gethostname()[:255] or "pc")
        self._event_buckets: dict[str, _Bucket] = {}
        self._hash_buckets: dict[str, _Bucket] = {}
        self._hashing: dict[int, _Usage] = {}  # by connection id
        self._throttled: dict[str, _Usage] = {}  # by account
        self._usage_lock = threading.Lock()
        self.throttled = 0  # events refused for a rate, since start
        self.hashed = 0  # values hashed for tellers, since start
        self.path = Path(path) if path is not None else default_socket_path()
        self.allowed_uids = None if allowed_uids is None else frozenset(allowed_uids)
        self._on_event = on_event
        self._status_provider = status_provider
        self._policy_provider = policy_provider
        self._code_verifier = code_verifier
        self._credential_checker = credential_checker
        self.max_per_uid = max_per_uid
        self.idle_timeout_s = idle_timeout_s
        self.max_frame = max_frame
        self._workers = workers
        self._make_transport = transport
        self._pool: ThreadPoolExecutor | None = None
        self._transport: _UnixReactor | Any = None
        self._lock = threading.Lock()
        self._sessions_changed = threading.Condition(self._lock)  # an agent said hello
        self._conns: dict[int, Connection] = {}
        self._approvals: dict[str, _Approval] = {}  # open supervisor dialogs, by APPROVE id
        self._next_cid = 0
        self._degraded = ""
        self._running = False
        self.accepted = 0
        self.rejected = 0
        self.high_water = 0  # the most bytes any connection's decoder held at once

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=self._workers,
                                        thread_name_prefix="teller-guard-local-channel")
        if self._make_transport is not None:
            self._transport = self._make_transport(self)
        elif sys.platform == "win32":
            from guard.ipc.pipe import PipeServer

            self._transport = PipeServer(self, str(self.path))
        else:
            self._transport = _UnixReactor(self, self.path)
        try:
            self._transport.start()
        except BaseException:
            self._pool.shutdown(wait=False)
            self._pool = None
            raise
        self._running = True

    def stop(self, timeout: float = 5.0) -> None:
        self._running = False
        if self._transport is not None:
            self._transport.stop(timeout)
            self._transport = None
        with self._lock:
            conns = list(self._conns.values())
        for conn in conns:
            self.closed(conn)
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        self.report_usage(force=True)

    @property
    def state(self) -> str:
        """``listening``, ``degraded: <why>`` (still up, not taking new connections for now) or
        ``stopped`` (also when the listener thread ended by itself)."""
        transport = self._transport
        if not self._running or transport is None:
            return _STOPPED
        if not transport.alive():
            return f"{_STOPPED}: {transport.failure or 'the listener ended'}"
        if self._degraded:
            return f"degraded: {self._degraded}"
        return _LISTENING

    def degrade(self, reason: str) -> None:
        """The transport cannot accept for now (out of file handles …); logged once."""
        if not self._degraded:
            log.error("local channel degraded: %s; still listening, retrying", reason)
        self._degraded = reason

    def recover(self) -> None:
        if self._degraded:
            log.warning("local channel accepts connections again (was: %s)", self._degraded)
        self._degraded = ""

    @property
    def connections(self) -> int:
        with self._lock:
            return len(self._conns)

    # ------------------------------------------------------------------ transport callbacks

    def admit(self, peer: Peer, send: Callable[[bytes], None],
              close: Callable[[], None]) -> Connection | None:
        """A new connection; None (after a framed refusal) when its user has too many open."""
        with self._lock:
            open_for_uid = sum(1 for c in self._conns.values()
                               if c.peer.account == peer.account)
            if open_for_uid >= self.max_per_uid:
                over = True
            else:
                over = False
                self._next_cid += 1
                conn = Connection(cid=self._next_cid, peer=peer, send=send, close=close)
                self._conns[conn.cid] = conn
        if over:
            self.rejected += 1
            log.warning("local channel: uid %d (pid %d) has %d connections open already; "
                        "refused another", peer.uid, peer.pid, open_for_uid)
            try:
                send(encode(error_message("busy", f"too many connections from this user "
                                          f"(at most {self.max_per_uid})")))
            except OSError:
                pass
            close()
            return None
        if self.allowed_uids is not None and peer.uid not in self.allowed_uids:
            log.warning("local channel: refused a connection from uid %d (pid %d): not an "
                        "allowed user", peer.uid, peer.pid)
            self.rejected += 1
            conn.refusal = "this user may not send events to the guard service"
        return conn

    def received(self, conn: Connection, data: bytes) -> None:
        """Bytes from the peer (the transport's reader thread)."""
        now = time.monotonic()
        conn.last_active = now
        if conn.linger_until is not None or conn.gone:
            return  # the last answer is out; the rest is discarded
        if conn.decoder is None:
            framed = data[:1] not in (b"{", b"h", b" ")
            conn.dialect = "framed" if framed else "line"
            conn.decoder = FrameDecoder(self.max_frame) if framed else LineDecoder(MAX_LINE)
        if conn.refusal:
            self._last_word(conn, "refused", conn.refusal)
            return
        try:
            payloads = conn.decoder.feed(data)
        except ProtocolError as exc:
            self.high_water = max(self.high_water, conn.decoder.high_water)
            log.warning("local channel: uid %d: %s; connection closed", conn.peer.uid, exc)
            self._last_word(conn, exc.code, str(exc))
            return
        self.high_water = max(self.high_water, conn.decoder.high_water)
        for payload in payloads:
            if conn.dialect == "line":
                conn.inbox.append(payload)
                continue
            try:
                msg = decode(payload)
            except ProtocolError as exc:
                if exc.fatal:
                    self._last_word(conn, exc.code, str(exc))
                    return
                self._send(conn, error_message(exc.code, str(exc), exc.reply_to))
                continue
            if msg.type == MessageType.ANSWER:
                self._answered(conn, msg)  # never queued behind events
            elif msg.type == MessageType.ERROR and msg.reply_to:
                self._errored(conn, msg)  # the agent could not take a prompt: safe choice now
            else:
                conn.inbox.append(msg)
        self._schedule(conn)

    def closed(self, conn: Connection) -> None:
        """The connection ended (either side); its open prompts take the safe choice."""
        with self._lock:
            if self._conns.pop(conn.cid, None) is None:
                return
            conn.gone = True
            waiters = list(conn.waiters.values())
            conn.waiters.clear()
        for w in waiters:
            w.finish()
        with self._usage_lock:
            usage = self._hashing.pop(conn.cid, None)
        if usage is not None:
            self._record_usage(EventType.HASHES_COMPUTED, usage)

    def room(self, conn: Connection) -> bool:
        """False while the connection has too much unhandled input: stop reading from it."""
        return len(conn.inbox) < MAX_INBOX

    def sweep(self, now: float | None = None) -> None:
        """Close connections idle longer than the timeout, and lingering ones past their time."""
        now = time.monotonic() if now is None else now
        with self._lock:
            conns = list(self._conns.values())
        for conn in conns:
            if conn.linger_until is not None:
                if now >= conn.linger_until:
                    conn.close()
                continue
            if conn.busy or conn.inbox or conn.waiters:
                continue  # a prompt in flight or work queued is not idleness
            if now - conn.last_active > self.idle_timeout_s:
                log.info("local channel: uid %d idle for %.0f s; connection closed",
                         conn.peer.uid, now - conn.last_active)
                conn.close()
        self.report_usage(now)

    def report_usage(self, now: float | None = None, *, force: bool = False) -> None:
        """Journal the usage windows that are over (all with `force`): HASHES_COMPUTED per
        connection, LOCAL_EVENTS_THROTTLED per user. Counts only, never a value."""
        now = time.monotonic() if now is None else now
        due: list[tuple[EventType, _Usage]] = []
        with self._usage_lock:
            for cid, usage in list(self._hashing.items()):
                if force or now - usage.since >= self.usage_window_s:
                    due.append((EventType.HASHES_COMPUTED, self._hashing.pop(cid)))
            for account, usage in list(self._throttled.items()):
                if force or now - usage.since >= self.usage_window_s:
                    due.append((EventType.LOCAL_EVENTS_THROTTLED, self._throttled.pop(account)))
        for type_, usage in due:
            self._record_usage(type_, usage)

    def _record_usage(self, type_: EventType, usage: _Usage) -> None:
        detail: dict[str, str | int | float | bool | None] = {
            "uid": usage.uid, "user": usage.teller, "window_s": self.usage_window_s}
        if type_ is EventType.HASHES_COMPUTED:
            detail.update(values=usage.values, events=usage.events, pid=usage.pid)
        else:
            detail.update(refused=usage.refused, hash_refused=usage.hash_refused,
                          events_per_s=self.events_per_s, hashes_per_min=self.hashes_per_min)
        event = new_event(type_, device=self.device, teller=usage.teller, detail=detail)
        try:
            self.journal.record(event)
        except JournalError as exc:
            log.error("local channel: %s not journaled: %s", type_, exc)

    # ------------------------------------------------------------------ handling

    def _schedule(self, conn: Connection) -> None:
        with self._lock:
            if conn.busy or not conn.inbox or self._pool is None:
                return
            conn.busy = True
            pool = self._pool
        try:
            pool.submit(self._drain, conn)
        except RuntimeError:  # shutting down
            conn.busy = False

    def _drain(self, conn: Connection) -> None:
        while True:
            with self._lock:
                if not conn.inbox or conn.gone:
                    conn.busy = False
                    break
                item = conn.inbox.popleft()
            try:
                if isinstance(item, bytes):
                    self._send_raw(conn, self._handle_line(item, conn).encode() + b"\n")
                else:
                    reply = self._handle(conn, item)
                    if reply is not None:
                        self._send(conn, reply)
            except Exception:  # one bad message must not stop the others being handled
                log.exception("local channel: handling a message failed")
                if not isinstance(item, bytes):
                    self._send(conn, error_message("internal", "the service failed to handle "
                                                   "this message; see its log", item.id))
            conn.last_active = time.monotonic()
        if self._transport is not None:
            self._transport.wake(conn)  # reading may resume

    def _handle(self, conn: Connection, msg: Message) -> Message | None:
        handler = self._handlers.get(msg.type)
        if handler is None:
            return error_message("unexpected", f"the service does not take {msg.type!r} "
                                 f"messages", msg.id)
        if not conn.hello and msg.type not in (MessageType.HELLO, MessageType.PING):
            return error_message("no_hello", "say hello first (the protocol version)", msg.id)
        return handler(self, conn, msg)

    def _h_hello(self, conn: Connection, msg: Message) -> Message:
        theirs = msg.body.get("versions", [msg.v])
        common = [v for v in SUPPORTED_VERSIONS if isinstance(theirs, list) and v in theirs]
        if not common:
            return error_message("version", f"no common protocol version: the agent speaks "
                                 f"{theirs!r}, the service {list(SUPPORTED_VERSIONS)}", msg.id)
        claimed = msg.body.get("teller", "")
        with self._sessions_changed:
            conn.teller = claimed if conn.peer.privileged and isinstance(claimed, str) \
                and claimed else conn.peer.login
            conn.prompts = bool(msg.body.get("prompts", False))
            conn.approvals = conn.prompts and msg.body.get("approvals") is True
            conn.hello = True
            self._sessions_changed.notify_all()
        return msg.reply(MessageType.HELLO, {"version": max(common), "teller": conn.teller,
                                             "versions": list(SUPPORTED_VERSIONS),
                                             "idle_timeout_s": self.idle_timeout_s,
                                             "max_frame": self.max_frame})

    def _h_ping(self, conn: Connection, msg: Message) -> Message:
        return msg.reply(MessageType.PONG)

    def _h_event(self, conn: Connection, msg: Message) -> Message:
        raw = msg.body.get("event")
        try:
            event = Event.model_validate_json(json.dumps(raw))
        except (ValidationError, TypeError, ValueError) as exc:
            self.rejected += 1
            count = exc.error_count() if isinstance(exc, ValidationError) else 1
            return msg.reply(MessageType.REFUSED, {"reason": f"not a valid event ({count} "
                                                   f"problems)", "retry": False})
        reason, retry = self._journal(event, conn, msg.body.get("hash_inputs"))
        if reason:
            return msg.reply(MessageType.REFUSED, {"reason": reason, "retry": retry})
        return msg.reply(MessageType.ACK, {"event_id": str(event.id)})

    def _journal(self, event: Event, conn: Connection, hash_inputs: object = None
                 ) -> tuple[str, bool]:
        """('', False) when journaled, else (why, whether to try again later)."""
        peer = conn.peer
        try:
            self._admissible(event, peer)
            self._take_event(peer)
            event = self._hashed(event, conn, hash_inputs)
        except _Refusal as refusal:
            if not refusal.retry:
                self.rejected += 1
            return refusal.reason, refusal.retry
        try:
            self.journal.record(event)
        except JournalError as exc:
            log.error("local channel: cannot journal an event: %s", exc)
            return "the service cannot journal events right now", True
        self.accepted += 1
        if self._on_event is not None:
            self._on_event(event, peer)
        return "", False

    def _admissible(self, event: Event, peer: Peer) -> None:
        """Refuses (for good) what a teller's process may not record."""
        if peer.privileged:
            return
        if event.teller != peer.login:
            log.warning("local channel: uid %d sent an event for another teller; refused",
                        peer.uid)
            raise _Refusal("the event's teller is not the sending user")
        if event.type not in _KNOWN_TYPES:
            log.warning("local channel: uid %d sent an event of an unknown type; refused",
                        peer.uid)
            raise _Refusal("unknown event type (see guard.events.EventType)")
        if service_only(event.type):
            log.warning("local channel: uid %d sent a %s event, which only the service "
                        "records; refused", peer.uid, event.type)
            raise _Refusal(f"only the guard service records {event.type} events")
        if any(f.type not in _FINDING_TYPES for f in event.findings):
            log.warning("local channel: uid %d sent an unknown finding type; refused", peer.uid)
            raise _Refusal("unknown finding type (see guard.scan.detectors.TYPES)")

    def _take_event(self, peer: Peer) -> None:
        """The per-user event rate (root's too: nothing legitimate comes close); above it the
        agent keeps the event and sends it later."""
        with self._usage_lock:
            bucket = self._event_buckets.setdefault(
                peer.account, _Bucket(self.events_per_s, float(self.events_burst)))
            if bucket.take():
                return
            self._note_throttled(peer, hashing=False)
        raise _Refusal(f"too many events from this user (over {self.events_per_s:g}/s); "
                       f"keep it and send it again later", retry=True)

    def _note_throttled(self, peer: Peer, *, hashing: bool) -> None:
        """Count a refusal for a rate (the caller holds the usage lock)."""
        usage = self._throttled.get(peer.account)
        if usage is None:
            usage = self._throttled[peer.account] = _Usage(peer.uid, peer.login)
            log.warning("local channel: uid %d is over its %s rate; refusing (counted in one "
                        "%s event per %.0f s)", peer.uid, "hashing" if hashing else "event",
                        EventType.LOCAL_EVENTS_THROTTLED, self.usage_window_s)
        if hashing:
            usage.hash_refused += 1
        else:
            usage.refused += 1
        self.throttled += 1

    def _hashed(self, event: Event, conn: Connection, hash_inputs: object) -> Event:
        """`event` with its summaries' hashes computed here from `hash_inputs` (a teller's
        hashes are never taken: they are the service's own or none). Values are used in
        memory and appear in no log, message or exception."""
        peer = conn.peer
        if hash_inputs is None or hash_inputs == []:
            if peer.privileged or not any(f.hashes for f in event.findings):
                return event
            return event.model_copy(update={"findings": [
                f.model_copy(update={"hashes": []}) for f in event.findings]})
        values = _checked_inputs(event.findings, hash_inputs)
        count = sum(len(v) for v in values)
        if self._hash_key is None:
            log.warning("local channel: no hash key; uid %d's event journaled without hashes",
                        peer.uid)
            return event.model_copy(update={"findings": [
                f.model_copy(update={"hashes": []}) for f in event.findings]})
        with self._usage_lock:
            bucket = self._hash_buckets.setdefault(
                peer.account, _Bucket(self.hashes_per_min / 60.0, float(self.hashes_per_min)))
            if not bucket.take(count):
                self._note_throttled(peer, hashing=True)
                raise _Refusal(f"too many values to hash from this user (over "
                               f"{self.hashes_per_min}/min); keep the event and send it "
                               f"again later", retry=True)
            usage = self._hashing.get(conn.cid)
            if usage is None:
                usage = self._hashing[conn.cid] = _Usage(peer.uid, peer.login, peer.pid)
            usage.values += count
            usage.events += 1
            self.hashed += count
        key = self._hash_key
        return event.model_copy(update={"findings": [
            f.model_copy(update={"hashes": [keyed_hash(key, v) for v in vs]})
            for f, vs in zip(event.findings, values, strict=True)]})

    def _h_status(self, conn: Connection, msg: Message) -> Message:
        body: dict[str, Any] = {}
        if self._status_provider is not None:
            body = dict(self._status_provider())
        elif not is_pipe_name(self.path):
            try:
                loaded = json.loads((self.path.parent / STATUS_FILE).read_text("utf-8"))
                body = loaded if isinstance(loaded, dict) else {}
            except (OSError, ValueError):
                body = {}
        return msg.reply(MessageType.STATUS, {"service": body, "channel": {
            "state": self.state, "connections": self.connections}})

    def _h_policy(self, conn: Connection, msg: Message) -> Message:
        layer = self._policy_provider() if self._policy_provider is not None else None
        body = {} if layer is None else {"text": layer[0], "etag": layer[1] or ""}
        return msg.reply(MessageType.POLICY, body)

    def _h_verify_code(self, conn: Connection, msg: Message) -> Message:
        """A one-time code checked with the device key, which never leaves the service: the
        answer is only yes or no (the code is recorded as used when it is yes)."""
        channel, code = msg.body.get("channel"), msg.body.get("code")
        if not isinstance(channel, str) or not isinstance(code, str) or len(code) > 64:
            return error_message("bad_message", "verify_code needs a channel and a code",
                                 msg.id)
        ok = False
        if self._code_verifier is not None:
            try:
                ok = bool(self._code_verifier(channel[:32], code))
            except Exception:  # a failing check is a refusal, never an accepted code
                log.exception("local channel: the one-time code check failed")
        log.info("local channel: uid %d one-time code for %s %s", conn.peer.uid, channel[:32],
                 "accepted" if ok else "refused")
        return msg.reply(MessageType.CODE_VERDICT, {"ok": ok})

    def _h_verify_credential(self, conn: Connection, msg: Message) -> Message:
        """A supervisor's or the IT credential, typed in this teller's own agent (an approval
        of an action the agent enforces, the lock overlay, the quit dialog): checked here with
        the verifiers no teller's process holds, with this teller's back-off; the answer is the
        verdict only, and the secret is in no log or reply."""
        try:
            attempt = credential_try_from_body(msg.body)
        except ProtocolError as exc:
            return error_message(exc.code, str(exc), msg.id)
        if self._credential_checker is None or not conn.teller:
            result = ApprovalResult(False, attempt.method, attempt.supervisor,
                                    message_key="not_offered")
        else:
            try:
                result = self._credential_checker(conn.teller, attempt.method,
                                                  attempt.supervisor, attempt.secret)
            except Exception:  # a failing check is a refusal, never an acceptance
                log.exception("local channel: the credential check failed")
                result = ApprovalResult(False, attempt.method, attempt.supervisor,
                                        message_key="wrong_credential")
        log.info("local channel: uid %d %s credential%s %s", conn.peer.uid, attempt.method,
                 f" of {attempt.supervisor}" if attempt.supervisor else "",
                 "accepted" if result.ok else f"refused ({result.message_key})")
        return msg.reply(MessageType.CREDENTIAL_VERDICT, verdict_to_body(result))

    def _h_approval_try(self, conn: Connection, msg: Message) -> Message:
        """One try typed in a supervisor dialog this connection shows: checked here (the
        supervisors' verifiers and the device key never leave the service), answered with the
        verdict only. A try for a dialog of another connection, or one that is over, is refused
        without being checked."""
        try:
            attempt = approval_try_from_body(msg.body)
        except ProtocolError as exc:
            return error_message(exc.code, str(exc), msg.id)
        refused = ApprovalResult(False, attempt.method, message_key="not_offered")
        with self._lock:
            session = self._approvals.get(attempt.approval)
        if session is None or session.cid != conn.cid:
            log.warning("local channel: uid %d sent a try for no supervisor dialog of its own",
                        conn.peer.uid)
            return msg.reply(MessageType.APPROVAL_VERDICT, verdict_to_body(refused))
        cond = session.waiter.cond
        with cond:
            if session.closed or session.busy or session.result is not None:
                return msg.reply(MessageType.APPROVAL_VERDICT, verdict_to_body(refused))
            session.busy = True
        try:
            result = session.check(attempt.method, attempt.supervisor, attempt.secret)
        except Exception:  # a failing check is a refusal, never an approval
            log.exception("local channel: the approval check failed")
            result = ApprovalResult(False, attempt.method, message_key="wrong_credential")
        finally:
            with cond:
                session.busy = False
                cond.notify_all()
        with cond:
            if result.ok and session.closed:
                log.warning("local channel: an approval came after its dialog was over; the "
                            "action stays blocked")
                result = refused
            elif result.ok:
                session.result = result
                cond.notify_all()
        return msg.reply(MessageType.APPROVAL_VERDICT, verdict_to_body(result))

    _handlers: ClassVar[dict[str, _Handler]] = {
        MessageType.HELLO: _h_hello,
        MessageType.PING: _h_ping,
        MessageType.EVENT: _h_event,
        MessageType.STATUS_REQUEST: _h_status,
        MessageType.POLICY_REQUEST: _h_policy,
        MessageType.VERIFY_CODE: _h_verify_code,
        MessageType.APPROVAL_TRY: _h_approval_try,
        MessageType.VERIFY_CREDENTIAL: _h_verify_credential,
    }

    def _handle_line(self, line: bytes, conn: Connection) -> str:
        """One event in the line dialect (earlier agents). The hash key is never shared: the
        ``hash-key`` request of that dialect gets an error like any other non-event."""
        if line.strip() == b"hash-key":
            log.warning("local channel: uid %d asked for the hash key; refused (it is never "
                        "shared)", conn.peer.uid)
            self.rejected += 1
            return "error the guard service never shares its hash key"
        try:
            event = Event.from_json(line)
        except ValidationError as exc:
            self.rejected += 1
            return f"error not a valid event ({exc.error_count()} problems)"
        reason, _ = self._journal(event, conn)
        return f"error {reason}" if reason else f"ok {event.id}"

    # ------------------------------------------------------------------ sending

    def _send(self, conn: Connection, msg: Message) -> bool:
        try:
            data = encode(msg, limit=self.max_frame)
        except ProtocolError as exc:
            log.error("local channel: a %s message is too large to send: %s", msg.type, exc)
            return False
        return self._send_raw(conn, data)

    def _send_raw(self, conn: Connection, data: bytes) -> bool:
        try:
            with conn.wlock:
                conn.send(data)
            return True
        except OSError as exc:
            log.info("local channel: uid %d does not read its answers (%s); closed",
                     conn.peer.uid, exc)
            conn.close()
            return False

    def _last_word(self, conn: Connection, code: str, text: str) -> None:
        """Answer once in the peer's dialect, then discard its input and close shortly."""
        if conn.dialect == "line":
            self._send_raw(conn, f"error {text}\n".encode())
        else:
            self._send(conn, error_message(code, text))
        conn.linger_until = time.monotonic() + REFUSAL_LINGER_S
        if self._transport is not None:
            self._transport.half_close(conn)

    # ------------------------------------------------------------------ asking the teller

    def sessions(self) -> list[tuple[str, float]]:
        """(teller, last active) of every agent connection that answers prompts."""
        with self._lock:
            return [(c.teller, c.last_active) for c in self._conns.values()
                    if c.hello and c.prompts and not c.gone]

    def _able_locked(self, teller: str | None, approvals: bool = False) -> list[Connection]:
        """The connections that can be asked for `teller` (the caller holds the lock)."""
        return [c for c in self._conns.values() if c.hello and c.prompts and not c.gone
                and c.linger_until is None and (not teller or c.teller == teller)
                and (c.approvals or not approvals)]

    def _session_for(self, teller: str | None, *, approvals: bool = False) -> Connection | None:
        with self._lock:
            able = self._able_locked(teller, approvals)
        return max(able, key=lambda c: c.last_active) if able else None

    def has_session(self, teller: str | None) -> bool:
        """True when an agent that answers prompts is connected for `teller` (any, for None)."""
        with self._lock:
            return bool(self._able_locked(teller))

    def wait_for_session(self, teller: str | None, timeout_s: float) -> bool:
        """Wait up to `timeout_s` for an agent of `teller` to connect (its hello); True once one
        is there. Blocks the caller (a service worker thread)."""
        with self._sessions_changed:
            return self._sessions_changed.wait_for(lambda: bool(self._able_locked(teller)),
                                                   max(0.0, timeout_s))

    def ask(self, request: PromptRequest, *, teller: str | None = None,
            timeout_s: float | None = None) -> PromptAnswer | None:
        """Ask the session agent of `teller` (or the most recently active one); None when no
        session is connected, the connection drops or `timeout_s` passes. Blocks the caller."""
        conn = self._session_for(teller)
        if conn is None:
            return None
        msg = Message(type=MessageType.PROMPT, body=prompt_to_body(request))
        waiter = _Waiter()
        with self._lock:
            if conn.gone:
                return None
            conn.waiters[msg.id] = waiter
        try:
            if not self._send(conn, msg):
                return None
            waiter.done.wait(request.timeout_s if timeout_s is None else timeout_s)
            return waiter.answer
        finally:
            with self._lock:
                conn.waiters.pop(msg.id, None)

    def notify(self, request: PromptRequest, *, teller: str | None = None) -> bool:
        """Show a toast in the teller's session; False when no session is connected."""
        conn = self._session_for(teller)
        if conn is None:
            return False
        return self._send(conn, Message(type=MessageType.NOTIFY, body=prompt_to_body(request)))

    def approve(self, request: ApprovalRequest, check: Check, *, teller: str | None = None,
                timeout_s: float | None = None) -> ApprovalResult | None:
        """Show the supervisor dialog in the session agent of `teller` and check each try it
        relays with `check` (here, in the service); the approving result (with the reason the
        supervisor typed) or None: no agent that can show the dialog (an older agent), cancelled,
        the connection dropped, or `timeout_s` passed. Blocks the caller."""
        conn = self._session_for(teller, approvals=True)
        if conn is None:
            return None
        msg = Message(type=MessageType.APPROVE, body=approval_request_to_body(request))
        waiter = _Waiter()
        session = _Approval(cid=conn.cid, check=check, waiter=waiter)
        with self._lock:
            if conn.gone:
                return None
            conn.waiters[msg.id] = waiter
            self._approvals[msg.id] = session
        try:
            if not self._send(conn, msg):
                return None
            limit = request.prompt.timeout_s if timeout_s is None else timeout_s
            with waiter.cond:
                waiter.cond.wait_for(lambda: waiter.done.is_set() or session.result is not None,
                                     limit)
                if session.result is not None:
                    # Approved here; the dialog's answer only brings the typed reason.
                    waiter.cond.wait_for(waiter.done.is_set, REASON_GRACE_S)
                else:
                    waiter.cond.wait_for(lambda: not session.busy, CHECK_GRACE_S)
                session.closed = True
                result = session.result
                answer = waiter.answer
            if result is None:
                return None
            reason = answer.reason if answer is not None else ""
            return dataclasses.replace(result, reason=reason)
        finally:
            with self._lock:
                conn.waiters.pop(msg.id, None)
                self._approvals.pop(msg.id, None)

    def _answered(self, conn: Connection, msg: Message) -> None:
        with self._lock:
            waiter = conn.waiters.get(msg.reply_to or "")
        if waiter is None:
            log.info("local channel: an answer to no open prompt (late, after the timeout)")
            return
        waiter.finish(answer_from_body(msg.body))

    def _errored(self, conn: Connection, msg: Message) -> None:
        """An error reply to a prompt or dialog (an agent that cannot show it): no answer."""
        with self._lock:
            waiter = conn.waiters.get(msg.reply_to or "")
        code = str(msg.body.get("code", ""))[:40]
        if waiter is None:
            log.info("local channel: uid %d answered %s to nothing open", conn.peer.uid, code)
            return
        log.info("local channel: uid %d could not take a request (%s); the safe choice",
                 conn.peer.uid, code)
        waiter.finish()


def _checked_inputs(findings: list[FindingSummary], raw: object) -> list[list[str]]:
    """`raw` as one list of values per summary, aligned with its masked forms, each value one
    that masks to that form; `_Refusal` otherwise (the message names no value)."""
    if not isinstance(raw, list) or len(raw) != len(findings):
        raise _Refusal("hash_inputs must be one list per finding summary")
    out: list[list[str]] = []
    for summary, values in zip(findings, raw, strict=True):
        if not isinstance(values, list) or len(values) != len(summary.masked):
            raise _Refusal(f"hash_inputs for {summary.type} must have one value per masked form")
        for value, masked in zip(values, summary.masked, strict=True):
            if not isinstance(value, str) or not 0 < len(value) <= MAX_HASH_INPUT:
                raise _Refusal(f"a {summary.type} hash input is not a value")
            try:
                same = mask(summary.type, value) == masked
            except (KeyError, ValueError):
                same = False
            if not same:
                raise _Refusal(f"a {summary.type} hash input does not match its masked form")
        out.append(list(values))
    return out


class _UnixReactor:
    """The Unix socket transport: one thread selecting over the listener and every connection.

    Survives running out of file handles: accept() failing with EMFILE/ENFILE degrades the
    server (logged once), the listener is left out of the selector for a back-off, and taken
    back; the connections already open keep working meanwhile.
    """

    def __init__(self, server: LocalChannelServer, path: Path) -> None:
        self.server = server
        self.path = path
        self.failure = ""
        self._sel = selectors.DefaultSelector()
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._socks: dict[int, tuple[socket.socket, Connection]] = {}
        self._paused: set[int] = set()
        self._backoff_s = 0.0
        self._listen_again_at: float | None = None

    def start(self) -> None:
        sock = listen_unix(self.path)
        self._sock = sock
        self._sel.register(sock, selectors.EVENT_READ, "listen")
        self._sel.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._thread = threading.Thread(target=self._run, name="teller-guard-local-channel",
                                        daemon=True)
        self._thread.start()

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wake(self, conn: Connection | None = None) -> None:
        try:
            self._wake_w.send(b"w")
        except OSError:  # the wake buffer is full: the reactor wakes anyway
            pass

    def half_close(self, conn: Connection) -> None:
        for sock, c in list(self._socks.values()):
            if c is conn:
                try:
                    sock.shutdown(socket.SHUT_WR)
                except OSError:
                    pass

    def stop(self, timeout: float) -> None:
        self._stop.set()
        self.wake()
        if self._thread is not None:
            self._thread.join(timeout)
        for fd in list(self._socks):
            self._drop(fd)
        for s in (self._sock, self._wake_r, self._wake_w):
            if s is not None:
                s.close()
        self._sel.close()
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                for key, _ in self._sel.select(timeout=0.25):
                    if key.data == "listen":
                        self._accept()
                    elif key.data == "wake":
                        try:
                            while self._wake_r.recv(4096):
                                pass
                        except BlockingIOError:
                            pass
                    else:
                        self._read(key.fd)
                self._housekeeping()
        except Exception as exc:  # the state then says stopped, with this reason
            self.failure = f"{type(exc).__name__}: {exc}"
            log.exception("local channel: the listener failed")

    def _housekeeping(self) -> None:
        now = time.monotonic()
        if self._listen_again_at is not None and now >= self._listen_again_at:
            self._listen_again_at = None
            assert self._sock is not None
            self._sel.register(self._sock, selectors.EVENT_READ, "listen")
            self._accept()  # also tells whether handles are free again with nobody waiting
        for fd in list(self._paused):
            entry = self._socks.get(fd)
            if entry is None:
                self._paused.discard(fd)
            elif self.server.room(entry[1]):
                self._paused.discard(fd)
                self._sel.register(entry[0], selectors.EVENT_READ, entry[1])
        self.server.sweep(now)
        for fd, (_, conn) in list(self._socks.items()):
            if conn.gone:
                self._drop(fd)

    def _accept(self) -> None:
        assert self._sock is not None
        for _ in range(64):  # then read and drop what is there before taking more
            try:
                sock, _ = self._sock.accept()
            except BlockingIOError:
                # Linux takes a handle before it looks at the queue: "nothing waiting" means a
                # handle was free, so the listener is healthy again.
                self.server.recover()
                return
            except OSError as exc:
                if exc.errno in _OUT_OF_HANDLES:
                    self._backoff_s = min(2.0, max(0.05, self._backoff_s * 2))
                    name = errno.errorcode.get(exc.errno or 0, str(exc.errno))
                    self.server.degrade(f"out of file handles ({name}); new connections wait")
                    self._sel.unregister(self._sock)
                    self._listen_again_at = time.monotonic() + self._backoff_s
                    return
                if exc.errno in (errno.ECONNABORTED, errno.EPROTO, errno.EINTR):
                    continue
                raise
            self._backoff_s = 0.0
            self.server.recover()
            self._take(sock)

    def _take(self, sock: socket.socket) -> None:
        from guard.ipc.unix import peer_of

        try:
            sock.settimeout(SEND_TIMEOUT_S)  # recv only when readable; sends bounded
            peer = peer_of(sock)
        except OSError as exc:
            log.info("local channel: no peer credentials (%s); connection closed", exc)
            sock.close()
            return

        def close() -> None:
            try:
                sock.shutdown(socket.SHUT_RDWR)  # the reactor sees the end and cleans up
            except OSError:
                pass
            self.wake()

        conn = self.server.admit(peer, sock.sendall, close)
        if conn is None:
            sock.close()
            return
        fd = sock.fileno()
        self._socks[fd] = (sock, conn)
        self._sel.register(sock, selectors.EVENT_READ, conn)

    def _read(self, fd: int) -> None:
        entry = self._socks.get(fd)
        if entry is None:
            return
        sock, conn = entry
        want = conn.decoder.wants() if conn.decoder is not None and conn.linger_until is None \
            else 65536  # lingering input is discarded, in big reads
        try:
            data = sock.recv(want)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._drop(fd)
            return
        self.server.received(conn, data)
        if conn.gone:
            self._drop(fd)
        elif not self.server.room(conn):
            self._sel.unregister(sock)
            self._paused.add(fd)

    def _drop(self, fd: int) -> None:
        entry = self._socks.pop(fd, None)
        if entry is None:
            return
        sock, conn = entry
        if fd in self._paused:
            self._paused.discard(fd)
        else:
            try:
                self._sel.unregister(sock)
            except (KeyError, ValueError):
                pass
        sock.close()
        self.server.closed(conn)

