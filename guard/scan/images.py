"""Finding customer data in images: decode safely, OCR in the worker, scan the text, map to pixels.

    with OcrWorker() as ocr:
        result = scan_image_file("capture.png", scanner, ocr=ocr)   # never raises for bad input
        result.findings      # Finding with box=(x, y, w, h) in image pixels, masked value, hash
        result.document      # "ID_CARD" when the image is a resident ID card (front or back)
        result.as_dicts()    # the JSON form: type, masked, bbox, confidence, category, hash

Steps:

1. `probe` reads the header only (Pillow opens lazily) and refuses, before any pixel is decoded,
   a file that is empty, not PNG/JPEG/BMP/TIFF/WebP, larger than `MAX_PIXELS` or `MAX_SIDE`;
   `decode` then decodes it (in the OCR worker for files, so the guard's memory stays flat) and
   turns a truncated or corrupt file into `ImageError`;
2. the worker recognises the lines that can hold an identifier (`guard.scan.ocr`);
3. the lines are put together into screen rows (same height band, left to right), each row
   scanned with the same text detectors as any text (`Scanner.scan_text`), cells joined by a tab so
   the field label beside a value counts as its context but two cells never run into one number;
4. each finding's character span is mapped back to a box: the part of the line box its characters
   cover (Chinese characters counted twice as wide as digits).

PDF pages without a text layer are rendered with pypdfium2 and read the same way.
Messages name the problem, never what the image shows.
"""

from __future__ import annotations

import io
import os
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Final

from guard.model import Finding
from guard.scan.documents import is_image as is_image  # re-exported (it lives there: no OCR import)
from guard.scan.ocr import Box, Mode, OcrError, ReadResult, TextLine

if TYPE_CHECKING:
    import numpy as np

    from guard.scan.engine import Scanner
    from guard.scan.ocr_worker import OcrWorker

FORMATS: Final = frozenset({"PNG", "JPEG", "BMP", "TIFF", "WEBP"})
MAX_PIXELS: Final = 40_000_000
MAX_SIDE: Final = 16_384
MAX_FILE_BYTES: Final = 64 * 1024 * 1024
PDF_DPI: Final = 150
PDF_MAX_PAGES: Final = 50
ID_CARD: Final = "ID_CARD"

_FRONT_LABELS: Final = ("姓名", "性别", "民族", "出生", "住址")
_BACK_LABELS: Final = ("签发机关", "有效期限")


class ImageError(Exception):
    """An image that cannot be read: empty, not an image, too large, truncated or corrupt."""


@dataclass(frozen=True, slots=True)
class Pixels:
    """A screen grab as raw bytes (BGRA, BGR or gray uint8, rows top to bottom, no padding): what
    the agent hands the OCR worker without importing numpy itself."""

    data: bytes
    width: int
    height: int
    channels: int = 4

    def __post_init__(self) -> None:
        if self.channels not in (1, 3, 4) or self.width <= 0 or self.height <= 0:
            raise ImageError(f"a {self.width}x{self.height} grab of {self.channels} channels "
                             "cannot be read (1, 3 or 4 channels of 8 bits)")
        if len(self.data) != self.width * self.height * self.channels:
            raise ImageError(f"a {self.width}x{self.height}x{self.channels} grab needs "
                             f"{self.width * self.height * self.channels} bytes, not "
                             f"{len(self.data)}")

    @property
    def shape(self) -> tuple[int, ...]:
        """numpy's shape for these pixels: (height, width) or (height, width, channels)."""
        if self.channels == 1:
            return (self.height, self.width)
        return (self.height, self.width, self.channels)


@dataclass(frozen=True, slots=True)
class ImageInfo:
    """What an image's header says."""

    format: str
    width: int
    height: int


