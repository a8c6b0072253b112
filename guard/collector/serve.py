"""Running the collector app under uvicorn, in the foreground or in a background thread.

uvicorn's HTTP/1.1 protocol (h11) is served through `GuardedH11`, which adds what uvicorn lacks
against slow clients: a deadline for a request's headers, a cap on connections still sending
headers (a newcomer evicts the oldest of them, so a slowloris flood cannot keep the health check
out), a cap on all connections, and JSON instead of plain text for its own 400 answers.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import sys
import threading
import time
from collections import OrderedDict
from typing import Any

import h11
import uvicorn
from starlette.applications import Starlette
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("guard.collector")

HEADER_TIMEOUT_S = 10.0
KEEP_ALIVE_S = 5


def _nofile() -> int:
    if sys.platform == "win32":  # no RLIMIT_NOFILE; the defaults below hold
        return 8192
    import resource

    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft if soft > 0 else 8192


class GuardedH11(H11Protocol):
    """h11 with a header deadline, an evicting cap on pending connections and a total cap."""

    header_timeout_s: float = HEADER_TIMEOUT_S
    max_pending: int = 256
    max_connections: int = 2048

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None

    def _pending(self) -> OrderedDict[GuardedH11, None]:
        state = self.server_state
        pending: OrderedDict[GuardedH11, None] | None = getattr(state, "tg_pending", None)
        if pending is None:
            pending = OrderedDict()
            state.tg_pending = pending  # type: ignore[attr-defined]
        return pending

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        pending = self._pending()
        while pending and len(pending) >= self.max_pending:
            oldest, _ = pending.popitem(last=False)
            oldest._drop("evicted: too many connections still sending headers")
        if len(self.connections) > self.max_connections:
            self._drop("refused: connection limit reached")
            return
        self._await_headers()

    def _await_headers(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout_s, self._too_slow)
        self._pending()[self] = None

    def _headers_done(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        self._pending().pop(self, None)

    def _too_slow(self) -> None:
        self._header_timer = None
        self._pending().pop(self, None)
        if self.conn.their_state is h11.IDLE:
            self._drop("closed: request headers not complete in time")

    def _drop(self, why: str) -> None:
        self._headers_done()
        if not self.transport.is_closing():
            log.debug("connection from %s %s", self.client, why)
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        if self._header_timer is None and self.conn.their_state is h11.IDLE:
            self._await_headers()  # the next request on a kept-alive connection
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:
            self._headers_done()

    def connection_lost(self, exc: Exception | None) -> None:
        self._headers_done()
        super().connection_lost(exc)

    def send_400_response(self, msg: str) -> None:
        body = json.dumps({"error": msg}).encode()
        headers = [(b"content-type", b"application/json"), (b"connection", b"close"),
                   (b"x-frame-options", b"DENY"),
                   (b"content-length", str(len(body)).encode())]
        try:
            self.transport.write(self.conn.send(h11.Response(status_code=400, headers=headers,
                                                             reason=b"Bad Request")))
            self.transport.write(self.conn.send(h11.Data(data=body)))
            self.transport.write(self.conn.send(h11.EndOfMessage()))
        except h11.LocalProtocolError:
            pass  # the connection is past the point of an answer
        self.transport.close()


def _protocol(max_pending: int | None, max_connections: int | None,
              header_timeout_s: float) -> type[GuardedH11]:
    nofile = _nofile()
    pending = max_pending or max(8, min(256, nofile // 4))
    total = max_connections or max(16, min(2048, nofile // 2))
    return type("CollectorH11", (GuardedH11,), {
        "max_pending": pending, "max_connections": total, "header_timeout_s": header_timeout_s,
    })


class ServeError(Exception):
    """The collector could not start serving; the message says what to change."""


def parse_listen(listen: str) -> tuple[str, int]:
    """`HOST:PORT` (or `[v6]:PORT`) into its parts."""
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ServeError(f"--listen {listen!r}: give HOST:PORT, e.g. 0.0.0.0:8470")
    host = host.strip("[]") or "127.0.0.1"
    return host, int(port)


def check_tls(tls_cert: str | None, tls_key: str | None) -> None:
    """Both TLS files or neither, each readable; `ServeError` says which is missing."""
    if bool(tls_cert) != bool(tls_key):
        given, missing = ("--tls-cert", "--tls-key") if tls_cert else ("--tls-key", "--tls-cert")
        raise ServeError(f"{given} needs {missing} too: give the certificate chain and its "
                         f"private key")
    for flag, path in (("--tls-cert", tls_cert), ("--tls-key", tls_key)):
        if path:
            try:
                with open(path, "rb"):
                    pass
            except OSError as exc:
                raise ServeError(f"{flag} {path}: {exc.strerror or exc}") from None


def config(app: Starlette, host: str, port: int, *, tls_cert: str | None = None,
           tls_key: str | None = None, log_level: str = "info",
           max_pending: int | None = None, max_connections: int | None = None,
           header_timeout_s: float = HEADER_TIMEOUT_S) -> uvicorn.Config:
    check_tls(tls_cert, tls_key)
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=_protocol(max_pending, max_connections, header_timeout_s),
        log_level=log_level,
        access_log=False,
        lifespan="on",
        server_header=False,
        timeout_graceful_shutdown=5,
        timeout_keep_alive=KEEP_ALIVE_S,
        ssl_certfile=tls_cert,
        ssl_keyfile=tls_key,
    )


def run_foreground(cfg: uvicorn.Config) -> None:
    """Serve until SIGINT/SIGTERM (uvicorn's own signal handling)."""
    server = uvicorn.Server(cfg)
    server.run()
    if not server.started:
        raise ServeError(f"could not listen on {cfg.host}:{cfg.port} (see the log above)")


class BackgroundServer:
    """A uvicorn server on an already bound socket, in a daemon thread."""

    def __init__(self, cfg: uvicorn.Config, sock: socket.socket) -> None:
        self._server = uvicorn.Server(cfg)
        self._sock = sock
        self._thread = threading.Thread(target=self._run, name="collector", daemon=True)
        self._error: BaseException | None = None

    def _run(self) -> None:
        try:
            self._server.run(sockets=[self._sock])
        except BaseException as exc:  # re-raised to the owner in start()/stop()
            self._error = exc

    def start(self, timeout: float = 30.0) -> None:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while (not self._server.started and self._thread.is_alive()
               and time.monotonic() < deadline):
            time.sleep(0.02)
        if not self._server.started:
            self.stop()
            raise ServeError(f"embedded collector did not start: {self._error!r}")

    def stop(self, timeout: float = 10.0) -> None:
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout)
        self._sock.close()
        if self._error is not None and not isinstance(self._error, SystemExit):
            raise ServeError(f"embedded collector failed: {self._error!r}") from self._error
