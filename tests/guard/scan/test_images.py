"""Reading images: real OCR on rendered forms and ID cards, boxes on values, bad input refused."""

from __future__ import annotations

import io
import json
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

np = pytest.importorskip("numpy")
Image = pytest.importorskip("PIL.Image")
ImageDraw = pytest.importorskip("PIL.ImageDraw")
ImageFont = pytest.importorskip("PIL.ImageFont")
pytest.importorskip("cv2")
pytest.importorskip("rapidocr_onnxruntime")

from guard.scan import images  # noqa: E402
from guard.scan import ocr as ocr_module  # noqa: E402
from guard.scan.engine import Scanner  # noqa: E402
from guard.scan.images import ID_CARD, ImageError  # noqa: E402
from guard.scan.ocr_worker import OcrWorker  # noqa: E402

FONT = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
if not FONT.exists():
    pytest.skip("Noto CJK fonts are not installed", allow_module_level=True)

RID = "11010519491231002X"
CARD = "6222021234567890128"
MOBILE = "13812345678"


@pytest.fixture(scope="module")
def ocr() -> Iterator[OcrWorker]:
    worker = OcrWorker(idle_s=120, timeout_s=120)
    yield worker
    worker.stop()


@pytest.fixture(scope="module")
def scanner() -> Scanner:
    return Scanner(key=b"test-images-key-0123456789abcdef")


def render(rows: list[list[str]], size: tuple[int, int] = (960, 260), fs: int = 18,
           ) -> tuple[object, dict[str, tuple[int, int, int, int]]]:
    """Rows of cells drawn like a teller form; returns the PIL image and each cell's text box."""
    font = ImageFont.truetype(str(FONT), fs)
    img = Image.new("RGB", size, (248, 248, 250))
    d = ImageDraw.Draw(img)
    where: dict[str, tuple[int, int, int, int]] = {}
    y = 20
    for row in rows:
        x = 20
        for cell in row:
            d.text((x, y), cell, font=font, fill=(20, 20, 20))
            x0, y0, x1, y1 = d.textbbox((x, y), cell, font=font)
            where[cell] = (x0, y0, x1 - x0, y1 - y0)
            x = x1 + (14 if cell.endswith("：") else 60)
        y += int(fs * 2.4)
    return img, where


def encode(img: object, fmt: str) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt)  # type: ignore[attr-defined]
    return buf.getvalue()


def bgr(img: object) -> object:
    return np.ascontiguousarray(np.asarray(img)[:, :, ::-1])


def _inside(box: tuple[int, int, int, int], target: tuple[int, int, int, int], slack: int) -> bool:
    x, y, w, h = box
    tx, ty, tw, th = target
    return (x >= tx - slack and y >= ty - slack and x + w <= tx + tw + slack
            and y + h <= ty + th + slack)


def test_form_values_are_found_with_masked_values_and_boxes_on_them(
    ocr: OcrWorker, scanner: Scanner
) -> None:
    img, where = render([["证件号码：", RID], ["卡号：", CARD, "手机：", MOBILE],
                         ["备注：", "客户本人办理"]])
    result = images.scan_image_bytes(encode(img, "PNG"), scanner, ocr=ocr, source="form.png")
    assert result.error is None
    by_type = {f.type: f for f in result.findings}
    assert set(by_type) == {"CN_RESIDENT_ID", "BANK_CARD", "CN_MOBILE"}
    assert by_type["CN_RESIDENT_ID"].masked == "110***********002X"
    assert by_type["BANK_CARD"].masked == "622202*********0128"
    assert by_type["CN_MOBILE"].masked == "138****5678"
    for f, value in ((by_type["CN_RESIDENT_ID"], RID), (by_type["BANK_CARD"], CARD),
                     (by_type["CN_MOBILE"], MOBILE)):
        assert f.box is not None
        assert _inside(f.box, where[value], slack=12), (f.type, f.box, where[value])
        assert f.box[2] >= where[value][2] * 0.7  # the box covers the value, not a sliver
        assert 0.5 < f.score <= 1.0
        assert f.hash == scanner.scan_text(value)[0].hash
    assert result.size == (960, 260)
    assert result.document is None
    dumped = json.dumps(result.as_dicts(), ensure_ascii=False) + repr(result)
    for raw in (RID, CARD, MOBILE, "11010519491231"):
        assert raw not in dumped
    first = result.as_dicts()[0]
    assert set(first) == {"type", "masked", "bbox", "confidence", "category", "hash"}
    assert first["category"] == "C2" and len(first["bbox"]) == 4


