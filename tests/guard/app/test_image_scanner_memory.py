"""What the agent keeps after reading images: no image library, the work done in the OCR worker.

An interpreter that loads the agent (`ui.app`, as the gui-script does) reads a screen grab and a
clipboard PNG through `ImageCapableScanner` and blacks the PNG out, as the capture channels do;
once the worker has exited it says which image libraries it imported or has mapped.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

pytest.importorskip("rapidocr_onnxruntime")
pytest.importorskip("PySide6")  # the process below loads the agent (`ui.app`)

from guard.scan.images import ImageError, Pixels
from tests.guard.scan.test_images import render
from tests.support.interpreter import run_code

ID = "11010519491231002X"
CARD = "6222021234567890128"
FORM = [["客户姓名：", "张三"], ["证件号码：", ID], ["银行卡号：", CARD]]
HEAVY = ("numpy", "PIL", "cv2", "onnxruntime", "rapidocr_onnxruntime", "mss")

AGENT_LIKE = """\
import json, sys, time
from pathlib import Path
from ui.app import main  # noqa: F401  (the agent's own imports, PySide6 included)
from guard.app.image_scanner import ImageCapableScanner
from guard.scan.engine import Scanner
from guard.scan.images import Pixels

png, raw = Path(sys.argv[1]).read_bytes(), Path(sys.argv[2]).read_bytes()
width, height = int(sys.argv[3]), int(sys.argv[4])
scanner = ImageCapableScanner(Scanner(key=b"k" * 32), idle_s=1.0)
screen = scanner.scan_pixels(Pixels(raw, width, height, 4))
clip = scanner.scan_image(png)
blacked = scanner.black_out(png, clip)
worker = scanner.ocr.pid
deadline = time.monotonic() + 60
while scanner.ocr.running() and time.monotonic() < deadline:
    time.sleep(0.1)
maps = Path("/proc/self/maps").read_text() if sys.platform.startswith("linux") else ""
print(json.dumps({
    "screen": sorted(f.type for f in screen), "clip": sorted(f.type for f in clip),
    "blacked": blacked[:8] == b"\\x89PNG\\r\\n\\x1a\\n" and blacked != png,
    "worker": worker, "running": scanner.ocr.running(),
    "imported": sorted(m for m in sys.modules if m.split(".")[0] in HEAVY_NAMES),
    "mapped": sorted({line.split()[-1] for line in maps.splitlines()
                      if "/numpy" in line or "/PIL/" in line or "/cv2/" in line
                      or "onnxruntime" in line}),
}))
""".replace("HEAVY_NAMES", repr(HEAVY))


def test_the_agent_reads_a_grab_and_a_png_without_any_image_library(tmp_path: Path) -> None:
    img, _ = render(FORM, size=(900, 200), fs=22)
    out = io.BytesIO()
    img.save(out, format="PNG")  # type: ignore[attr-defined]
    (tmp_path / "form.png").write_bytes(out.getvalue())
    # the grab as mss gives it: BGRA rows, no padding
    rgba = img.convert("RGBA")  # type: ignore[attr-defined]
    r, g, b, a = rgba.split()
    from PIL import Image

    (tmp_path / "grab.raw").write_bytes(Image.merge("RGBA", (b, g, r, a)).tobytes())
    seen = run_code(AGENT_LIKE, str(tmp_path / "form.png"), str(tmp_path / "grab.raw"),
                    str(img.size[0]), str(img.size[1]), timeout=240)  # type: ignore[attr-defined]
    assert {"CN_RESIDENT_ID", "BANK_CARD"} <= set(seen["screen"]), seen
    assert {"CN_RESIDENT_ID", "BANK_CARD"} <= set(seen["clip"]), seen
    assert seen["blacked"] and seen["worker"] and not seen["running"], seen
    assert seen["imported"] == [], seen["imported"]
    assert seen["mapped"] == [], seen["mapped"]


def test_pixels_say_what_is_wrong_with_a_grab() -> None:
    assert Pixels(bytes(2 * 3 * 4), 2, 3).shape == (3, 2, 4)
    assert Pixels(bytes(6), 2, 3, 1).shape == (3, 2)
    with pytest.raises(ImageError, match="needs 24 bytes, not 23"):
        Pixels(bytes(23), 2, 3)
    with pytest.raises(ImageError, match="2 channels"):
        Pixels(bytes(12), 2, 3, 2)
