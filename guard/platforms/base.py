"""The capabilities the core needs from the operating system, one small protocol each.

Every capability says which thread calls it and how long it may block. A backend that cannot
provide one raises `PlatformUnavailable` with the reason and the fix (keyring's rule: a backend
that cannot run says why). `Session` bundles the desktop capabilities of the teller's session,
`Machine` the machine-side ones of the service; `guard.platforms.current_session()` and
`current_machine()` pick them for this system.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

log = logging.getLogger(__name__)

ErrorHandler = Callable[[BaseException], None]

# The screen-capture hotkeys of Windows and of the common Chinese chat/screenshot tools, in the
# combo syntax of `KeyboardHook.register` (pynput's: ``<name>`` for a named key, a letter as is).
CAPTURE_HOTKEYS = ("<print_screen>", "<alt>+<print_screen>", "<cmd>+<shift>+s",
                   "<ctrl>+<alt>+a", "<alt>+a")
LOCK_FILE_NAME = "service.lock"


class PlatformUnavailable(RuntimeError):
    """A platform feature cannot run on this desktop; the message says why and how to fix it."""


class DataDirBusy(RuntimeError):
    """Another process holds the data directory's lock; the message names the lock file."""


# ---------------------------------------------------------------------------------------------
# The teller's session.


@runtime_checkable
class IdleClock(Protocol):
    def idle_seconds(self) -> float:
        """Seconds since the last keyboard/pointer input in this session.

        Called from the idle watcher's thread about once a second; answers in milliseconds (one
        X round trip, one Win32 call). Raises `PlatformUnavailable` when it cannot tell."""


@runtime_checkable
class SessionLock(Protocol):
    def lock_os(self) -> bool:
        """Ask the OS to lock the session; True when some lock command was accepted (not proof
        that it locked: see `is_os_locked`). Called from the idle watcher's worker thread, never
        the UI thread: it may block a few seconds (each desktop command has a 3 s timeout)."""

    def is_os_locked(self) -> bool | None:
        """True/False when the platform can tell whether the session is locked, else None.
        Called from the idle watcher's thread; blocks at most a few seconds."""


@runtime_checkable
class ClipboardOwner(Protocol):
    def clipboard_owner_app(self) -> str | None:
        """The executable name of the application owning the clipboard, if it can be told.
        Called on the UI thread at each clipboard change: answers in milliseconds and never
        raises (an owner that vanished is None)."""


@runtime_checkable
class UiLocale(Protocol):
    def os_locale(self) -> str:
        """The OS user-interface locale, e.g. ``zh_CN`` or ``en_US`` (``en_US`` when unknown).
        Any thread; does not block."""


@runtime_checkable
class DesktopName(Protocol):
    def desktop_name(self) -> str:
        """A name for this desktop session, unique for the user (the X display, the Windows
        session name): what keeps one agent per session. Any thread; does not block."""


@runtime_checkable
class PasswordCheck(Protocol):
    """Checks an OS user's password. `usable` says whether it can run here; `reason` why not."""

    usable: bool
    reason: str

    def check(self, user: str, password: str) -> bool:
        """True when `password` is `user`'s OS password; False for a wrong one or when not
        `usable`. Called from the unlock worker thread, never the UI thread: the OS may make
        it wait a few seconds after a wrong password."""


@runtime_checkable
class GroupPasswordCheck(Protocol):
    """A `PasswordCheck` that also checks OS-group membership with the same logon (Windows:
    the logon token's groups), for supervisors defined by an OS group."""

    def check_member(self, user: str, password: str, group: str) -> bool:
        """True when `password` is `user`'s and `user` is a member of OS group `group`. Called
        from a worker thread, never the UI thread (a wrong password may take seconds)."""


@runtime_checkable
class KeyboardHook(Protocol):
    """A global keyboard hook: hotkey combos anywhere on the desktop call their callbacks.

    Callbacks run on the hook's listener thread: they must return quickly (hand work to another
    thread). An exception in a callback, or the listener thread dying, is handed to the owner's
    `on_error` (given when the hook is made) on the listener thread; without one it is kept and
    `check()` re-raises it on the owner's thread. An error is never lost.
    """

    def register(self, combo: str, callback: Callable[[], None]) -> None:
        """Call `callback` when exactly the keys of `combo` are held (``<ctrl>+<alt>+l``,
        ``<print_screen>``, ``<alt>+a``). Any thread, before or after `start`; does not block.
        Raises `ValueError` for a combo that cannot be parsed."""

    def start(self) -> None:
        """Start listening. Called once by the owner (a second call does nothing); blocks until
        the listener runs, at most ~3 s. Raises `PlatformUnavailable` with the fix when the
        desktop refuses (no display, no RECORD extension, no pynput)."""

    def stop(self) -> None:
        """Stop listening; returns at once (pynput on X11 ends only at the next input event).
        Any thread."""

    def check(self) -> None:
        """Re-raise the first error the listener thread kept (when no `on_error` took it)."""