def test_a_teller_screen_reads_the_table_and_form(ocr: OcrWorker, scanner: Scanner) -> None:
    import random

    from tests.bench.bench_ocr import render_screen, truth

    screen = render_screen(random.Random(3), 1366, 768)
    want = truth(scanner, screen.rows)
    result = images.scan_array(screen.image, scanner, ocr=ocr)  # type: ignore[arg-type]
    got = {(f.type, f.hash) for f in result.findings}
    assert len(want) > 30
    assert len(want & got) >= 0.95 * len(want)
    assert not {g for g in got if g[0] in ("CN_RESIDENT_ID", "BANK_CARD", "CN_MOBILE")} - want
    assert result.stats["recognised"] < result.stats["regions"]  # not every line was read


def render_id_card(number: str, cover: bool = False) -> object:
    """The front of a resident ID card (公民身份号码 layout), its number maybe partly covered."""
    w, h = 856, 540
    img = Image.new("RGB", (w, h), (232, 238, 240))
    d = ImageDraw.Draw(img)
    label = ImageFont.truetype(str(FONT), 26)
    value = ImageFont.truetype(str(FONT), 30)
    digits = ImageFont.truetype(str(FONT), 38)
    d.rounded_rectangle((4, 4, w - 5, h - 5), radius=30, outline=(170, 180, 190), width=3)
    blue = (60, 110, 170)
    d.text((60, 50), "姓名", font=label, fill=blue)
    d.text((160, 46), "张三", font=value, fill=(10, 10, 10))
    d.text((60, 115), "性别", font=label, fill=blue)
    d.text((160, 111), "男", font=value, fill=(10, 10, 10))
    d.text((260, 115), "民族", font=label, fill=blue)
    d.text((360, 111), "汉", font=value, fill=(10, 10, 10))
    d.text((60, 180), "出生", font=label, fill=blue)
    d.text((160, 176), "1949 年 12 月 31 日", font=value, fill=(10, 10, 10))
    d.text((60, 245), "住址", font=label, fill=blue)
    d.text((160, 241), "北京市朝阳区建国路", font=value, fill=(10, 10, 10))
    d.text((160, 291), "88号院3号楼", font=value, fill=(10, 10, 10))
    d.rectangle((590, 60, 800, 320), fill=(200, 206, 212))  # the photo
    d.text((60, 440), "公民身份号码", font=label, fill=blue)
    d.text((260, 432), number, font=digits, fill=(10, 10, 10))
    if cover:
        _, _, x1, _ = d.textbbox((260, 432), number[:6], font=digits)
        _, _, x2, _ = d.textbbox((260, 432), number[:14], font=digits)
        d.rectangle((x1 + 2, 425, x2, 485), fill=(20, 20, 20))  # a thumb on the birth date
    return img


def test_an_id_card_image_is_marked_as_a_document(ocr: OcrWorker, scanner: Scanner) -> None:
    result = images.scan_image_bytes(encode(render_id_card(RID), "JPEG"), scanner, ocr=ocr)
    assert result.error is None
    assert result.document == ID_CARD
    ids = [f for f in result.findings if f.type == "CN_RESIDENT_ID"]
    assert len(ids) == 1 and ids[0].masked == "110***********002X"
    dicts = result.as_dicts()
    assert all(d["document"] == ID_CARD for d in dicts)
    assert not any(d["type"] == ID_CARD for d in dicts)  # the number itself says it


def test_an_id_card_with_its_number_covered_is_still_an_id_card(
    ocr: OcrWorker, scanner: Scanner
) -> None:
    result = images.scan_image_bytes(encode(render_id_card(RID, cover=True), "PNG"), scanner,
                                     ocr=ocr)
    assert result.error is None
    assert result.document == ID_CARD
    assert not [f for f in result.findings if f.type == "CN_RESIDENT_ID"]
    entries = [d for d in result.as_dicts() if d["type"] == ID_CARD]
    assert len(entries) == 1
    assert entries[0]["masked"] == "" and entries[0]["bbox"][2] > 300


def photographed(card: object, angle: float, lean: float, blur: float, noise: float) -> object:
    """A card photographed on a desk: tilted by `angle` degrees, its far edge `lean` narrower
    (perspective), lit unevenly, out of focus by `blur` px and with sensor noise; BGR pixels."""
    import cv2

    a = np.ascontiguousarray(np.asarray(card)[:, :, ::-1])
    h, w = a.shape[:2]
    big_w, big_h, scale, r = 1600, 1200, 1.2, np.deg2rad(angle)
    corners = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    placed = []
    for x, y in corners:
        px, py = (x - w / 2) * scale, (y - h / 2) * scale
        px *= 1 + lean * py / (h * scale)
        placed.append([big_w / 2 + px * np.cos(r) - py * np.sin(r),
                       big_h / 2 + px * np.sin(r) + py * np.cos(r)])
    desk = np.full((big_h, big_w, 3), (120, 140, 160), np.uint8)
    out = cv2.warpPerspective(a, cv2.getPerspectiveTransform(corners, np.float32(placed)),
                              (big_w, big_h), dst=desk, borderMode=cv2.BORDER_TRANSPARENT)
    out = out * np.linspace(0.75, 1.1, big_w)[None, :, None]
    out = cv2.GaussianBlur(np.clip(out, 0, 255).astype(np.uint8), (0, 0), blur)
    noisy = out + np.random.default_rng(7).normal(0, noise, out.shape)
    return np.clip(noisy, 0, 255).astype(np.uint8)


