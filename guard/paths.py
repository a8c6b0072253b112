"""Where the guard keeps its files: data, run and machine policy paths.

The per-OS locations come from the platform's `MachinePaths`; files are written with
`guard.files.write_atomic`."""


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
