"""Running the collector app under uvicorn, in the foreground or in a background thread."""

from __future__ import annotations

import socket
import threading
import time

import uvicorn
from starlette.applications import Starlette


class ServeError(Exception):
    """The collector could not start serving; the message says what to change."""


def parse_listen(listen: str) -> tuple[str, int]:
    """`HOST:PORT` (or `[v6]:PORT`) into its parts."""
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ServeError(f"--listen {listen!r}: give HOST:PORT, e.g. 0.0.0.0:8470")
    host = host.strip("[]") or "127.0.0.1"
    return host, int(port)


def config(app: Starlette, host: str, port: int, *, tls_cert: str | None = None,
           tls_key: str | None = None, log_level: str = "info") -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        lifespan="on",
        server_header=False,
        timeout_graceful_shutdown=5,
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
