"""Where the guard keeps its files: data, run and machine policy paths, and the one atomic
file writer. The per-OS locations come from the platform's `MachinePaths`."""


from __future__ import annotations

import os
from pathlib import Path

import platformdirs

from guard import platforms

APP = "TellerGuard"
ENV_DATA_DIR = "TELLER_GUARD_DATA_DIR"
ENV_ENDPOINT = "TELLER_GUARD_ENDPOINT"


class ConfigError(Exception):
    """The guard's own configuration cannot be read or written; the message says how to fix it."""


def data_dir() -> Path:
    """The machine's data directory (journal, install key, device identity).

    `TELLER_GUARD_DATA_DIR` overrides it (tests, demos, a second instance). The machine-wide
    directory (ProgramData / /var/lib) is used when it is writable, else the user's own.
    """
    override = os.environ.get(ENV_DATA_DIR)
    if override:
        path = Path(override)
    else:
        path = platforms.current_machine().paths.machine_data_dir()
        if not _writable(path):
            path = Path(platformdirs.user_data_dir(APP, appauthor=False))
    path.mkdir(parents=True, exist_ok=True)
    return path


def run_dir() -> Path | None:
    """Where the machine service's local endpoints (Unix sockets) live; None on Windows, where
    the channel is a named pipe."""
    return platforms.current_machine().paths.run_dir()


def machine_policy_file() -> Path:
    """The machine policy file (/etc/teller-guard/policy.toml, %ProgramData%\\TellerGuard\\…)."""
    return platforms.current_machine().paths.machine_policy_file()


def _writable(path: Path) -> bool:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(path, os.W_OK)


def write_atomic(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write `path` whole or not at all: a temporary file with exactly `mode` (0600 by default:
    owner only), synced to disk, then renamed over `path`. A crash leaves the old file or the new
    one, never half of either."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, mode)  # the umask may have taken bits away from a 0644 file
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _read_or_create(path: Path, make: bytes) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, make)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # first writer wins; a concurrent one reads the winner's key
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return path.read_bytes()

