"""The machine service's end of the local channel: accepts events and journals them."""


from __future__ import annotations

import logging
import os
import socket
import sys
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

from pydantic import ValidationError

from guard.delivery.journal import Journal, JournalError
from guard.ipc.messages import _UID_ROOT, HASH_KEY_REQUEST, MAX_LINE, LocalChannelUnavailable
from guard.ipc.unix import Peer, _require_unix, default_socket_path, peer_of
from guard.model import Event

log = logging.getLogger(__name__)

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