@dataclass(frozen=True, slots=True)
class ImageResult:
    """What scanning one image (or the image pages of a PDF) gave.

    `findings` have `box` set, in pixels of the image (of the page rendered at `PDF_DPI` for a PDF;
    `pages` then gives each finding's page, from 1). Their `start`/`end` are offsets into the
    recognised text (rows joined by newlines). `document` is `ID_CARD` for a resident ID card.
    """

    source: str
    findings: tuple[Finding, ...] = ()
    document: str | None = None
    document_box: Box | None = None
    size: tuple[int, int] | None = None
    error: str | None = None
    pages: tuple[int, ...] = ()
    stats: dict[str, Any] = field(default_factory=dict)

    def as_dicts(self) -> list[dict[str, Any]]:
        """The JSON findings: `type, masked, bbox, confidence, category, hash` (+ document, page).

        An ID card whose number could not be read (covered, blurred) still gives one entry, of
        type `ID_CARD`, with the card's box and no value.
        """
        out = []
        for i, f in enumerate(self.findings):
            d: dict[str, Any] = {
                "type": f.type, "masked": f.masked, "bbox": list(f.box or (0, 0, 0, 0)),
                "confidence": round(f.score, 4), "category": str(f.category), "hash": f.hash,
            }
            if self.document:
                d["document"] = self.document
            if self.pages:
                d["page"] = self.pages[i]
            out.append(d)
        if self.document == ID_CARD and not any(f.type == "CN_RESIDENT_ID" for f in self.findings):
            box = list(self.document_box or (0, 0, 0, 0))
            out.append({"type": ID_CARD, "masked": "", "bbox": box, "confidence": 0.9,
                        "category": "C2", "hash": "", "document": ID_CARD})
        return out


# -- decoding -------------------------------------------------------------------------------------


def _check_file_size(data: bytes) -> None:
    """`ImageError` for an empty file or one over `MAX_FILE_BYTES`, before anything reads it."""
    if not data:
        raise ImageError("empty file (0 bytes), not an image")
    if len(data) > MAX_FILE_BYTES:
        raise ImageError(f"image file larger than {MAX_FILE_BYTES >> 20} MiB, not read")


def probe(data: bytes) -> ImageInfo:
    """Format and size from the header alone; `ImageError` for anything not to be decoded."""
    _check_file_size(data)
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as im:
            fmt, (width, height) = str(im.format or ""), im.size
    except Image.DecompressionBombError as exc:
        # Pillow's own check (its default limit, far above ours) caught it first
        raise ImageError(f"image larger than the limit, a decompression bomb? ({exc})") from exc
    except UnidentifiedImageError as exc:
        raise ImageError("not a PNG, JPEG, BMP, TIFF or WebP image (unknown or damaged header)") \
            from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError(f"damaged image header ({type(exc).__name__})") from exc
    if fmt not in FORMATS:
        raise ImageError(f"{fmt or 'unknown'} images are not read; PNG, JPEG, BMP, TIFF, WebP are")
    if width <= 0 or height <= 0:
        raise ImageError(f"image header gives an empty size {width}x{height}")
    if width > MAX_SIDE or height > MAX_SIDE or width * height > MAX_PIXELS:
        raise ImageError(f"image of {width}x{height} pixels is larger than the limit "
                         f"({MAX_SIDE} px a side, {MAX_PIXELS // 1_000_000} MP), not decoded")
    return ImageInfo(fmt, width, height)


def decode(data: bytes) -> np.ndarray:
    """The image as a BGR uint8 array, after `probe`; `ImageError` if truncated or corrupt."""
    info = probe(data)
    import numpy as np
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            if info.format == "JPEG":
                im.draft("RGB", (info.width, info.height))
            im.load()
            rgb = im.convert("RGB")
    except Image.DecompressionBombError as exc:
        raise ImageError("image larger than the limit once decoded, not read") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError(f"truncated or corrupt {info.format} image, not read "
                         f"({type(exc).__name__})") from exc
    if rgb.size != (info.width, info.height):
        raise ImageError(f"corrupt {info.format} image: decoded size differs from its header")
    return np.ascontiguousarray(np.asarray(rgb)[:, :, ::-1])


def black_out_png(data: bytes, boxes: Iterable[Box], margin: int = 3) -> bytes:
    """`data` (an encoded image, checked by `probe`) as a PNG with every box filled black: an
    image's redaction, drawn in the OCR worker so the agent never decodes the image."""
    probe(data)
    from PIL import Image, ImageDraw

    try:
        with Image.open(io.BytesIO(data)) as src:
            canvas = src.convert("RGB")
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError(f"truncated or corrupt image, not blacked out "
                         f"({type(exc).__name__})") from exc
    draw = ImageDraw.Draw(canvas)
    for x, y, w, h in boxes:
        draw.rectangle((x - margin, y - margin, x + w + margin, y + h + margin), fill=(0, 0, 0))
    out = io.BytesIO()
    canvas.save(out, format="PNG")
    return out.getvalue()


