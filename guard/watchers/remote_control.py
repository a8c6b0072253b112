"""Remote-control and screen-recording programs: noticed when they start, handed over once each.

The process table is polled every `[remote_control] poll_s` (`guard.platforms.program_list`:
/proc on Linux, psutil on Windows); a process whose name, executable or first argument is on the
policy's `processes` list (ToDesk, 向日葵/Sunlogin, TeamViewer, AnyDesk, OBS, QQ remote assistance
…; case-insensitive, without ".exe") becomes one `screen/remote_control` observation, named by
the program. Programs already running when the
agent starts count too: they may have been started before the teller logged in. The decision
(notify, justify, audit = report) is the policy's; `block`, or a `justify` the teller cancels,
ends the program when this account may.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable
from typing import Any

from guard import platforms
from guard.events import ScreenKind
from guard.model import Channel, Observation
from guard.pipeline.pipeline import Enforcement, Pipeline
from guard.platforms.base import Program
from guard.watchers.base import PollingWatcher

log = logging.getLogger(__name__)


def _normal(name: str) -> str:
    base = os.path.basename(name.replace("\\", "/")).strip().casefold()
    return base.removesuffix(".exe")


def running_programs() -> list[Program]:
    """Every process this account can see (this system's `ProgramList`)."""
    return platforms.program_list().programs()


class RemoteControlWatcher(PollingWatcher):
    """Polls the process table for listed programs (the `Watcher` protocol)."""

    name = "remote_control"

    def __init__(self, pipeline: Pipeline, *,
                 programs: Callable[[], Iterable[Program]] | None = None,
                 end: Callable[[int], bool] | None = None) -> None:
        self._pipeline = pipeline
        system = platforms.program_list()
        # this system's list unless a test hands in its own (then none is checked at start)
        self._list = system if programs is None else None
        self._programs = programs if programs is not None else system.programs
        self._end = end if end is not None else system.end
        self._seen: set[tuple[int, float]] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._unavailable: str | None = None
        self.on_handled: Callable[[Any], None] | None = None

    def start(self) -> None:
        if self._thread is not None:
            return
        if not self._pipeline.policy().remote_control.enabled:
            self._unavailable = "turned off by policy"
            return
        reason = self._list.unavailable() if self._list is not None else None
        if reason is not None:
            self._unavailable = reason
            return
        self._start_thread("remote-control")

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll()
            except Exception:  # a process table hiccup must not end the channel
                log.exception("process poll failed")
            self._stop.wait(self._pipeline.policy().remote_control.poll_s)

    def poll(self) -> list[Program]:
        """One look at the process table; each newly seen listed program is handed over."""
        wanted = {_normal(n) for n in self._pipeline.policy().remote_control.processes}
        alive: set[tuple[int, float]] = set()
        found = []
        for program in self._programs():
            key = (program.pid, program.started)
            alive.add(key)
            if key in self._seen:
                continue
            match = next((n for n in program.names if _normal(n) in wanted), None)
            if match is None:
                continue
            self._seen.add(key)
            found.append(program)
            self._handle(program, os.path.basename(match.replace("\\", "/"))[:64])
        self._seen &= alive  # forget ended processes (a new start is noticed again)
        return found

    def _handle(self, program: Program, name: str) -> None:
        detail: dict[str, str | int | float | bool | None] = {}

        def end() -> bool:
            ok = self._end(program.pid)
            detail["ended"] = ok
            return ok

        handled = self._pipeline.handle(
            Observation(Channel.SCREEN, ScreenKind.REMOTE_CONTROL, source_app=name,
                        meta={"program": name, "pid": program.pid}),
            Enforcement(block=end), findings=(), detail=detail)
        if self.on_handled is not None:
            self.on_handled(handled)
