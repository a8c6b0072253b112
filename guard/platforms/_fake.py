"""Scripted platforms for tests and headless runs: every answer is set by hand, calls counted."""

from __future__ import annotations

import os
import queue
import tempfile
import threading
from pathlib import Path
from typing import Any

from guard.platforms.base import (
    LOCK_FILE_NAME,
    DataDirBusy,
    ErrorHandler,
    HookCore,
    Machine,
    PlatformUnavailable,
    PrintDocument,
    PrintJob,
    Session,
    SpoolerError,
    Volume,
    parse_combo,
)


class FakePlatform:
    """The desktop of a session: idle time, lock state, clipboard owner and locale from
    attributes a test sets."""

    name = "fake"

    def __init__(self, *, idle: float = 0.0, lock_works: bool = True,
                 can_verify: bool = True, owner: str | None = None,
                 locale: str = "zh_CN", desktop: str = "fake-desktop") -> None:
        self._lock = threading.Lock()
        self.idle = idle
        self.lock_works = lock_works
        self.can_verify = can_verify
        self.owner = owner
        self.locale = locale
        self.desktop = desktop
        self.locked = False
        self.lock_calls = 0

    def idle_seconds(self) -> float:
        with self._lock:
            return self.idle

    def lock_os(self) -> bool:
        with self._lock:
            self.lock_calls += 1
            if self.lock_works:
                self.locked = True
            return self.lock_works

    def is_os_locked(self) -> bool | None:
        with self._lock:
            return self.locked if self.can_verify else None

    def unlock_os(self) -> None:
        """What the teller does at the OS lock screen."""
        with self._lock:
            self.locked = False
            self.idle = 0.0

    def clipboard_owner_app(self) -> str | None:
        with self._lock:
            return self.owner

    def os_locale(self) -> str:
        return self.locale

    def desktop_name(self) -> str:
        return self.desktop


class FakePasswordCheck:
    """OS accounts from a dict of user → password."""

    def __init__(self, users: dict[str, str] | None = None, *, reason: str = "") -> None:
        self.users = dict(users or {})
        self.usable = not reason
        self.reason = reason
        self.calls = 0

    def check(self, user: str, password: str) -> bool:
        self.calls += 1
        return self.usable and bool(user) and self.users.get(user) == password