def release_memory() -> None:
    """Hand freed heap back to the system (glibc's `malloc_trim`): an image's bytes (a 1080p
    grab is 8 MB, the pipe's pickled copy as much) are freed once it was read, but glibc keeps
    freed arena pages mapped and counted in the agent's RSS until told otherwise. Called after
    the last reference to the image went; elsewhere than glibc a no-op."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # not glibc (musl has no malloc_trim)
        return
    trim(0)


MMAP_THRESHOLD: Final = 1024 * 1024
_M_MMAP_THRESHOLD: Final = -3  # glibc's mallopt parameter (malloc.h)


def map_large_buffers() -> None:
    """Have glibc give every allocation of `MMAP_THRESHOLD` or more its own mapping, returned
    to the system when freed. By default glibc raises that threshold to the largest block freed
    (up to 32 MB), so after the first grab a screen's 8 MB copies come from the heap, and freed
    heap stays resident: measured in an agent, 8 MB kept after the first capture and 25 MB more
    at its peak. Called once by the process that passes images on (the agent); a no-op
    elsewhere than glibc."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)


AGENT_ARENAS: Final = 2
_M_ARENA_MAX: Final = -8  # glibc's mallopt parameter (malloc.h)


def cap_malloc_arenas(count: int = AGENT_ARENAS) -> bool:
    """Have glibc keep at most `count` malloc arenas; True when it took the setting. By default
    glibc gives each thread that allocates its own arena (up to 8 per core), each keeping its
    pages: the agent runs 15 threads, and the capture and shipping threads pass large buffers.
    Measured with tests/bench/bench_agent_capture.py: about 1 MB less after a capture (the
    agent is not malloc-bound on many threads at once, so sharing two arenas costs nothing
    noticeable). Called by the agent's main before any thread starts (arenas already made stay);
    a no-op (False) elsewhere than glibc."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_ARENA_MAX, count))


# -- from recognised lines to findings ------------------------------------------------------------


def rows(lines: Iterable[TextLine]) -> list[list[TextLine]]:
    """Lines grouped into screen rows (vertical centres in one band), each left to right."""
    out: list[list[TextLine]] = []
    bands: list[tuple[float, float]] = []  # (top, bottom) of each row so far
    for line in sorted(lines, key=lambda ln: (ln.box[1] + ln.box[3] / 2, ln.box[0])):
        _x, y, _w, h = line.box
        centre = y + h / 2
        for k in range(len(out) - 1, max(-1, len(out) - 4), -1):
            top, bottom = bands[k]
            if top <= centre <= bottom:
                out[k].append(line)
                bands[k] = (min(top, y + h * 0.2), max(bottom, y + h * 0.8))
                break
        else:
            out.append([line])
            bands.append((y + h * 0.2, y + h * 0.8))
    for row in out:
        row.sort(key=lambda ln: ln.box[0])
    return out


def rows_text(lines: Iterable[TextLine]) -> str:
    """Recognised lines as text: screen rows (`rows`) by newlines, the cells of a row by tabs,
    so a field label is the context of its value."""
    return "\n".join("\t".join(line.text for line in row) for row in rows(lines))


def _width(ch: str) -> float:
    if ch == " ":
        return 0.5
    return 2.0 if ord(ch) > 0x2E80 else 1.0


def _span_box(line: TextLine, a: int, b: int) -> Box:
    """The part of `line`'s box that characters [a, b) of its text cover."""
    weights = [_width(c) for c in line.text]
    total = sum(weights) or 1.0
    x, y, w, h = line.box
    left = x + w * sum(weights[:a]) / total
    right = x + w * sum(weights[:b]) / total
    return (int(left), y, max(1, round(right - left)), h)


def _union(boxes: Sequence[Box]) -> Box:
    x0 = min(b[0] for b in boxes)
    y0 = min(b[1] for b in boxes)
    x1 = max(b[0] + b[2] for b in boxes)
    y1 = max(b[1] + b[3] for b in boxes)
    return (x0, y0, x1 - x0, y1 - y0)


def findings_from_lines(lines: Sequence[TextLine], scanner: Scanner) -> tuple[list[Finding], str]:
    """Scan the recognised lines row by row; findings carry boxes. Also returns the whole text."""
    found: list[Finding] = []
    texts: list[str] = []
    base = 0
    placed: list[tuple[int, TextLine]] = []  # each line and where its text is in the whole
    for row in rows(lines):
        parts: list[tuple[int, TextLine]] = []
        pieces: list[str] = []
        at = 0
        for line in row:
            parts.append((at, line))
            pieces.append(line.text)
            at += len(line.text) + 1
        row_text = "\t".join(pieces)
        placed.extend((base + at_, line) for at_, line in parts)
        for f in scanner.scan_text(row_text):
            covered = [
                _span_box(line, max(f.start, s) - s, min(f.end, s + len(line.text)) - s)
                for s, line in parts
                if s < f.end and f.start < s + len(line.text)
            ]
            if not covered:
                continue
            rec = min(line.score for s, line in parts if s < f.end and f.start < s + len(line.text))
            found.append(_placed(f, f.start + base, f.end + base, rec, covered))
        texts.append(row_text)
        base += len(row_text) + 1
    found += _wrapped(placed, scanner)
    return _one_per_place(found), "\n".join(texts)


