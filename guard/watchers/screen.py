"""Screen captures: a capture hotkey grabs every screen at once and hands what it shows over.

PrintScreen, Alt+PrintScreen, Win+Shift+S and the chat tools' Ctrl+Alt+A / Alt+A
(`guard.platforms.CAPTURE_HOTKEYS`) are registered on the session's shared keyboard hook. The
hook's listener thread only wakes this watcher's worker; the worker grabs all screens with mss
(`mss.MSS()`, one grab of the virtual screen), has the image read by the OCR worker (off the UI
thread and out of this process), and hands the findings — masked values and pixel boxes — to
`Pipeline.handle` as one `screen/hotkey` observation. Presses during a scan are folded into one
more grab.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from guard.events import ScreenKind
from guard.model import Channel, Finding, Observation
from guard.pipeline.pipeline import Pipeline
from guard.platforms import CAPTURE_HOTKEYS, PlatformUnavailable
from guard.scan.images import Pixels, release_memory
from guard.watchers.base import ThreadedWatcher

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)

MAX_BOXES_IN_EVENT = 20


class PixelScanner(Protocol):
    def scan_pixels(self, pixels: np.ndarray | Pixels) -> list[Finding]:
        """Findings (with `box`) in a screen grab; raises when the image cannot be read."""


class Hook(Protocol):
    def register(self, combo: str, callback: Callable[[], None]) -> None: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...


class GrabError(Exception):
    """The screens could not be grabbed (no display, mss missing); the message says why."""


def grab_screens() -> Pixels:
    """Every screen at once (mss's virtual screen, monitor 0) as raw BGRA bytes.

    Bytes, not a numpy array: the grab only passes through this process on its way to the OCR
    worker, and importing numpy here would keep about 11 MB in the agent for good."""
    try:
        import mss
    except ImportError as exc:
        raise GrabError(f"screen grabs need mss ({exc})") from exc
    try:
        with mss.MSS() as sct:
            shot = sct.grab(sct.monitors[0])
            return Pixels(bytes(shot.raw), int(shot.width), int(shot.height), 4)
    except Exception as exc:  # mss raises its own ScreenShotError (no display, X error)
        raise GrabError(f"the screens could not be grabbed ({exc.__class__.__name__}: "
                        f"{str(exc)[:200]})") from exc


def boxes_text(findings: Sequence[Finding]) -> str:
    """The findings' pixel boxes for the event: ``x,y,w,h`` joined by ``;`` (at most 20)."""
    boxes = [f.box for f in findings if f.box is not None][:MAX_BOXES_IN_EVENT]
    return ";".join(",".join(str(int(v)) for v in box) for box in boxes)


class ScreenCaptureWatcher(ThreadedWatcher):
    """Reads the screens whenever a capture hotkey is pressed (the `Watcher` protocol).

    `grab()` returns the pixels (tests may pass their own); `scanner` reads them (the session's
    `ImageCapableScanner`). `on_handled` is called after each capture went through the pipeline
    (tests, the tray)."""

    name = "screen"

    def __init__(self, pipeline: Pipeline, hook: Hook, scanner: PixelScanner | None, *,
                 grab: Callable[[], np.ndarray | Pixels] = grab_screens,
                 hotkeys: Sequence[str] = CAPTURE_HOTKEYS) -> None:
        self._pipeline = pipeline
        self._hook = hook
        self._scanner = scanner
        self._grab = grab
        self._hotkeys = tuple(hotkeys)
        self._cond = threading.Condition()
        self._pending: str | None = None
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._hook_started = False
        self._unavailable: str | None = None
        self.captures = 0
        self.on_handled: Callable[[Any], None] | None = None

    def start(self) -> None:
        if self._thread is not None:
            return
        if not self._pipeline.policy().screen.hotkeys:
            self._unavailable = "capture hotkeys turned off by policy"
            return
        self._stopping = False
        for combo in self._hotkeys:
            self._hook.register(combo, functools.partial(self.pressed, combo))
        try:
            self._hook.start()
            self._hook_started = True
        except PlatformUnavailable as exc:
            self._unavailable = f"no keyboard hook ({exc})"
            log.warning("capture hotkeys unavailable: %s", exc)
            return
        self._thread = threading.Thread(target=self._run, name="screen-capture", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._hook_started:
            self._hook.stop()
            self._hook_started = False
        if self._thread is not None:
            self._thread.join(2.0)
            self._thread = None

    def hook_failed(self, exc: BaseException) -> None:
        """The shared hook's listener died: the hotkeys are no longer seen."""
        if isinstance(exc, PlatformUnavailable):
            self._unavailable = f"keyboard hook stopped ({exc})"

    # -- the hook's listener thread: hand over and return at once
    def pressed(self, combo: str) -> None:
        with self._cond:
            self._pending = combo
            self._cond.notify_all()

    # -- the worker
    def _run(self) -> None:
        while True:
            with self._cond:
                while self._pending is None and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return
                combo, self._pending = self._pending, None
            assert combo is not None
            try:
                self.capture(combo)
            except Exception:  # one failed capture must not end the channel
                log.exception("screen capture not handled")

    def capture(self, combo: str) -> None:
        """Grab, read and hand over one capture (the worker thread; tests call it directly)."""
        meta: dict[str, object] = {"hotkey": combo}
        findings: list[Finding] = []
        try:
            pixels = self._grab()
            meta["width"], meta["height"] = int(pixels.shape[1]), int(pixels.shape[0])
            if self._scanner is None:
                meta["scan_error"] = "no image scanner loaded"
            else:
                findings = self._scanner.scan_pixels(pixels)
            del pixels  # the grab's 8 MB (1080p) go now, not when the next capture comes
            release_memory()
        except GrabError as exc:
            meta["scan_error"] = str(exc)[:300]
        except Exception as exc:  # OCR failed: the capture is still recorded, said unscanned
            meta["scan_error"] = exc.__class__.__name__
        if findings:
            meta["boxes"] = boxes_text(findings)
        with self._cond:
            self.captures += 1
        handled = self._pipeline.handle(Observation(Channel.SCREEN, ScreenKind.HOTKEY, meta=meta),
                                        findings=findings)
        if self.on_handled is not None:
            self.on_handled(handled)
