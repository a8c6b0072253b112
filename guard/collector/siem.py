"""Forwarding stored events to the bank's SIEM: syslog RFC 5424 over TCP or TLS, CEF payload.

Messages are framed by octet counting (RFC 6587 §3.4.1) so a justification with any characters
stays one message. Ingestion only puts events on a bounded queue; a background thread formats and
sends them, reconnecting with backoff while the SIEM is away. When the queue is full the
newest messages are dropped and counted in the log.
"""

from __future__ import annotations

import logging
import queue
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from datetime import UTC
from urllib.parse import urlsplit

from guard import __version__
from guard.model import Event

log = logging.getLogger("guard.collector.siem")

FACILITY_LOG_AUDIT = 13
SEND_TIMEOUT_S = 60.0
# CEF severity (0-10) and syslog severity (RFC 5424) by policy action
_SEVERITY = {
    "audit": (1, 6),
    "notify": (3, 6),
    "confirm": (5, 5),
    "justify": (5, 5),
    "redact": (6, 5),
    "lock": (7, 4),
    "block": (8, 4),
}


class SiemError(Exception):
    """The SIEM forwarding target is not usable as given."""


def cef_header(value: str) -> str:
    """Escape a CEF header field: backslash and pipe; line breaks become spaces."""
    value = value.replace("\\", "\\\\").replace("|", "\\|")
    return value.replace("\r", " ").replace("\n", " ")


def cef_value(value: str) -> str:
    """Escape a CEF extension value: backslash, equals sign, CR and LF."""
    return (
        value.replace("\\", "\\\\")
        .replace("=", "\\=")
        .replace("\r\n", "\\n")
        .replace("\n", "\\n")
        .replace("\r", "\\r")
    )


def cef(event: Event) -> str:
    """The CEF:0 record of one event: masked values, counts and hashes only, never raw data."""
    cef_sev, _ = _SEVERITY.get(str(event.action), (3, 6))
    findings = ",".join(f"{f.type}:{f.count}" for f in event.findings)
    masked = ",".join(m for f in event.findings for m in f.masked)[:1000]
    name = f"{event.channel} {event.action} {event.outcome}"
    if findings:
        name += f" ({findings})"
    ext: list[tuple[str, str]] = [
        ("rt", str(int(event.time.timestamp() * 1000))),
        ("externalId", str(event.id)),
        ("dvchost", event.device.hostname),
        ("deviceExternalId", event.device.id),
        ("suser", event.teller),
        ("cat", str(event.channel)),
        ("act", str(event.action)),
        ("outcome", str(event.outcome)),
        ("sproc", event.source_app),
        ("msg", event.justification),
        ("cs1Label", "branch"),
        ("cs1", event.device.branch),
        ("cs2Label", "findings"),
        ("cs2", findings),
        ("cs3Label", "maskedValues"),
        ("cs3", masked),
        ("cs4Label", "decisionRule"),
        ("cs4", event.decision),
        ("cs5Label", "policyVersion"),
        ("cs5", event.policy_version),
    ]
    extension = " ".join(f"{k}={cef_value(v)}" for k, v in ext if v)
    head = "|".join(cef_header(x) for x in (
        "Teller Guard", "Teller Guard", __version__, event.type, name, str(cef_sev),
    ))
    return f"CEF:0|{head}|{extension}"


def _header_token(value: str, limit: int) -> str:
    """An RFC 5424 header field: printable US-ASCII without spaces, or the nil value."""
    cleaned = "".join(ch for ch in value if 33 <= ord(ch) <= 126)[:limit]
    return cleaned or "-"


def syslog_message(event: Event) -> bytes:
    """One RFC 5424 message (without framing) carrying the event's CEF record."""
    _, sys_sev = _SEVERITY.get(str(event.action), (3, 6))
    pri = FACILITY_LOG_AUDIT * 8 + sys_sev
    ts = event.time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    host = _header_token(event.device.hostname, 255)
    msgid = _header_token(event.type, 32)
    return f"<{pri}>1 {ts} {host} teller-guard - {msgid} - {cef(event)}".encode()


def frame(message: bytes) -> bytes:
    """Octet-counting framing: `LEN SP MSG`."""
    return str(len(message)).encode("ascii") + b" " + message


@dataclass(frozen=True, slots=True)
class SyslogTarget:
    host: str
    port: int
    tls: bool
    ca_file: str | None = None


