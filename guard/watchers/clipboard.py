"""The clipboard guard: scans what the teller copies; redacts, blocks or auto-clears it per policy.

The desktop (ui/app.py, QClipboard) calls `on_change` on its own thread for every change; the
watcher only parks the content and returns. One worker thread scans the latest parked content
(rapid-fire changes are coalesced: a newer change replaces an unscanned older one), within
bounds: a huge text is scanned only up to the policy's limit and the event says how much was
skipped; an image above the size limits is skipped with a reason; binary formats are reported as
not scanned. Changes the guard made itself (redaction, clearing) are recognised and ignored.
"""

from __future__ import annotations

import logging
import struct
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from guard.events import ClipboardKind
from guard.model import Channel, Finding, Observation, Outcome
from guard.pipeline.pipeline import Enforcement, Handled, Pipeline, ScanLimits, mask_text
from guard.platforms import Platform
from guard.ports import ClipboardContent, ClipboardPort
from guard.scan.images import ImageError
from guard.scan.ocr import OcrError

log = logging.getLogger(__name__)

# What the composition root used to hand the watcher for images; images now go through the
# pipeline's scanner (its optional `scan_image`), so a value given here is not used.
ImageScanner = Callable[[bytes], list[Finding]]

MAX_FILES = 20  # copied files scanned per change
OWN_CHANGE_WINDOW_S = 5.0  # the desktop reports our own set/clear within this time
TEXT_FORMATS = ("text/plain", "text/html", "text/uri-list")


@dataclass(frozen=True, slots=True)
class ClipboardStats:
    """Counters since start (for status, tests and the benchmark)."""

    changes: int
    coalesced: int
    scanned: int
    own_ignored: int
    skipped: int
    auto_cleared: int
    auto_clear_kept: int  # the content had changed when the delay ran out: left alone
    errors: int


