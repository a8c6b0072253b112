"""The Linux machine side: FHS paths, no registry, /proc for processes, flock for the data dir."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import IO

from guard.platforms.base import LOCK_FILE_NAME, DataDirBusy

if sys.platform == "win32":  # also tells `mypy --platform win32` that the rest is not for it
    raise ImportError("guard.platforms._linux.machine needs a Unix system (fcntl)")

import fcntl  # after the system check above

DATA_DIR = Path("/var/lib/teller-guard")
RUN_DIR = Path("/run/teller-guard")
MACHINE_POLICY = Path("/etc/teller-guard/policy.toml")
PROC = Path("/proc")


class LinuxMachinePaths:
    # The module constants are read at each call so a test can point them elsewhere.
    def machine_data_dir(self) -> Path:
        return DATA_DIR

    def run_dir(self) -> Path | None:
        return RUN_DIR

    def machine_policy_file(self) -> Path:
        return MACHINE_POLICY


class NoRegistry:
    """Linux has no Group Policy registry: machine policy comes from the file only."""

    source: str | None = None

    def policy_values(self) -> dict[str, object]:
        return {}


class ProcTable:
    """Processes by their /proc entry (which also shows other users' processes)."""

    def __init__(self, proc: Path = PROC) -> None:
        self._proc = proc

    def process_exists(self, pid: int) -> bool:
        if pid <= 0:
            return False
        if (self._proc / "self").exists():
            return (self._proc / str(pid)).exists()
        try:  # no /proc mounted: ask the kernel
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True  # exists, owned by another user (root)
        return True

    def user_has_processes(self, login: str) -> bool | None:
        import pwd

        try:
            uid = pwd.getpwnam(login).pw_uid
        except KeyError:
            return False  # no such account: nobody to wait for
        if not (self._proc / "self").exists():
            return None
        try:
            entries = list(os.scandir(self._proc))
        except OSError:
            return None
        for entry in entries:
            if not entry.name.isdigit():
                continue
            try:
                if entry.stat(follow_symlinks=False).st_uid == uid:
                    return True
            except OSError:  # ended meanwhile
                continue
        return False


class FlockHeld:
    def __init__(self, path: Path, handle: IO[str]) -> None:
        self.path = path
        self._handle: IO[str] | None = handle

    def release(self) -> None:
        handle, self._handle = self._handle, None
        if handle is not None:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
            handle.close()


class FlockDataDirLock:
    """An flock(2) on ``<dir>/service.lock``, held by the open file until release or exit."""

    def hold(self, directory: Path) -> FlockHeld:
        path = Path(directory) / LOCK_FILE_NAME
        handle = open(path, "a+")  # held open (and locked) until release()
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise DataDirBusy(f"another process holds {path}") from None
        return FlockHeld(path, handle)
