"""Where the guard keeps its files and who this machine is: data directory, install key, device."""

from __future__ import annotations

import json
import os
import secrets
import socket
import sys
import uuid
from pathlib import Path

import platformdirs

from guard.model import Device

APP = "TellerGuard"
ENV_DATA_DIR = "TELLER_GUARD_DATA_DIR"
ENV_HASH_KEY = "TELLER_GUARD_HASH_KEY"
ENV_BRANCH = "TELLER_GUARD_BRANCH"
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
        if sys.platform == "win32":
            path = Path(platformdirs.site_data_dir(APP, appauthor=False))
        else:
            path = Path("/var/lib/teller-guard")
        if not _writable(path):
            path = Path(platformdirs.user_data_dir(APP, appauthor=False))
    path.mkdir(parents=True, exist_ok=True)
    return path


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


def hash_key(base: Path | None = None) -> bytes:
    """The per-install key for the keyed hashes of customer values (HMAC-SHA256).

    The same card gives the same hash on this install, so events can be correlated without the
    value being readable. `TELLER_GUARD_HASH_KEY` (hex) overrides it. `base` is the data
    directory to keep it in (default `data_dir()`).
    """
    override = os.environ.get(ENV_HASH_KEY)
    if override:
        try:
            return bytes.fromhex(override)
        except ValueError as exc:
            raise ConfigError(f"{ENV_HASH_KEY} must be hex, e.g. 64 hex digits") from exc
    where = (base or data_dir()) / "install.key"
    raw = _read_or_create(where, secrets.token_hex(32).encode())
    try:
        return bytes.fromhex(raw.decode().strip())
    except ValueError as exc:
        raise ConfigError(f"{where} is damaged; delete it to make a new key") from exc


def device(base: Path | None = None) -> Device:
    """This machine's identity in events: a stable id, its hostname and its branch.

    `base` is the data directory that holds it (default `data_dir()`)."""
    path = (base or data_dir()) / "device.json"
    raw = _read_or_create(path, json.dumps({"id": str(uuid.uuid4())}).encode())
    try:
        stored = json.loads(raw)
        device_id = str(stored["id"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path} is damaged; delete it to make a new device id") from exc
    branch = os.environ.get(ENV_BRANCH) or str(stored.get("branch", ""))
    return Device(id=device_id, hostname=socket.gethostname(), branch=branch)


def teller() -> str:
    """The OS login of the teller at this session."""
    for var in ("USERNAME", "USER", "LOGNAME"):
        if os.environ.get(var):
            return os.environ[var]
    try:
        import getpass

        return getpass.getuser()
    except (OSError, KeyError):
        return ""
