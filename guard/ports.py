"""The ports between the core agent and the desktop it runs on (implemented by `ui/` with Qt).

The core calls these from worker threads; implementations marshal to their UI thread and return
quickly. Tests implement them with plain Python objects.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class ClipboardContent:
    """What the clipboard holds after a change, as the desktop reported it.

    `formats` lists every MIME type offered (so binary formats can be reported even when skipped);
    `size` is the total size in bytes of what was offered.
    """

    text: str | None = None
    image: bytes | None = None  # encoded PNG
    paths: tuple[str, ...] = ()
    formats: tuple[str, ...] = ()
    size: int = 0
    source_app: str | None = None

    def fingerprint(self) -> str:
        """A digest of the content, used to tell the guard's own changes and still-same content."""
        h = hashlib.blake2b(digest_size=16)
        if self.text is not None:
            h.update(b"t")
            h.update(self.text.encode("utf-8", "surrogatepass"))
        if self.image is not None:
            h.update(b"i")
            h.update(self.image)
        for p in self.paths:
            h.update(b"p")
            h.update(p.encode("utf-8", "surrogatepass"))
        return h.hexdigest()


class ClipboardPort(Protocol):
    def set_text(self, text: str, *, replaces: str | None = None) -> None:
        """Replace the clipboard content by `text` (redaction). Any thread; returns at once.

        With `replaces` (the `fingerprint()` of the content being redacted) the replacement is
        made only if the clipboard still holds that content when the desktop applies it, so a
        redaction never overwrites a newer copy the teller made meanwhile."""

    def clear(self) -> None:
        """Empty the clipboard. Any thread; returns at once."""

    def set_image(self, png: bytes, *, replaces: str | None = None) -> None:
        """Replace the clipboard content by the PNG image `png` (a capture with its findings
        blacked out). Any thread; returns at once; `replaces` as for `set_text`."""

    def current(self) -> ClipboardContent | None:
        """What the clipboard holds now (None if it cannot be read). Blocks ≤ 100 ms."""


class LockPort(Protocol):
    def show_lock(self) -> None:
        """Cover every screen with the guard's lock overlay (fallback when the OS lock failed)."""

    def hide_lock(self) -> None:
        """Remove the overlay after a successful unlock."""


class WatermarkPort(Protocol):
    def show_watermark(self, text: str, opacity: float) -> None:
        """Show (or update) the faint, click-through watermark `text` on every screen. Any
        thread; returns at once. It never takes input or focus."""

    def hide_watermark(self) -> None:
        """Remove the watermark. Any thread; returns at once."""
