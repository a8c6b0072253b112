"""Decoding and document tests: encodings, BOMs, sniffing, xlsx/docx/pdf, errors, streaming."""

from __future__ import annotations

import codecs
import datetime
import io
import tracemalloc
import zipfile
from pathlib import Path

import docx
import openpyxl
import pytest

from guard.scan import documents
from guard.scan import engine as scanner
from guard.scan.engine import Scanner

SCANNER = Scanner(key=b"test-key")
ID = "11010519491231002X"
MOBILE = "13812345678"
CARD = "6222021234567890128"
TEXT = f"客户：张三\r\n身份证号：{ID}\r\n手机：{MOBILE}\r\n"


def spans(path: Path) -> list[tuple[str, int, int]]:
    result = SCANNER.scan_file(path)
    assert result.error is None, result.error
    return [(f.type, f.start, f.end) for f in result.findings]


EXPECTED = [("CN_RESIDENT_ID", 12, 30), ("CN_MOBILE", 35, 46)]


@pytest.mark.parametrize(("name", "data"), [
    ("utf8.txt", TEXT.encode("utf-8")),
    ("utf8-bom.csv", codecs.BOM_UTF8 + TEXT.encode("utf-8")),
    ("utf16le.txt", codecs.BOM_UTF16_LE + TEXT.encode("utf-16-le")),
    ("utf16be.tsv", codecs.BOM_UTF16_BE + TEXT.encode("utf-16-be")),
    ("gb18030.log", TEXT.encode("gb18030")),
    ("gbk.eml", TEXT.encode("gbk")),
    ("export.json", TEXT.encode("utf-8")),
    ("no-extension", TEXT.encode("gbk")),
    ("lies.xlsx", TEXT.encode("utf-8")),  # the content decides, not the name
])
def test_text_encodings_keep_offsets(tmp_path: Path, name: str, data: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    assert TEXT[12:30] == ID and TEXT[35:46] == MOBILE
    assert spans(path) == EXPECTED  # BOM removed, CRLF not translated


def test_utf8_that_breaks_late_is_read_again_as_gb18030(tmp_path: Path) -> None:
    head = ("x" * 100 + "\n") * 1000  # well past the 64 KiB sample
    path = tmp_path / "mixed.txt"
    path.write_bytes(head.encode() + f"身份证号{ID}\n".encode("gbk"))
    (f,) = SCANNER.scan_file(path).findings
    assert f.type == "CN_RESIDENT_ID" and f.start == len(head) + 4


def _xlsx(path: Path) -> None:
    wb = openpyxl.Workbook()
    wb.remove(wb.worksheets[0])
    ws = wb.create_sheet("客户")
    ws.append(["姓名", "身份证号", "手机", "卡号"])
    ws.append(["张三", ID, int(MOBILE), CARD])
    wb.create_sheet("空表")
    wb.save(path)


def _docx(path: Path) -> None:
    d = docx.Document()
    d.add_paragraph(f"客户张三，身份证号{ID}。")
    table = d.add_table(rows=1, cols=2)
    table.rows[0].cells[0].text = "手机"
    table.rows[0].cells[1].text = MOBILE
    d.save(str(path))


def _pdf(path: Path, text: str) -> None:
    """A minimal valid one-page PDF with `text` (ASCII) in Helvetica, xref offsets computed."""
    content = f"BT /F1 12 Tf 50 700 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(content)).encode() + b" >>\nstream\n" + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objects, 1):
        offsets.append(out.tell())
        out.write(f"{i} 0 obj\n".encode() + body + b"\nendobj\n")
    xref = out.tell()
    out.write(f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode())
    for off in offsets:
        out.write(f"{off:010d} 00000 n \n".encode())
    out.write(f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n"
              .encode())
    path.write_bytes(out.getvalue())


def test_xlsx(tmp_path: Path) -> None:
    path = tmp_path / "export.dat"  # an xlsx under any name
    _xlsx(path)
    result = SCANNER.scan_file(path)
    assert [f.type for f in result.findings] == ["CN_RESIDENT_ID", "CN_MOBILE", "BANK_CARD"]
    with open(path, "rb") as fh:
        text = documents.extract_text(fh, documents.XLSX)
    assert text.startswith("客户\n姓名\t身份证号\t手机\t卡号\n张三\t" + ID + "\t" + MOBILE)
    f = result.findings[0]
    assert text[f.start:f.end] == ID  # offsets are into the extracted text


def test_docx(tmp_path: Path) -> None:
    path = tmp_path / "letter.docx"
    _docx(path)
    result = SCANNER.scan_file(path)
    assert [f.type for f in result.findings] == ["CN_RESIDENT_ID", "CN_MOBILE"]
    with open(path, "rb") as fh:
        text = documents.extract_text(fh, documents.DOCX)
    assert text[result.findings[1].start:result.findings[1].end] == MOBILE


def test_pdf(tmp_path: Path) -> None:
    path = tmp_path / "statement.bin"
    _pdf(path, f"ID card {ID} mobile {MOBILE}")
    result = SCANNER.scan_file(path)
    assert result.error is None
    assert [f.type for f in result.findings] == ["CN_RESIDENT_ID", "CN_MOBILE"]


@pytest.mark.parametrize(("data", "reason"), [
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)), "binary file, not scanned"),
    (b"\x7fELF\x02\x01\x01\x00" + bytes(200), "binary file, not scanned"),
    (bytes(range(256)) * 4, "binary file, not scanned"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(100), "legacy Office file"),
    (b"%PDF-1.4\ngarbage", "damaged pdf file"),
])
def test_unreadable_files_say_why(tmp_path: Path, data: bytes, reason: str) -> None:
    path = tmp_path / "thing.txt"
    path.write_bytes(data)
    result = SCANNER.scan_file(path)
    assert result.findings == [] and result.error is not None and reason in result.error


