"""The collector inside the agent's process, for a PC with no central endpoint configured.

`start_embedded(data_dir)` serves the real collector app on 127.0.0.1 (a free port) from a
background thread, with a SQLite file in `data_dir`, so a new user sees events end to end and can
open the dashboard. Its tokens are generated once and kept (owner-only) in `data_dir`, so the
dashboard address stays valid across restarts.
"""

from __future__ import annotations

import json
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


def _tokens(data_dir: Path) -> tuple[str, str]:
    path = data_dir / TOKENS_FILE
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
        return str(stored["enroll_token"]), str(stored["admin_token"])
    except (OSError, ValueError, KeyError, TypeError):
        pass  # missing or damaged: make new ones (devices enrolled before keep their keys)
    enroll, admin = new_token(), new_token()
    write_atomic(path, json.dumps({"enroll_token": enroll, "admin_token": admin}).encode())
    return enroll, admin


def start_embedded(data_dir: Path | str) -> Embedded:
    """Start the collector on 127.0.0.1 with its database in `data_dir`; return once it serves."""
    data = Path(data_dir)
    try:
        data.mkdir(mode=0o700, parents=True, exist_ok=True)
        data.chmod(0o700)  # whatever the umask: it holds the tokens and the database
        enroll, admin = _tokens(data)
    except OSError as exc:
        raise EmbeddedError(f"embedded collector: cannot use {data} ({exc})") from exc
    db_path = data / DB_FILE
    settings = Settings(db_url=f"sqlite:///{db_path}", enroll_token=enroll, admin_token=admin,
                        key_file=data / KEY_FILE)
    try:
        app = create_app(settings)
    except (ValueError, StoreUnavailable, StoreKeyError, KeyFileError, SQLAlchemyError) as exc:
        raise EmbeddedError(f"embedded collector: cannot open {db_path} ({exc})") from exc
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    server = BackgroundServer(config(app, "127.0.0.1", port, log_level="warning"), sock)
    server.start()
    return Embedded(
        url=f"http://127.0.0.1:{port}",
        enroll_token=enroll,
        admin_token=admin,
        db_path=db_path,
        _server=server,
    )