class KeyboardHookFactory(Protocol):
    def __call__(self, on_error: ErrorHandler | None = None) -> KeyboardHook: ...


@runtime_checkable
class Platform(IdleClock, SessionLock, ClipboardOwner, UiLocale, Protocol):
    """What the idle and clipboard watchers need from the desktop (the `Session` bundle, or a
    single object implementing the four capabilities, such as a test's fake)."""

    @property
    def name(self) -> str:
        """The backend's name: ``linux``, ``windows``, ``fake``, ``none``."""


@dataclass(frozen=True, slots=True)
class Session:
    """The desktop capabilities of the teller's session. It is itself a `Platform`: the idle,
    lock, clipboard and locale calls go to their capability."""

    name: str
    idle: IdleClock
    lock: SessionLock
    clipboard: ClipboardOwner
    locale: UiLocale
    desktop: DesktopName
    password: PasswordCheck
    keyboard: KeyboardHookFactory

    def idle_seconds(self) -> float:
        return self.idle.idle_seconds()

    def lock_os(self) -> bool:
        return self.lock.lock_os()

    def is_os_locked(self) -> bool | None:
        return self.lock.is_os_locked()

    def clipboard_owner_app(self) -> str | None:
        return self.clipboard.clipboard_owner_app()

    def os_locale(self) -> str:
        return self.locale.os_locale()

    def desktop_name(self) -> str:
        return self.desktop.desktop_name()

    def keyboard_hook(self, on_error: ErrorHandler | None = None) -> KeyboardHook:
        """A new global keyboard hook for this session (see `KeyboardHook`)."""
        return self.keyboard(on_error)


# ---------------------------------------------------------------------------------------------
# The machine service.


@runtime_checkable
class MachinePaths(Protocol):
    """Where the machine service keeps its files. Any thread; does not block (no I/O)."""

    def machine_data_dir(self) -> Path:
        """The machine-wide data directory (journal, install key, device identity)."""

    def run_dir(self) -> Path | None:
        """Where the service's local endpoints live (Unix sockets); None where the channel is
        not a file (Windows named pipes)."""

    def machine_policy_file(self) -> Path:
        """The machine policy file an administrator or the installer puts in place."""


@runtime_checkable
class PolicyRegistry(Protocol):
    """Machine policy values set by Group Policy (Windows HKLM\\Software\\Policies\\TellerGuard).

    Called when the policy is (re)loaded, from the thread that loads it; reads the registry
    once, in milliseconds."""

    source: str | None  # where the values come from, for messages; None: no registry here

    def policy_values(self) -> dict[str, Any]:
        """The values by dotted key (``{"idle.lock_after_s": 600}``); empty where there is no
        registry. Raises `PlatformUnavailable` when the registry cannot be read."""


@runtime_checkable
class ProcessTable(Protocol):
    def process_exists(self, pid: int) -> bool:
        """True while process `pid` exists (also when it belongs to another user). Any thread;
        answers in microseconds."""

    def user_has_processes(self, login: str) -> bool | None:
        """True while OS user `login` runs a process (their login session is open or starting),
        False when none, None when this platform cannot tell. Any thread; a scan of the process
        table (milliseconds)."""


@dataclass(frozen=True, slots=True)
class Program:
    """One running process as the remote-control watch sees it."""

    pid: int
    started: float  # the process's creation time: a reused pid is a new process
    names: tuple[str, ...]  # its name, executable, first argument (those it has)


@runtime_checkable
class ProgramList(Protocol):
    """The processes of this machine for the remote-control watch (its poll thread calls all
    three; a listing takes milliseconds, `end` up to a few seconds)."""

    def unavailable(self) -> str | None:
        """Why the list cannot be read here (a library missing), or None."""

    def programs(self) -> list[Program]:
        """Every process this account can see."""

    def end(self, pid: int) -> bool:
        """Terminate `pid` (killed if it does not end in 3 s); True when it has ended."""


@runtime_checkable
class HeldLock(Protocol):
    path: Path

    def release(self) -> None:
        """Give the lock up (idempotent). The OS also releases it when the process ends."""