def test_zip_that_is_not_office(tmp_path: Path) -> None:
    path = tmp_path / "a.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("ids.txt", f"身份证号{ID}")
    assert "zip archive" in (SCANNER.scan_file(path).error or "")


def test_damaged_xlsx_error_names_no_content(tmp_path: Path) -> None:
    path = tmp_path / "bad.xlsx"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("xl/workbook.xml", f"<not xml {ID}")
    error = SCANNER.scan_file(path).error or ""
    assert error.startswith("damaged xlsx file, not scanned") and ID not in error


def test_missing_and_directory(tmp_path: Path) -> None:
    assert SCANNER.scan_file(tmp_path / "nope.txt").error == "no such file"
    assert "directory" in (SCANNER.scan_file(tmp_path).error or "")
    assert SCANNER.scan_file(tmp_path / "nope.txt").source == str(tmp_path / "nope.txt")


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    result = SCANNER.scan_file(path)
    assert result.error is None and result.findings == []


def test_large_file_streams_with_global_offsets(tmp_path: Path) -> None:
    """Identifiers on every chunk boundary are found once, at their offsets in the whole text."""
    line = f"备注：客户来访，核对证件{ID}，卡号 6222 0212 3456 7890 128，手机+86 138-1234-5678。\n"
    filler = "流水：无异常，柜员已复核。" * 3 + "\n"
    parts: list[str] = []
    size = 0
    while size < 3 * scanner.CHUNK_CHARS:
        parts.append(filler * 7 + line)
        size += len(parts[-1])
    text = "".join(parts)
    path = tmp_path / "big.log"
    path.write_text(text, encoding="utf-8", newline="")
    expected = [(f.type, f.start, f.end, f.hash) for f in SCANNER.scan_text(text)]
    got = [(f.type, f.start, f.end, f.hash) for f in SCANNER.scan_file(path).findings]
    assert got == expected
    assert len(got) == 3 * len(parts)
    assert all(text[s:e] in (ID, "6222 0212 3456 7890 128", "+86 138-1234-5678")
               for _, s, e, _h in got)


def test_sniff_kinds(tmp_path: Path) -> None:
    x, d, p = tmp_path / "x", tmp_path / "d", tmp_path / "p"
    _xlsx(x)
    _docx(d)
    _pdf(p, "hello")
    for path, kind in ((x, documents.XLSX), (d, documents.DOCX), (p, documents.PDF)):
        with open(path, "rb") as fh:
            assert documents.sniff(fh) == kind


