"""OCR engine and worker: packaged models offline, lazy imports, tile cache, restart, idle exit."""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

np = pytest.importorskip("numpy")
Image = pytest.importorskip("PIL.Image")
ImageDraw = pytest.importorskip("PIL.ImageDraw")
ImageFont = pytest.importorskip("PIL.ImageFont")
pytest.importorskip("cv2")
pytest.importorskip("rapidocr_onnxruntime")

from guard.scan import ocr  # noqa: E402
from guard.scan.ocr_worker import (  # noqa: E402
    OcrInputError,
    OcrTimeoutError,
    OcrWorker,
    OcrWorkerDiedError,
)

FONT = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
if not FONT.exists():
    pytest.skip("Noto CJK fonts are not installed", allow_module_level=True)
ROOT = Path(__file__).resolve().parents[3]


def lines_image(lines: list[str], fs: int = 18, size: tuple[int, int] = (700, 200)) -> object:
    font = ImageFont.truetype(str(FONT), fs)
    img = Image.new("RGB", size, (250, 250, 250))
    d = ImageDraw.Draw(img)
    for i, text in enumerate(lines):
        d.text((20, 20 + i * int(fs * 2.4)), text, font=font, fill=(15, 15, 15))
    return np.ascontiguousarray(np.asarray(img)[:, :, ::-1])


@pytest.fixture
def worker() -> Iterator[OcrWorker]:
    w = OcrWorker(idle_s=120, timeout_s=120)
    yield w
    w.stop()


def test_importing_the_scan_package_loads_no_opencv_or_onnxruntime() -> None:
    code = ("import sys, guard.scan, guard.scan.images, guard.scan.ocr, guard.scan.ocr_worker, "
            "guard.scan.engine; print(sorted(m for m in ('cv2', 'onnxruntime', 'numpy', "
            "'rapidocr_onnxruntime') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.stdout.strip() == "[]"


def test_models_come_from_the_installed_package() -> None:
    import importlib.util

    root = ocr.model_dir()
    spec = importlib.util.find_spec(ocr.MODEL_PACKAGE)
    assert spec is not None and spec.origin is not None
    assert root == Path(spec.origin).parent
    assert "site-packages" in str(root)
    for rel in ocr.MODEL_FILES.values():
        assert (root / rel).stat().st_size > 100_000


@pytest.mark.skipif(shutil.which("unshare") is None or os.geteuid() != 0,
                    reason="needs root and unshare to drop the network")
def test_ocr_reads_with_no_network_at_all(tmp_path: Path) -> None:
    image = lines_image(["手机：13812345678"])
    np.save(tmp_path / "img.npy", image)
    code = ("import sys, numpy as np; from guard.scan.ocr import OcrEngine; "
            f"r = OcrEngine(threads=1).read(np.load({str(tmp_path / 'img.npy')!r})); "
            "print('|'.join(line.text for line in r.lines))")
    out = subprocess.run(["unshare", "--net", sys.executable, "-c", code], capture_output=True,
                         text=True, timeout=300, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT), "HOME": str(tmp_path)})
    assert out.returncode == 0, out.stderr[-2000:]
    assert "13812345678" in out.stdout


def test_onnxruntime_sessions_do_not_spin() -> None:
    engine = ocr.OcrEngine(threads=1)
    engine.read(lines_image(["卡号：6222021234567890128"]))
    options = engine._recogniser().session.get_session_options()
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert options.get_session_config_entry("session.inter_op.allow_spinning") == "0"
    assert options.intra_op_num_threads == 1


def test_two_recognition_threads_read_the_same_text_in_the_same_order() -> None:
    rows = ["卡号：6222021234567890128", "手机：13812345678", "证件号码：11010519491231002X",
            "客户号：88021734"]
    image = lines_image(rows, size=(700, 240))
    one = ocr.OcrEngine(threads=1).read(image)
    two = ocr.OcrEngine(threads=2).read(image)
    assert [(ln.text, ln.box) for ln in two.lines] == [(ln.text, ln.box) for ln in one.lines]
    texts = " ".join(ln.text for ln in two.lines)
    for value in ("6222021234567890128", "13812345678", "11010519491231002X"):
        assert value in texts
    assert two.stats["cpu_s"] > 0


