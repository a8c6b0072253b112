"""The local channel: session agents hand their events to the machine service, which journals them.

The machine service owns the journal (a teller cannot edit or switch it off); each teller's
session agent sends events over a Unix socket. The service learns who is on the other end from the
kernel (``SO_PEERCRED``), not from the message: it refuses peers whose uid is not allowed and events
whose ``teller`` is not the peer's own login. Each event is acknowledged only after it is in the
journal. When the service is away (restart, update), the agent keeps events in a small on-disk
spool and sends them, in order, once the service answers again.

Wire format: one JSON event per line from the agent; one line back per event, ``ok <id>`` or
``error <reason>``. The line ``hash-key`` asks for the machine's install key (answer ``key <hex>``),
so every teller's agent hashes customer values with the same key as the service and the same card
gives the same hash in all of this PC's events.

Windows uses a named pipe with an ACL; that side is not built yet and says so
(`LocalChannelUnavailable`). Single-process mode needs no channel at all.
"""

from __future__ import annotations

import logging
import os
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from guard.config import write_atomic
from guard.journal import EVENTS_DROPPED, Journal, JournalError
from guard.model import Channel, Device, Event

log = logging.getLogger(__name__)

SOCKET_NAME = "agent.sock"
HASH_KEY_REQUEST = b"hash-key"
MAX_LINE = 64 * 1024
_UID_ROOT = 0


class LocalChannelError(Exception):
    """The local channel failed; the message says what and how to fix it."""


class LocalChannelUnavailable(LocalChannelError):
    """The local channel cannot run on this platform or in this configuration."""


class LocalChannelRefused(LocalChannelError):
    """The service refused an event for good (not a valid event, wrong teller, user not allowed)."""


@dataclass(frozen=True, slots=True)
class Peer:
    """Who is on the other end of a connection, as the kernel reports it."""

    pid: int
    uid: int
    gid: int
    login: str


def _require_unix() -> None:
    if sys.platform == "win32":
        raise LocalChannelUnavailable(
            "the Windows named-pipe local channel is not built yet; run the agent in "
            "single-process mode (journal and shipper in the agent) on Windows")
    if not hasattr(socket, "AF_UNIX"):
        raise LocalChannelUnavailable("this system has no Unix domain sockets")


def peer_of(conn: socket.socket) -> Peer:
    """The connecting process's pid, uid and gid from the kernel (Linux ``SO_PEERCRED``)."""
    if sys.platform == "win32":
        raise LocalChannelUnavailable("peer credentials need a Unix socket")
    so_peercred = getattr(socket, "SO_PEERCRED", None)
    if so_peercred is None:
        raise LocalChannelUnavailable(
            f"SO_PEERCRED is not available on {sys.platform}; the local channel needs Linux")
    raw = conn.getsockopt(socket.SOL_SOCKET, so_peercred, struct.calcsize("3i"))
    pid, uid, gid = struct.unpack("3i", raw)
    return Peer(pid=pid, uid=uid, gid=gid, login=_login_of(uid))


def _login_of(uid: int) -> str:
    if sys.platform == "win32":
        return ""
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return ""


def default_socket_path() -> Path:
    """``/run/teller-guard/agent.sock`` when the service runs as root, else in the data dir."""
    run_dir = Path("/run/teller-guard")
    if sys.platform != "win32" and os.geteuid() == _UID_ROOT:
        return run_dir / SOCKET_NAME
    from guard import config

    return config.data_dir() / SOCKET_NAME