class SyslogForwarder:
    """Sends every submitted event to a syslog receiver from a background thread."""

    def __init__(self, target: SyslogTarget, *, max_queue: int = 100_000,
                 connect_timeout: float = 5.0) -> None:
        self.target = target
        self._queue: queue.Queue[bytes | None] = queue.Queue(max_queue)
        self._timeout = connect_timeout
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._sock: socket.socket | None = None
        self.sent = 0
        self.dropped = 0
        self._unsent_in_hand = 0
        self._ssl: ssl.SSLContext | None = None
        if target.tls:
            try:
                self._ssl = ssl.create_default_context(cafile=target.ca_file)
            except (OSError, ssl.SSLError) as exc:
                raise SiemError(f"cannot load the SIEM CA bundle {target.ca_file}: {exc}") from exc

    @classmethod
    def from_url(cls, url: str, *, ca_file: str | None = None) -> SyslogForwarder:
        parts = urlsplit(url)
        if parts.scheme not in ("tcp", "tls") or not parts.hostname:
            raise SiemError(f"--syslog {url!r}: use tcp://host:port or tls://host:port")
        try:
            port = parts.port or (6514 if parts.scheme == "tls" else 514)
        except ValueError as exc:
            raise SiemError(f"--syslog {url!r}: bad port") from exc
        return cls(SyslogTarget(parts.hostname, port, parts.scheme == "tls", ca_file))

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stopping.clear()
        self._unsent_in_hand = 0
        self._thread = threading.Thread(target=self._run, name="siem-forwarder", daemon=True)
        self._thread.start()

    def submit(self, events: list[Event]) -> None:
        """Queue events for the SIEM; never blocks (the collector must not wait on the SIEM)."""
        for ev in events:
            try:
                self._queue.put_nowait(frame(syslog_message(ev)))
            except queue.Full:
                self.dropped += 1
                if self.dropped % 1000 == 1:
                    log.warning("SIEM queue full: %d messages dropped so far", self.dropped)

    def stop(self, flush_s: float = 5.0) -> None:
        """Send what is queued (for up to `flush_s`), then close the connection."""
        if self._thread is None:
            return
        deadline = time.monotonic() + flush_s
        progress_at, sent = time.monotonic(), self.sent
        while not self._queue.empty() and time.monotonic() < deadline and self._thread.is_alive():
            time.sleep(0.02)
            if self.sent != sent:
                progress_at, sent = time.monotonic(), self.sent
            elif time.monotonic() - progress_at > 1.0:
                break  # the SIEM is not taking anything: no point waiting longer
        self._stopping.set()
        sock = self._sock
        if sock is not None and not self._queue.empty():
            try:  # unblocks a send to a SIEM that stopped reading
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        try:
            self._queue.put_nowait(None)
        except queue.Full:
            pass
        self._thread.join(2.0)
        self._thread = None
        self._close()
        left = self._unsent_in_hand
        while True:
            try:
                left += self._queue.get_nowait() is not None
            except queue.Empty:
                break
        if left:
            log.warning("SIEM forwarding stopped with %d messages unsent", left)

    def _connect(self) -> socket.socket:
        t = self.target
        raw = socket.create_connection((t.host, t.port), timeout=self._timeout)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        sock = self._ssl.wrap_socket(raw, server_hostname=t.host) if self._ssl else raw
        sock.settimeout(SEND_TIMEOUT_S)  # a SIEM may be slow to read; only a stuck one fails
        return sock

    def _close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
            self._sock = None

    def _run(self) -> None:
        backoff = 0.5
        while True:
            item = self._queue.get()
            if item is None:
                return
            while True:
                if self._stopping.is_set():
                    self._unsent_in_hand = 1
                    return
                try:
                    if self._sock is None:
                        self._sock = self._connect()
                        log.info("SIEM connected: %s:%d", self.target.host, self.target.port)
                    self._sock.sendall(item)
                    self.sent += 1
                    backoff = 0.5
                    break
                except (OSError, ssl.SSLError) as exc:
                    self._close()
                    if self._stopping.is_set():
                        continue
                    log.warning("SIEM %s:%d unreachable (%s); retrying in %.1f s",
                                self.target.host, self.target.port, exc, backoff)
                    self._stopping.wait(backoff)
                    backoff = min(backoff * 2, 30.0)
