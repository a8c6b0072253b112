"""Reading files for the scanner: what a file is (by content, not name), and its text.

- Text files are decoded as UTF-8 (with or without BOM), UTF-16 LE/BE with a BOM, or GB18030
  (which covers GBK and GB2312). They are read in chunks, so memory stays bounded whatever the
  file size; a file that looked like UTF-8 at its start but breaks later is read again as GB18030.
- `.xlsx` and `.docx` (zip files with the right members), `.pdf` (`%PDF-` header) are read with
  openpyxl (read-only), python-docx and pypdf; their extracted text is what gets scanned, so
  finding offsets are into that text: xlsx cells joined by tabs and rows by newlines, one line with
  the sheet name before each sheet; docx paragraphs then table rows (cells joined by tabs); pdf
  pages joined by newlines.
- Anything else (images, archives, executables, legacy .xls/.doc) is refused with a clear reason.

Error messages name the problem, never the file's content.
"""

from __future__ import annotations

import codecs
import zipfile
from collections.abc import Iterator
from typing import IO, Final

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


class RetryWithEncodingError(Exception):
    """A text file guessed as UTF-8 is not; read it again from the start with `encoding`."""

    def __init__(self, encoding: str) -> None:
        super().__init__(f"not UTF-8 after all; read again as {encoding}")
        self.encoding = encoding


def sniff(fh: BinaryFile) -> str:
    """What the file holds: `TEXT`, `XLSX`, `DOCX` or `PDF`; raises `UnreadableFileError` else.

    Leaves the file positioned at its start.
    """
    fh.seek(0)
    head = fh.read(SAMPLE_BYTES)
    fh.seek(0)
    if head.startswith(b"%PDF-"):
        return PDF
    if head.startswith(b"PK\x03\x04"):
        return _zip_kind(fh)
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        raise UnreadableFileError(
            "legacy Office file (.xls/.doc), not scanned: save it as .xlsx/.docx"
        )
    if _bom(head) is not None:
        return TEXT
    if b"\x00" in head or _guess_encoding(head) is None:
        raise UnreadableFileError("binary file, not scanned")
    return TEXT


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
    """UTF-8 or GB18030 for a BOM-less sample, or None when it is no text at all."""
    if sample and sum(sample.count(c) for c in _CONTROL) * 100 > len(sample):
        return None
    for encoding in ("utf-8", "gb18030"):
        try:
            codecs.getincrementaldecoder(encoding)().decode(sample, final=False)
        except UnicodeDecodeError:
            continue
        return encoding
    return None


class TextReader:
    """Decodes a text file chunk by chunk (BOM removed, line endings untouched)."""

    def __init__(self, fh: BinaryFile, encoding: str | None = None) -> None:
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
                    raise RetryWithEncodingError("gb18030") from exc
                raise UnreadableFileError(
                    f"cannot decode the file as {self.encoding}; binary or damaged, not scanned"
                ) from exc
            if text:
                yield text
            if final:
                return


def extract_text(fh: BinaryFile, kind: str) -> str:
    """The text of an xlsx, docx or pdf file (see the module docstring for its layout)."""
    fh.seek(0)
    try:
        if kind == XLSX:
            return _xlsx_text(fh)
        if kind == DOCX:
            return _docx_text(fh)
        if kind == PDF:
            return _pdf_text(fh)
    except UnreadableFileError:
        raise
    except Exception as exc:  # openpyxl, python-docx and pypdf each raise their own error types
        raise UnreadableFileError(
            f"damaged {kind} file, not scanned ({type(exc).__name__})"
        ) from exc
    raise UnreadableFileError(f"unsupported document kind {kind!r}, not scanned")


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    return str(value)


def _xlsx_text(fh: BinaryFile) -> str:
    import openpyxl

    wb = openpyxl.load_workbook(fh, read_only=True, data_only=True)
    try:
        lines: list[str] = []
        for ws in wb.worksheets:
            lines.append(str(ws.title))
            for row in ws.iter_rows(values_only=True):
                lines.append("\t".join(_cell_text(v) for v in row).rstrip("\t"))
        return "\n".join(lines)
    finally:
        wb.close()


def _docx_text(fh: BinaryFile) -> str:
    import docx

    document = docx.Document(fh)
    lines = [p.text for p in document.paragraphs]
    for table in document.tables:
        for row in table.rows:
            lines.append("\t".join(cell.text for cell in row.cells))
    return "\n".join(lines)


def _pdf_text(fh: BinaryFile) -> str:
    import pypdf

    reader = pypdf.PdfReader(fh)
    if reader.is_encrypted:
        try:
            reader.decrypt("")
        except Exception as exc:  # pypdf's own errors for unsupported or wrong passwords
            raise UnreadableFileError("encrypted PDF, not scanned") from exc
    return "\n".join((page.extract_text() or "") for page in reader.pages)
