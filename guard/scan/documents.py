"""Reading files for the scanner: what a file is (by content, not name), and its text.

- Text files are decoded as UTF-8 (with or without BOM), UTF-16 LE/BE with a BOM, or GB18030
  (which covers GBK and GB2312). They are read in chunks, so memory stays bounded whatever the
  file size; a file that looked like UTF-8 at its start but breaks later is read on from the
  broken piece as GB18030 (what was read stays as read, so nothing is reported twice).
- HTML pages (text that starts with `<!DOCTYPE html`, `<html`, `<body` or `<table`) are scanned
  as their text, streamed: table cells joined by tabs and rows by newlines (so a header row labels
  its columns), block elements on their own lines, scripts and styles left out, character
  references decoded; finding offsets are into that text.
- `.xlsx` and `.docx` (zip files with the right members), `.pdf` (`%PDF-` header) are read with
  openpyxl (read-only), python-docx and pypdf; their extracted text is what gets scanned, so
  finding offsets are into that text: xlsx cells joined by tabs and rows by newlines, one line with
  the sheet name before each sheet; docx paragraphs then table rows (cells joined by tabs); pdf
  pages joined by newlines, a page without a text layer (a scan, the image pages of a mixed PDF)
  rendered and read by OCR (`pdf_pages`: bounded pages, pixels and time). xlsx rows are
  streamed (openpyxl read-only mode) and the workbook's shared-string table is kept in a
  temporary file (openpyxl holds it as a list), so a sheet of a million rows is scanned in
  bounded memory.
- Anything else (images, archives, executables, legacy .xls/.doc) is refused with a clear reason.

Error messages name the problem, never the file's content.
"""

from __future__ import annotations

import codecs
import html.parser
import logging
import re
import threading
import time
import zipfile
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, Final, Protocol

if TYPE_CHECKING:
    import numpy as np

    from guard.scan.ocr import Mode, ReadResult

log = logging.getLogger(__name__)

BinaryFile = IO[bytes]

TEXT: Final = "text"
XLSX: Final = "xlsx"
DOCX: Final = "docx"
PDF: Final = "pdf"

SAMPLE_BYTES = 64 * 1024
READ_BYTES = 1 << 20

_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),  # before UTF-16 LE: it starts with the same two bytes
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_CONTROL = bytes(c for c in range(32) if c not in (9, 10, 12, 13, 27))


class UnreadableFileError(Exception):
    """A file the scanner cannot read; the message is the reason shown to the user."""


def sniff(fh: BinaryFile) -> str:
    """What the file holds: `TEXT`, `XLSX`, `DOCX` or `PDF`; raises `UnreadableFileError` else.

    Leaves the file positioned at its start.
    """
    return identify(fh)[0]


def identify(fh: BinaryFile) -> tuple[str, str | None]:
    """`sniff`'s kind and, for a BOM-less text file, the encoding guessed from its sample."""
    fh.seek(0)
    head = fh.read(SAMPLE_BYTES)
    fh.seek(0)
    if head.startswith(b"%PDF-"):
        return PDF, None
    if head.startswith(b"PK\x03\x04"):
        return _zip_kind(fh), None
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        raise UnreadableFileError(
            "legacy Office file (.xls/.doc), not scanned: save it as .xlsx/.docx"
        )
    if _bom(head) is not None:
        return TEXT, None
    guess = None if b"\x00" in head else _guess_encoding(head)
    if guess is None:
        raise UnreadableFileError("binary file, not scanned")
    return TEXT, guess


def is_image(head: bytes) -> bool:
    """Whether the first bytes of a file are those of an image format `guard.scan.images` reads
    (PNG, JPEG, BMP, TIFF, WebP); here, not there, so that asking costs no import of the OCR."""
    return head.startswith((b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"BM", b"II*\x00", b"MM\x00*")) \
        or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")


def _zip_kind(fh: BinaryFile) -> str:
    try:
        with zipfile.ZipFile(fh) as zf:
            names = set(zf.namelist())
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise UnreadableFileError(f"damaged zip file, not scanned ({type(exc).__name__})") from exc
    finally:
        fh.seek(0)
    if "xl/workbook.xml" in names:
        return XLSX
    if "word/document.xml" in names:
        return DOCX
    raise UnreadableFileError("zip archive (not .xlsx/.docx), not scanned: unpack it first")