def test_regions_pick_identifier_lines_and_their_labels_only() -> None:
    import cv2

    rows = ["身份证号码：11010519491231002X", "客户本人办理业务已核验原件无误",
            "开户日期：2024-01-14", "手机：13812345678"]
    image = lines_image(rows, size=(700, 240))
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    regions = ocr.find_regions(gray)
    # one box per drawn line, at the line's height
    tops = sorted({b[1] // 20 for b in regions.boxes})
    assert len(tops) == 4
    candidate_rows = sorted({round((regions.boxes[i][1] - 20) / 43) for i in regions.candidates})
    assert candidate_rows == [0, 3]  # the ID and the mobile; not the sentence nor the date


def test_many_lines_are_filtered_and_unchanged_crops_come_from_the_cache() -> None:
    rows = [f"备注第{i}行：客户本人办理" for i in range(30)] + ["手机：13812345678"] * 1 + [
        "证件号码：11010519491231002X"] + [f"日期 2024-01-{i + 1:02d}" for i in range(12)]
    image = lines_image(rows, fs=14, size=(900, 1500))
    engine = ocr.OcrEngine(threads=1)
    first = engine.read(image)
    assert first.stats["regions"] > ocr.SMALL_IMAGE_LINES
    assert first.stats["recognised"] <= 6  # two values and their labels, not 44 lines
    texts = [line.text for line in first.lines]
    assert any("13812345678" in t for t in texts)
    assert any("11010519491231002X" in t for t in texts)
    again = engine.read(image)
    assert again.stats["recognised"] == 0
    assert again.stats["cached"] == first.stats["recognised"]
    assert [ln.text for ln in again.lines] == texts


@pytest.mark.parametrize(("text", "needed"), [
    ("11010519491231002X", False),  # a resident ID with its check character
    ("13812345678", False),  # a mobile
    ("6222 0212 3456 7890 128", False),  # a card on a known issuer range, Luhn right
    ("2024-01-14", False),  # nothing any detector reports
    ("客户本人办理", False),
    ("11010519491231002", True),  # 17 digits: not an ID by itself
    ("110105491231002", True),  # a legacy 15-digit ID counts only beside an identity label
    ("6222021234567890127", True),  # Luhn wrong: a label may still make it a card or account
    ("1234567890123", True),  # an account number only an account label says is one
    ("E12345678", True),  # a passport only beside a passport label
    ("123456789", True),
    ("110105194912310021", True),  # an ID's layout, check character wrong
    ("１３８１２３４５６７８", False),  # full-width digits, folded as the scanner folds them
    ("13812345678 1234567890123", True),  # one run that needs it is enough
])
def test_a_label_is_needed_only_where_it_can_change_the_finding(text: str, needed: bool) -> None:
    assert ocr.needs_context(text) is needed


def label_value_image(pairs: list[tuple[str, str]], fillers: int, fs: int = 14) -> object:
    """Label and value drawn apart (two boxes on one line), below `fillers` lines of text."""
    font = ImageFont.truetype(str(FONT), fs)
    step = int(fs * 2.4)
    img = Image.new("RGB", (700, 40 + (fillers + len(pairs)) * step), (250, 250, 250))
    d = ImageDraw.Draw(img)
    for i in range(fillers):
        d.text((20, 20 + i * step), f"备注第{i}行：客户本人办理", font=font, fill=(15, 15, 15))
    for k, (label, value) in enumerate(pairs):
        y = 20 + (fillers + k) * step
        d.text((20, y), label, font=font, fill=(15, 15, 15))
        d.text((20 + int(d.textlength(label, font=font)) + 2 * fs, y), value, font=font,
               fill=(15, 15, 15))
    return np.ascontiguousarray(np.asarray(img)[:, :, ::-1])


def test_a_label_is_recognised_only_for_a_value_that_needs_it() -> None:
    image = label_value_image([("证件号码", "11010519491231002X"), ("账号", "1234567890123")],
                              fillers=42)
    result = ocr.OcrEngine(threads=1).read(image)
    assert result.stats["regions"] > ocr.SMALL_IMAGE_LINES
    texts = [line.text for line in result.lines]
    assert any("11010519491231002X" in t for t in texts)
    assert any("1234567890123" in t for t in texts)
    assert any("账号" in t for t in texts)  # the account's label: it makes the number one
    assert not any("证件号码" in t for t in texts)  # the ID is one by its check character
    assert result.stats["labels"] == 1
    assert result.stats["labels_skipped"] == 1
    assert result.stats["recognised"] == 3


def test_run_length_is_told_only_for_a_plain_even_run() -> None:
    import cv2

    image = lines_image(["30241112345679", "3024 1112 3456 79", "证件号码30241112",
                         "2024-11-12 10:38"], fs=16, size=(500, 200))
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    regions = ocr.find_regions(gray)
    by_row = {round((b[1] - 20) / 38): ocr._run_length(gray, b) for b in regions.boxes}
    assert by_row == {0: 14, 1: None, 2: None, 3: None}  # in doubt (spaces, CJK, a dash): None


@pytest.mark.parametrize("fs", [12, 13])
def test_run_length_counts_touching_glyphs_of_small_screen_digits(fs: int) -> None:
    import cv2

    # at 12-13 px a screen font's digits touch in places (anti-aliased edges): one component
    # for two glyphs, which the count must tell exactly or not at all
    numbers = ["30241112345679", "20240501000088", "62220212345678901", "8800112233445566"]
    gray = cv2.cvtColor(lines_image(numbers, fs=fs, size=(400, 260)), cv2.COLOR_BGR2GRAY)
    regions = ocr.find_regions(gray)
    assert len(regions.boxes) == len(numbers)
    touching = 0
    for box, number in zip(regions.boxes, numbers, strict=True):
        _n, _, stats, _ = cv2.connectedComponentsWithStats(ocr._ink(gray, box), connectivity=8)
        touching += int((stats[1:, cv2.CC_STAT_HEIGHT] >= box[3] // 3).sum()) < len(number)
        assert ocr._run_length(gray, box) == len(number)
    assert touching  # the case under test happened


@pytest.mark.parametrize("fs", [9, 10, 11])
def test_small_text_dates_and_labels_are_not_taken_for_touching_digits(fs: int) -> None:
    import cv2

    # enlarged small text: a date's dash runs into its digits, a label's characters are made
    # of pieces shorter than a glyph; neither is an identifier, the three values below are
    # (a label whose characters touch, each as wide as two digits, may still be read)
    texts = ["2024-05-01", "2023-12-30", "证件类型：", "存款业务",
             "13812345678", "6222021234567890128", "110105194912310021"]
    image = lines_image(texts, fs=fs, size=(300, 40 + int(fs * 2.4) * len(texts)))
    glyph_h = ocr.find_regions(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)).glyph_h
    factor = ocr.upscale_factor(glyph_h, (image.shape[1], image.shape[0]))
    assert factor > 1.0
    _big, gray, regions, _factor = ocr._upscaled(image, factor)
    assert len(regions.boxes) == len(texts)
    held = [ocr._could_hold_identifier(gray, box, touching=True) for box in regions.boxes]
    assert held == [False] * 4 + [True] * 3


def test_digit_groups_a_monospace_space_apart_are_one_candidate() -> None:
    import cv2

    mono = Path("/usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf")
    if not mono.exists():
        pytest.skip("DejaVu fonts are not installed")
    font = ImageFont.truetype(str(mono), 13)
    img = Image.new("RGB", (600, 120), (250, 250, 250))
    d = ImageDraw.Draw(img)
    d.text((20, 20), "6222 0212 3456 7890 128", font=font, fill=(15, 15, 15))
    d.text((20, 60), "2024 05", font=font, fill=(15, 15, 15))  # groups, but too short
    x0, _, x1, _ = d.textbbox((20, 20), "6222 0212 3456 7890 128", font=font)
    gray = cv2.cvtColor(np.ascontiguousarray(np.asarray(img)[:, :, ::-1]), cv2.COLOR_BGR2GRAY)
    regions = ocr.find_regions(gray)
    held = [regions.boxes[i] for i in regions.candidates]
    assert len(held) == 1
    assert held[0][0] <= x0 + 2 and held[0][0] + held[0][2] >= x1 - 2  # every group in it


def _gray(img: object) -> object:
    import cv2

    return cv2.cvtColor(np.ascontiguousarray(np.asarray(img)[:, :, ::-1]), cv2.COLOR_BGR2GRAY)


def two_cells(left: str, right: str, fs: int, gap: int, rule: tuple[int, int, int],
              size: tuple[int, int] = (560, 80)) -> tuple[object, int]:
    """`left` and `right` drawn `gap` px apart with a grey column rule between them, `rule[0]`
    px after `left`, from y=`rule[1]` to y=`rule[2]`; returns the gray image and where `left`
    ends."""
    font = ImageFont.truetype(str(FONT), fs)
    img = Image.new("RGB", size, (250, 250, 250))
    d = ImageDraw.Draw(img)
    d.text((20, 30), left, font=font, fill=(15, 15, 15))
    end = d.textbbox((20, 30), left, font=font)[2]
    d.line((end + rule[0], rule[1], end + rule[0], rule[2]), fill=(120, 120, 120), width=1)
    d.text((end + gap, 30), right, font=font, fill=(15, 15, 15))
    return _gray(img), end


def test_a_column_rule_between_two_values_keeps_them_apart() -> None:
    # a table's column rule, a few pixels from the text on both sides and a little taller than
    # it: the line finder's closing would join both cells into one box through it
    gray, right = two_cells("110105194912310021", "6222021234567890128", 14, 11, (5, 26, 50))
    regions = ocr.find_regions(gray)
    held = sorted(regions.boxes[i] for i in regions.candidates)
    assert len(held) == 2
    assert held[0][0] + held[0][2] <= right + 5 <= held[1][0]


def test_no_box_reaches_across_a_column_rule() -> None:
    # an amount right-aligned up to the rule, two pixels from the mobile in the cell before it
    gray, right = two_cells("17891868197", "CNY 9,404,711.27", 15, 5, (2, 22, 56), (520, 80))
    regions = ocr.find_regions(gray)
    assert all(x + w <= right + 3 or x >= right + 2 for x, _y, w, _h in regions.boxes)
    assert any(x + w <= right + 3 for i in regions.candidates for x, _y, w, _h
               in [regions.boxes[i]])  # the mobile is a candidate of its own


def test_a_faint_grid_rule_keeps_neighbouring_cells_apart() -> None:
    # a spreadsheet's light grey grid, under the text's edge threshold, through three rows
    font = ImageFont.truetype(str(FONT), 15)
    img = Image.new("RGB", (520, 130), (252, 252, 252))
    d = ImageDraw.Draw(img)
    right = d.textbbox((20, 20), "6.23386E+18", font=font)[2]
    d.line((right + 3, 10, right + 3, 120), fill=(228, 228, 228), width=1)
    for row in range(3):
        y = 20 + 32 * row
        d.text((20, y), "6.23386E+18", font=font, fill=(15, 15, 15))
        d.text((right + 6, y), "15343531383", font=font, fill=(15, 15, 15))
    regions = ocr.find_regions(_gray(img))
    assert len(regions.boxes) == 6
    assert all(x + w <= right + 4 or x >= right + 3 for x, _y, w, _h in regions.boxes)


def test_two_lines_joined_into_one_blob_are_cut_apart() -> None:
    font = ImageFont.truetype(str(FONT), 14)
    img = Image.new("RGB", (400, 90), (250, 250, 250))
    d = ImageDraw.Draw(img)
    d.text((20, 20), "13812345678", font=font, fill=(15, 15, 15))
    bottom = d.textbbox((20, 20), "13812345678", font=font)[3]
    # the next line's digits start three pixels below, joined to it by a stroke (ringing)
    d.line((24, bottom, 24, bottom + 3), fill=(150, 150, 150), width=1)
    top = d.textbbox((20, 0), "6222021234567890128", font=font)[1]
    d.text((20, bottom + 3 - top), "6222021234567890128", font=font, fill=(15, 15, 15))
    regions = ocr.find_regions(_gray(img))
    held = sorted((regions.boxes[i] for i in regions.candidates), key=lambda b: b[1])
    assert len(held) == 2
    assert held[0][1] + held[0][3] <= held[1][1] + 1


def test_bold_digits_as_wide_as_nine_tenths_of_their_height_are_digits() -> None:
    bold = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")
    if not bold.exists():
        pytest.skip("DejaVu fonts are not installed")
    img = Image.new("RGB", (300, 60), (250, 250, 250))
    ImageDraw.Draw(img).text((20, 20), "13061249435",
                             font=ImageFont.truetype(str(bold), 15), fill=(15, 15, 15))
    regions = ocr.find_regions(_gray(img))
    assert len(regions.boxes) == 1 and regions.candidates == frozenset({0})


@pytest.mark.parametrize(("fill", "back"), [((30, 30, 30), (250, 250, 250)),
                                            ((20, 20, 120), (255, 242, 204)),
                                            ((90, 90, 90), (238, 238, 238))])
def test_serif_digits_with_hairline_diagonals_are_digits(fill: tuple[int, int, int],
                                                         back: tuple[int, int, int]) -> None:
    # SimSun-like digits at 17 px: a 4's and a 7's diagonals are hairlines that touch the rest
    # of the glyph only at pixel corners
    serif = FONT.with_name("NotoSerifCJK-Regular.ttc")
    if not serif.exists():
        pytest.skip("Noto Serif CJK is not installed")
    numbers = ["14773127780", "13008509129", "17651719351", "18976970037", "15816376843"]
    img = _number_rows(numbers, ImageFont.truetype(str(serif), 17), 30, back, fill)
    regions = ocr.find_regions(_gray(img))
    assert len(regions.boxes) == len(numbers)
    assert len(regions.candidates) == len(numbers)


def _number_rows(numbers: list[str], font: object, pitch: int,
                 back: tuple[int, int, int] = (255, 255, 255),
                 fill: tuple[int, int, int] = (0, 0, 0)) -> object:
    """A 300 px wide image with one number per row, `pitch` px apart, from (20, 20)."""
    img = Image.new("RGB", (300, 40 + pitch * len(numbers)), back)
    d = ImageDraw.Draw(img)
    for i, number in enumerate(numbers):
        d.text((20, 20 + pitch * i), number, font=font, fill=fill)
    return img


def _arial_like(size: int) -> object:
    sans = Path("/usr/share/fonts/opentype/urw-base35/NimbusSans-Regular.otf")
    if not sans.exists():
        pytest.skip("the URW base fonts are not installed")
    return ImageFont.truetype(str(sans), size)


def test_touching_digits_of_a_screen_sans_font_count_as_digits() -> None:
    # an Arial-like font at 14 px: "75", "222" and "88" come out as one component each
    numbers = ["17543203203", "13222578888", "17712958572", "13407177186", "15922278851",
               "18877542236"]
    regions = ocr.find_regions(_gray(_number_rows(numbers, _arial_like(14), 20)))
    assert len(regions.boxes) == len(numbers)
    assert len(regions.candidates) == len(numbers)


def test_touching_digits_are_counted_with_the_gap_they_closed() -> None:
    # Arial-like at 15 px: "77" is one component as wide as two digits and the gap between them
    regions = ocr.find_regions(_gray(_number_rows(["17796487718"], _arial_like(15), 20)))
    assert len(regions.boxes) == 1 and regions.candidates == {0}


def test_a_serial_number_with_nothing_beside_it_is_not_read() -> None:
    image = label_value_image([("账号", "12345678901234")], fillers=42)
    font = ImageFont.truetype(str(FONT), 14)
    pil = Image.fromarray(np.ascontiguousarray(image[:, :, ::-1]))
    d = ImageDraw.Draw(pil)
    d.text((420, 20), "30241112345679", font=font, fill=(15, 15, 15))  # 14 digits, alone
    d.text((420, 54), "11010519491231002X", font=font, fill=(15, 15, 15))  # an ID, alone
    result = ocr.OcrEngine(threads=1).read(np.ascontiguousarray(np.asarray(pil)[:, :, ::-1]))
    texts = [line.text for line in result.lines]
    assert any("11010519491231002X" in t for t in texts)
    assert any("12345678901234" in t for t in texts)  # the same length beside an account label
    assert not any("30241112345679" in t for t in texts)
    assert result.stats["candidates"] == 3 and result.stats["recognised"] == 3  # 2 values, 1 label


def test_worker_reads_and_stays_out_of_the_parent(worker: OcrWorker) -> None:
    result = worker.read(lines_image(["卡号：6222021234567890128"]))
    assert any("6222021234567890128" in line.text for line in result.lines)
    assert worker.pid is not None and worker.pid != os.getpid()
    assert worker.peak_rss_mb() > 50
    # a parent that only talks to the worker never loads OpenCV, onnxruntime or the models
    code = ("import sys, numpy as np; from guard.scan.ocr_worker import OcrWorker\n"
            "with OcrWorker() as w: r = w.read(np.full((60, 300, 3), 255, np.uint8))\n"
            "print(sorted(m for m in ('cv2', 'onnxruntime', 'rapidocr_onnxruntime') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"


def test_a_killed_worker_fails_its_call_clearly_and_the_next_call_restarts_it(
    worker: OcrWorker,
) -> None:
    worker.ping()  # started, models not loaded yet: the next read takes long enough to be hit
    pid = worker.pid
    assert pid is not None
    errors: list[BaseException] = []

    def read() -> None:
        try:
            worker.read(lines_image(["手机：13812345678"] * 3))
        except BaseException as exc:  # the test inspects whatever the call raised
            errors.append(exc)

    t = threading.Thread(target=read)
    t.start()
    time.sleep(0.2)
    os.kill(pid, signal.SIGKILL)
    t.join(60)
    assert len(errors) == 1 and isinstance(errors[0], OcrWorkerDiedError)
    assert "exited while reading" in str(errors[0])
    result = worker.read(lines_image(["手机：13812345678"]))
    assert any("13812345678" in line.text for line in result.lines)
    assert worker.pid not in (None, pid)
    assert worker.starts == 2


def test_a_worker_killed_while_idle_is_replaced_silently(worker: OcrWorker) -> None:
    worker.ping()
    pid = worker.pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.2)
    assert worker.ping()["pid"] != pid


def test_the_worker_exits_when_idle_and_comes_back_on_demand() -> None:
    w = OcrWorker(idle_s=0.5, timeout_s=60)
    try:
        w.ping()
        assert w.running()
        deadline = time.monotonic() + 20
        while w.running() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not w.running()
        assert w.ping()["pid"] > 0
        assert w.starts == 2
    finally:
        w.stop()


def test_a_slow_read_times_out_and_stops_the_worker() -> None:
    w = OcrWorker(idle_s=60, timeout_s=0.05)
    try:
        with pytest.raises(OcrTimeoutError, match="longer than"):
            w.read(lines_image(["手机：13812345678"]))
        assert not w.running()
    finally:
        w.stop()


def test_images_beyond_the_limits_never_reach_the_worker(worker: OcrWorker) -> None:
    with pytest.raises(OcrInputError, match="larger than"):
        worker.read(np.zeros((8000, 6000), dtype=np.uint8))
    with pytest.raises(OcrInputError, match="8-bit"):
        worker.read(np.zeros((10, 10), dtype=np.float32))
    assert worker.starts == 0


def teller_screen(values: list[tuple[str, str]], size: tuple[int, int] = (1920, 1080),
                  fs: int = 16) -> tuple[object, dict[str, tuple[int, int]]]:
    """A 1080p teller screen: a form with `values` beside their labels above a table of 40
    rows of names, dates, amounts and 14-digit serials (no identifier); where each value is."""
    font = ImageFont.truetype(str(FONT), fs)
    img = Image.new("RGB", size, (250, 250, 252))
    d = ImageDraw.Draw(img)
    where: dict[str, tuple[int, int]] = {}
    y = 30
    for label, value in values:
        d.text((240, y), label, font=font, fill=(90, 90, 90))
        d.text((360, y), value, font=font, fill=(20, 20, 20))
        where[value] = (360, y)
        y += int(fs * 2.3)
    names = "王伟 李娜 张敏 刘洋 陈静 杨磊 赵强 周杰".split()
    for i in range(40):
        cells = [f"{i + 1}", f"2024-0{i % 9 + 1}-{i % 27 + 1:02d}", f"2024{i:02d}1234{i:06d}",
                 names[i % len(names)], f"{(i * 7919) % 99999:,}.{i % 100:02d}", "成功"]
        for c, cell in enumerate(cells):
            d.text((240 + c * 260, y), cell, font=font, fill=(20, 20, 20))
        y += int(fs * 1.4)
    return np.ascontiguousarray(np.asarray(img)[:, :, ::-1]), where


def test_a_960x540_screen_is_enlarged_to_read_and_boxes_stay_in_its_pixels() -> None:
    import cv2

    values = [("证件号码：", "11010519491231002X"), ("卡号：", "6222021234567890128"),
              ("手机：", "13812345678")]
    full, where = teller_screen(values)
    engine = ocr.OcrEngine(threads=2)
    native = engine.read(full)
    assert native.stats["upscale"] == 1.0  # a 1080p screen's glyphs are read as they are
    small = cv2.resize(full, (960, 540), interpolation=cv2.INTER_AREA)
    assert ocr.find_regions(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)).glyph_h < ocr.MIN_GLYPH_H
    read = engine.read(small)
    assert read.stats["upscale"] > 1.5
    assert read.stats["regions"] > ocr.SMALL_IMAGE_LINES  # the filter ran, not read-everything
    assert read.stats["recognised"] < read.stats["regions"] // 2
    for _label, value in values:
        line = next(ln for ln in read.lines if value in ln.text.replace(" ", ""))
        x, y, w, h = line.box
        vx, vy = where[value]
        # in the 960x540 image's pixels, where the value was drawn (at half its 1080p place)
        assert abs(x - vx / 2) < 8 and abs(y - vy / 2) < 6, (line.box, value)
        assert x + w <= 960 and h < 20


def test_touching_digits_of_enlarged_small_text_count_as_digits() -> None:
    import cv2

    full, where = teller_screen([("手机：", "13812345678")])
    small = cv2.resize(full, (960, 540), interpolation=cv2.INTER_AREA)
    factor = ocr.upscale_factor(7, (960, 540))
    big = cv2.resize(small, None, fx=factor, fy=factor, interpolation=cv2.INTER_CUBIC)
    gray = cv2.cvtColor(big, cv2.COLOR_BGR2GRAY)
    vx, vy = where["13812345678"]

    def holds_the_mobile(regions: ocr.Regions) -> bool:
        return any(abs(regions.boxes[i][0] - vx / 2 * factor) < 10
                   and abs(regions.boxes[i][1] - vy / 2 * factor) < 10
                   for i in regions.candidates)

    regions = ocr.find_regions(gray, touching=True)
    assert holds_the_mobile(regions)
    # the blurred digits touch: fewer components of the digits' height than the 11 digits
    box = next(regions.boxes[i] for i in regions.candidates
               if abs(regions.boxes[i][0] - vx / 2 * factor) < 10
               and abs(regions.boxes[i][1] - vy / 2 * factor) < 10)
    _n, _, stats, _ = cv2.connectedComponentsWithStats(ocr._ink(gray, box), connectivity=4)
    assert int((stats[1:, cv2.CC_STAT_HEIGHT] >= box[3] // 2).sum()) < 11


def test_six_touching_digits_of_enlarged_small_text_count_when_the_pitch_is_known() -> None:
    # a remote-desktop grab of 10 px text, its digits a little tight: "5644857" is one blob
    font = ImageFont.truetype(str(FONT), 10)
    img = Image.new("RGB", (200, 40), (255, 255, 255))
    d = ImageDraw.Draw(img)
    x = 10.0
    for ch in "15644857598":
        d.text((x, 12), ch, font=font, fill=(0, 0, 0))
        x += font.getlength(ch) - 0.8
    image = np.ascontiguousarray(np.asarray(img)[:, :, ::-1])
    factor = ocr.upscale_factor(ocr.find_regions(_gray(img)).glyph_h, (200, 40))
    _big, _gray_big, regions, _f = ocr._upscaled(image, factor)
    assert len(regions.boxes) == 1 and regions.candidates == frozenset({0})


def test_the_enlargement_is_bounded() -> None:
    assert ocr.upscale_factor(ocr.MIN_GLYPH_H, (960, 540)) == 1.0
    assert ocr.upscale_factor(7, (960, 540)) == pytest.approx(ocr.READ_GLYPH_H / 7)
    assert ocr.upscale_factor(1, (100, 100)) == ocr.MAX_UPSCALE
    big = ocr.upscale_factor(6, (4000, 3000))  # a photo: the enlarged copy stays bounded
    assert 4000 * 3000 * big * big <= ocr.MAX_UPSCALED_PIXELS * 1.001
    assert ocr.upscale_factor(6, (8000, 6000)) == 1.0  # already past the bound: read as it is


def test_a_crop_is_cut_into_pieces_at_its_gaps_and_a_space_wide_gap_joins_with_a_space() -> None:
    h = 20
    crop = np.full((h, 2000, 3), 250, np.uint8)
    ink = np.ones(2000, bool)
    ink[700:708] = False  # a space between two words, 0.4 of the crop's height
    ink[1500:1502] = False  # the gap between two glyphs
    crop[5:15, ink] = 20
    pieces = ocr._pieces(crop)
    assert pieces[0][0] == 0 and pieces[-1][1] == 2000
    assert all(a < b for a, b, _j in pieces)
    assert all(b == a2 for (_a, b, _j), (a2, _b, _j2) in itertools.pairwise(pieces))
    assert all(b - a <= ocr.MAX_CROP_ASPECT * h for a, b, _j in pieces)
    assert [(b, j) for _a, b, j in pieces[:-1]] == [(704, " "), (1501, "")]
    assert ocr._pieces(crop[:, :ocr.MAX_CROP_ASPECT * h]) == [(0, ocr.MAX_CROP_ASPECT * h, "")]


def test_a_line_too_wide_for_one_model_input_is_read_in_pieces_and_joined() -> None:
    font = ImageFont.truetype(str(FONT), 16)
    mobiles = [f"1{3 + k % 7}{k}{k + 5}{(k * 7919) % 10 ** 6:06d}"[:11] for k in range(10, 34)]
    text = "".join(f"客户{k}号手机{m}备注已核实" for k, m in enumerate(mobiles))
    img = Image.new("RGB", (int(font.getlength(text)) + 40, 50), (250, 250, 250))
    ImageDraw.Draw(img).text((20, 15), text, font=font, fill=(15, 15, 15))
    engine = ocr.OcrEngine(threads=2)
    shapes: list[tuple[int, int]] = []

    class Recording:
        """The engine's own recogniser, with the size of every crop it is given written down."""

        def __init__(self, rec: ocr.Recogniser) -> None:
            self.rec = rec

        def __call__(self, crops: list[object]) -> list[tuple[str, float]]:
            shapes.extend(c.shape[:2] for c in crops)  # type: ignore[attr-defined]
            return self.rec(crops)  # type: ignore[arg-type]

    engine._rec = Recording(engine._recogniser())  # type: ignore[assignment]
    result = engine.read(np.ascontiguousarray(np.asarray(img)[:, :, ::-1]))
    assert len(shapes) > 3 and max(w / h for h, w in shapes) <= ocr.MAX_CROP_ASPECT
    read = "".join(line.text for line in result.lines)
    assert [m for m in mobiles if m not in read] == []
    assert result.stats["recognised"] == 1 and result.stats["cached"] == 0


def _line_crop(text: str, fs: int = 15) -> object:
    font = ImageFont.truetype(str(FONT), fs)
    img = Image.new("RGB", (int(font.getlength(text)) + 12, fs + 8), (250, 250, 250))
    ImageDraw.Draw(img).text((6, 2), text, font=font, fill=(15, 15, 15))
    return np.ascontiguousarray(np.asarray(img)[:, :, ::-1])


def test_glyphs_the_model_read_read_other_values_of_the_same_font_exactly() -> None:
    glyphs = ocr.GlyphTemplates()
    for text in ("6222021234567890128", "13812345678", "11010519491231002X", "9876543210"):
        glyphs.learn(_line_crop(text), text, 0.99)
    assert len(glyphs) >= 11
    values = ["15912345678", "310104197310029315", "6228 4801 2345 6789 015", "0755-86909014"]
    read = {v: glyphs.read(_line_crop(v)) for v in values}
    assert read["15912345678"] == ("15912345678", 0.99)
    assert read["6228 4801 2345 6789 015"] == ("6228 4801 2345 6789 015", 0.99)  # its spaces too
    assert read["0755-86909014"] is None  # it was never shown a "-"
    assert [v for v, r in read.items() if r is not None and r[0] != v] == []
    # a glyph it was never shown, a glyph of parts, a reading that was unsure: the model reads
    assert glyphs.read(_line_crop("1381234567A")) is None
    assert glyphs.read(_line_crop("138:12345678")) is None
    unsure = ocr.GlyphTemplates()
    unsure.learn(_line_crop("13812345678"), "13812345678", 0.5)
    assert len(unsure) == 0 and unsure.read(_line_crop("13812345678")) is None
    # every glyph known, but the check digit its length calls for is wrong: the model reads it
    # (a glyph taught wrong would show that way)
    assert glyphs.read(_line_crop("6228 4801 2345 6789 012")) is None
    assert glyphs.read(_line_crop("310104197310029316")) is None


def test_a_glyph_read_as_two_characters_is_never_read_from_its_bitmap() -> None:
    glyphs = ocr.GlyphTemplates()
    glyphs.learn(_line_crop("13812345678"), "13812345678", 0.99)
    assert glyphs.read(_line_crop("13812345678")) == ("13812345678", 0.99)
    glyphs.learn(_line_crop("13812345678"), "13812345618", 0.95)  # the 7 read as a 1 once
    assert glyphs.read(_line_crop("13812345678")) is None
    assert glyphs.read(_line_crop("18623456")) == ("18623456", 0.99)


def test_a_teller_screen_is_read_mostly_from_its_own_glyphs_with_the_same_text() -> None:
    values = [("证件号码：", "110101199003071234"), ("卡号：", "6222021234567890128"),
              ("手机：", "13812345678")]
    values += [("证件号码：", v) for v in ("31010419731002931X", "44030519851113122X",
                                          "110108195709141682", "420106199608052902")]
    values += [("卡号：", v) for v in ("6228480402564890018", "6217003810026896707",
                                      "6212 2640 0000 1234 567")]
    values += [("手机：", v) for v in ("15912345678", "18601234567", "17719093786",
                                      "13665167612", "19918033401")]
    image, _where = teller_screen(values)
    fast = ocr.OcrEngine(threads=2).read(image)
    model = ocr.OcrEngine(threads=2, templates=False).read(image)
    assert fast.stats["templated"] > 0
    # the same image is read the same way whatever the threads' timing
    again = ocr.OcrEngine(threads=2).read(image)
    assert [(ln.text, ln.box, ln.score) for ln in again.lines] == [
        (ln.text, ln.box, ln.score) for ln in fast.lines]
    assert (again.stats["recognised"], again.stats["templated"]) == (
        fast.stats["recognised"], fast.stats["templated"])
    one = ocr.OcrEngine(threads=1).read(image)
    assert {ln.text.replace(" ", "") for ln in one.lines} == {
        ln.text.replace(" ", "") for ln in fast.lines}
    assert fast.stats["recognised"] + fast.stats["templated"] == model.stats["recognised"]
    compact = {(ln.text.replace(" ", ""), ln.box) for ln in fast.lines}
    assert compact == {(ln.text.replace(" ", ""), ln.box) for ln in model.lines}
    read = " ".join(ln.text for ln in fast.lines)
    assert [v for _label, v in values if v not in read] == []


def test_digits_that_touch_are_taught_as_one_glyph_of_as_many_digits_as_its_width_holds() -> None:
    def glyph(x: int, w: int) -> ocr._Glyph:
        return ocr._Glyph((w, 12, 0, bytes([x])), x, w)

    singles = [glyph(9 * k, 7) for k in range(11)]
    assert ocr._spans(singles, "13812345678", spaced=False) == list("13812345678")
    touching = [*singles[:2], glyph(18, 16), *singles[4:]]  # "8" and "1" as one component
    assert ocr._spans(touching, "13812345678", spaced=False) == [
        "1", "3", "81", "2", "3", "4", "5", "6", "7", "8"]
    unclear = [*singles[:2], glyph(18, 12), *singles[4:]]  # 1.6 digits wide: 1 or 2?
    assert ocr._spans(unclear, "13812345678", spaced=False) is None
    assert ocr._spans(touching, "1381 2345678", spaced=True) is None
    assert ocr._spans(touching, "138-2345678", spaced=False) is None
    assert ocr._spans(touching, "138123456789", spaced=False) is None  # the widths hold 11


def test_small_digits_that_touch_are_read_from_the_glyphs_the_model_read() -> None:
    values = ["110101199003071233", "440305198511131229", "13811223344", "6222021234567890128"]
    crops = {v: _line_crop(v, fs=11) for v in values}
    glyphs = ocr.GlyphTemplates()
    for v in values:
        glyphs.learn(crops[v], v, 0.99)
    touching = [v for v in values if len(ocr._glyphs(crops[v]) or ()) < len(v)]
    assert touching  # at 11 px some digits of these touch
    assert [glyphs.read(crops[v]) for v in touching] == [(v, 0.99) for v in touching]
