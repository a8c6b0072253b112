"""The `Watcher` protocol: what every channel's watcher offers its composition root."""

from __future__ import annotations

import os
import threading
from typing import Protocol, runtime_checkable

from guard.pipeline.pipeline import FileScan


@runtime_checkable
class Watcher(Protocol):
    """Notices something on one channel and hands each `Observation` to `Pipeline.handle`;
    it never decides and never records or prompts by itself.

    `start()` returns at once (the watcher runs on its own threads); `stop()` ends them and
    returns within a couple of seconds. `state` is ``running`` or ``unavailable: <why>`` (for the
    tray, the status file and the heartbeat); any thread may read it.
    """

    @property
    def name(self) -> str:
        """The channel's watcher name (``clipboard``, ``idle`` …), a key of the status map."""
        ...

    @property
    def state(self) -> str: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...


class FileScanner(Protocol):
    """Reads one file's content for the pipeline (documents and images)."""

    def scan_file(self, path: str) -> FileScan: ...


class Moved(Protocol):
    """Where a quarantined file went: `encrypted` when sealed to IT's key (not readable by the
    teller's account), False when only moved (`guard.enforce.quarantine.Quarantined`)."""

    @property
    def encrypted(self) -> bool: ...


class Mover(Protocol):
    """Moves a file out of the teller's reach (the quarantine), named by its masked path."""

    def move(self, path: str | os.PathLike[str], masked_path: str) -> Moved: ...


class ThreadedWatcher:
    """What the watchers with one worker thread share: `state` is ``unavailable: <why>`` when
    the watcher cannot run here (`_unavailable`), else whether its thread runs."""

    _thread: threading.Thread | None = None
    _unavailable: str | None = None

    @property
    def state(self) -> str:
        if self._unavailable:
            return f"unavailable: {self._unavailable}"
        return "running" if self._thread is not None else "stopped"


class PollingWatcher(ThreadedWatcher):
    """A watcher whose thread runs `_run` until `stop()` sets `_stop` (it waits on it between
    rounds, so stopping never waits out a poll interval)."""

    _stop: threading.Event

    def _run(self) -> None:
        raise NotImplementedError

    def _start_thread(self, name: str) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)
            self._thread = None

