"""The collector inside the agent's process, for a PC with no central endpoint configured.

`start_embedded(data_dir)` serves the real collector app on 127.0.0.1 from a background thread,
with a SQLite file in `data_dir`, so a new user sees events end to end and can open the dashboard.
Its tokens and its port are chosen once and kept (owner-only) in `data_dir`, so the dashboard stays
at one address, with one admin token, across restarts: `DEFAULT_PORT` (or the port in
TELLER_GUARD_EMBEDDED_PORT) on the first start (a free port when that one is taken), the recorded
port after.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from guard.collector.app import Settings, create_app, new_token
from guard.collector.keywrap import KeyFileError
from guard.collector.serve import BackgroundServer, config
from guard.collector.store import StoreKeyError, StoreUnavailable
from guard.files import write_atomic

TOKENS_FILE = "embedded-collector.json"
DB_FILE = "embedded-collector.db"
KEY_FILE = "embedded-collector.key"
DEFAULT_PORT = 8471  # next to the central collector's 8470
PORT_ENV = "TELLER_GUARD_EMBEDDED_PORT"

log = logging.getLogger(__name__)


class EmbeddedError(Exception):
    """The embedded collector could not start; the message says what to fix."""


@dataclass(frozen=True)
class Embedded:
    """A running in-process collector: where it is, its tokens, and how to stop it."""

    url: str
    enroll_token: str = field(repr=False)
    admin_token: str = field(repr=False)
    db_path: Path
    _server: BackgroundServer = field(repr=False)

    @property
    def dashboard_url(self) -> str:
        """The dashboard address; it asks for the admin token (kept in the tokens file), which
        never goes into a URL."""
        return f"{self.url}/"

    def stop(self) -> None:
        """Stop serving and wait for the server thread (pending requests finish first)."""
        self._server.stop()


@dataclass(frozen=True, slots=True)
class _Stored:
    enroll_token: str = field(repr=False)
    admin_token: str = field(repr=False)
    port: int | None  # None: never started yet


def _load(data_dir: Path) -> _Stored | None:
    try:
        stored = json.loads((data_dir / TOKENS_FILE).read_text(encoding="utf-8"))
        port = stored.get("port")
        return _Stored(str(stored["enroll_token"]), str(stored["admin_token"]),
                       port if isinstance(port, int) and 0 < port < 65536 else None)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None  # missing or damaged: make new ones (devices enrolled before keep their keys)


def _save(data_dir: Path, stored: _Stored) -> None:
    write_atomic(data_dir / TOKENS_FILE, json.dumps({
        "enroll_token": stored.enroll_token, "admin_token": stored.admin_token,
        "port": stored.port}).encode())


def first_port() -> int:
    """The port a first start tries: TELLER_GUARD_EMBEDDED_PORT when it holds one (1-65535),
    else `DEFAULT_PORT`."""
    value = os.environ.get(PORT_ENV, "").strip()
    if value:
        if value.isdigit() and 1 <= int(value) <= 65535:
            return int(value)
        log.warning("%s=%r is no port (1-65535): the embedded collector tries %d", PORT_ENV,
                    value[:20], DEFAULT_PORT)
    return DEFAULT_PORT


def address(data_dir: Path | str) -> str:
    """Where the embedded collector with its files in `data_dir` serves (or will on its first
    start, unless `first_port()` is taken then), e.g. for a start script to print."""
    stored = _load(Path(data_dir))
    port = stored.port if stored is not None and stored.port is not None else first_port()
    return f"http://127.0.0.1:{port}"


def _bind(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError:
        sock.close()
        raise
    return sock


def _listen(wanted: int) -> socket.socket:
    """A socket on `wanted`, or on a free port when another program holds it (the dashboard
    moves for this run only; the log says where)."""
    try:
        return _bind(wanted)
    except OSError as exc:
        if exc.errno not in (errno.EADDRINUSE, errno.EACCES):
            raise
        log.warning("embedded collector: port %d is taken (%s); using a free port this time",
                    wanted, exc.strerror)
    return _bind(0)


def start_embedded(data_dir: Path | str) -> Embedded:
    """Start the collector on 127.0.0.1 with its database in `data_dir`; return once it serves."""
    data = Path(data_dir)
    try:
        data.mkdir(mode=0o700, parents=True, exist_ok=True)
        data.chmod(0o700)  # whatever the umask: it holds the tokens and the database
        loaded = _load(data)
        stored = loaded or _Stored(new_token(), new_token(), None)
        if loaded is None:
            _save(data, stored)
    except OSError as exc:
        raise EmbeddedError(f"embedded collector: cannot use {data} ({exc})") from exc
    db_path = data / DB_FILE
    settings = Settings(db_url=f"sqlite:///{db_path}", enroll_token=stored.enroll_token,
                        admin_token=stored.admin_token, key_file=data / KEY_FILE)
    try:
        app = create_app(settings)
    except (ValueError, StoreUnavailable, StoreKeyError, KeyFileError, SQLAlchemyError) as exc:
        raise EmbeddedError(f"embedded collector: cannot open {db_path} ({exc})") from exc
    try:
        sock = _listen(stored.port if stored.port is not None else first_port())
    except OSError as exc:
        raise EmbeddedError(f"embedded collector: cannot listen on 127.0.0.1 ({exc})") from exc
    port = int(sock.getsockname()[1])
    if stored.port is None:  # the first start: this port is the dashboard's from now on
        try:
            _save(data, _Stored(stored.enroll_token, stored.admin_token, port))
        except OSError as exc:
            sock.close()
            raise EmbeddedError(f"embedded collector: cannot use {data} ({exc})") from exc
    server = BackgroundServer(config(app, "127.0.0.1", port, log_level="warning"), sock)
    server.start()
    return Embedded(
        url=f"http://127.0.0.1:{port}",
        enroll_token=stored.enroll_token,
        admin_token=stored.admin_token,
        db_path=db_path,
        _server=server,
    )
