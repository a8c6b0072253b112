"""Linux X11 desktops: idle time from MIT-SCREEN-SAVER, the session lock through logind, the
freedesktop/GNOME screensaver on D-Bus or xdg-screensaver, the clipboard owner from the X server.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from guard.platforms.base import PlatformUnavailable

log = logging.getLogger(__name__)

COMMAND_TIMEOUT_S = 3.0


@dataclass(frozen=True, slots=True)
class CommandResult:
    returncode: int
    stdout: str


Runner = Callable[[Sequence[str]], CommandResult]


def run_command(argv: Sequence[str]) -> CommandResult:
    """Run a desktop command with a timeout; a missing or hung command is a failure (rc 127/124)."""
    if shutil.which(argv[0]) is None:
        return CommandResult(127, "")
    try:
        proc = subprocess.run(list(argv), capture_output=True, text=True,
                              timeout=COMMAND_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        return CommandResult(124, "")
    except OSError:
        return CommandResult(126, "")
    return CommandResult(proc.returncode, proc.stdout)


_SCREENSAVERS = (
    ("org.freedesktop.ScreenSaver", "/org/freedesktop/ScreenSaver"),
    ("org.gnome.ScreenSaver", "/org/gnome/ScreenSaver"),
)


def _gdbus(dest: str, path: str, method: str) -> list[str]:
    return ["gdbus", "call", "--session", "--dest", dest, "--object-path", path,
            "--method", f"{dest}.{method}"]


def _locale_from_env(env: dict[str, str] | os._Environ[str]) -> str:
    for var in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = env.get(var, "").split(".")[0].split("@")[0]
        if value and value not in ("C", "POSIX"):
            return value
    return "en_US"


class LinuxPlatform:
    """X11 through python-xlib (one connection, serialised by a lock); commands via `runner`."""

    name = "linux"

    def __init__(self, display: str | None = None, runner: Runner = run_command) -> None:
        self._display_name = display
        self._runner = runner
        self._xlock = threading.Lock()
        self._display: Any = None
        self._how_locked: str | None = None

    # -- X connection
    def _x(self) -> Any:
        if self._display is not None:
            return self._display
        name = self._display_name or os.environ.get("DISPLAY")
        if not name:
            raise PlatformUnavailable("DISPLAY is not set: the agent needs an X11 session")
        try:
            from Xlib import display as xdisplay
            from Xlib.error import DisplayError
        except ImportError as exc:
            raise PlatformUnavailable("python-xlib is missing: pip install python-xlib") from exc
        try:
            self._display = xdisplay.Display(name)
        except (DisplayError, OSError) as exc:
            raise PlatformUnavailable(f"cannot open X display {name}: {exc}") from exc
        return self._display

    def close(self) -> None:
        with self._xlock:
            if self._display is not None:
                self._display.close()
                self._display = None

    # -- idle
    def idle_seconds(self) -> float:
        with self._xlock:
            d = self._x()
            if not d.has_extension("MIT-SCREEN-SAVER"):
                raise PlatformUnavailable("the X server lacks the MIT-SCREEN-SAVER extension")
            try:
                info = d.screen().root.screensaver_query_info()
            except Exception as exc:  # Xlib raises its own error classes and ConnectionClosedError
                self._display = None
                raise PlatformUnavailable(f"X idle query failed: {exc}") from exc
            return float(info.idle) / 1000.0

    # -- lock
    def _session_id(self) -> str | None:
        return os.environ.get("XDG_SESSION_ID") or None

    def lock_os(self) -> bool:
        attempts: list[tuple[str, list[str]]] = []
        session = self._session_id()
        attempts.append(("logind", ["loginctl", "lock-session", *([session] if session else [])]))
        for dest, path in _SCREENSAVERS:
            attempts.append((dest, _gdbus(dest, path, "Lock")))
        attempts.append(("xdg-screensaver", ["xdg-screensaver", "lock"]))
        for how, argv in attempts:
            result = self._runner(argv)
            if result.returncode == 0:
                self._how_locked = how
                log.info("OS lock requested through %s", how)
                return True
        self._how_locked = None
        return False

    def is_os_locked(self) -> bool | None:
        session = self._session_id()
        if session:
            res = self._runner(["loginctl", "show-session", session, "-p", "LockedHint",
                                "--value"])
            if res.returncode == 0 and res.stdout.strip() in ("yes", "no"):
                return res.stdout.strip() == "yes"
        for dest, path in _SCREENSAVERS:
            res = self._runner(_gdbus(dest, path, "GetActive"))
            if res.returncode == 0 and res.stdout.strip():
                return "true" in res.stdout.lower()
        return None

    # -- clipboard owner
    def clipboard_owner_app(self) -> str | None:
        with self._xlock:
            try:
                d = self._x()
            except PlatformUnavailable:
                return None
            try:
                pid = self._owner_pid(d)
            except Exception as exc:  # a vanished window or a closed connection: unknown owner
                log.debug("clipboard owner lookup failed: %s", exc)
                return None
        if pid is None:
            return None
        try:
            return Path(f"/proc/{pid}/comm").read_text(encoding="utf-8").strip() or None
        except OSError:
            return None

    def _owner_pid(self, d: Any) -> int | None:
        from Xlib import X

        owner = d.get_selection_owner(d.intern_atom("CLIPBOARD"))
        if owner is None or owner == X.NONE or getattr(owner, "id", 0) == 0:
            return None
        pid_atom = d.intern_atom("_NET_WM_PID")
        window = owner
        for _ in range(8):  # the owner may be a child of the client's top-level window
            prop = window.get_full_property(pid_atom, X.AnyPropertyType)
            if prop is not None and len(prop.value):
                return int(prop.value[0])
            tree = window.query_tree()
            if not tree.parent or tree.parent.id == tree.root.id:
                break
            window = tree.parent
        if d.has_extension("X-Resource"):
            from Xlib.ext import res

            reply = d.res_query_client_ids([{"client": owner.id,
                                             "mask": res.LocalClientPIDMask}])
            for entry in reply.ids:
                if entry.value:
                    return int(entry.value[0])
        return None

    def os_locale(self) -> str:
        return _locale_from_env(os.environ)

    def desktop_name(self) -> str:
        return (self._display_name or os.environ.get("WAYLAND_DISPLAY")
                or os.environ.get("DISPLAY") or "nodisplay")