def _bom(head: bytes) -> tuple[str, int] | None:
    for bom, encoding in _BOMS:
        if head.startswith(bom):
            return encoding, len(bom)
    return None


def _guess_encoding(sample: bytes) -> str | None:
    """UTF-8 or GB18030 for a BOM-less sample, or None when it is no text at all.

    One pass counts the control characters (`bytes.translate` deleting them, in C), instead of
    one `count` per control character.
    """
    if sample and (len(sample) - len(sample.translate(None, _CONTROL))) * 100 > len(
        sample
    ):
        return None
    if sample.isascii():
        return "utf-8"
    for encoding in ("utf-8", "gb18030"):
        try:
            codecs.getincrementaldecoder(encoding)().decode(sample, final=False)
        except UnicodeDecodeError:
            continue
        return encoding
    return None


class TextReader:
    """Decodes a text file chunk by chunk (BOM removed, line endings untouched)."""

    def __init__(self, fh: BinaryFile, encoding: str | None = None, guessed: bool = False) -> None:
        """`encoding` None: from the BOM or guessed here; `guessed`: the caller guessed it."""
        self._fh = fh
        fh.seek(0)
        head = fh.read(SAMPLE_BYTES)
        fh.seek(0)
        bom = _bom(head)
        self._skip = 0
        self._guessed = False
        if bom is not None:
            self.encoding, self._skip = bom
        elif encoding is not None:
            self.encoding = encoding
            self._guessed = guessed and encoding == "utf-8"
        else:
            guess = _guess_encoding(head)
            if guess is None:
                raise UnreadableFileError("binary file, not scanned")
            self.encoding = guess
            self._guessed = guess == "utf-8"

    def chunks(self, size: int = READ_BYTES) -> Iterator[str]:
        """The decoded text, piece by piece, reading `size` bytes (at most 1 MiB) per piece."""
        self._fh.seek(self._skip)
        decoder = codecs.getincrementaldecoder(self.encoding)()
        read = max(1024, min(READ_BYTES, size))
        while True:
            raw = self._fh.read(read)
            final = not raw
            try:
                text = decoder.decode(raw, final=final)
            except UnicodeDecodeError as exc:
                if self._guessed:
                    # UTF-8 broke late in the file: this piece on is GB18030 (what was read
                    # before was valid UTF-8 and was scanned as such)
                    pending = decoder.getstate()[0]
                    self._guessed = False
                    self.encoding = "gb18030"
                    decoder = codecs.getincrementaldecoder("gb18030")()
                    try:
                        text = decoder.decode(pending + raw, final=final)
                    except UnicodeDecodeError as exc2:
                        raise UnreadableFileError(
                            "cannot decode the file as UTF-8 or GB18030; binary or damaged, "
                            "not scanned") from exc2
                    if text:
                        yield text
                    if final:
                        return
                    continue
                raise UnreadableFileError(
                    f"cannot decode the file as {self.encoding}; binary or damaged, not scanned"
                ) from exc
            if text:
                yield text
            if final:
                return


def extract_text(fh: BinaryFile, kind: str) -> str:
    """The text of an xlsx, docx or pdf file (see the module docstring for its layout)."""
    return "".join(extract_chunks(fh, kind))


def extract_chunks(fh: BinaryFile, kind: str, *, page_reader: PageReader | None = None
                   ) -> Iterator[str]:
    """The text of an xlsx, docx or pdf file in pieces (xlsx streamed row by row).

    A PDF's page images are read by `page_reader` (None: the shared one, `use_page_reader`).
    """
    fh.seek(0)
    if kind not in (XLSX, DOCX, PDF):
        raise UnreadableFileError(f"unsupported document kind {kind!r}, not scanned")
    try:
        if kind == XLSX:
            yield from _batched(_xlsx_lines(fh))
        elif kind == DOCX:
            yield from _batched(_docx_lines(fh))
        else:
            yield from _batched(_pdf_pages(fh, page_reader))
    except UnreadableFileError:
        raise
    except Exception as exc:  # openpyxl, python-docx and pypdf each raise their own error types
        raise UnreadableFileError(
            f"damaged {kind} file, not scanned ({type(exc).__name__})"
        ) from exc


def _batched(lines: Iterable[str], size: int = READ_BYTES) -> Iterator[str]:
    """Lines joined by newlines (none after the last), in pieces of about `size` characters."""
    batch: list[str] = []
    n = 0
    first = True
    for line in lines:
        batch.append(line)
        n += len(line) + 1
        if n >= size:
            yield ("" if first else "\n") + "\n".join(batch)
            first = False
            batch, n = [], 0
    if batch:
        yield ("" if first else "\n") + "\n".join(batch)


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    return str(value)