_PLAIN_NUMBER: Final = re.compile(r"[\d\s\-+()./,:￥¥]*")


def _placed(f: Finding, start: int, end: int, rec: float, boxes: Sequence[Box]) -> Finding:
    """Finding `f` of a line's text, placed in the image's: where its text is in the whole
    (`start`, `end`), its score weighted by the recognition score `rec` of the lines it came from,
    and the box of the line parts it covers."""
    return replace(f, start=start, end=end, score=f.score * min(1.0, max(0.0, rec)),
                   box=_union(boxes))


def _wrapped(placed: Sequence[tuple[int, TextLine]], scanner: Scanner) -> list[Finding]:
    """Numbers a line wrap cut in two (a chat bubble: "电话150-1717-296" / "5 密码锁了"): a line
    ending in a digit, joined to the line under it that starts with a digit, the line the reader
    read on into (`guard.scan.ocr.line_below`); only what spans the join is new."""
    from guard.scan.ocr import line_below

    out: list[Finding] = []
    starts = [(b, line) for b, line in placed if line.text[:1].isdigit()]
    start_boxes = [line.box for _b, line in starts]
    for at, last in placed:
        # prose that ends in a number, not a table's number cell above the next row's
        if not last.text[-1:].isdigit() or _PLAIN_NUMBER.fullmatch(last.text):
            continue
        j = line_below(last.box, start_boxes)
        if j is None:
            continue
        b1, first = starts[j]
        cut = len(last.text)
        for f in scanner.scan_text(last.text + first.text):
            if not f.start < cut < f.end:
                continue
            boxes = [_span_box(last, f.start, cut), _span_box(first, 0, f.end - cut)]
            out.append(_placed(f, at + f.start, b1 + f.end - cut,
                               min(last.score, first.score), boxes))
    return out


def _intersect(a: Box, b: Box) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def _one_per_place(found: list[Finding]) -> list[Finding]:
    """One finding per value on the image: the same value (type and hash) found again in a box
    that overlaps its first (two line boxes that share pixels) is one finding, the surer one."""
    kept: list[Finding] = []
    for f in sorted(found, key=lambda f: -f.score):
        if f.box is None or not any(k.type == f.type and k.hash == f.hash and k.box is not None
                                    and _intersect(k.box, f.box) for k in kept):
            kept.append(f)
    return sorted(kept, key=lambda f: f.start)


def document_kind(text: str) -> str | None:
    """`ID_CARD` when recognised text has the layout of a resident ID card, front or back."""
    compact = "".join(text.split())
    if "公民身份号码" in compact or "公民身份号" in compact:
        return ID_CARD
    if sum(label in compact for label in _FRONT_LABELS) >= 4:
        return ID_CARD
    if "居民身份证" in compact and any(label in compact for label in _BACK_LABELS):
        return ID_CARD
    return None


def _document_box(lines: Sequence[TextLine]) -> Box | None:
    return _union([ln.box for ln in lines]) if lines else None


def _result(source: str, read: ReadResult, size: tuple[int, int], scanner: Scanner) -> ImageResult:
    findings, text = findings_from_lines(read.lines, scanner)
    document = document_kind(text)
    return ImageResult(
        source, tuple(findings), document,
        _document_box(read.lines) if document else None, size, None, (), dict(read.stats),
    )


class DocumentPages:
    """A PDF page reader (`guard.scan.documents.PageReader`) that also notes whether a page it
    read is a resident ID card: the PDF's text path and the ID-card check then share one OCR of
    each page (`guard.app.image_scanner`), instead of the page images being read twice.

    `document` and `document_box` are those of the first page that showed one.
    """

    def __init__(self, ocr: OcrWorker) -> None:
        self._ocr = ocr
        self.document: str | None = None
        self.document_box: Box | None = None

    def read(self, image: np.ndarray, mode: Mode = "fast") -> ReadResult:
        read = self._ocr.read(image, mode)
        if self.document is None:
            document = document_kind(rows_text(read.lines))
            if document is not None:
                self.document, self.document_box = document, _document_box(read.lines)
        return read