def test_xlsx_shared_strings_read_back_from_disk_as_openpyxl_reads_them(tmp_path: Path) -> None:
    # the shared-string table is kept on disk, not as openpyxl's list: the text is the same
    path = tmp_path / "strings.xlsx"
    values = ["", "张三", "a\tb", "x005F_y", "𠀀 surrogate pair", "=not a formula", "  spaced  ",
              "11010519491231002X"] + [f"行{i}" for i in range(3000)]
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "客户"
    for i in range(0, len(values), 4):
        ws.append([*values[i:i + 4], 3.0, 12345678901234.0])
    wb.save(path)
    expected = openpyxl.load_workbook(path, read_only=True, data_only=True)
    want = ["客户"] + ["\t".join(documents._cell_text(v) for v in row).rstrip("\t")
                     for row in expected.worksheets[0].iter_rows(values_only=True)]
    expected.close()
    with path.open("rb") as fh:
        assert list(documents._xlsx_lines(fh)) == want


def test_shared_strings_by_index() -> None:
    xml = ('<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
           '<si><t>一</t></si><si><t></t></si><si><r><t>rich </t></r><r><t>text</t></r></si>'
           '</sst>').encode()
    table = documents._SharedStrings(io.BytesIO(xml))
    try:
        assert len(table) == 3
        assert [table[0], table[1], table[2], table[-1]] == ["一", "", "rich text", "rich text"]
        with pytest.raises(IndexError):
            table[3]
    finally:
        table.close()


def _rewrite_sheet(path: Path, out: Path, dimension: bytes | None) -> None:
    """`path` with its first sheet's `<dimension>` replaced (None: left out, as openpyxl's
    write-only mode writes sheets)."""
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for name in src.namelist():
            data = src.read(name)
            if name == "xl/worksheets/sheet1.xml":
                start = data.index(b"<dimension")
                end = data.index(b"/>", start) + 2
                data = data[:start] + (dimension or b"") + data[end:]
            dst.writestr(name, data)


@pytest.mark.parametrize("dimension", ["as written", "none", "smaller than the data"])
def test_xlsx_rows_as_openpyxl_reads_them(tmp_path: Path, dimension: str) -> None:
    # rows and cells the file leaves out, a second sheet, dates and numbers; a sheet without a
    # dimension, and one whose dimension cuts the data (openpyxl stops at it: so does the scan)
    written = tmp_path / "written.xlsx"
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "客户"
    ws.append(["姓名", "证件号码", "卡号"])
    ws.cell(row=4, column=2, value="11010519491231002X")
    ws.cell(row=4, column=5, value=3.0)
    ws.cell(row=7, column=1, value=datetime.datetime(2026, 1, 2, 3, 4))
    ws.cell(row=9, column=3, value="6222021234567890128")
    second = wb.create_sheet("第二")
    second.cell(row=2, column=2, value="13812345678")
    wb.save(written)
    path = written
    if dimension != "as written":
        path = tmp_path / "rewritten.xlsx"
        _rewrite_sheet(written, path, None if dimension == "none" else b'<dimension ref="A1:B4"/>')
    expected = openpyxl.load_workbook(path, read_only=True, data_only=True)
    want: list[str] = []
    for sheet in expected.worksheets:
        want.append(sheet.title)
        want += ["\t".join(documents._cell_text(v) for v in row).rstrip("\t")
                 for row in sheet.iter_rows(values_only=True)]
    expected.close()
    with path.open("rb") as fh:
        got = list(documents._xlsx_lines(fh))
    assert got == want
    assert ("6222021234567890128" in "\n".join(got)) == (dimension != "smaller than the data")


def _xlsx_rows(path: Path, rows: int) -> None:
    wb = openpyxl.Workbook(write_only=True)  # sheets without a dimension, strings inline
    ws = wb.create_sheet("客户")
    for i in range(rows):
        ws.append([i, f"客户{i}", f"1381234{i % 10000:04d}", "6222021234567890128"])
    wb.save(path)


def _peak_reading(path: Path) -> int:
    tracemalloc.start()
    try:
        with path.open("rb") as fh:
            for _ in documents._xlsx_lines(fh):
                pass
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_xlsx_rows_are_let_go_as_they_are_read(tmp_path: Path) -> None:
    # bounded memory: ten times the rows, not ten times the peak (openpyxl kept each parsed row
    # in its sheet element, ~100 bytes a row, and parsed a sheet without a dimension twice)
    small, big = tmp_path / "small.xlsx", tmp_path / "big.xlsx"
    _xlsx_rows(small, 2_000)
    _xlsx_rows(big, 20_000)
    assert _peak_reading(big) - _peak_reading(small) < 512 * 1024