def _xlsx_lines(fh: BinaryFile) -> Iterator[str]:
    from openpyxl.reader.excel import ExcelReader
    from openpyxl.worksheet._read_only import ReadOnlyWorksheet
    from openpyxl.xml.constants import SHARED_STRINGS

    class Reader(ExcelReader):
        """openpyxl's own reader (what `load_workbook` runs), its shared strings kept on disk and
        its sheets `_Sheet`s."""

        def read_strings(self) -> None:
            part = self.package.find(SHARED_STRINGS)
            if part is not None:
                with self.archive.open(part.PartName[1:]) as src:
                    # openpyxl only indexes it (`shared_strings[int(value)]`)
                    self.shared_strings = _SharedStrings(src)  # type: ignore[assignment]

        def read_worksheets(self) -> None:
            # the read-only branch of openpyxl's `read_worksheets` (the only one a read-only
            # reader takes), with `_Sheet` for its `ReadOnlyWorksheet`; typed Any: openpyxl's
            # stubs leave out the internals it uses
            me: Any = self
            for sheet, rel in me.parser.find_sheets():
                if rel.target not in me.valid_files:
                    continue
                if "chartsheet" in rel.Type:
                    me.read_chartsheet(sheet, rel)
                    continue
                ws = _Sheet(me.wb, sheet.name, rel.target, me.shared_strings)
                ws.sheet_state = sheet.state
                me.wb._sheets.append(ws)

    class _Sheet(ReadOnlyWorksheet):  # type: ignore[misc]
        """A read-only sheet whose size comes from the `<dimension>` at the sheet's head only:
        openpyxl, when a sheet has none (openpyxl's write-only mode writes none), parses the
        whole sheet once more looking for it, holding every row it passes."""

        def _get_size(self) -> None:
            me: Any = self  # `_get_source` is not in openpyxl's stubs
            with me._get_source() as src:
                dimensions = _head_dimensions(src)
            if dimensions is not None:
                self._min_column, self._min_row, self._max_column, self._max_row = dimensions

    reader = Reader(fh, read_only=True, data_only=True)
    try:
        reader.read()
        wb = reader.wb
        try:
            for ws in wb.worksheets:
                yield str(ws.title)
                for row in _sheet_rows(ws):
                    yield "\t".join(_cell_text(v) for v in row).rstrip("\t")
        finally:
            wb.close()
    finally:
        if isinstance(reader.shared_strings, _SharedStrings):
            reader.shared_strings.close()


def _head_dimensions(src: BinaryFile) -> Any:
    """The boundaries of a sheet's `<dimension>` (openpyxl's `parse_dimensions`), read up to
    the start of its `<sheetData>` (where the schema puts it) and no further."""
    from openpyxl.worksheet._reader import DATA_TAG, DIMENSION_TAG
    from openpyxl.worksheet.dimensions import SheetDimension
    from openpyxl.xml.functions import iterparse

    for _, element in iterparse(src, events=("start",)):
        if element.tag == DIMENSION_TAG:
            # a start event has the element's attributes, all a dimension is; its boundaries
            # (min column, min row, max column, max row) may be None, as openpyxl's are
            dimension = SheetDimension.from_tree(element)
            return None if dimension is None else dimension.boundaries
        if element.tag == DATA_TAG:
            return None
    return None


