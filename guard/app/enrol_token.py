"""The installer's one-time enrolment token: read on start, deleted once the PC is enrolled.

The installers leave IT's enrolment token where only the service can read it: the MSI in a
registry value only SYSTEM reads (`guard.app.winservice.RegistryToken`), the .deb in a root-only
file in the service's data directory (`FileToken`, `TOKEN_FILE_NAME`). `OneTimeToken` wraps the
machine service and deletes the token through its `TokenStore` once the service reports itself
enrolled at its collector, so the token does not outlive its one use.
"""

from __future__ import annotations

import logging
import stat
import threading
from pathlib import Path
from typing import Protocol

log = logging.getLogger(__name__)

TOKEN_POLL_S = 5.0
TOKEN_FILE_NAME = "enrol-token"
"""In the service's data directory (/var/lib/teller-guard on Linux): the .deb's postinst writes
it (0600, root), the service deletes it once enrolled. Not under /etc: the unit's
ProtectSystem=full keeps /etc read-only for the service, which must be able to delete it."""


class Service(Protocol):
    def start(self) -> None: ...
    def stop(self) -> None: ...


class TokenStore(Protocol):
    """Where the installer left the one-time enrolment token."""

    def read(self) -> str | None:
        """The token; None when there is none. `OSError` when it cannot be read."""
    def delete(self) -> None:
        """Forget the token (no error when it is already gone). `OSError` when it cannot."""


class EnrolmentState(Protocol):
    @property
    def enrolled(self) -> bool: ...
    @property
    def embedded(self) -> bool: ...


class EnrollingService(Service, Protocol):
    """The machine service as `OneTimeToken` sees it (`MachineService`)."""

    def status(self) -> EnrolmentState: ...


class OneTimeToken:
    """A `Service` that runs `service` and deletes the token in `store` once `service.status()`
    says it is enrolled at a configured collector (not the embedded local one, which needs no
    token: the token is kept for when IT sets an endpoint). Until then the token stays, so a
    collector that is down at the first start does not lose the PC its enrolment."""

    def __init__(self, service: EnrollingService, store: TokenStore, *,
                 poll_s: float = TOKEN_POLL_S) -> None:
        self.service = service
        self._store = store
        self._poll_s = poll_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.forgotten = threading.Event()

    def start(self) -> None:
        self.service.start()
        self._thread = threading.Thread(target=self._watch, name="enrol-token", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self._poll_s + 5.0)
        self.service.stop()

    def _watch(self) -> None:
        while not self._stop.wait(self._poll_s):
            state = self.service.status()
            if not state.enrolled or state.embedded:
                continue
            try:
                self._store.delete()
            except OSError as exc:  # tried again on the next start; the service keeps running
                log.warning("enrolled, but cannot delete the installer's enrolment token: %s",
                            exc)
                return
            log.info("enrolled: the installer's enrolment token is deleted")
            self.forgotten.set()
            return


class FileToken:
    """`TokenStore` in a file (the .deb's `<data dir>/enrol-token`): its first line, stripped.
    A file others may read is still used (the PC must enrol) but logged, since the token then
    was exposed: IT should issue a new one."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> str | None:
        try:
            mode = self.path.stat().st_mode
        except FileNotFoundError:
            return None
        if not stat.S_ISREG(mode):  # a directory, or a FIFO that would block the start
            raise OSError(f"{self.path} is not a regular file: remove it and reinstall with "
                          "TELLER_GUARD_ENROLL_TOKEN=...")
        try:
            with self.path.open("rb") as fh:
                raw = fh.read(4096)
        except FileNotFoundError:
            return None
        if mode & 0o077:
            log.warning("%s can be read by other users (mode %o): make it 0600 and ask IT "
                        "for a new enrolment token", self.path, stat.S_IMODE(mode))
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise OSError(f"{self.path} is not UTF-8 text: reinstall with "
                          "TELLER_GUARD_ENROLL_TOKEN=...") from exc
        lines = text.splitlines()
        return (lines[0].strip() if lines else "") or None

    def delete(self) -> None:
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
