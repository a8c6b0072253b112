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
  pages joined by newlines. xlsx rows are streamed (openpyxl read-only mode) and the workbook's
  shared-string table is kept in a temporary file (openpyxl holds it as a list), so a sheet of a
  million rows is scanned in bounded memory.
- Anything else (images, archives, executables, legacy .xls/.doc) is refused with a clear reason.

Error messages name the problem, never the file's content.
"""

from __future__ import annotations

import codecs
import html.parser
import re
import zipfile
from collections.abc import Iterable, Iterator
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


def extract_chunks(fh: BinaryFile, kind: str) -> Iterator[str]:
    """The text of an xlsx, docx or pdf file in pieces (xlsx streamed row by row)."""
    fh.seek(0)
    if kind not in (XLSX, DOCX, PDF):
        raise UnreadableFileError(f"unsupported document kind {kind!r}, not scanned")
    try:
        if kind == XLSX:
            yield from _batched(_xlsx_lines(fh))
        elif kind == DOCX:
            yield from _batched(_docx_lines(fh))
        else:
            yield from _batched(_pdf_pages(fh))
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
    from openpyxl.xml.constants import SHARED_STRINGS

    class Reader(ExcelReader):
        """openpyxl's own reader (what `load_workbook` runs), its shared strings kept on disk."""

        def read_strings(self) -> None:
            part = self.package.find(SHARED_STRINGS)
            if part is not None:
                with self.archive.open(part.PartName[1:]) as src:
                    # openpyxl only indexes it (`shared_strings[int(value)]`)
                    self.shared_strings = _SharedStrings(src)  # type: ignore[assignment]

    reader = Reader(fh, read_only=True, data_only=True)
    try:
        reader.read()
        wb = reader.wb
        try:
            for ws in wb.worksheets:
                yield str(ws.title)
                for row in ws.iter_rows(values_only=True):
                    yield "\t".join(_cell_text(v) for v in row).rstrip("\t")
        finally:
            wb.close()
    finally:
        if isinstance(reader.shared_strings, _SharedStrings):
            reader.shared_strings.close()


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
        for _, node in iterparse(src):
            if node.tag == tag:
                text = Text.from_tree(node)
                content = text.content if text is not None else ""
                data = content.replace("x005F_", "").encode("utf-8", "surrogatepass")
                node.clear()
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


def _pdf_pages(fh: BinaryFile) -> Iterator[str]:
    yield _pdf_text(fh)


def _pdf_text(fh: BinaryFile) -> str:
    import pypdf

    reader = pypdf.PdfReader(fh)
    if reader.is_encrypted:
        try:
            reader.decrypt("")
        except Exception as exc:  # pypdf's own errors for unsupported or wrong passwords
            raise UnreadableFileError("encrypted PDF, not scanned") from exc
    return "\n".join((page.extract_text() or "") for page in reader.pages)


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
