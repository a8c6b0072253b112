"""The session's scanner that also reads images: the detection core plus the on-demand OCR worker.

`ImageCapableScanner` is what the composition roots hand the pipeline and the capture watchers:
text goes to `Scanner`, encoded images (clipboard captures, screenshot files, ID-card photos) and
screen grabs go through `guard.scan.images` in the `OcrWorker`, which starts on the first image
and exits when idle. Files are read as images when their first bytes say so, as documents
otherwise (a PDF's pages without a text layer are rendered and read once, for its findings and
for whether it is a scanned ID card). Nothing here imports Qt, nor any image library: images
are probed, decoded and blacked out in the worker, and glibc is asked to hand the freed buffers
back, so the agent's memory after a capture is what it was before (tests/bench/
bench_agent_capture.py).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from guard.model import Finding
from guard.scan import documents
from guard.scan.engine import FileResult, Scanner, read_error
from guard.scan.images import (
    ID_CARD,
    DocumentPages,
    ImageResult,
    Pixels,
    is_image,
    map_large_buffers,
    release_memory,
    scan_array,
    scan_image_bytes,
    scan_image_file,
)
from guard.scan.ocr import OcrError

if TYPE_CHECKING:
    import numpy as np

    from guard.scan.ocr_worker import OcrWorker

OCR_IDLE_S = 60.0
OCR_IDLE_ENV = "TELLER_GUARD_OCR_IDLE_S"
"""Overrides `OCR_IDLE_S` for this process (benchmarks and tests that wait for the idle exit)."""


def ocr_idle_s() -> float:
    """How long the OCR worker stays up without work: `OCR_IDLE_ENV` if set to a positive
    number of seconds, else `OCR_IDLE_S`."""
    raw = os.environ.get(OCR_IDLE_ENV, "")
    try:
        value = float(raw)
    except ValueError:
        return OCR_IDLE_S
    return value if value > 0 else OCR_IDLE_S


class ImageScanError(Exception):
    """An image could not be read (bad input or OCR failure); the message names why, never what
    the image shows."""


def image_findings(result: ImageResult) -> list[Finding]:
    """The findings of one image, plus one `ID_CARD` finding (the card's box, no value) for a
    resident ID card whose number could not be read (covered, blurred)."""
    findings = list(result.findings)
    if result.document == ID_CARD and not any(f.type == "CN_RESIDENT_ID" for f in findings):
        findings.append(Finding(type=ID_CARD, start=0, end=0, score=0.9, masked="身份证图像",
                                hash="", box=result.document_box))
    return findings


class ImageCapableScanner:
    """A `TextScanner` with `scan_image` and `scan_file` for the pipeline, and `read_*` for the
    watchers that need the whole `ImageResult` (boxes, document kind). Thread-safe: the OCR
    worker queues calls."""

    def __init__(self, scanner: Scanner, *, ocr: OcrWorker | None = None,
                 idle_s: float | None = None) -> None:
        self.scanner = scanner
        self._ocr = ocr
        self._idle_s = ocr_idle_s() if idle_s is None else idle_s
        self._lock = threading.Lock()
        map_large_buffers()  # images pass through here: their buffers must not stay in the heap
        if ocr is not None:
            documents.use_page_reader(ocr)  # one OCR child for images and PDF pages alike

    @property
    def ocr(self) -> OcrWorker:
        with self._lock:
            if self._ocr is None:
                from guard.scan.ocr_worker import OcrWorker

                self._ocr = OcrWorker(idle_s=self._idle_s)
                documents.use_page_reader(self._ocr)
            return self._ocr

    def stop(self) -> None:
        """Stop the OCR worker if it runs (it also exits by itself when idle)."""
        with self._lock:
            ocr = self._ocr
        if ocr is not None:
            ocr.stop()

    # -- the pipeline's protocols
    def scan_text(self, text: str) -> list[Finding]:
        return self.scanner.scan_text(text)

    def scan_image(self, image: bytes) -> list[Finding]:
        """Findings in an encoded image; `ImageScanError` when it cannot be read."""
        try:
            result = self.read_image(image)
        finally:
            release_memory()
        if result.error:
            raise ImageScanError(result.error)
        return image_findings(result)

    def scan_file(self, path: str) -> FileResult:
        """One file: an image (by its first bytes) through OCR, else a document; a PDF whose text
        layer holds nothing is read as page images."""
        try:
            with open(path, "rb") as fh:
                head = fh.read(16)
        except OSError as exc:
            return FileResult(os.fspath(path), [], f"cannot read the file: "
                                                   f"{exc.strerror or type(exc).__name__}")
        if is_image(head):
            result = self.read_image_file(path)
            return FileResult(os.fspath(path), image_findings(result), result.error)
        if head.startswith(b"%PDF-"):
            return self._scan_pdf(path)
        return self.scanner.scan_file(path)

    def _scan_pdf(self, path: str) -> FileResult:
        """A PDF on the text path, its page images read once: the same reading says whether a
        page is a resident ID card (reported when nothing else was found, as for an image)."""
        source = os.fspath(path)
        pages = DocumentPages(self.ocr)
        findings: list[Finding] = []
        try:
            with open(path, "rb") as fh:
                for found in self.scanner.scan_chunk_batches(
                        documents.extract_chunks(fh, documents.PDF, page_reader=pages)):
                    findings.extend(found)
        except (documents.UnreadableFileError, OSError) as exc:
            return FileResult(source, [], read_error(exc))
        if not findings and pages.document is not None:
            return FileResult(source, image_findings(
                ImageResult(source, (), pages.document, pages.document_box)))
        return FileResult(source, findings)

    def scan_pixels(self, pixels: np.ndarray | Pixels) -> list[Finding]:
        """Findings in a screen grab; `ImageScanError` when OCR cannot run."""
        result = self.read_pixels(pixels)  # the caller frees the grab, then trims
        if result.error:
            raise ImageScanError(result.error)
        return image_findings(result)

    # -- the watchers' calls
    def read_image(self, image: bytes, source: str = "clipboard") -> ImageResult:
        return scan_image_bytes(image, self.scanner, ocr=self.ocr, source=source)

    def read_image_file(self, path: str | os.PathLike[str]) -> ImageResult:
        return scan_image_file(path, self.scanner, ocr=self.ocr)

    def black_out(self, image: bytes, findings: Sequence[Finding], margin: int = 3) -> bytes:
        """`image` as a PNG with the findings' boxes filled black, drawn by the OCR worker: the
        agent neither imports Pillow nor holds the decoded image. Raises
        `guard.scan.images.ImageError` for an image that cannot be decoded, `OcrError` when the
        worker cannot answer."""
        boxes = [(int(x), int(y), int(w), int(h)) for x, y, w, h in
                 (f.box for f in findings if f.box is not None)]
        try:
            return self.ocr.black_out(image, boxes, margin)
        finally:
            release_memory()

    def read_pixels(self, pixels: np.ndarray | Pixels, source: str = "screen") -> ImageResult:
        """A screen grab (BGRA/BGR/gray uint8) in memory; OCR failures give `error`."""
        try:
            return scan_array(pixels, self.scanner, ocr=self.ocr, source=source)
        except OcrError as exc:
            return ImageResult(source, error=str(exc))