@runtime_checkable
class DataDirLock(Protocol):
    def hold(self, directory: Path) -> HeldLock:
        """Take an exclusive lock on `directory` for this process's lifetime, so a second
        service cannot journal and ship the same rows. Never waits: raises `DataDirBusy` when
        another holder has it, `OSError` when the lock file cannot be made. Called once, at
        service start, from the starting thread."""


class SpoolerError(RuntimeError):
    """The print spooler refused or failed an operation; the message says which and why."""


@dataclass(frozen=True, slots=True)
class PrintJob:
    """One job in the print spooler, as the print guard sees it (no document content).

    `state` is ``incoming`` (its document is still arriving), ``pending``, ``held``,
    ``processing``, ``stopped`` or ``done``; `pages` is None until the spooler knows it."""

    id: int
    queue: str
    user: str
    title: str
    state: str
    pages: int | None = None
    size_bytes: int = 0
    format: str = ""


@dataclass(frozen=True, slots=True)
class PrintDocument:
    """A copy of a held job's document in a private temporary file the caller deletes."""

    path: Path
    format: str = ""  # MIME type as the spooler names it (application/pdf, text/plain ...)


@runtime_checkable
class PrintSpooler(Protocol):
    """The print spooler as the machine service's print guard drives it.

    A guarded queue keeps every job from printing until the service releases it, in a way the
    job's owner cannot lift (CUPS: a stopped queue whose operation policy reserves release,
    move and attribute changes to administrators; jobs are released by moving them to a twin
    queue only administrators may print to). Every call is made from the print guard's own
    threads and blocks for at most a few seconds (one spooler round trip, or a document copy);
    failures raise `SpoolerError`, an unreachable spooler `PlatformUnavailable`.
    """

    def queues(self) -> list[str]:
        """The names of the queues tellers print to (the guard's own twin queues excluded)."""

    def guard(self, queue: str) -> None:
        """Make `queue` guarded (idempotent)."""

    def unguard(self, queue: str) -> None:
        """Undo `guard` for a queue policy now exempts (idempotent; a queue the guard never
        guarded is left as it is)."""

    def jobs(self, queues: list[str]) -> list[PrintJob]:
        """The jobs not finished yet on `queues`."""

    def hold(self, job: PrintJob) -> None:
        """Keep `job` from printing until `release` (a no-op where the queue already does)."""

    def document(self, job: PrintJob) -> PrintDocument | None:
        """A copy of the job's (first) document, or None where the spool keeps no readable
        document (the Windows spooler's EMF records)."""

    def release(self, job: PrintJob) -> None:
        """Let `job` print."""

    def cancel(self, job: PrintJob) -> None:
        """Cancel `job` and remove its files from the spool."""


@dataclass(frozen=True, slots=True)
class Volume:
    """A mounted removable volume. `key` names the medium across mounts (device or drive)."""

    mount_point: Path
    device: str
    fs_type: str = ""
    read_only: bool = False
    label: str = ""

    @property
    def key(self) -> str:
        return f"{self.device}@{self.mount_point}"


@runtime_checkable
class RemovableVolumes(Protocol):
    """Removable volumes as the machine service's USB guard sees them. Called from the USB
    guard's thread; each call answers in milliseconds except `remount`/`eject` (one mount
    command, at most a few seconds)."""

    def volumes(self, mount_points: tuple[str, ...] = ()) -> list[Volume]:
        """The removable volumes mounted now: the platform's own (Linux: under /media and
        /run/media or on a removable block device; Windows: removable drive letters) plus any
        mount at or under one of `mount_points` (policy ``usb.mount_points``)."""

    def remount(self, volume: Volume, *, read_only: bool) -> bool:
        """Remount `volume` read-only or read-write; False when the platform or the file system
        cannot (a FUSE file system, Windows), with the reason logged."""

    def eject(self, volume: Volume) -> bool:
        """Unmount (and where possible eject) `volume`; False when it is busy or cannot be."""


@dataclass(frozen=True, slots=True)
class Machine:
    """The machine-side capabilities of the service."""

    name: str
    paths: MachinePaths
    registry: PolicyRegistry
    processes: ProcessTable
    data_lock: DataDirLock


# ---------------------------------------------------------------------------------------------
# The fallback: a session where nothing runs, each part saying why.


class _Unavailable:
    """Every capability of a session that cannot run here, each reporting `reason`."""

    name = "none"

    def __init__(self, reason: str) -> None:
        self.reason = reason
        self.usable = False

    def idle_seconds(self) -> float:
        raise PlatformUnavailable(self.reason)

    def lock_os(self) -> bool:
        return False

    def is_os_locked(self) -> bool | None:
        return None

    def clipboard_owner_app(self) -> str | None:
        return None

    def os_locale(self) -> str:
        return "en_US"

    def desktop_name(self) -> str:
        return "nodisplay"

    def check(self, user: str, password: str) -> bool:
        return False