def png_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from a PNG header without decoding it (None if it is not a PNG)."""
    if len(data) >= 24 and data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR":
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    if len(data) >= 26 and data[:2] == b"BM":  # BMP: DIB header after the 14-byte file header
        width, height = struct.unpack("<ii", data[18:26])
        return abs(int(width)), abs(int(height))
    return None


def black_out(image: bytes, findings: Sequence[Finding], margin: int = 3) -> bytes:
    """`image` as a PNG with every finding's box filled black (an image's redaction).
    Raises `OSError`/`ValueError` for an image Pillow cannot decode."""
    import io

    from PIL import Image, ImageDraw

    with Image.open(io.BytesIO(image)) as src:
        canvas = src.convert("RGB")
    draw = ImageDraw.Draw(canvas)
    for f in findings:
        if f.box is not None:
            x, y, w, h = f.box
            draw.rectangle((x - margin, y - margin, x + w + margin, y + h + margin),
                           fill=(0, 0, 0))
    out = io.BytesIO()
    canvas.save(out, format="PNG")
    return out.getvalue()


def _is_empty(content: ClipboardContent) -> bool:
    if content.text is not None:
        return not content.text
    return content.image is None and not content.paths and not content.formats


class ClipboardWatcher:
    """Guards the clipboard for one desktop session.

    `on_change` is called on the desktop's thread and returns at once. Everything else runs on
    the watcher's worker thread or on auto-clear timers; the port is called from those threads.
    Every event goes through `Pipeline.handle`; the pipeline decides what content it can scan.
    `image_scanner` is accepted for the composition root's sake and not used (the pipeline's
    scanner reads images when it can).
    """

    name = "clipboard"

    def __init__(self, pipeline: Pipeline, port: ClipboardPort, *,
                 platform: Platform | None = None, image_scanner: ImageScanner | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._pipeline = pipeline
        self._port = port
        self._platform = platform
        self._clock = clock
        self._cond = threading.Condition()
        self._pending: ClipboardContent | None = None
        self._busy = False
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._own: list[tuple[str | None, float]] = []  # (expected text or None for clear, until)
        self._own_images: list[tuple[str, float]] = []  # (fingerprint of a blacked-out copy, until)
        self._timers: list[threading.Timer] = []
        self._counts = {"changes": 0, "coalesced": 0, "scanned": 0, "own_ignored": 0,
                        "skipped": 0, "auto_cleared": 0, "auto_clear_kept": 0,
                        "errors": 0}
        self.last_error: str | None = None
        self.on_handled: Callable[[Handled], None] | None = None

    # -- lifecycle
    def start(self) -> None:
        with self._cond:
            if self._thread is not None:
                return
            self._stopping = False
            self._thread = threading.Thread(target=self._run, name="clipboard-watcher",
                                            daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            timers, self._timers = self._timers, []
        for t in timers:
            t.cancel()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    @property
    def state(self) -> str:
        if self._thread is None or not self._thread.is_alive():
            return "unavailable: clipboard watcher not running"
        return "running"

    def stats(self) -> ClipboardStats:
        with self._cond:
            return ClipboardStats(**self._counts)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until nothing is pending or being scanned (tests, benchmark, shutdown)."""
        end = time.monotonic() + timeout
        with self._cond:
            while self._pending is not None or self._busy:
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    # -- the desktop's thread
    def on_change(self, content: ClipboardContent) -> None:
        """Park the new content for the worker (newest wins) and return at once."""
        with self._cond:
            self._counts["changes"] += 1
            if self._pending is not None:
                self._counts["coalesced"] += 1
            self._pending = content
            self._cond.notify_all()

    # -- own changes
    def _expect_own(self, text: str | None) -> None:
        with self._cond:
            now = self._clock()
            self._own = [(t, until) for t, until in self._own if until > now]
            self._own.append((text, now + OWN_CHANGE_WINDOW_S))

    def _expect_own_image(self, png: bytes) -> None:
        with self._cond:
            self._own_images.append((ClipboardContent(image=png).fingerprint(),
                                     self._clock() + OWN_CHANGE_WINDOW_S))

    def _is_own(self, content: ClipboardContent) -> bool:
        with self._cond:
            if content.image is not None and content.text is None:
                now = self._clock()
                self._own_images = [(f, t) for f, t in self._own_images if t > now]
                mark = ClipboardContent(image=content.image).fingerprint()
                if any(f == mark for f, _ in self._own_images):
                    return True
            now = self._clock()
            self._own = [(t, until) for t, until in self._own if until > now]
            for i, (text, _until) in enumerate(self._own):
                if text is not None and content.text == text and content.image is None:
                    del self._own[i]
                    return True
            return False

    def set_text(self, text: str, replaces: str | None = None) -> bool:
        """Put `text` on the clipboard as the guard (its change notification is ignored); with
        `replaces` only if the clipboard still holds the content of that fingerprint."""
        self._expect_own(text)
        self._port.set_text(text, replaces=replaces)
        return True

    def clear(self) -> bool:
        """Empty the clipboard as the guard (empty contents are never scanned anyway)."""
        self._expect_own(None)
        self._port.clear()
        return True

    # -- worker
    def _run(self) -> None:
        while True:
            with self._cond:
                while self._pending is None and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return
                content, self._pending = self._pending, None
                self._busy = True
            assert content is not None  # the wait above ends only with content or stopping
            try:
                self._process(content)
            except Exception as exc:  # one bad content must not end clipboard protection
                # Only the error class: a message might quote the content.
                log.error("clipboard content not processed: %s", exc.__class__.__name__)
                with self._cond:
                    self._counts["errors"] += 1
                    self.last_error = exc.__class__.__name__
                try:
                    self._pipeline.handle(Observation(
                        Channel.CLIPBOARD, ClipboardKind.ERROR,
                        meta={"error": exc.__class__.__name__}), outcome=Outcome.FAILED)
                except Exception as again:  # keep the worker alive whatever happens
                    log.error("clipboard error not recorded: %s", again.__class__.__name__)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _process(self, content: ClipboardContent) -> None:
        if _is_empty(content):
            return
        if self._is_own(content):
            with self._cond:
                self._counts["own_ignored"] += 1
            return
        source = content.source_app
        if source is None and self._platform is not None:
            source = self._platform.clipboard_owner_app()
        policy = self._pipeline.policy().clipboard
        if content.text:
            self._process_text(content, source, int(policy.max_text_mb * 1024 * 1024))
        elif content.image is not None:
            self._process_image(content, source, policy.max_image_pixels,
                                int(policy.max_image_mb * 1024 * 1024))
        elif content.paths:
            self._process_files(content, source, int(policy.max_text_mb * 1024 * 1024))
        else:
            formats = ", ".join(content.formats[:8])[:200]
            self._skip(source, f"binary formats not scanned: {formats}", content,
                       kind=ClipboardKind.NOT_SCANNED)

    def _process_text(self, content: ClipboardContent, source: str | None, limit: int) -> None:
        text = content.text or ""
        meta: dict[str, object] = {"chars": len(text)}
        scanned = text
        if len(text) > limit:
            scanned = text[:limit]
            meta["scanned_chars"] = limit
            meta["skipped_chars"] = len(text) - limit
            meta["skipped"] = f"text beyond the first {limit // (1024 * 1024)} MB"
            with self._cond:
                self._counts["skipped"] += 1
        obs = Observation(Channel.CLIPBOARD, ClipboardKind.COPY, text=scanned, source_app=source,
                          meta=meta)

        def redact(findings: tuple[Finding, ...]) -> bool:
            return self.set_text(mask_text(text, findings), replaces=content.fingerprint())

        def allow() -> bool:  # a supervisor approved the blocked copy: the text comes back
            return self.set_text(text)

        self._handle(obs, content, redact=redact, allow=allow)

    def _process_files(self, content: ClipboardContent, source: str | None,
                       max_bytes: int) -> None:
        """Copied files: the pipeline scans each within bounds (text, xlsx, docx, pdf) and says
        in the event how many it could not."""
        obs = Observation(Channel.CLIPBOARD, ClipboardKind.COPY_FILES, paths=content.paths,
                          source_app=source)
        self._handle(obs, content, limits=ScanLimits(max_file_bytes=max_bytes,
                                                     max_files=MAX_FILES))

    def _process_image(self, content: ClipboardContent, source: str | None, max_pixels: int,
                       max_bytes: int) -> None:
        image = content.image or b""
        size = png_size(image)
        if len(image) > max_bytes:
            mb = 1024 * 1024
            self._skip(source, f"image of {len(image) // mb} MB exceeds {max_bytes // mb} MB",
                       content, kind=ClipboardKind.SKIPPED)
            return
        if size is not None and size[0] * size[1] > max_pixels:
            self._skip(source, f"image of {size[0]}x{size[1]} pixels exceeds {max_pixels} pixels",
                       content, kind=ClipboardKind.SKIPPED)
            return
        meta: dict[str, object] = {"bytes": len(image)}
        if size is not None:
            meta["width"], meta["height"] = size
        obs = Observation(Channel.CLIPBOARD, ClipboardKind.COPY_IMAGE, image=image,
                          source_app=source, meta=meta)

        def redact(findings: tuple[Finding, ...]) -> bool:
            # A copy with the findings blacked out; none with a box: clearing is the fallback.
            set_image = getattr(self._port, "set_image", None)
            if set_image is None or not any(f.box is not None for f in findings):
                return False
            # The scanner draws it where it read the image (the OCR worker) when it can, so that
            # this process never imports Pillow nor holds the decoded pixels.
            draw = getattr(self._pipeline.scanner, "black_out", None) or black_out
            try:
                png = draw(image, findings)
            except (OSError, ValueError, ImageError, OcrError) as exc:
                # undecodable, or the worker could not: clearing is the fallback
                log.warning("image not blacked out: %s", exc.__class__.__name__)
                return False
            self._expect_own_image(png)
            set_image(png, replaces=content.fingerprint())
            return True

        self._handle(obs, content, redact=redact)

    def _skip(self, source: str | None, reason: str, content: ClipboardContent, *,
              kind: ClipboardKind) -> None:
        """Content left unscanned by the watcher: SKIPPED (over the policy's bounds; the
        teller is told it was not checked) or NOT_SCANNED (nothing the guard can read)."""
        with self._cond:
            self._counts["skipped"] += 1
        log.info("clipboard content skipped: %s", reason)
        obs = Observation(Channel.CLIPBOARD, kind, source_app=source, meta={
            "skipped": reason, "bytes": content.size,
            "formats": ", ".join(content.formats[:8])[:200]})
        self._pipeline.handle(obs, outcome=Outcome.SKIPPED)

    def _handle(self, obs: Observation, content: ClipboardContent, *,
                redact: Callable[[tuple[Finding, ...]], bool] | None = None,
                allow: Callable[[], bool] | None = None,
                limits: ScanLimits | None = None) -> None:
        enforcement = Enforcement(redact=redact, block=self.clear, allow=allow)
        handled = self._pipeline.handle(obs, enforcement, limits=limits)
        with self._cond:
            self._counts["scanned" if handled.scanned else "skipped"] += 1
        delay = handled.decision.auto_clear_s
        if delay and handled.findings and handled.outcome in (
                Outcome.NOTIFIED, Outcome.RECORDED, Outcome.ACKNOWLEDGED, Outcome.JUSTIFIED):
            self._schedule_clear(content.fingerprint(), delay, obs.source_app)
        if self.on_handled is not None:
            self.on_handled(handled)

    # -- auto-clear
    def _schedule_clear(self, fingerprint: str, delay: float, source: str | None) -> None:
        timer = threading.Timer(delay, self._auto_clear, args=(fingerprint, delay, source))
        timer.daemon = True
        with self._cond:
            if self._stopping:
                return
            self._timers = [t for t in self._timers if t.is_alive()]
            self._timers.append(timer)
        timer.start()

    def _auto_clear(self, fingerprint: str, delay: float, source: str | None) -> None:
        """Clear only if the clipboard still holds exactly what was scanned."""
        try:
            current = self._port.current()
        except Exception as exc:  # the desktop could not read the clipboard: leave it alone
            log.warning("auto-clear skipped, clipboard unreadable: %s", exc.__class__.__name__)
            return
        if current is None or current.fingerprint() != fingerprint:
            with self._cond:
                self._counts["auto_clear_kept"] += 1
            return
        self.clear()
        with self._cond:
            self._counts["auto_cleared"] += 1
        self._pipeline.handle(Observation(Channel.CLIPBOARD, ClipboardKind.CLEARED,
                                          source_app=source, meta={"after_s": delay}),
                              outcome=Outcome.CLEARED)
