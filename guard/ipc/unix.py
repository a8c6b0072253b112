"""Unix-socket side of the local channel: peer credentials and the socket path."""


from __future__ import annotations

import logging
import os
import socket
import struct
import sys
from dataclasses import dataclass
from pathlib import Path

from guard.ipc.messages import _UID_ROOT, SOCKET_NAME, LocalChannelUnavailable

log = logging.getLogger(__name__)

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
    from guard import paths

    return paths.data_dir() / SOCKET_NAME