class LocalChannelServer:
    """The machine service's end: accepts events from session agents and journals them.

    `allowed_uids` limits who may connect (None: any local user; each is still bound to its own
    login in the events it sends). Runs an accept thread plus one thread per connection.
    """

    def __init__(self, journal: Journal, path: Path | None = None, *,
                 allowed_uids: Iterable[int] | None = None,
                 on_event: Callable[[Event, Peer], None] | None = None,
                 hash_key: bytes | None = None) -> None:
        _require_unix()
        self.journal = journal
        self._hash_key = hash_key
        self.path = Path(path) if path is not None else default_socket_path()
        self.allowed_uids = None if allowed_uids is None else frozenset(allowed_uids)
        self._on_event = on_event
        self._sock: socket.socket | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self.accepted = 0
        self.rejected = 0

    def start(self) -> None:
        if sys.platform == "win32":
            raise LocalChannelUnavailable("the named-pipe server is not built yet")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists() or self.path.is_symlink():
            self.path.unlink()  # a stale socket from a previous run
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(str(self.path))
        # Anyone may connect; who they are is checked with SO_PEERCRED on each connection.
        os.chmod(self.path, 0o666)
        sock.listen(16)
        sock.settimeout(0.2)
        self._sock = sock
        self._stop.clear()
        t = threading.Thread(target=self._accept_loop, name="teller-guard-local-channel",
                             daemon=True)
        t.start()
        self._threads.append(t)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        with self._lock:
            for c in list(self._conns):
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        for t in self._threads:
            t.join(timeout)
        self._threads.clear()
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass

    def _accept_loop(self) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                if self._stop.is_set():
                    return
                raise
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True,
                                 name="teller-guard-local-peer")
            t.start()
            self._threads = [x for x in self._threads if x.is_alive()] + [t]

    def _serve(self, conn: socket.socket) -> None:
        with self._lock:
            self._conns.add(conn)
        try:
            conn.settimeout(None)
            peer = peer_of(conn)
            if self.allowed_uids is not None and peer.uid not in self.allowed_uids:
                log.warning("local channel: refused a connection from uid %d (pid %d): not an "
                            "allowed user", peer.uid, peer.pid)
                self.rejected += 1
                conn.sendall(b"error this user may not send events to the guard service\n")
                _close_gently(conn)
                return
            reader = conn.makefile("rb")
            for line in reader:
                if len(line) > MAX_LINE:
                    conn.sendall(b"error event too large\n")
                    continue
                conn.sendall(self._handle(line, peer).encode("utf-8") + b"\n")
        except OSError as exc:
            if not self._stop.is_set():
                log.info("local channel: connection ended (%s)", exc)
        finally:
            with self._lock:
                self._conns.discard(conn)
            conn.close()

    def _handle(self, line: bytes, peer: Peer) -> str:
        if line.strip() == HASH_KEY_REQUEST:
            if self._hash_key is None:
                return "error this service does not share a hash key"
            return f"key {self._hash_key.hex()}"
        try:
            event = Event.from_json(line)
        except ValidationError as exc:
            self.rejected += 1
            return f"error not a valid event ({exc.error_count()} problems)"
        if peer.uid != _UID_ROOT and event.teller != peer.login:
            self.rejected += 1
            log.warning("local channel: uid %d sent an event for another teller; refused",
                        peer.uid)
            return "error the event's teller is not the sending user"
        try:
            self.journal.record(event)
        except JournalError as exc:
            log.error("local channel: cannot journal an event: %s", exc)
            return "error the service cannot journal events right now"
        self.accepted += 1
        if self._on_event is not None:
            self._on_event(event, peer)
        return f"ok {event.id}"


def _close_gently(conn: socket.socket) -> None:
    """Half-close and drain what the peer already sent, so it can read our last answer.

    Closing a Unix socket with unread input resets it, and the peer would lose the answer.
    """
    try:
        conn.shutdown(socket.SHUT_WR)
        conn.settimeout(1.0)
        while conn.recv(65536):
            pass
    except OSError:
        pass


