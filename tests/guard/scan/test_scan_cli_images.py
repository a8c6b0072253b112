"""`teller-guard scan` reads images and image-only PDFs through OCR: JSON findings with "bbox"."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

pytest.importorskip("rapidocr_onnxruntime")

from tests.guard.scan.test_images import encode, render, render_id_card
from tests.guard.scan.test_scan_cli import run

ID = "11010519491231002X"
CARD = "6222021234567890128"


def test_every_image_format_and_a_scanned_pdf_are_read(tmp_path: Path) -> None:
    img, where = render([["证件号码：", ID], ["银行卡号：", CARD]])
    for fmt in ("PNG", "JPEG", "BMP", "TIFF", "WEBP"):
        (tmp_path / f"form.{fmt.lower()}").write_bytes(encode(img, fmt))
    pdf = io.BytesIO()
    img.save(pdf, format="PDF", resolution=96)  # type: ignore[attr-defined]
    (tmp_path / "scan.pdf").write_bytes(pdf.getvalue())
    (tmp_path / "card.png").write_bytes(encode(render_id_card(ID), "PNG"))
    names = ["form.png", "form.jpeg", "form.bmp", "form.tiff", "form.webp", "scan.pdf",
             "card.png"]
    proc = run(["--format", "json", *names], tmp_path)
    assert proc.returncode == 1, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [line["source"] for line in lines] == names
    for line in lines[:6]:
        types = {f["type"]: f for f in line["findings"]}
        assert types["BANK_CARD"]["masked"] == "622202*********0128", line["source"]
        assert types["CN_RESIDENT_ID"]["masked"].endswith("002X")
        assert len(types["BANK_CARD"]["bbox"]) == 4 and types["BANK_CARD"]["hash"]
    card = next(f for f in lines[0]["findings"] if f["type"] == "BANK_CARD")
    x, y = card["bbox"][:2]
    cx, cy = where[CARD][:2]
    assert abs(x - cx) < 20 and abs(y - cy) < 20
    assert all(f.get("document") == "ID_CARD" for f in lines[-1]["findings"])
    assert ID not in proc.stdout and CARD not in proc.stdout


def test_a_960x540_teller_screen_is_read_by_scan(tmp_path: Path) -> None:
    import cv2

    from tests.guard.scan.test_ocr import teller_screen

    mobile = "13812345678"
    full, where = teller_screen([("证件号码：", ID), ("卡号：", CARD), ("手机：", mobile)])
    small = cv2.resize(full, (960, 540), interpolation=cv2.INTER_AREA)  # type: ignore[call-overload]
    assert cv2.imwrite(str(tmp_path / "screen.png"), small)
    proc = run(["--format", "json", "screen.png"], tmp_path)
    assert proc.returncode == 1, proc.stderr
    (line,) = [json.loads(text) for text in proc.stdout.splitlines()]
    types = {f["type"]: f for f in line["findings"]}
    assert types["CN_RESIDENT_ID"]["masked"].endswith("002X")
    assert types["BANK_CARD"]["masked"] == "622202*********0128"
    assert types["CN_MOBILE"]["masked"][-4:] == "5678"
    for kind, value in (("CN_RESIDENT_ID", ID), ("BANK_CARD", CARD), ("CN_MOBILE", mobile)):
        x, y, w, h = types[kind]["bbox"]
        vx, vy = where[value]
        assert abs(x - vx / 2) < 10 and abs(y - vy / 2) < 8, (kind, x, y)
        assert 0 < h < 20 and 30 < w and x + w <= 960, (kind, w, h)
    assert ID not in proc.stdout and CARD not in proc.stdout and mobile not in proc.stdout
