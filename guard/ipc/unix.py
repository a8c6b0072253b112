"""Unix-socket side of the local channel: peer credentials, the socket path, listen and connect."""


from __future__ import annotations

import logging
import os
import socket
import struct
import sys
from dataclasses import dataclass
from pathlib import Path

from guard.ipc.messages import _UID_ROOT, PIPE_NAME, SOCKET_NAME, LocalChannelUnavailable

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Peer:
    """Who is on the other end of a connection, as the kernel reports it.

    On Windows `uid` is -1 for an ordinary user and 0 for SYSTEM or an administrator, and `sid`
    holds the user's SID; on Unix `sid` is empty.
    """

    pid: int
    uid: int
    gid: int
    login: str
    sid: str = ""

    @property
    def account(self) -> str:
        """What tells users apart for per-user limits: the SID on Windows, else the uid."""
        return self.sid or str(self.uid)

    @property
    def privileged(self) -> bool:
        """root (Unix) or SYSTEM/Administrators (Windows): may send events for any teller."""
        return self.uid == _UID_ROOT


def is_pipe_name(path: Path | str) -> bool:
    return str(path).replace("/", "\\").lower().startswith("\\\\.\\pipe\\")


def _require_unix(path: Path | str | None = None) -> None:
    if sys.platform == "win32":
        if path is not None and is_pipe_name(path):
            return
        raise LocalChannelUnavailable(
            f"{path or 'a socket path'} is a Unix socket path; on Windows the local channel is "
            f"a named-pipe ({PIPE_NAME}): pass that name, or run the agent in single-process "
            f"mode (journal and shipper in the agent)")
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
    """``/run/teller-guard/agent.sock`` when the service runs as root, else in the data dir;
    the named pipe on Windows."""
    if sys.platform == "win32":
        return Path(PIPE_NAME)
    from guard import paths

    run_dir = paths.run_dir()
    if run_dir is not None and os.geteuid() == _UID_ROOT:
        return run_dir / SOCKET_NAME
    return paths.data_dir() / SOCKET_NAME


def listen_unix(path: Path, backlog: int = 64) -> socket.socket:
    """A listening socket at `path` (a stale socket file is replaced), connectable by every
    local user: who they are is checked with SO_PEERCRED on each connection."""
    if sys.platform == "win32":
        raise LocalChannelUnavailable("Unix sockets are not the Windows transport; use the pipe")
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() or path.is_symlink():
        path.unlink()  # a stale socket from a previous run
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(str(path))
        os.chmod(path, 0o666)
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def connect_unix(path: Path, timeout_s: float) -> socket.socket:
    if sys.platform == "win32":
        raise LocalChannelUnavailable("Unix sockets are not the Windows transport; use the pipe")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout_s)
    try:
        sock.connect(str(path))
    except OSError:
        sock.close()
        raise
    return sock
