"""Small in-memory stand-ins for the desktop (clipboard, lock overlay) and a table scanner.

The scanner is deliberately simple and deterministic so pipeline and watcher tests test the
pipeline and the watchers, not the detectors (those have their own tests).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import threading
from collections.abc import Callable

from guard.model import Finding
from guard.ports import ClipboardContent

KEY = b"test-key"

# (type, pattern, score, masker)
_TABLE = (
    ("CN_RESIDENT_ID", re.compile(r"(?<!\d)\d{17}[\dX](?!\d)"), 0.95,
     lambda v: v[:3] + "*" * (len(v) - 7) + v[-4:]),
    ("BANK_CARD", re.compile(r"(?<!\d)62\d{14,17}(?!\d)"), 0.9,
     lambda v: v[:6] + "*" * (len(v) - 10) + v[-4:]),
    ("CN_MOBILE", re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)"), 0.55,
     lambda v: v[:3] + "****" + v[-4:]),
)


class TableScanner:
    """Finds resident IDs (18 chars), 62-cards and mobiles by pattern alone."""

    def __init__(self) -> None:
        self.calls = 0
        self.scanned_chars = 0
        self._lock = threading.Lock()

    def scan_text(self, text: str) -> list[Finding]:
        with self._lock:
            self.calls += 1
            self.scanned_chars += len(text)
        out = []
        for type_, pattern, score, mask in _TABLE:
            for m in pattern.finditer(text):
                value = m.group(0)
                out.append(Finding(
                    type=type_, start=m.start(), end=m.end(), score=score, masked=mask(value),
                    hash=hmac.new(KEY, value.encode(), hashlib.sha256).hexdigest()[:32]))
        return sorted(out, key=lambda f: f.start)


class ImageTableScanner(TableScanner):
    """A TableScanner that also reads images: `read(image)` stands in for OCR."""

    def __init__(self, read: Callable[[bytes], list[Finding]]) -> None:
        super().__init__()
        self.read = read
        self.images: list[bytes] = []

    def scan_image(self, image: bytes) -> list[Finding]:
        with self._lock:
            self.images.append(image)
        return self.read(image)


class FakeClipboard:
    """A clipboard port that feeds its own changes back like QClipboard does (when wired)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.content: ClipboardContent | None = None
        self.sets: list[str] = []
        self.images: list[bytes] = []
        self.stale_sets = 0
        self.clears = 0
        # echo changes to this, like QClipboard.dataChanged
        self.listener: Callable[[ClipboardContent], None] | None = None

    def copy(self, text: str, source_app: str | None = None) -> ClipboardContent:
        """What another application copying `text` looks like."""
        content = ClipboardContent(text=text, formats=("text/plain",),
                                   size=len(text.encode()), source_app=source_app)
        with self._lock:
            self.content = content
        return content

    def set_text(self, text: str, *, replaces: str | None = None) -> None:
        content = ClipboardContent(text=text, formats=("text/plain",), size=len(text.encode()))
        with self._lock:
            if replaces is not None and (
                    self.content is None or self.content.fingerprint() != replaces):
                self.stale_sets += 1  # the teller copied something newer: leave it
                return
            self.sets.append(text)
            self.content = content
        if self.listener is not None:
            self.listener(content)

    def set_image(self, png: bytes, *, replaces: str | None = None) -> None:
        content = ClipboardContent(image=png, formats=("image/png",), size=len(png))
        with self._lock:
            if replaces is not None and (
                    self.content is None or self.content.fingerprint() != replaces):
                self.stale_sets += 1
                return
            self.images.append(png)
            self.content = content
        if self.listener is not None:
            self.listener(content)

    def clear(self) -> None:
        with self._lock:
            self.clears += 1
            self.content = ClipboardContent()
        if self.listener is not None:
            self.listener(ClipboardContent())
            self.listener(ClipboardContent())  # Qt's clear() fires twice

    def current(self) -> ClipboardContent | None:
        with self._lock:
            return self.content


class FakeLocker:
    """The lock overlay port: records show/hide."""

    def __init__(self) -> None:
        self.shown = 0
        self.hidden = 0

    @property
    def visible(self) -> bool:
        return self.shown > self.hidden

    def show_lock(self) -> None:
        self.shown += 1

    def hide_lock(self) -> None:
        self.hidden += 1
