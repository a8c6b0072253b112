"""Benchmark of image reading: recall, precision and speed of OCR on rendered teller screens.

    .venv/bin/python tests/bench/bench_ocr.py [--screens 6] [--naive 3] [--seed 7]
        [--scales 1,0.75,0.5,0.36 [--dpi-screens 2]]

1. renders teller screens itself (1920x1080 and 1366x768, alternately) with the Noto CJK fonts:
   a core-banking window with a customer form (证件号码 / 卡号 / 手机 beside their labels) and a
   transaction table, filled with synthetic valid values (resident IDs with their GB 11643 check
   character from `stdnum.cn.ric`, cards from the shared BIN table with a Luhn digit, mainland
   mobiles) and distractors (serial numbers, dates, amounts, landlines, teller numbers);
2. the truth of a screen is what `Scanner.scan_text` finds in the text that was drawn, row by row;
3. scans every screen through `guard.scan.images.scan_array` (text regions, recognise only the
   ones that can hold an identifier, worker process), then a few of them again with the engine's
   naive full-screen OCR (its own detector over the whole screen, every line recognised) in the same
   run, and prints recall per type, precision, median seconds per screen for both, the worker's
   CPU seconds per screen for both (from /proc: steadier than wall time on a shared, loaded
   machine), the model-free line finder's share of that CPU, the cost of an unchanged screen and
   of the same screen with one value edited (the tile cache), the worker's RSS, the parent's RSS
   before OCR existed and with the worker stopped, and the load average before and after;
4. with `--ab`, reads the same screens in this process four more ways, interleaved: every
   candidate value and every label beside one (the reading before labels were read on demand),
   labels only for values that need them, that with plain serial-number runs left out, and that
   with digits read from the glyphs the model has read in the screen (the default), printing
   CPU, the model's crops, the crops read from glyphs and whether the findings are the same;
5. with `--scales`, scores the same screens again downscaled by each factor (INTER_AREA: 0.5
   turns 1080p into 960x540, 1366x768 into 683x384), and 1366x768 screens rendered at 125 % DPI:
   recall per type, precision, median seconds and worker CPU per screen, per scale.
A script, not a test: it prints figures and asserts nothing.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import resource
import statistics
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

FONT_DIR = Path("/usr/share/fonts/opentype/noto")
FONT = FONT_DIR / "NotoSansCJK-Regular.ttc"
FONT_BOLD = FONT_DIR / "NotoSansCJK-Bold.ttc"
BINS_CSV = Path("/work/shared/data/cn-card-bins.csv")
TYPES = ("CN_RESIDENT_ID", "BANK_CARD", "CN_MOBILE")

_REGIONS = ("110101", "110105", "110108", "310104", "310115", "440305", "440106", "320102",
            "510104", "330106", "420106", "370202", "210102", "350203", "430102", "610113")
_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘"
_GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华建国志强文博"
_BRANCHES = ("北京分行营业部", "上海浦东支行", "深圳南山支行", "广州天河支行", "成都高新支行")
_STATUS = ("成功", "成功", "成功", "待复核", "已冲正")
_MENU = ("个人客户", "对公客户", "存款业务", "贷款业务", "银行卡", "电子银行", "代理业务",
         "查询打印", "凭证管理", "日终处理", "系统设置")


def resident_id(rng: random.Random) -> str:
    from stdnum.cn import ric

    while True:
        body = (rng.choice(_REGIONS) + f"{rng.randint(1950, 2004)}{rng.randint(1, 12):02d}"
                f"{rng.randint(1, 28):02d}{rng.randint(0, 999):03d}")
        number = body + ric.calc_check_digit(body + "0")
        if ric.is_valid(number):
            return number


def _bins() -> list[tuple[str, int]]:
    with BINS_CSV.open(encoding="utf-8") as fh:
        return [(r["bin"], int(r["length"])) for r in csv.DictReader(fh)
                if len(r["bin"]) >= 6 and r["type"] in ("DC", "CC")]


def bank_card(rng: random.Random, bins: list[tuple[str, int]]) -> str:
    from stdnum import luhn

    prefix, length = rng.choice(bins)
    body = prefix + "".join(rng.choice("0123456789") for _ in range(length - len(prefix) - 1))
    return body + luhn.calc_check_digit(body)


def mobile(rng: random.Random) -> str:
    head = rng.choice(("130", "135", "136", "138", "139", "150", "152", "158", "177", "186",
                       "187", "189", "199"))
    return head + "".join(rng.choice("0123456789") for _ in range(8))


def grouped(card: str) -> str:
    return " ".join(card[i:i + 4] for i in range(0, len(card), 4))


def name(rng: random.Random) -> str:
    return rng.choice(_SURNAMES) + "".join(rng.choice(_GIVEN) for _ in range(rng.randint(1, 2)))


@dataclass(frozen=True)
class Screen:
    """A rendered screen and the text rows that were drawn on it (the truth)."""

    image: object  # numpy array, BGR
    rows: tuple[str, ...]
    size: tuple[int, int]


def render_screen(rng: random.Random, width: int = 1920, height: int = 1080,
                  bins: list[tuple[str, int]] | None = None, dpi: float = 1.0) -> Screen:
    """One teller screen: title bar, menu, customer form, transaction table, status bar.

    `dpi`: the display's scale setting (1.25 for 125 %): text and rows that much larger.
    """
    import numpy as np
    from PIL import Image, ImageDraw, ImageFont

    bins = bins if bins is not None else _bins()
    big = width >= 1600
    fs = round((16 if big else 13) * dpi)
    font = ImageFont.truetype(str(FONT), fs)
    bold = ImageFont.truetype(str(FONT_BOLD), fs + 2)
    img = Image.new("RGB", (width, height), (236, 239, 244))
    d = ImageDraw.Draw(img)
    rows: list[str] = []

    def text(x: int, y: int, s: str, f: object = font, fill: tuple[int, int, int] = (20, 20, 20)
             ) -> None:
        d.text((x, y), s, font=f, fill=fill)  # type: ignore[arg-type]

    bar = int(fs * 2.2)
    d.rectangle((0, 0, width, bar), fill=(28, 62, 120))
    title = f"{rng.choice(('中国', '华夏', '东方'))}银行综合业务系统 V3.2 - 个人客户信息查询"
    text(12, (bar - fs) // 2 - 2, title, bold, (255, 255, 255))
    rows.append(title)
    menu_w = int(width * 0.11)
    y = bar + 10
    for item in _MENU:
        text(14, y, item)
        rows.append(item)
        y += int(fs * 2.1)
    x0 = menu_w + 20
    d.rectangle((menu_w, bar, width, height), fill=(250, 250, 252))
    # the customer form: three label/value columns
    cols = 3 if big else 2
    col_w = (width - x0 - 20) // cols
    form = [
        ("客户姓名：", name(rng)), ("证件类型：", "居民身份证"), ("证件号码：", resident_id(rng)),
        ("卡号：", rng.choice((bank_card(rng, bins), grouped(bank_card(rng, bins))))),
        ("手机：", mobile(rng)),
        ("联系电话：", f"0{rng.randint(10, 99)}-{rng.randint(6000000, 8999999)}"),
        ("开户日期：",
         f"20{rng.randint(10, 24)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"),
        ("开户网点：", rng.choice(_BRANCHES)),
        ("账户余额：", f"{rng.randint(100, 999999):,}.{rng.randint(0, 99):02d}"),
        ("客户号：", f"{rng.randint(10000000, 99999999)}"),
        ("业务流水号：",
         f"2024{rng.randint(10, 12)}{rng.randint(10, 28)}{rng.randint(10**7, 10**8 - 1)}"),
        ("手机号码：", mobile(rng)), ("备注：", "客户本人办理，已核验原件"),
        ("证件号码：", resident_id(rng)), ("借记卡号：", bank_card(rng, bins)),
    ]
    if not big:
        form = form[:12]
    y = bar + 16
    line_h = int(fs * 2.3)
    for i in range(0, len(form), cols):
        parts = []
        for c, (label, value) in enumerate(form[i:i + cols]):
            x = x0 + c * col_w
            text(x, y, label, font, (90, 90, 90))
            lw = int(d.textlength(label, font=font))
            vx = x + max(lw + 8, int(fs * 6))
            d.rectangle((vx - 4, y - 3, x + col_w - 30, y + fs + 6), outline=(180, 186, 196))
            text(vx, y, value)
            parts.append(f"{label}{value}")
        rows.append("\t".join(parts))
        y += line_h
    # the transaction table
    y += fs
    headers = ["序号", "交易日期", "交易流水号", "客户姓名", "证件号码", "卡号", "手机号码",
               "金额(元)", "状态"]
    widths = [0.04, 0.09, 0.15, 0.07, 0.17, 0.18, 0.11, 0.09, 0.06]
    if not big:
        headers.pop(2)
        widths.pop(2)
    table_w = width - x0 - 20
    xs = [x0]
    for w in widths[:-1]:
        xs.append(xs[-1] + int(w / sum(widths) * table_w))
    row_h = int(fs * 1.9)
    d.rectangle((x0, y - 4, width - 20, y + row_h - 6), fill=(222, 228, 238))
    for x, h in zip(xs, headers, strict=True):
        text(x + 4, y, h, bold)
    rows.append("\t".join(headers))
    y += row_h
    n = 0
    while y + row_h < height - bar - 4:
        n += 1
        card = bank_card(rng, bins)
        cells = [str(n), f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                 f"{rng.randint(10**13, 10**14 - 1)}", name(rng), resident_id(rng),
                 grouped(card) if rng.random() < 0.3 else card, mobile(rng),
                 f"{rng.randint(1, 99999):,}.{rng.randint(0, 99):02d}", rng.choice(_STATUS)]
        if not big:
            cells.pop(2)
        if n % 2 == 0:
            d.rectangle((x0, y - 4, width - 20, y + row_h - 6), fill=(244, 246, 250))
        for x, c in zip(xs, cells, strict=True):
            text(x + 4, y, c)
        rows.append("\t".join(cells))
        y += row_h
    status = (f"柜员号：{rng.randint(100000, 999999)}    终端号：T{rng.randint(1000, 9999)}    "
              f"网点：{rng.choice(_BRANCHES)}    2024-05-21 10:38:{rng.randint(10, 59)}")
    d.rectangle((0, height - bar, width, height), fill=(210, 214, 222))
    text(12, height - bar + (bar - fs) // 2 - 2, status)
    rows.append(status)
    bgr = np.ascontiguousarray(np.asarray(img)[:, :, ::-1])
    return Screen(bgr, tuple(rows), (width, height))


def truth(scanner: object, rows: tuple[str, ...]) -> set[tuple[str, str]]:
    """What the text detectors find in the rows that were drawn: (type, keyed hash) pairs."""
    out = set()
    for row in rows:
        for f in scanner.scan_text(row):  # type: ignore[attr-defined]
            if f.type in TYPES:
                out.add((f.type, f.hash))
    return out


def screens(n: int, seed: int) -> Iterator[Screen]:
    rng = random.Random(seed)
    bins = _bins()
    for i in range(n):
        w, h = ((1920, 1080), (1366, 768))[i % 2]
        yield render_screen(rng, w, h, bins)


def scaled(image: object, scale: float) -> object:
    """A screen as a smaller display shows it, or a grab sent at reduced size (INTER_AREA)."""
    import cv2

    h, w = image.shape[:2]  # type: ignore[attr-defined]
    return cv2.resize(image, (round(w * scale), round(h * scale)),  # type: ignore[call-overload]
                      interpolation=cv2.INTER_AREA)


def score_scales(rendered: list[Screen], scanner: object, worker: object, scales: list[float],
                 dpi_screens: int, seed: int) -> None:
    """Recall, precision, median seconds and worker CPU per screen, for each scale of the same
    screens, and for 1366x768 screens rendered at 125 % DPI (the truth is what was drawn)."""
    runs: list[tuple[str, list[tuple[object, Screen]]]] = []
    for scale in scales:
        runs.append((f"x{scale:g}", [(scaled(s.image, scale) if scale != 1 else s.image, s)
                                     for s in rendered]))
    if dpi_screens:
        rng = random.Random(seed + 125)
        bins = _bins()
        dpi = [render_screen(rng, 1366, 768, bins, dpi=1.25) for _ in range(dpi_screens)]
        runs.append(("1366x768@125%", [(s.image, s) for s in dpi]))
    print("\nper scale (the same screens downscaled), one row per size read:")
    for label, items in runs:
        by_size: dict[str, list[tuple[object, Screen]]] = {}
        for image, screen in items:
            size = f"{image.shape[1]}x{image.shape[0]}"  # type: ignore[attr-defined]
            by_size.setdefault(size, []).append((image, screen))
        for size, group in sorted(by_size.items(), key=lambda kv: -len(kv[0])):
            _score_group(label, size, group, scanner, worker)


def _score_group(label: str, size: str, items: list[tuple[object, Screen]], scanner: object,
                 worker: object) -> None:
    from guard.scan import images

    found = {t: 0 for t in TYPES}
    total = {t: 0 for t in TYPES}
    tp = fp = 0
    secs: list[float] = []
    cpus: list[float] = []
    for image, screen in items:
        want = truth(scanner, screen.rows)
        worker.ping()  # type: ignore[attr-defined]
        c0 = cpu_s(worker.pid)  # type: ignore[attr-defined]
        t0 = time.perf_counter()
        result = images.scan_array(image, scanner, ocr=worker)  # type: ignore[arg-type]
        secs.append(time.perf_counter() - t0)
        cpus.append(cpu_s(worker.pid) - c0)  # type: ignore[attr-defined]
        got = {(f.type, f.hash) for f in result.findings if f.type in TYPES}
        for t in TYPES:
            total[t] += sum(1 for w in want if w[0] == t)
            found[t] += sum(1 for w in want if w[0] == t and w in got)
        tp += len(got & want)
        fp += len(got - want)
    per_type = " ".join(f"{t.split('_')[-1]} {found[t]}/{total[t]}" for t in TYPES)
    print(f"  {label:14s} {size:>9s}: recall "
          f"{sum(found.values()) / max(1, sum(total.values())):.3f} ({per_type}), "
          f"precision {tp / max(1, tp + fp):.3f} ({fp} wrong), median "
          f"{statistics.median(secs):.2f} s/screen, worker CPU median "
          f"{statistics.median(cpus):.2f} s (n={len(items)})")


def rss_mb(pid: int | None = None) -> float:
    if pid is None:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def current_rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def cpu_s(pid: int | None) -> float:
    """User + system CPU seconds a process has used so far (its /proc stat)."""
    if pid is None:
        return float("nan")
    with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def edit_one_value(worker: object, image: object) -> dict[str, float]:
    """Read `image` with the right third of its first long digit line blanked (one value edited).

    The tile cache keys on a crop's pixels, so every other line comes from it; the cost is the
    line finder plus one crop.
    """
    import numpy as np

    lines = worker.read(image).lines  # type: ignore[attr-defined]
    digits = [ln for ln in lines if sum(c.isdigit() for c in ln.text) >= 11]
    edited = np.array(image, copy=True)
    x, y, w, h = digits[0].box
    edited[y:y + h, x + 2 * w // 3:x + w] = edited[y, max(0, x - 2)]  # the line's background
    t0 = time.perf_counter()
    read = worker.read(edited)  # type: ignore[attr-defined]
    return {"seconds": time.perf_counter() - t0, "recognised": read.stats.get("recognised", -1),
            "cached": read.stats.get("cached", -1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--screens", type=int, default=6, help="screens scanned with the fast path")
    ap.add_argument("--naive", type=int, default=2, help="screens of each size also read naively")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--ab", action="store_true",
                    help="also read the screens in this process as before this round (every "
                    "value and label), with labels only where needed, and the default")
    ap.add_argument("--scales", type=lambda v: [float(x) for x in v.split(",") if x],
                    default=[], metavar="0.75,0.5,0.36",
                    help="also score the same screens downscaled by these factors, and "
                    "1366x768 screens at 125 %% DPI (--dpi-screens of them)")
    ap.add_argument("--dpi-screens", type=int, default=2)
    args = ap.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")

    from guard.scan.engine import Scanner

    scanner = Scanner(key=b"bench-ocr-key-0123456789abcdef!!")
    rendered = list(screens(args.screens, args.seed))
    rss_before = current_rss_mb()

    from guard.scan import images, ocr_worker

    # naive full-screen OCR of one screen can pass a minute on a loaded 2-core machine
    worker = ocr_worker.OcrWorker(idle_s=120.0, timeout_s=600.0)
    found = {t: 0 for t in TYPES}
    total = {t: 0 for t in TYPES}
    true_pos = false_pos = 0
    times: dict[tuple[int, int], list[float]] = {}
    cpu: dict[tuple[int, int], list[float]] = {}
    naive_times: dict[tuple[int, int], list[float]] = {}
    naive_cpu: dict[tuple[int, int], list[float]] = {}
    regions_s: dict[tuple[int, int], list[float]] = {}
    for i, screen in enumerate(rendered):
        want = truth(scanner, screen.rows)
        worker.ping()  # started before the clock runs: a screen's cost, not the worker's start
        c0 = cpu_s(worker.pid)
        t0 = time.perf_counter()
        result = images.scan_array(screen.image, scanner, ocr=worker)  # type: ignore[arg-type]
        dt = time.perf_counter() - t0
        dc = cpu_s(worker.pid) - c0
        times.setdefault(screen.size, []).append(dt)
        cpu.setdefault(screen.size, []).append(dc)
        regions_s.setdefault(screen.size, []).append(float(result.stats.get("regions_s", 0.0)))
        got = {(f.type, f.hash) for f in result.findings if f.type in TYPES}
        for t in TYPES:
            total[t] += sum(1 for w in want if w[0] == t)
            found[t] += sum(1 for w in want if w[0] == t and w in got)
        true_pos += len(got & want)
        false_pos += len(got - want)
        print(f"screen {i} {screen.size[0]}x{screen.size[1]}: {dt:.2f} s, "
              f"worker CPU {dc:.2f} s, "
              f"{len(got & want)}/{len(want)} found, {len(got - want)} wrong, "
              f"{result.stats.get('recognised', '?')} of {result.stats.get('regions', '?')} "
              f"regions recognised ({result.stats.get('candidates', '?')} values, "
              f"{result.stats.get('labels', '?')} labels read, "
              f"{result.stats.get('labels_skipped', '?')} not needed)")
    fast_rss = worker.peak_rss_mb()
    if args.scales:
        score_scales(rendered, scanner, worker, args.scales, args.dpi_screens, args.seed)
    # the same screens again: unchanged regions come from the tile cache
    t0 = time.perf_counter()
    images.scan_array(rendered[0].image, scanner, ocr=worker)  # type: ignore[arg-type]
    repeat = time.perf_counter() - t0
    edited = edit_one_value(worker, rendered[0].image)
    for size in sorted(times, reverse=True):
        for screen in [s for s in rendered if s.size == size][: args.naive]:
            c0 = cpu_s(worker.pid)
            t0 = time.perf_counter()
            worker.read(screen.image, mode="full")  # type: ignore[arg-type]
            naive_times.setdefault(size, []).append(time.perf_counter() - t0)
            naive_cpu.setdefault(size, []).append(cpu_s(worker.pid) - c0)
    worker_rss = worker.peak_rss_mb()
    worker.stop()
    rss_after = current_rss_mb()

    print()
    for t in TYPES:
        print(f"recall {t:15s} {found[t]:4d}/{total[t]:4d} = {found[t] / max(1, total[t]):.3f}")
    all_found, all_total = sum(found.values()), sum(total.values())
    print(f"recall all             {all_found:4d}/{all_total:4d} = "
          f"{all_found / max(1, all_total):.3f}")
    print(f"precision              {true_pos:4d}/{true_pos + false_pos:4d} = "
          f"{true_pos / max(1, true_pos + false_pos):.3f}")
    for size in sorted(times, reverse=True):
        fast = statistics.median(times[size])
        naive = statistics.median(naive_times[size]) if naive_times.get(size) else float("nan")
        print(f"{size[0]}x{size[1]}: median {fast:.2f} s/screen (n={len(times[size])}), naive "
              f"full-screen OCR {naive:.2f} s (n={len(naive_times.get(size, []))}), "
              f"{naive / fast:.1f}x faster")
        fast_c = statistics.median(cpu[size])
        naive_c = (statistics.median(naive_cpu[size]) if naive_cpu.get(size)
                   else float("nan"))
        # CPU seconds of the worker hold better than wall time on a shared, loaded machine
        print(f"{size[0]}x{size[1]}: worker CPU median {fast_c:.2f} s/screen, naive "
              f"{naive_c:.2f} s, {naive_c / fast_c:.1f}x less CPU")
    for size in sorted(regions_s, reverse=True):
        # the model-free line finder; the rest of the worker's CPU is the recognition model
        print(f"{size[0]}x{size[1]}: finding text lines (no model) median "
              f"{statistics.median(regions_s[size]) * 1000:.0f} ms/screen wall, "
              f"{statistics.median(regions_s[size]) / statistics.median(cpu[size]):.1%} of the "
              "worker CPU per screen")
    print(f"repeat of an unchanged screen (tile cache): {repeat:.2f} s")
    print(f"the same screen with one value edited: {edited['seconds']:.2f} s, "
          f"{edited['recognised']} crop(s) recognised, {edited['cached']} from the tile cache")
    print(f"worker peak RSS {fast_rss:.0f} MB reading with the fast path, {worker_rss:.0f} MB "
          "once the naive pipeline (detection + classifier models) was loaded too")
    print(f"parent RSS before OCR {rss_before:.0f} MB, with the worker stopped {rss_after:.0f} MB")
    if args.ab:
        compare_readings(rendered, scanner)
    print(f"load average after: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")


def compare_readings(rendered: list[Screen], scanner: object) -> None:
    """Every candidate value and every label beside one, labels read only where needed, that
    plus serial numbers left out, and that plus digits read from the glyphs the model has read
    (`ocr.GlyphTemplates`; the default), on the same screens in this process, interleaved screen
    by screen so all see the same load. Crops counts the model's."""
    from guard.scan import images, ocr

    class InProcess:
        def __init__(self, engine: ocr.OcrEngine) -> None:
            self.engine = engine

        def read(self, image: object, mode: str = "fast") -> object:
            return self.engine.read(image, mode)  # type: ignore[arg-type]

    engines = {
        "every value+label": ocr.OcrEngine(threads=2, cache_entries=0, all_labels=True,
                                           skip_runs=False, templates=False),
        "labels when needed": ocr.OcrEngine(threads=2, cache_entries=0, skip_runs=False,
                                            templates=False),
        "+ serials left out": ocr.OcrEngine(threads=2, cache_entries=0, templates=False),
        "+ digits read from their glyphs": ocr.OcrEngine(threads=2, cache_entries=0),
    }
    for engine in engines.values():
        engine.read(rendered[0].image)  # type: ignore[arg-type]  # models loaded off the clock
    cpu: dict[str, dict[tuple[int, int], list[float]]] = {name: {} for name in engines}
    crops: dict[str, dict[tuple[int, int], list[int]]] = {name: {} for name in engines}
    templated: dict[str, dict[tuple[int, int], list[int]]] = {name: {} for name in engines}
    found: dict[str, list[set[tuple[str, str, float]]]] = {name: [] for name in engines}
    for screen in rendered:
        for name, engine in engines.items():
            c0 = time.process_time()
            result = images.scan_array(screen.image, scanner,  # type: ignore[arg-type]
                                       ocr=InProcess(engine))  # type: ignore[arg-type]
            cpu[name].setdefault(screen.size, []).append(time.process_time() - c0)
            crops[name].setdefault(screen.size, []).append(int(result.stats["recognised"]))
            templated[name].setdefault(screen.size, []).append(
                int(result.stats.get("templated", 0)))
            found[name].append({(f.type, f.hash, f.score) for f in result.findings})
    print(f"in-process, the same screens read {len(engines)} ways (the last is the default):")
    for name in engines:
        for size in sorted(cpu[name], reverse=True):
            print(f"  {name:18s} {size[0]}x{size[1]}: CPU median "
                  f"{statistics.median(cpu[name][size]):.2f} s/screen, crops median "
                  f"{statistics.median(crops[name][size]):.0f}, read from glyphs "
                  f"{statistics.median(templated[name][size]):.0f}")
    base, *others = engines
    for name in others:
        a, b = found[base], found[name]
        same_hits = sum({x[:2] for x in p} == {x[:2] for x in q}
                        for p, q in zip(a, b, strict=True))
        same_scores = sum(p == q for p, q in zip(a, b, strict=True))
        print(f"  {name} vs {base}: screens with the same findings (type, hash) "
              f"{same_hits}/{len(a)}, with the same confidences too {same_scores}/{len(a)} "
              "(a label read raises a value's confidence)")


if __name__ == "__main__":
    main()