class NoPasswordCheck:
    """The platform cannot check OS passwords here: only the PIN unlocks."""

    usable = False

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def check(self, user: str, password: str) -> bool:
        return False


class _UnavailableHook:
    def __init__(self, reason: str) -> None:
        self.reason = reason

    def register(self, combo: str, callback: Callable[[], None]) -> None:
        parse_combo(combo)

    def start(self) -> None:
        raise PlatformUnavailable(self.reason)

    def stop(self) -> None:
        return None

    def check(self) -> None:
        return None


def unavailable_session(reason: str) -> Session:
    """A session bundle for a desktop where no backend runs: idle time and the keyboard hook
    raise `PlatformUnavailable(reason)`, the rest answers "unknown"."""
    part = _Unavailable(reason)
    return Session(name="none", idle=part, lock=part, clipboard=part, locale=part, desktop=part,
                   password=NoPasswordCheck(reason),
                   keyboard=lambda on_error=None: _UnavailableHook(reason))


# ---------------------------------------------------------------------------------------------
# Hotkey combos, shared by every keyboard hook.

_ALIASES = {"control": "ctrl", "win": "cmd", "super": "cmd", "windows": "cmd",
            "prtsc": "print_screen", "print": "print_screen", "option": "alt"}


def parse_combo(combo: str) -> frozenset[str]:
    """The key names of `combo` (``<ctrl>+<alt>+l`` → {ctrl, alt, l}); `ValueError` when empty
    or malformed. Named keys are written ``<name>``, a character key as itself."""
    keys: set[str] = set()
    for raw in combo.split("+") if combo != "+" else ["+"]:
        token = raw.strip()
        if token.startswith("<") and token.endswith(">") and len(token) > 2:
            name = token[1:-1].strip().lower()
            keys.add(_ALIASES.get(name, name))
        elif len(token) == 1:
            keys.add(token.lower())
        else:
            raise ValueError(f"hotkey {combo!r}: {token!r} is neither <name> nor one character")
    if not keys:
        raise ValueError(f"hotkey {combo!r} names no key")
    return frozenset(keys)


class ComboMatcher:
    """Which registered combos the held keys make: a combo fires when exactly its keys are
    held (Alt+PrintScreen fires that combo, not PrintScreen too), once per press.

    Not thread-safe by itself: the hook calls `press`/`release` from its listener thread and
    `register` under its own lock."""

    def __init__(self, on_error: ErrorHandler | None, keep: Callable[[BaseException], None]
                 ) -> None:
        self._combos: list[tuple[frozenset[str], Callable[[], None]]] = []
        self._held: set[str] = set()
        self._on_error = on_error
        self._keep = keep

    def register(self, combo: str, callback: Callable[[], None]) -> None:
        self._combos.append((parse_combo(combo), callback))

    def press(self, key: str) -> None:
        if key in self._held:
            return  # auto-repeat of a held key: not a new press
        self._held.add(key)
        held = frozenset(self._held)
        for keys, callback in list(self._combos):
            if keys == held:
                self._run(callback)

    def release(self, key: str) -> None:
        self._held.discard(key)

    def reset(self) -> None:
        self._held.clear()

    def _run(self, callback: Callable[[], None]) -> None:
        try:
            callback()
        except Exception as exc:  # a callback's bug must not kill the hook: hand it over
            self.report(exc)

    def report(self, exc: BaseException) -> None:
        """Hand `exc` to the owner's `on_error`, else keep it for `check()`."""
        if self._on_error is not None:
            try:
                self._on_error(exc)
                return
            except Exception:
                log.exception("the keyboard hook's error handler failed")
        log.error("keyboard hook error kept for its owner: %r", exc)
        self._keep(exc)


class HookCore:
    """What every keyboard hook shares: the combo matcher, and the listener-thread error kept
    for the owner's `check()` when no `on_error` handler was given."""

    def __init__(self, on_error: ErrorHandler | None) -> None:
        self._lock = threading.Lock()
        self._kept: BaseException | None = None
        self._matcher = ComboMatcher(on_error, self._keep)

    def _keep(self, exc: BaseException) -> None:
        with self._lock:
            if self._kept is None:
                self._kept = exc

    def register(self, combo: str, callback: Callable[[], None]) -> None:
        with self._lock:
            self._matcher.register(combo, callback)

    def check(self) -> None:
        with self._lock:
            kept, self._kept = self._kept, None
        if kept is not None:
            raise kept


