"""The clipboard through Qt: `QtClipboard` (the core's ClipboardPort) and the feed of every change.

`ClipboardFeed` turns each `QClipboard.dataChanged` into a `ClipboardContent` (text, PNG image
bytes, local file paths, every offered format and the size read) and hands it to the agent. It
reads within bounds: only text, image and URL formats are fetched, other (binary) formats are only
listed, an image is passed as its encoded bytes and never decoded here, and anything over the
size caps is left out (the formats list still shows it was offered, so the core can say what it
skipped). Qt's clipboard lives on the Qt thread; other threads go through the `MainThread` gateway.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from PySide6.QtCore import QBuffer, QIODevice, QMimeData, QObject
from PySide6.QtGui import QClipboard, QGuiApplication, QImage, QImageReader

from guard.ports import ClipboardContent
from ui.mainthread import MainThread, MainThreadTimeout

log = logging.getLogger(__name__)

MAX_IMAGE_BYTES = 64 * 1024 * 1024  # encoded image bytes handed to the core
MAX_CONVERT_PIXELS = 40_000_000  # a non-PNG image is re-encoded to PNG only up to this size
EXACT_SIZE_CHARS = 8 * 1024 * 1024  # above this, a text's byte size is estimated, not encoded
DUPLICATE_WINDOW_S = 0.3  # the same content reported again this soon is the same copy
_PNG = "image/png"


def _text_size(text: str) -> int:
    if len(text) <= EXACT_SIZE_CHARS:
        return len(text.encode("utf-8", "surrogatepass"))
    return len(text)  # lower bound: one byte per character


def _image_bytes(mime: QMimeData, formats: tuple[str, ...]) -> bytes | None:
    """The offered image as PNG bytes, without decoding a PNG; None when absent or over the caps."""
    if _PNG in formats:
        data = mime.data(_PNG)
        if data.size() > MAX_IMAGE_BYTES:
            log.info("clipboard image skipped: %d bytes over the %d cap", data.size(),
                     MAX_IMAGE_BYTES)
            return None
        return bytes(data.data()) if data.size() else None
    other = next((f for f in formats if f.startswith("image/")), None)
    if other is None:
        return None
    raw = mime.data(other)
    if raw.size() == 0 or raw.size() > MAX_IMAGE_BYTES:
        return None
    buf = QBuffer()
    buf.setData(raw)
    buf.open(QIODevice.OpenModeFlag.ReadOnly)
    reader = QImageReader(buf)
    size = reader.size()  # read from the header, without decoding the pixels
    if not size.isValid() or size.width() * size.height() > MAX_CONVERT_PIXELS:
        log.info("clipboard image skipped: %s is not a readable image within %d pixels",
                 other, MAX_CONVERT_PIXELS)
        return None
    image = reader.read()
    if image.isNull():
        return None
    obuf = QBuffer()
    obuf.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(obuf, "PNG")  # type: ignore[call-overload]  # the stubs say bytes; Qt wants str
    return bytes(obuf.data().data())


def read_content(mime: QMimeData | None, source_app: str | None = None) -> ClipboardContent:
    """What `mime` holds, read within the caps (Qt thread)."""
    if mime is None:
        return ClipboardContent(source_app=source_app)
    formats = tuple(mime.formats())
    text = mime.text() if mime.hasText() else None
    image = _image_bytes(mime, formats) if any(f.startswith("image/") for f in formats) else None
    paths: tuple[str, ...] = ()
    if mime.hasUrls():
        paths = tuple(u.toLocalFile() for u in mime.urls() if u.isLocalFile())
    size = (_text_size(text) if text else 0) + (len(image) if image else 0)
    size += sum(len(p.encode("utf-8", "surrogatepass")) for p in paths)
    return ClipboardContent(text=text or None, image=image, paths=paths, formats=formats,
                            size=size, source_app=source_app)


def _quick_key(content: ClipboardContent) -> tuple[object, ...]:
    """A cheap identity of a content (no full hash of a 200 MB text on the Qt thread)."""
    text = content.text or ""
    image = content.image or b""
    return (content.formats, content.size, len(text), text[:4096], text[-4096:], len(image),
            image[:4096], image[-4096:], content.paths)


class QtClipboard:
    """`guard.ports.ClipboardPort` over QClipboard; any thread may call it."""

    def __init__(self, main: MainThread, clipboard: QClipboard | None = None) -> None:
        self._main = main
        self._clipboard = clipboard or QGuiApplication.clipboard()
        self.stale_skipped = 0  # redactions not applied because a newer copy had arrived

    def set_text(self, text: str, *, replaces: str | None = None) -> None:
        """Replace the clipboard content by `text` (any thread; returns at once).

        With `replaces`, only while the clipboard still holds the content of that fingerprint:
        the check and the replacement happen together on the Qt thread."""
        def apply() -> None:
            if replaces is not None:
                now = read_content(self._clipboard.mimeData())
                if now.fingerprint() != replaces:
                    self.stale_skipped += 1
                    log.info("redaction not applied: the clipboard changed meanwhile")
                    return
            self._clipboard.setText(text)

        self._main.run_on_main(apply)

    def set_image(self, png: bytes, *, replaces: str | None = None) -> None:
        """Replace the clipboard content by a PNG image (any thread; returns at once), with
        `replaces` only while the clipboard still holds that content."""
        def apply() -> None:
            if replaces is not None:
                now = read_content(self._clipboard.mimeData())
                if now.fingerprint() != replaces:
                    self.stale_skipped += 1
                    log.info("image redaction not applied: the clipboard changed meanwhile")
                    return
            image = QImage.fromData(png)
            if image.isNull():
                log.warning("redacted image not decodable; clipboard cleared instead")
                self._clipboard.clear()
                return
            self._clipboard.setImage(image)

        self._main.run_on_main(apply)

    def clear(self) -> None:
        """Empty the clipboard (any thread; returns at once)."""
        self._main.run_on_main(self._clipboard.clear)

    def current(self) -> ClipboardContent | None:
        """What the clipboard holds now; None when the Qt thread does not answer in 100 ms."""
        try:
            return self._main.call_on_main(lambda: read_content(self._clipboard.mimeData()),
                                           timeout=0.1)
        except MainThreadTimeout:
            return None


class ClipboardFeed(QObject):
    """Calls `deliver(content)` on the Qt thread for every clipboard change."""

    def __init__(self, deliver: Callable[[ClipboardContent], None],
                 clipboard: QClipboard | None = None,
                 owner_app: Callable[[], str | None] | None = None) -> None:
        super().__init__()
        self._deliver = deliver
        self._clipboard = clipboard or QGuiApplication.clipboard()
        # The session's `ClipboardOwner.clipboard_owner_app` (ui/app.py hands it in), or None.
        self._owner_app = owner_app
        self.changes = 0
        self.duplicates = 0
        self._last_key: tuple[object, ...] | None = None
        self._last_at = 0.0
        self._clipboard.dataChanged.connect(self._changed)

    def _source_app(self) -> str | None:
        if self._owner_app is None:
            return None
        try:
            return self._owner_app()
        except Exception as exc:  # the owner may vanish between the change and the query
            log.debug("clipboard owner lookup failed: %s", exc)
            return None

    def _changed(self) -> None:
        self.changes += 1
        started = time.monotonic()
        content = read_content(self._clipboard.mimeData(), self._source_app())
        log.debug("clipboard change %d read in %.1f ms: %d bytes, formats %s", self.changes,
                  (time.monotonic() - started) * 1000, content.size, ", ".join(content.formats))
        # Qt on X11 can report one copy twice (our ownership lost, then the new owner's notice):
        # the same content again within a moment is one copy, not two.
        key = _quick_key(content)
        if key == self._last_key and started - self._last_at < DUPLICATE_WINDOW_S:
            self.duplicates += 1
            return
        self._last_key, self._last_at = key, started
        try:
            self._deliver(content)
        except Exception:
            log.exception("the agent failed to take a clipboard change")
