"""Who this machine and teller are: device id, install hash key, teller login."""


from __future__ import annotations

import json
import os
import secrets
import socket
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from guard.files import read_or_create
from guard.paths import ConfigError, data_dir

if TYPE_CHECKING:  # pydantic's model, imported by `device()`: `hash_key()` (scanning) needs none
    from guard.model import Device

ENV_HASH_KEY = "TELLER_GUARD_HASH_KEY"
ENV_BRANCH = "TELLER_GUARD_BRANCH"

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
    raw = read_or_create(where, secrets.token_hex(32).encode())
    try:
        return bytes.fromhex(raw.decode().strip())
    except ValueError as exc:
        raise ConfigError(f"{where} is damaged; delete it to make a new key") from exc


def device(base: Path | None = None) -> Device:
    """This machine's identity in events: a stable id, its hostname and its branch.

    `base` is the data directory that holds it (default `data_dir()`)."""
    from guard.model import Device

    path = (base or data_dir()) / "device.json"
    raw = read_or_create(path, json.dumps({"id": str(uuid.uuid4())}).encode())
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