class FakeKeyboardHook(HookCore):
    """A keyboard hook whose keys a test presses: `press`/`release` queue key events that the
    hook's own listener thread matches, as a real hook's thread does."""

    def __init__(self, on_error: ErrorHandler | None = None, *, refuse: str = "") -> None:
        super().__init__(on_error)
        self._events: queue.Queue[tuple[str, Any] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._refuse = refuse

    def start(self) -> None:
        if self._refuse:
            raise PlatformUnavailable(self._refuse)
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._listen, name="fake-keyboard-hook",
                                            daemon=True)
            self._thread.start()

    def _listen(self) -> None:
        while (event := self._events.get()) is not None:
            kind, key = event
            if kind == "die":
                self._matcher.report(PlatformUnavailable(f"the key listener stopped: {key}"))
                return
            if kind == "sync":
                key.set()
                continue
            with self._lock:
                matcher = self._matcher
            if kind == "press":  # outside the lock: a callback may register another combo
                matcher.press(key)
            else:
                matcher.release(key)

    def stop(self) -> None:
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._events.put(None)

    @property
    def running(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive()

    # -- what a test does
    def tap(self, combo: str) -> None:
        """Press the keys of `combo` together, then release them."""
        keys = sorted(parse_combo(combo))
        for key in keys:
            self._events.put(("press", key))
        for key in keys:
            self._events.put(("release", key))

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until the listener has handled every key queued so far."""
        done = threading.Event()
        self._events.put(("sync", done))
        return done.wait(timeout)

    def die(self, why: str) -> None:
        """The listener thread ends on its own (what a lost X connection does)."""
        self._events.put(("die", why))


class FakeMachinePaths:
    def __init__(self, root: Path | None = None) -> None:
        self.root = root or Path(tempfile.gettempdir()) / "teller-guard-fake"

    def machine_data_dir(self) -> Path:
        return self.root / "data"

    def run_dir(self) -> Path | None:
        return self.root / "run"

    def machine_policy_file(self) -> Path:
        return self.root / "etc" / "policy.toml"


class FakeRegistry:
    """Group Policy values set by hand; `source` None stands for a system without a registry."""

    def __init__(self, values: dict[str, Any] | None = None,
                 source: str | None = "fake registry", *, broken: str = "") -> None:
        self.values = dict(values or {})
        self.source = source
        self.broken = broken

    def policy_values(self) -> dict[str, Any]:
        if self.broken:
            raise PlatformUnavailable(self.broken)
        return dict(self.values) if self.source is not None else {}


class FakeProcessTable:
    def __init__(self, alive: set[int] | None = None, users: set[str] | None = None) -> None:
        self.alive = {os.getpid()} if alive is None else set(alive)
        self.users = users  # logins with a process; None: cannot tell

    def process_exists(self, pid: int) -> bool:
        return pid > 0 and pid in self.alive

    def user_has_processes(self, login: str) -> bool | None:
        return None if self.users is None else login in self.users


class _FakeHeld:
    def __init__(self, owner: FakeDataDirLock, path: Path) -> None:
        self.path = path
        self._owner = owner

    def release(self) -> None:
        self._owner.held.discard(self.path)


class FakeDataDirLock:
    """Locks held in memory: a second `hold` of the same directory is busy until released."""

    def __init__(self) -> None:
        self.held: set[Path] = set()

    def hold(self, directory: Path) -> _FakeHeld:
        path = Path(directory) / LOCK_FILE_NAME
        if path in self.held:
            raise DataDirBusy(f"another process holds {path}")
        self.held.add(path)
        return _FakeHeld(self, path)


def fake_session(platform: FakePlatform | None = None,
                 password: FakePasswordCheck | None = None) -> Session:
    """A session bundle of fakes (TELLER_GUARD_PLATFORM=fake)."""
    desk = platform or FakePlatform()

    def keyboard(on_error: ErrorHandler | None = None) -> FakeKeyboardHook:
        return FakeKeyboardHook(on_error)

    return Session(name="fake", idle=desk, lock=desk, clipboard=desk, locale=desk, desktop=desk,
                   password=password or FakePasswordCheck(), keyboard=keyboard)


def fake_machine(root: Path | None = None) -> Machine:
    """A machine bundle of fakes (TELLER_GUARD_PLATFORM=fake)."""
    return Machine(name="fake", paths=FakeMachinePaths(root), registry=FakeRegistry(source=None),
                   processes=FakeProcessTable(), data_lock=FakeDataDirLock())


class FakeSpooler:
    """A print spooler in memory: `submit()` is a teller printing; `printed` is what came out.

    Guarded queues keep their jobs; `release` prints, `cancel` removes. `fail` names an
    operation that raises `SpoolerError` (``release``, ``cancel``, ``document``, ``jobs``)."""

    def __init__(self, queues: tuple[str, ...] = ("Office",)) -> None:
        self._lock = threading.Lock()
        self.queue_names = list(queues)
        self.guarded: set[str] = set()
        self.pending: dict[int, tuple[PrintJob, bytes]] = {}
        self.printed: list[PrintJob] = []
        self.cancelled: list[PrintJob] = []
        self.fail: set[str] = set()
        self.no_document = False
        self._next = 1

    def submit(self, queue: str, data: bytes, *, user: str = "teller", title: str = "doc",
               fmt: str = "text/plain") -> PrintJob:
        with self._lock:
            job = PrintJob(id=self._next, queue=queue, user=user, title=title, state="pending",
                           size_bytes=len(data), format=fmt)
            self._next += 1
            if queue in self.guarded:
                self.pending[job.id] = (job, data)
            else:
                self.printed.append(job)
            return job

    def _check(self, op: str) -> None:
        if op in self.fail:
            raise SpoolerError(f"fake spooler: {op} refused")

    def queues(self) -> list[str]:
        return list(self.queue_names)

    def guard(self, queue: str) -> None:
        with self._lock:
            self.guarded.add(queue)

    def unguard(self, queue: str) -> None:
        with self._lock:
            self.guarded.discard(queue)

    def jobs(self, queues: list[str]) -> list[PrintJob]:
        self._check("jobs")
        with self._lock:
            return [j for j, _ in self.pending.values() if j.queue in queues]

    def hold(self, job: PrintJob) -> None:
        return None

    def document(self, job: PrintJob) -> PrintDocument | None:
        self._check("document")
        if self.no_document:
            return None
        with self._lock:
            data = self.pending[job.id][1]
        fd, name = tempfile.mkstemp(prefix="tg-fake-doc-")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        return PrintDocument(Path(name), job.format)

    def release(self, job: PrintJob) -> None:
        self._check("release")
        with self._lock:
            self.pending.pop(job.id)
            self.printed.append(job)

    def cancel(self, job: PrintJob) -> None:
        self._check("cancel")
        with self._lock:
            self.pending.pop(job.id, None)
            self.cancelled.append(job)


class FakeVolumes:
    """Removable volumes a test mounts by hand (`attach`); remounts and ejects are recorded."""

    def __init__(self, *, can_remount: bool = True) -> None:
        self._lock = threading.Lock()
        self.mounted: dict[Path, Volume] = {}
        self.can_remount = can_remount
        self.remounts: list[tuple[Path, bool]] = []
        self.ejected: list[Path] = []

    def attach(self, mount_point: Path, device: str = "/dev/fake1") -> Volume:
        volume = Volume(mount_point=Path(mount_point), device=device, fs_type="vfat")
        with self._lock:
            self.mounted[volume.mount_point] = volume
        return volume

    def detach(self, mount_point: Path) -> None:
        with self._lock:
            self.mounted.pop(Path(mount_point), None)

    def volumes(self, mount_points: tuple[str, ...] = ()) -> list[Volume]:
        with self._lock:
            return list(self.mounted.values())

    def remount(self, volume: Volume, *, read_only: bool) -> bool:
        with self._lock:
            self.remounts.append((volume.mount_point, read_only))
            if not self.can_remount or volume.mount_point not in self.mounted:
                return False
            self.mounted[volume.mount_point] = Volume(volume.mount_point, volume.device,
                                                      volume.fs_type, read_only, volume.label)
            return True

    def eject(self, volume: Volume) -> bool:
        with self._lock:
            self.ejected.append(volume.mount_point)
            return self.mounted.pop(volume.mount_point, None) is not None