class LocalChannelClient:
    """The session agent's end: sends events to the service, spooling them while it is away.

    `send()` never raises for a missing service (only `LocalChannelRefused` when the service
    refuses the event itself): the event goes to the spool (a directory of
    one-file-per-event, written atomically) and is sent, in order, by the next `send()` or
    `flush()` that reaches the service. The spool is bounded; past `max_spool` the oldest are
    dropped and an EVENTS_DROPPED event with the count is sent in their place.
    """

    def __init__(self, path: Path, spool_dir: Path, *, device: Device, teller: str = "",
                 max_spool: int = 10_000, timeout_s: float = 2.0) -> None:
        _require_unix()
        self.path = Path(path)
        self.spool_dir = Path(spool_dir)
        self.device = device
        self.teller = teller
        self.max_spool = max_spool
        self.timeout_s = timeout_s
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._reader: Any = None
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        try:
            os.chmod(self.spool_dir, 0o700)
        except OSError:
            pass

    # -- spool

    def spooled(self) -> list[Path]:
        return sorted(p for p in self.spool_dir.glob("*.json"))

    def _spool(self, event: Event) -> None:
        name = f"{time.time_ns():020d}-{event.id}.json"
        write_atomic(self.spool_dir / name, event.to_json().encode("utf-8"))
        files = self.spooled()
        if len(files) > self.max_spool:
            excess = files[: len(files) - self.max_spool + 1]
            for f in excess:
                f.unlink(missing_ok=True)
            log.error("local channel: spool over %d events; dropped the %d oldest",
                      self.max_spool, len(excess))
            notice = Event(type=EVENTS_DROPPED, device=self.device, teller=self.teller,
                           channel=Channel.SYSTEM, detail={"count": len(excess),
                                                           "where": "agent spool"})
            # Named to sort before the remaining spool files, in place of what was dropped.
            first = self.spooled()[0].name.split("-", 1)[0] if self.spooled() else "0" * 20
            stamp = max(0, int(first) - 1)
            path = self.spool_dir / f"{stamp:020d}-{notice.id}.json"
            path.write_text(notice.to_json(), encoding="utf-8")

    # -- sending

    def send(self, event: Event) -> bool:
        """Hand one event to the service; True when it is journaled there, False when spooled."""
        with self._lock:
            if self.spooled() and not self._flush_locked():
                self._spool(event)
                return False
            try:
                self._send_one(event.to_json())
                return True
            except LocalChannelRefused:
                raise
            except (OSError, LocalChannelError) as exc:
                self._disconnect()
                log.info("local channel: service away (%s); event spooled", exc)
                self._spool(event)
                return False

    def flush(self) -> bool:
        """Send every spooled event in order; True when the spool is empty."""
        with self._lock:
            return self._flush_locked()

    def _flush_locked(self) -> bool:
        for f in self.spooled():
            try:
                body = f.read_text(encoding="utf-8")
            except OSError:
                continue
            try:
                self._send_one(body)
            except LocalChannelRefused as exc:
                log.error("local channel: the service refused a spooled event (%s); removed it",
                          exc)
                f.unlink(missing_ok=True)
                continue
            except (OSError, LocalChannelError):
                self._disconnect()
                return False
            f.unlink(missing_ok=True)
        return True

    def _connect(self) -> socket.socket:
        if self._sock is None:
            if sys.platform == "win32":
                raise LocalChannelUnavailable("the named-pipe client is not built yet")
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(self.timeout_s)
            try:
                sock.connect(str(self.path))
            except OSError:
                sock.close()
                raise
            self._sock = sock
            self._reader = sock.makefile("rb")
        return self._sock

    def hash_key(self) -> bytes | None:
        """The machine's install key for keyed hashes, or None when the service does not answer
        or shares none."""
        with self._lock:
            try:
                sock = self._connect()
                sock.sendall(HASH_KEY_REQUEST + b"\n")
                assert self._reader is not None
                text = self._reader.readline().decode("ascii", "replace").strip()
            except OSError as exc:
                log.warning("local channel: no hash key from the service (%s)", exc)
                self._disconnect()
                return None
        if not text.startswith("key "):
            return None
        try:
            return bytes.fromhex(text[4:])
        except ValueError:
            return None

    def _send_one(self, body: str) -> None:
        sock = self._connect()
        sock.sendall(body.encode("utf-8").replace(b"\n", b" ") + b"\n")
        reader = self._reader
        assert reader is not None
        answer = reader.readline()
        if not answer:
            raise OSError("the service closed the connection")
        text = answer.decode("utf-8", "replace").strip()
        if not text.startswith("ok"):
            raise LocalChannelRefused(f"the service refused the event: {text[6:] or text}")

    def _disconnect(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
        self._sock = None
        self._reader = None

    def close(self) -> None:
        with self._lock:
            self._disconnect()
