"""The session agent's end of the local channel: sends events, spools while the service is away."""


from __future__ import annotations

import logging
import os
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

from guard.delivery.journal import EVENTS_DROPPED
from guard.ipc.messages import (
    HASH_KEY_REQUEST,
    LocalChannelError,
    LocalChannelRefused,
    LocalChannelUnavailable,
)
from guard.ipc.unix import _require_unix
from guard.model import Channel, Device, Event
from guard.paths import write_atomic

log = logging.getLogger(__name__)

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