# -- entry points ---------------------------------------------------------------------------------


def scan_array(image: np.ndarray | Pixels, scanner: Scanner, *, ocr: OcrWorker,
               source: str = "screen", mode: Mode = "fast") -> ImageResult:
    """Findings in pixels already in memory (a screen grab: gray, BGR or BGRA uint8, as an array
    or as `Pixels`).

    Raises `OcrError` (or a subclass) when OCR cannot run; the caller decides the fallback.
    """
    read = ocr.read(image, mode=mode)
    return _result(source, read, (int(image.shape[1]), int(image.shape[0])), scanner)


def scan_image_bytes(data: bytes, scanner: Scanner, *, ocr: OcrWorker, source: str = "-",
                     mode: Mode = "fast") -> ImageResult:
    """Findings in an encoded image; bad input and OCR failures give `error`, never raise."""
    try:
        _check_file_size(data)
        if not is_image(data[:16]):
            probe(data)  # says why it is not an image, without starting the worker for it
        # An image's header is checked (`probe`) and it is decoded in the worker: Pillow and
        # the decoded pixels stay out of this process.
        read, size = ocr.read_encoded(data, mode=mode)
    except (ImageError, OcrError) as exc:
        return ImageResult(source, error=str(exc))
    return _result(source, read, size, scanner)


def scan_image_file(path: str | os.PathLike[str], scanner: Scanner, *, ocr: OcrWorker,
                    mode: Mode = "fast") -> ImageResult:
    """Findings in an image file (PNG, JPEG, BMP, TIFF, WebP) or the image pages of a PDF."""
    source = os.fspath(path)
    try:
        size = os.path.getsize(path)
        if size > MAX_FILE_BYTES:
            return ImageResult(source,
                               error=f"file larger than {MAX_FILE_BYTES >> 20} MiB, not read")
        with open(path, "rb") as fh:
            data = fh.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        return ImageResult(source, error="no such file")
    except IsADirectoryError:
        return ImageResult(source, error="is a directory, not a file")
    except PermissionError:
        return ImageResult(source, error="permission denied")
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        return ImageResult(source, error=f"cannot read the file: {reason}")
    if data.startswith(b"%PDF-"):
        return scan_pdf_images(data, scanner, ocr=ocr, source=source, mode=mode)
    return scan_image_bytes(data, scanner, ocr=ocr, source=source, mode=mode)


def scan_pdf_images(data: bytes, scanner: Scanner, *, ocr: OcrWorker, source: str = "-",
                    mode: Mode = "fast") -> ImageResult:
    """Findings on the pages of a PDF that have no text layer, rendered at `PDF_DPI` and read.

    Pages with text are left to the text path (`guard.scan.documents`); at most `PDF_MAX_PAGES`
    image pages are read.
    """
    try:
        import pypdfium2 as pdfium
    except ImportError:
        return ImageResult(source, error="PDF page images need pypdfium2 (pip install pypdfium2)")
    findings: list[Finding] = []
    pages: list[int] = []
    document: str | None = None
    document_box: Box | None = None
    read_pages = 0
    try:
        pdf = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        return ImageResult(source, error=f"damaged PDF, not read ({type(exc).__name__})")
    try:
        for number in range(len(pdf)):
            page = pdf[number]
            textpage = page.get_textpage()
            has_text = bool(textpage.get_text_range().strip())
            textpage.close()
            if has_text:
                page.close()
                continue
            read_pages += 1
            if read_pages > PDF_MAX_PAGES:
                page.close()
                break
            scale = PDF_DPI / 72
            w, h = page.get_size()
            if w * h * scale * scale > MAX_PIXELS:
                scale = (MAX_PIXELS / (w * h)) ** 0.5
            bitmap = page.render(scale=scale)
            image = bitmap.to_numpy()[:, :, :3].copy()  # BGR(x) from pdfium
            bitmap.close()
            page.close()
            result = scan_array(image, scanner, ocr=ocr, source=source, mode=mode)
            findings.extend(result.findings)
            pages.extend([number + 1] * len(result.findings))
            if result.document and document is None:
                document, document_box = result.document, result.document_box
    except pdfium.PdfiumError as exc:
        return ImageResult(source, error=f"damaged PDF page, not read ({type(exc).__name__})")
    except OcrError as exc:
        return ImageResult(source, error=str(exc))
    finally:
        pdf.close()
    return ImageResult(source, tuple(findings), document, document_box, None, None, tuple(pages),
                       {"image_pages": min(read_pages, PDF_MAX_PAGES)})