def _sheet_rows(ws: Any) -> Iterator[tuple[object, ...]]:
    """`ws.iter_rows(values_only=True)` of a read-only sheet (openpyxl's `_cells_by_row` with
    its defaults: from A1 to the sheet's dimension), each parsed row let go once it is read.

    openpyxl clears each `<row>` it parses but leaves it in its `<sheetData>`: a sheet of a
    million rows kept a million elements (~100 MB) until its end.
    """
    from openpyxl.worksheet._reader import DATA_TAG, ROW_TAG, WorkSheetParser
    from openpyxl.xml.functions import iterparse

    class RowParser(WorkSheetParser):  # type: ignore[misc]
        def parse(self) -> Generator[Any, None, None]:
            # the rows of openpyxl's `parse` (the rest of a sheet gives no values)
            data = None
            for event, element in iterparse(self.source, events=("start", "end")):
                if event == "start":
                    if element.tag == DATA_TAG:
                        data = element
                elif element.tag == ROW_TAG:
                    row = self.parse_row(element)
                    element.clear()
                    # the rows the parser has read ahead come after it: it is the first
                    if data is not None and len(data) and data[0] is element:
                        del data[0]
                    yield row

    max_col, max_row = ws.max_column, ws.max_row
    empty: tuple[object, ...] = (None,) * max_col if max_col is not None else ()
    counter = idx = 1
    with ws._get_source() as src:
        parser = RowParser(src, ws._shared_strings, data_only=ws.parent.data_only,
                           epoch=ws.parent.epoch, date_formats=ws.parent._date_formats,
                           timedelta_formats=ws.parent._timedelta_formats)
        for idx, row in parser.parse():
            if max_row is not None and idx > max_row:
                break
            for _ in range(counter, idx):  # rows the file leaves out
                counter += 1
                yield empty
            if counter <= idx:
                counter += 1
                yield ws._get_row(row, 1, max_col, True)
    if max_row is not None and max_row < idx:
        for _ in range(counter, max_row + 1):
            yield empty


class _SharedStrings:
    """An xlsx's shared-string table on disk, read back by index as openpyxl asks for each cell.

    openpyxl keeps the table as a list of str, ~76 bytes a string: a customer list of a million
    rows (four unique strings a row) held ~300 MB. Here each string is UTF-8 in a temporary file
    and its offset is a fixed-width record in another, so memory stays that of the read buffers.
    The strings are what openpyxl's `read_string_table` makes of each `<si>`.
    """

    def __init__(self, src: BinaryFile) -> None:
        import tempfile

        from openpyxl.cell.text import Text
        from openpyxl.xml.constants import SHEET_MAIN_NS
        from openpyxl.xml.functions import iterparse

        self._text = tempfile.TemporaryFile(buffering=1 << 16)
        self._offsets = tempfile.TemporaryFile(buffering=1 << 16)
        self._count = 0
        end = 0
        self._offsets.write(end.to_bytes(8, "little"))
        tag = f"{{{SHEET_MAIN_NS}}}si"
        root = None
        for event, node in iterparse(src, events=("start", "end")):
            if event == "start":
                root = node if root is None else root
            elif node.tag == tag:
                text = Text.from_tree(node)
                content = text.content if text is not None else ""
                data = content.replace("x005F_", "").encode("utf-8", "surrogatepass")
                node.clear()
                # let it go (a cleared <si> each, else kept); the parser has read ahead, the
                # strings after it are still to come
                if root is not None and len(root) and root[0] is node:
                    del root[0]
                self._text.write(data)
                end += len(data)
                self._offsets.write(end.to_bytes(8, "little"))
                self._count += 1
        self._text.flush()
        self._offsets.flush()

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, index: int) -> str:
        if not -self._count <= index < self._count:
            raise IndexError("shared string index out of range")
        if index < 0:
            index += self._count
        self._offsets.seek(index * 8)
        record = self._offsets.read(16)
        start, end = int.from_bytes(record[:8], "little"), int.from_bytes(record[8:], "little")
        self._text.seek(start)
        return self._text.read(end - start).decode("utf-8", "surrogatepass")

    def close(self) -> None:
        self._text.close()
        self._offsets.close()


def _docx_lines(fh: BinaryFile) -> Iterator[str]:
    import docx

    document = docx.Document(fh)
    for p in document.paragraphs:
        yield p.text
    for table in document.tables:
        for row in table.rows:
            yield "\t".join(cell.text.replace("\n", " ") for cell in row.cells)


# -- PDF -----------------------------------------------------------------------------------------


class PageReader(Protocol):
    """Reads the text lines in a rendered page image: `guard.scan.ocr_worker.OcrWorker.read`."""

    def read(self, image: np.ndarray, mode: Mode = "fast") -> ReadResult: ...


@dataclass(frozen=True, slots=True)
class PdfLimits:
    """Bounds on reading the pages of a PDF that have no text layer, per file: how many are
    rendered and read (`ocr_pages`), at what resolution (`dpi`, lowered so a page stays within
    `page_pixels`), for how long in all (`seconds`; the OCR worker also bounds each page), and
    from a file of at most `max_bytes` (pdfium is given the whole file in memory)."""

    ocr_pages: int = 20
    dpi: int = 150
    page_pixels: int = 8_000_000
    seconds: float = 120.0
    max_bytes: int = 64 * 1024 * 1024


