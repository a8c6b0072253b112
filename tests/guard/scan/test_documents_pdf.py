"""PDF pages without a text layer are rendered and read by OCR on the text path, within bounds:
the scanner, the print hold and the USB guard all get it through `guard.scan.documents`."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("pypdfium2")
pytest.importorskip("cv2")
pytest.importorskip("rapidocr_onnxruntime")

from PIL import Image, ImageDraw, ImageFont

from guard.scan import documents
from guard.scan.documents import PdfLimits, UnreadableFileError, pdf_pages
from guard.scan.engine import Scanner
from guard.scan.ocr_worker import OcrWorker
from guard.watchers import usb
from guard.watchers.print_hold import read_document
from tests.support.core import Core

FONT = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
if not FONT.exists():
    pytest.skip("Noto CJK fonts are not installed", allow_module_level=True)

TEXT_ID = "11010519491231002X"  # on the page with a text layer
IMAGE_ID = "440304199504193729"  # only in the pixels of the scanned page
SCANNER = Scanner(key=b"k" * 32)


def masked(number: str) -> str:
    return SCANNER.scan_text(f"证件号码 {number}")[0].masked


def text_page_pdf(text: str) -> bytes:
    """A one-page PDF whose text layer holds `text` (ASCII, Helvetica), written by hand."""
    stream = f"BT /F1 14 Tf 72 720 Td ({text}) Tj ET".encode("ascii")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for n, body in enumerate(objects, 1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % n + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for off in offsets:
        out.write(b"%010d 00000 n \n" % off)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n"
              % (len(objects) + 1, xref))
    return out.getvalue()


def scanned_page_pdf(rows: list[list[str]], size: tuple[int, int] = (1240, 600)) -> bytes:
    """A page that is only an image (a scan): a teller form drawn in pixels, no text layer."""
    img = Image.new("RGB", size, (250, 250, 250))
    d = ImageDraw.Draw(img)
    font = ImageFont.truetype(str(FONT), 30)
    y = 60
    for row in rows:
        x = 60
        for cell in row:
            d.text((x, y), cell, font=font, fill=(15, 15, 15))
            x += 320
        y += 80
    out = io.BytesIO()
    img.save(out, format="PDF", resolution=150)
    return out.getvalue()


def merged(*parts: bytes) -> bytes:
    import pypdf

    writer = pypdf.PdfWriter()
    for part in parts:
        for page in pypdf.PdfReader(io.BytesIO(part)).pages:
            writer.add_page(page)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


FORM = [["客户姓名", "李四"], ["证件号码", IMAGE_ID], ["办理业务", "开户"]]


@pytest.fixture(scope="module")
def ocr() -> Iterator[OcrWorker]:
    worker = OcrWorker(idle_s=120, timeout_s=120)
    before = documents.use_page_reader(worker)
    yield worker
    documents.use_page_reader(before)
    worker.stop()


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pdf") / "mixed.pdf"
    path.write_bytes(merged(text_page_pdf(f"Customer ID {TEXT_ID}"), scanned_page_pdf(FORM),
                            text_page_pdf("")))  # a blank page: nothing to read
    return path


def test_a_mixed_pdf_gives_each_page_and_the_image_page_is_read(ocr: OcrWorker,
                                                                mixed: Path) -> None:
    with open(mixed, "rb") as fh:
        pages = list(pdf_pages(fh, ocr))
    assert [(p.number, p.ocr, p.skipped) for p in pages] == [(1, False, ""), (2, True, ""),
                                                             (3, False, "")]
    found = {p.number: [f.masked for f in SCANNER.scan_text(p.text)] for p in pages}
    assert found == {1: [masked(TEXT_ID)], 2: [masked(IMAGE_ID)], 3: []}
    assert "证件号码\t" in pages[1].text  # the label is the value's neighbour cell, as on screen


def test_the_scanner_finds_both_numbers_in_one_pass(ocr: OcrWorker, mixed: Path) -> None:
    result = SCANNER.scan_file(mixed)
    assert result.error is None
    assert sorted(f.masked for f in result.findings) == sorted([masked(TEXT_ID),
                                                                masked(IMAGE_ID)])


def test_print_jobs_and_usb_files_get_the_image_page_too(ocr: OcrWorker, mixed: Path) -> None:
    doc = read_document(mixed, 64 << 20)
    assert doc.pages == 3 and doc.skipped == ""
    assert {f.masked for f in SCANNER.scan_text(doc.text)} == {masked(TEXT_ID), masked(IMAGE_ID)}
    core = Core()
    core.pipeline.scanner = SCANNER
    scan = usb.scan_file(core.pipeline, mixed, 64 << 20)
    assert scan.skipped == ""
    assert {f.masked for f in scan.findings} == {masked(TEXT_ID), masked(IMAGE_ID)}


def test_a_fully_scanned_pdf_is_read_on_the_text_path(ocr: OcrWorker, tmp_path: Path) -> None:
    path = tmp_path / "scan.pdf"
    path.write_bytes(scanned_page_pdf(FORM))
    assert [f.masked for f in SCANNER.scan_file(path).findings] == [masked(IMAGE_ID)]


def test_pages_past_the_limits_say_why_they_were_not_read(ocr: OcrWorker, mixed: Path) -> None:
    with open(mixed, "rb") as fh:
        none = list(pdf_pages(fh, ocr, PdfLimits(ocr_pages=0)))
    assert none[1].text.strip() == "" and "over 0 pages without a text layer" in none[1].skipped
    assert TEXT_ID in none[0].text  # the text layer is still read
    with open(mixed, "rb") as fh:
        late = list(pdf_pages(fh, ocr, PdfLimits(seconds=0)))
    assert "over 0 s reading page images" in late[1].skipped
    with open(mixed, "rb") as fh:
        big = list(pdf_pages(fh, ocr, PdfLimits(max_bytes=100)))
    assert "PDF over 0 MB" in big[1].skipped


class Shapes:
    """The real worker, noting the size of each page image it is given."""

    def __init__(self, worker: OcrWorker) -> None:
        self.worker = worker
        self.shapes: list[tuple[int, ...]] = []

    def read(self, image: Any, mode: Any = "fast") -> Any:
        self.shapes.append(tuple(image.shape))
        return self.worker.read(image, mode)


def test_a_huge_page_is_rendered_within_the_pixel_bound(ocr: OcrWorker, tmp_path: Path) -> None:
    # 200 x 200 inches at 150 dpi would be 900 MP
    img = Image.new("RGB", (2000, 2000), (255, 255, 255))
    out = io.BytesIO()
    img.save(out, format="PDF", resolution=10)
    reader = Shapes(ocr)
    list(pdf_pages(io.BytesIO(out.getvalue()), reader, PdfLimits(page_pixels=2_000_000)))
    (h, w, c), = reader.shapes
    assert c == 3 and h * w <= 2_000_000 and h * w > 1_500_000


def test_ocr_that_fails_on_a_scan_only_pdf_is_a_clear_per_file_error(tmp_path: Path) -> None:
    path = tmp_path / "scan.pdf"
    path.write_bytes(scanned_page_pdf(FORM))
    slow = OcrWorker(idle_s=5, timeout_s=0.001)  # the real worker, timing out
    before = documents.use_page_reader(slow)
    try:
        result = SCANNER.scan_file(path)
        with open(path, "rb") as fh:
            (page,) = list(pdf_pages(fh))
    finally:
        documents.use_page_reader(before)
        slow.stop()
    assert result.findings == [] and result.error is not None
    assert "PDF without a text layer, not scanned: 1 page(s) not read" in result.error
    assert page.skipped.startswith("page image not read")
    assert IMAGE_ID not in result.error


@pytest.mark.parametrize("data", [
    b"%PDF-1.4\n this is not a PDF at all \x00\x01\x02",
    b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\ntrailer\n<<>>\n%%EOF",
    b"%PDF-",
])
def test_a_corrupt_pdf_is_a_clear_per_file_error(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "broken.pdf"
    path.write_bytes(data)
    result = SCANNER.scan_file(path)
    assert result.findings == []
    assert result.error is not None and "pdf" in result.error.lower()
    with pytest.raises(UnreadableFileError), open(path, "rb") as fh:
        documents.extract_text(fh, documents.PDF)
    assert read_document(path, 64 << 20).skipped  # the print hold says why, and cancels


@pytest.mark.parametrize("keep", [1 / 3, 2 / 3])
def test_a_truncated_mixed_pdf_is_a_clear_per_file_error(mixed: Path, tmp_path: Path,
                                                         keep: float) -> None:
    cut = tmp_path / "cut.pdf"
    data = mixed.read_bytes()
    cut.write_bytes(data[: int(len(data) * keep)])
    result = SCANNER.scan_file(cut)
    assert result.findings == []
    assert result.error is not None and result.error.startswith("damaged pdf file, not scanned")


ID_CARD_FRONT = [["姓名", "李四"], ["性别", "男"], ["民族", "汉"], ["出生", "1990年1月1日"],
                 ["住址", "北京市东城区"], ["公民身份号码", ""]]  # the number covered


@pytest.mark.parametrize(("rows", "types"), [
    (ID_CARD_FRONT, ["ID_CARD"]),  # a scanned ID card with its number covered
    ([["会议纪要", "明天九点开会"]], []),  # a scan with nothing in it
    (FORM, ["CN_RESIDENT_ID"]),
])
def test_a_scanned_pdf_is_read_once_for_its_findings_and_the_id_card_check(
        ocr: OcrWorker, tmp_path: Path, rows: list[list[str]], types: list[str]) -> None:
    from guard.app.image_scanner import ImageCapableScanner

    path = tmp_path / "scan.pdf"
    path.write_bytes(scanned_page_pdf(rows))
    reads = Shapes(ocr)  # the real worker, counting the page images it is given
    before = documents.use_page_reader(None)
    try:
        images = ImageCapableScanner(SCANNER, ocr=reads)  # type: ignore[arg-type]
        result = images.scan_file(str(path))
    finally:
        documents.use_page_reader(before)
    assert result.error is None
    assert [f.type for f in result.findings] == types
    assert len(reads.shapes) == 1  # one page, read once (it was read twice without findings)