@pytest.mark.parametrize(("angle", "lean", "blur", "noise"), [
    (3, 0.12, 1.5, 6),  # leaning away, tilted: its lines are not level
    (-5, 0.08, 1.2, 5),
])
def test_a_photographed_id_card_is_read_as_one(ocr: OcrWorker, scanner: Scanner, angle: float,
                                               lean: float, blur: float, noise: float) -> None:
    import cv2

    photo = photographed(render_id_card(RID), angle, lean, blur, noise)
    assert ocr_module.photographic(cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY))
    data = cv2.imencode(".jpg", photo, [cv2.IMWRITE_JPEG_QUALITY, 80])[1].tobytes()
    result = images.scan_image_bytes(data, scanner, ocr=ocr)
    assert result.error is None
    assert result.document == ID_CARD
    assert [f.masked for f in result.findings if f.type == "CN_RESIDENT_ID"] == [
        "110***********002X"]


def test_screens_are_not_taken_for_photographs() -> None:
    import cv2

    form, _ = render([["证件号码：", RID, "卡号：", CARD]] * 6, size=(1200, 400), fs=16)
    for image in (bgr(form), bgr(render_id_card(RID))):
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        jpeg = cv2.imdecode(cv2.imencode(".jpg", gray, [cv2.IMWRITE_JPEG_QUALITY, 40])[1], 0)
        assert not ocr_module.photographic(gray)
        assert not ocr_module.photographic(jpeg)  # JPEG's ringing stays near the glyphs


def test_a_plain_form_is_not_an_id_card() -> None:
    assert images.document_kind("证件号码：110105\t卡号：6222") is None
    assert images.document_kind("中华人民共和国\n居民身份证\n签发机关 北京市公安局") == ID_CARD


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "BMP", "TIFF", "WEBP"])
def test_every_format_decodes(fmt: str) -> None:
    img, _ = render([["手机：", MOBILE]], size=(400, 80))
    data = encode(img, fmt)
    info = images.probe(data)
    assert (info.format, info.width, info.height) == (fmt, 400, 80)
    assert images.decode(data).shape == (80, 400, 3)


def test_webp_and_tiff_files_are_read_end_to_end(
    ocr: OcrWorker, scanner: Scanner, tmp_path: Path
) -> None:
    img, _ = render([["手机：", MOBILE]], size=(420, 80))
    for fmt in ("WEBP", "TIFF"):
        path = tmp_path / f"shot.{fmt.lower()}"
        img.save(path, format=fmt, **({"lossless": True} if fmt == "WEBP" else {}))
        result = images.scan_image_file(path, scanner, ocr=ocr)
        assert [f.type for f in result.findings] == ["CN_MOBILE"], fmt


def test_a_pdf_page_without_a_text_layer_is_read(
    ocr: OcrWorker, scanner: Scanner, tmp_path: Path
) -> None:
    pytest.importorskip("pypdfium2")
    img, _ = render([["证件号码：", RID]], size=(900, 120), fs=22)
    path = tmp_path / "scan.pdf"
    img.save(path, format="PDF", resolution=96)
    result = images.scan_image_file(path, scanner, ocr=ocr)
    assert result.error is None
    assert [(f.type, f.masked) for f in result.findings] == [("CN_RESIDENT_ID",
                                                                "110***********002X")]
    assert result.pages == (1,)
    assert result.as_dicts()[0]["page"] == 1


# -- bad input ------------------------------------------------------------------------------------


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_header(width: int, height: int, idat: bytes) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat)
            + _chunk(b"IEND", b""))


def bomb(width: int, height: int) -> bytes:
    """A PNG of zeros: a few KB on disk, width*height*3 bytes once decoded."""
    comp = zlib.compressobj(9)
    row = b"\x00" * (width * 3 + 1)
    parts = [comp.compress(row) for _ in range(min(height, 64))]
    return png_header(width, height, b"".join(parts) + comp.flush())


