"""The screen watermark: when to show it and what it says (the teller, the terminal, the time).

`WatermarkController` follows `[watermark]` (off by default): while enabled it shows the
`WatermarkPort` overlay with ``<login> · <terminal> · <YYYY-MM-DD HH:MM>`` and refreshes the time
every `refresh_s`; turned off by a policy change, it hides it. Showing and hiding are reported
as `SCREEN_WATERMARK` events. It has the `Watcher` shape so the session starts and stops it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from guard.events import ScreenKind
from guard.model import Channel, Observation, Outcome
from guard.pipeline.pipeline import Pipeline
from guard.ports import WatermarkPort


def watermark_text(teller: str, device: str, now: float | None = None) -> str:
    stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime(now))
    return f"{teller or '-'} · {device} · {stamp}"


class WatermarkController:
    """Shows the watermark while policy wants it."""

    name = "watermark"

    def __init__(self, pipeline: Pipeline, port: WatermarkPort, *, device: str,
                 clock: Callable[[], float] = time.time) -> None:
        self._pipeline = pipeline
        self._port = port
        self._device = device
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.shown = False

    @property
    def state(self) -> str:
        if self._thread is None:
            return "stopped"
        return "running" if self.shown else "running (off by policy)"

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self.tick()
        self._thread = threading.Thread(target=self._run, name="watermark", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)
            self._thread = None
        if self.shown:
            self._port.hide_watermark()
            self.shown = False

    def _run(self) -> None:
        while not self._stop.wait(min(self._pipeline.policy().watermark.refresh_s, 60)):
            self.tick()

    def tick(self) -> None:
        """Show, refresh or hide per the policy in force (any thread)."""
        section = self._pipeline.policy().watermark
        if section.enabled:
            text = watermark_text(self._pipeline.teller, self._device, self._clock())
            self._port.show_watermark(text, section.opacity)
            if not self.shown:
                self.shown = True
                self._report("shown")
        elif self.shown:
            self._port.hide_watermark()
            self.shown = False
            self._report("hidden")

    def _report(self, what: str) -> None:
        self._pipeline.handle(Observation(Channel.SCREEN, ScreenKind.WATERMARK,
                                          meta={"watermark": what}), outcome=Outcome.RECORDED)
