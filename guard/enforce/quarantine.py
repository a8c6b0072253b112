"""The quarantine: where screenshot files and retained customer files are moved out of reach.

A quarantined file is renamed to a random name (its original path would name a customer) in a
0700 directory, with a 0600 mode, and listed in ``index.jsonl`` by its masked path only. Which
directory is the composition root's choice: the machine service's data directory (owned by the
service, unreadable to the teller) when the service runs it, or, in single-process mode, the
``quarantine`` directory of the guard's own data directory (0700, owned by the teller's account:
out of the folders chat programs send from, but not out of the teller's own reach).
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path

from guard.model import utc_now_iso


class QuarantineError(OSError):
    """A file could not be moved to the quarantine; the message says why (never the path)."""


@dataclass(frozen=True, slots=True)
class Quarantined:
    """Where a file went: its random name in the quarantine and its masked original path."""

    name: str
    masked_path: str


class Quarantine:
    """Moves files into `directory` (created 0700). `owner` says whose directory it is
    (``service`` or ``single-process``), for the event."""

    def __init__(self, directory: Path, owner: str = "single-process") -> None:
        self.directory = Path(directory)
        self.owner = owner
        self._lock = threading.Lock()

    def _ensure(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        if os.name != "nt":
            os.chmod(self.directory, 0o700)

    def move(self, path: str | os.PathLike[str], masked_path: str) -> Quarantined:
        """Move `path` into the quarantine; `QuarantineError` when it cannot be moved."""
        src = Path(path)
        name = f"{uuid.uuid4().hex}{src.suffix.lower()[:8]}"
        try:
            with self._lock:
                self._ensure()
                dest = self.directory / name
                shutil.move(os.fspath(src), dest)
                if os.name != "nt":
                    os.chmod(dest, 0o600)
                with open(self.directory / "index.jsonl", "a", encoding="utf-8") as fh:
                    fh.write(json.dumps({"time": utc_now_iso(), "name": name,
                                         "from": masked_path}, ensure_ascii=False) + "\n")
        except OSError as exc:
            raise QuarantineError(f"cannot move the file to the quarantine: "
                                  f"{exc.strerror or exc.__class__.__name__}") from None
        return Quarantined(name, masked_path)
