"""The `Watcher` protocol: what every channel's watcher offers its composition root."""

from __future__ import annotations

from typing import Protocol, runtime_checkable


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