@pytest.mark.parametrize(
    ("name", "data", "words"),
    [
        ("empty.png", b"", "empty"),
        ("notes.png", "证件号码 11010519491231002X\n".encode(), "not a PNG"),
        ("huge.png", png_header(20000, 20000, zlib.compress(b"\x00" * 1000)),
         "larger than the limit"),
        ("bomb.png", bomb(30000, 30000), "larger than the limit"),
        ("wide.png", png_header(100000, 10, zlib.compress(b"\x00" * 100)), "larger than"),
        ("pic.gif", encode(Image.new("RGB", (4, 4)), "GIF"), "GIF images are not read"),
    ],
)
def test_bad_input_is_refused_from_the_header(name: str, data: bytes, words: str) -> None:
    # probe reads the header only: the 30000x30000 bomb is refused without decoding a pixel
    with pytest.raises(ImageError, match=words):
        images.probe(data)


def test_truncated_and_corrupt_pngs_give_a_clear_error() -> None:
    img, _ = render([["手机：", MOBILE]], size=(400, 80))
    good = encode(img, "PNG")
    with pytest.raises(ImageError, match="truncated or corrupt PNG"):
        images.decode(good[: len(good) // 2])
    garbage = png_header(400, 80, b"\x78\x9c" + bytes(range(256)) * 4)
    with pytest.raises(ImageError, match="truncated or corrupt PNG"):
        images.decode(garbage)
    with pytest.raises(ImageError, match=r"damaged image header|not a PNG"):
        images.decode(good[:30])


def test_bad_files_give_per_file_errors_and_the_worker_keeps_working(
    ocr: OcrWorker, scanner: Scanner, tmp_path: Path
) -> None:
    img, _ = render([["手机：", MOBILE]], size=(400, 80))
    good = encode(img, "PNG")
    files = {
        "empty.png": b"",
        "text.png": b"not an image at all",
        "truncated.png": good[: len(good) // 2],
        "huge.png": png_header(20000, 20000, zlib.compress(b"\x00" * 1000)),
        "ok.png": good,
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    results = {name: images.scan_image_file(tmp_path / name, scanner, ocr=ocr) for name in files}
    assert "empty" in (results["empty.png"].error or "")
    assert "not a PNG" in (results["text.png"].error or "")
    assert "truncated or corrupt" in (results["truncated.png"].error or "")
    assert "larger than the limit" in (results["huge.png"].error or "")
    assert results["ok.png"].error is None
    assert [f.type for f in results["ok.png"].findings] == ["CN_MOBILE"]
    missing = images.scan_image_file(tmp_path / "gone.png", scanner, ocr=ocr)
    assert missing.error == "no such file"
    assert images.scan_image_file(tmp_path, scanner, ocr=ocr).error == "is a directory, not a file"


def test_a_value_read_in_two_overlapping_boxes_is_one_finding(scanner: Scanner) -> None:
    from guard.scan.ocr import TextLine

    overlapping = [TextLine(MOBILE, (576, 426, 93, 20), 0.95),
                   TextLine(MOBILE, (578, 428, 118, 16), 0.99)]
    found, _ = images.findings_from_lines(overlapping, scanner)
    assert [(f.type, f.box) for f in found] == [("CN_MOBILE", (578, 428, 118, 16))]
    apart = [TextLine(MOBILE, (100, 40, 93, 20), 0.95), TextLine(MOBILE, (100, 400, 93, 20), 0.95)]
    found, _ = images.findings_from_lines(apart, scanner)
    assert len(found) == 2  # the same number shown twice on a screen: two places


def test_a_number_a_chat_bubble_wrapped_is_found_whole(ocr: OcrWorker, scanner: Scanner) -> None:
    font = ImageFont.truetype(str(FONT), 14)
    img = Image.new("RGB", (900, 1400), (245, 245, 245))
    d = ImageDraw.Draw(img)
    for i in range(44):  # a long chat: more lines than a small image has, so lines are chosen
        d.text((30, 20 + 28 * i), f"第{i}条：今天系统有点慢，注意核对凭证", font=font,
               fill=(20, 20, 20))
    d.rounded_rectangle((480, 100, 800, 160), radius=6, fill=(149, 236, 105))
    d.text((492, 110), "客户袁芳 电话150-1717-296", font=font, fill=(20, 20, 20))
    d.text((492, 132), "5 密码锁了", font=font, fill=(20, 20, 20))
    # a column of numbers, one under the other: not one number
    d.text((492, 300), "13812345678", font=font, fill=(20, 20, 20))
    d.text((492, 322), "20240501", font=font, fill=(20, 20, 20))
    result = images.scan_image_bytes(encode(img, "PNG"), scanner, ocr=ocr)
    assert result.error is None
    assert result.stats["regions"] > 40
    mobiles = sorted(f.masked for f in result.findings if f.type == "CN_MOBILE")
    assert mobiles == ["138****5678", "150****2965"]