PDF_LIMITS: Final = PdfLimits()
MIN_PAGE_TEXT: Final = 16
"""A page whose text layer holds fewer characters (not counting spaces) and that shows an image
is read as an image too: a scan with a stamped page number or a fax header."""


@dataclass(frozen=True, slots=True)
class PdfPage:
    """One page of a PDF: its number (from 1), its text (the text layer, then for a page without
    one the OCR'd text: rows by newlines, cells by tabs), whether OCR gave text, and why a page
    without a text layer was not read ("" when it was, or needed no reading)."""

    number: int
    text: str
    ocr: bool = False
    skipped: str = ""


class _SharedReader:
    """The process's OCR worker for PDF pages: the one a composition root handed over
    (`use_page_reader`, e.g. the session's image scanner's worker, so one OCR child serves
    both), else one started on the first page that needs it (it exits by itself when idle)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reader: PageReader | None = None

    def use(self, reader: PageReader | None) -> PageReader | None:
        with self._lock:
            before, self._reader = self._reader, reader
            return before

    def get(self) -> PageReader:
        with self._lock:
            if self._reader is None:
                from guard.scan.ocr_worker import OcrWorker

                self._reader = OcrWorker()
            return self._reader


_PAGE_READER = _SharedReader()


def use_page_reader(reader: PageReader | None) -> PageReader | None:
    """Read PDF page images with `reader` from now on (None: a worker of this module's own,
    started when needed); returns the one used before."""
    return _PAGE_READER.use(reader)


def pdf_pages(fh: BinaryFile, reader: PageReader | None = None,
              limits: PdfLimits = PDF_LIMITS) -> Iterator[PdfPage]:
    """Each page of a PDF with its text; pages without a text layer that show an image (scans,
    the image pages of a "mixed" PDF) are rendered with pypdfium2 and read by OCR (`reader`, by
    default the shared worker), within `limits`. A page not read says why in `skipped`.

    Raises `UnreadableFileError` for an encrypted or damaged file (pypdf's and pdfium's errors).
    """
    import pypdf

    reader_pdf = pypdf.PdfReader(fh)
    if reader_pdf.is_encrypted:
        try:
            reader_pdf.decrypt("")
        except Exception as exc:  # pypdf's own errors for unsupported or wrong passwords
            raise UnreadableFileError("encrypted PDF, not scanned") from exc
    pages = _PdfImages(fh, reader, limits)
    try:
        for number, page in enumerate(reader_pdf.pages, 1):
            text = page.extract_text() or ""
            if len("".join(text.split())) >= MIN_PAGE_TEXT:
                yield PdfPage(number, text)
                continue
            read, skipped = pages.read(number - 1)
            if read:
                yield PdfPage(number, f"{text}\n{read}" if text.strip() else read, True)
            else:
                yield PdfPage(number, text, False, skipped)
    finally:
        pages.close()


class _PdfImages:
    """The rendering side of `pdf_pages`: pdfium opened on the first page that needs it, the
    limits counted across the file."""

    def __init__(self, fh: BinaryFile, reader: PageReader | None, limits: PdfLimits) -> None:
        self._fh = fh
        self._reader = reader
        self._limits = limits
        self._doc: Any = None
        self._problem = ""
        self._read = 0
        self._deadline = time.monotonic() + limits.seconds

    def _open(self) -> Any:
        if self._doc is None and not self._problem:
            try:
                import pypdfium2 as pdfium
            except ImportError:
                self._problem = "page images not read: pypdfium2 is not installed"
                return None
            at = self._fh.tell()
            self._fh.seek(0)
            data = self._fh.read(self._limits.max_bytes + 1)
            self._fh.seek(at)  # pypdf goes on reading the same file
            if len(data) > self._limits.max_bytes:
                self._problem = (f"page images not read: PDF over "
                                 f"{self._limits.max_bytes >> 20} MB")
                return None
            try:
                self._doc = pdfium.PdfDocument(data)
            except pdfium.PdfiumError as exc:
                self._problem = f"page images not read: damaged PDF ({type(exc).__name__})"
        return self._doc

    def read(self, index: int) -> tuple[str, str]:
        """(the page's OCR'd text, "") or ("", why it was not read); a page showing nothing
        (blank, or drawn with lines only) needs no reading: ("", "")."""
        import pypdfium2 as pdfium
        import pypdfium2.raw as pdfium_c

        from guard.scan.ocr import OcrError

        doc = self._open()
        if doc is None:
            return "", self._problem
        try:
            page = doc[index]
        except (pdfium.PdfiumError, IndexError) as exc:
            return "", f"damaged PDF page, not read ({type(exc).__name__})"
        try:
            if next(page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_IMAGE]), None) is None:
                return "", ""
            if self._read >= self._limits.ocr_pages:
                return "", f"over {self._limits.ocr_pages} pages without a text layer, not read"
            if time.monotonic() > self._deadline:
                return "", f"over {self._limits.seconds:.0f} s reading page images, not read"
            self._read += 1
            width, height = page.get_size()
            scale = self._limits.dpi / 72
            if width * height * scale * scale > self._limits.page_pixels:
                scale = (self._limits.page_pixels / (width * height)) ** 0.5
                scale *= 1 - 2 / max(2.0, min(width, height) * scale)  # pdfium rounds sides up
            bitmap = page.render(scale=scale)
            try:
                pixels = bitmap.to_numpy()[:, :, :3].copy()  # pdfium's BGR(x)
            finally:
                bitmap.close()
        except pdfium.PdfiumError as exc:
            return "", f"damaged PDF page, not read ({type(exc).__name__})"
        finally:
            page.close()
        reader = self._reader if self._reader is not None else _PAGE_READER.get()
        try:
            result = reader.read(pixels)
        except OcrError as exc:
            return "", f"page image not read: {exc}"
        from guard.scan.images import rows_text  # the image path's own text of its lines

        return rows_text(result.lines), ""

    def close(self) -> None:
        if self._doc is not None:
            self._doc.close()
            self._doc = None


def _pdf_pages(fh: BinaryFile, reader: PageReader | None = None) -> Iterator[str]:
    """The pages' text for the scanner (`extract_chunks`). Pages that could not be read are
    logged (counts and reasons only); when no page gave any text, that is an error."""
    unread: list[str] = []
    any_text = False
    for page in pdf_pages(fh, reader):
        if page.skipped:
            unread.append(page.skipped)
        any_text = any_text or bool(page.text.strip())
        yield page.text
    if unread and not any_text:
        raise UnreadableFileError(f"PDF without a text layer, not scanned: {len(unread)} "
                                  f"page(s) not read ({unread[0]})")
    if unread:
        log.warning("pdf: %d page(s) without a text layer not read (%s)", len(unread), unread[0])


def _pdf_text(fh: BinaryFile) -> str:
    return "\n".join(_pdf_pages(fh))


_HTML_START = re.compile(r"\ufeff?\s*<(?:!doctype\s+html|html|body|table|head)\b", re.IGNORECASE)
_BLOCKS = frozenset(
    "p div br li ul ol dl dt dd h1 h2 h3 h4 h5 h6 table thead tbody tfoot caption section "
    "article header footer form fieldset legend pre blockquote hr title".split()
)


def looks_like_html(head: str) -> bool:
    """Whether decoded text starts like an HTML page or fragment."""
    return _HTML_START.match(head) is not None


class _HtmlText(html.parser.HTMLParser):
    """HTML to text: cells joined by tabs, rows and blocks on their own lines."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0
        self._cells = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        elif tag in ("td", "th"):
            if self._cells:
                self.parts.append("\t")
            self._cells += 1
        elif tag == "tr":
            self._row_end()
        elif tag in _BLOCKS:
            self._row_end()
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip = max(0, self._skip - 1)
        elif tag == "tr" or tag in _BLOCKS:
            self._row_end()
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            if self._cells:
                data = data.replace("\n", " ").replace("\t", " ")
            self.parts.append(data)

    def _row_end(self) -> None:
        self._cells = 0


def html_chunks(chunks: Iterable[str]) -> Iterator[str]:
    """The text of an HTML page given in decoded pieces (streamed; see the module docstring)."""
    parser = _HtmlText()
    for chunk in chunks:
        parser.feed(chunk)
        if parser.parts:
            yield _squeeze("".join(parser.parts))
            parser.parts.clear()
    parser.close()
    if parser.parts:
        yield _squeeze("".join(parser.parts))


_BLANK_LINES = re.compile(r"\n[ \t\r]*(?=\n)")


def _squeeze(text: str) -> str:
    """Blank lines out: markup leaves many, and a header row must stay next to its rows."""
    return _BLANK_LINES.sub("", text)
