"""Benchmark: score `teller-guard scan` on images shaped like what a branch's PCs really hold.

A second, independent held-out set for the image reader, written from the outside (README,
`scan --help` and the CLI's output only): Windows-style text (ClearType fringes, 12 px bitmap-like
SimSun, YaHei-like sans), a green-screen core-banking terminal, a browser banking page, an Excel
sheet, Win+Shift+S snips, a WeChat-like chat, a PDF statement at 100 % and 75 %, phone photos and
300 dpi scans of printed forms, a tiled watermark, remote-desktop degradation, and 4K at 200 % next
to 1366x768. Every customer identifier drawn is in the image's truth list; the distractors
(serials, order and voucher numbers, amounts, dates, landlines, checksum look-alikes, pre-masked
values, IP addresses, postcodes, cut-off values) must not be reported.

The images are written to a folder, the real CLI runs once over it, and findings are matched to
truth by (type, last four characters of the masked value), per image. Prints recall per type,
precision (with the distractor kinds that caused false positives, masked), seconds per image, and
every miss as (shape, image, type, last four, font/size). Asserts nothing. Run:

    .venv/bin/python tests/bench/bench_ocr_wild.py [--seed N] [--per-shape N] [--shapes a,b]
        [--out DIR] [--keep]
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

REPO = Path(__file__).resolve().parents[2]
BINS_CSV = REPO / "resources" / "data" / "cn-card-bins.csv"

NOTO = Path("/usr/share/fonts/opentype/noto")
URW = Path("/usr/share/fonts/opentype/urw-base35")
DEJAVU = Path("/usr/share/fonts/truetype/dejavu")
# name -> (file, face index). The CJK faces stand in for the Windows fonts a branch PC has:
# serif for SimSun (宋体), sans for Microsoft YaHei (微软雅黑); the URW and DejaVu faces for
# Arial, Times, Courier and Tahoma-like UI digits.
FONT_FILES: dict[str, tuple[Path, int]] = {
    "sans": (NOTO / "NotoSansCJK-Regular.ttc", 2),
    "sans-bold": (NOTO / "NotoSansCJK-Bold.ttc", 2),
    "serif": (NOTO / "NotoSerifCJK-Regular.ttc", 2),
    "serif-bold": (NOTO / "NotoSerifCJK-Bold.ttc", 2),
    "mono-cjk": (NOTO / "NotoSansCJK-Regular.ttc", 7),
    "dejavu-mono": (DEJAVU / "DejaVuSansMono.ttf", 0),
    "dejavu": (DEJAVU / "DejaVuSans.ttf", 0),
    "arial": (URW / "NimbusSans-Regular.otf", 0),
    "arial-narrow": (URW / "NimbusSansNarrow-Regular.otf", 0),
    "times": (URW / "NimbusRoman-Regular.otf", 0),
    "courier": (URW / "NimbusMonoPS-Regular.otf", 0),
    "courier-bold": (URW / "NimbusMonoPS-Bold.otf", 0),
}
_font_cache: dict[tuple[str, int], ImageFont.FreeTypeFont] = {}


def font(name: str, px: int) -> ImageFont.FreeTypeFont:
    key = (name, max(6, int(px)))
    if key not in _font_cache:
        path, index = FONT_FILES[name]
        _font_cache[key] = ImageFont.truetype(str(path), key[1], index=index)
    return _font_cache[key]


# ---------------------------------------------------------------------------------------------
# identifiers and distractors

ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK = "10X98765432"
REGIONS = (
    "110101 110105 110108 110106 120101 120104 130102 130104 140105 150102 210102 210202 "
    "220102 230103 310101 310104 310105 310112 310115 320102 320106 320505 320583 330102 "
    "330106 330212 340104 350203 350102 360102 370102 370202 410105 420102 420106 430104 "
    "430111 440103 440106 440304 440305 440306 441900 450103 460106 500103 500112 510104 "
    "510107 520102 530102 610113 620102 650102"
).split()
MOBILE_PREFIXES = (
    "130 131 132 133 134 135 136 137 138 139 145 147 150 151 152 153 155 156 157 158 159 "
    "166 172 173 175 176 177 178 180 181 182 183 184 185 186 187 188 189 191 193 195 198 199"
).split()
SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖"
    "田董袁潘于蒋蔡余杜叶程苏魏吕丁"
)
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红建国志文斌辉鹏宇浩然欣怡子涵梓轩"


def id_check(body17: str) -> str:
    return ID_CHECK[sum(int(c) * w for c, w in zip(body17, ID_WEIGHTS, strict=True)) % 11]


def make_id(rng: random.Random) -> str:
    year = rng.randint(1950, 2004)
    month = rng.randint(1, 12)
    day = rng.randint(1, 28)
    body = f"{rng.choice(REGIONS)}{year:04d}{month:02d}{day:02d}{rng.randint(0, 999):03d}"
    return body + id_check(body)


def luhn_digit(body: str) -> str:
    total = 0
    for i, c in enumerate(reversed(body)):
        d = int(c)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def luhn_ok(number: str) -> bool:
    return luhn_digit(number[:-1]) == number[-1]


def _load_bins() -> list[tuple[str, int]]:
    with BINS_CSV.open(encoding="utf-8") as fh:
        rows = [(r["bin"], int(r["length"])) for r in csv.DictReader(fh)]
    return [(b, n) for b, n in rows if 16 <= n <= 19 and len(b) < n]


BINS = _load_bins()


def make_card(rng: random.Random) -> str:
    prefix, length = rng.choice(BINS)
    body = prefix + "".join(rng.choice("0123456789") for _ in range(length - len(prefix) - 1))
    return body + luhn_digit(body)


def make_mobile(rng: random.Random) -> str:
    return rng.choice(MOBILE_PREFIXES) + "".join(rng.choice("0123456789") for _ in range(8))


def make_name(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2, 2))))


def digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(n))


def _safe_number(rng: random.Random, make: Callable[[], str]) -> str:
    """A numeric distractor that is none of the reported identifiers by its own checks."""
    for _ in range(100):
        s = make()
        d = s.replace(" ", "").replace("-", "")
        if not d.isdigit():
            return s
        if 16 <= len(d) <= 19 and luhn_ok(d):
            continue
        if len(d) == 18 and id_check(d[:17]) == d[17]:
            continue
        if len(d) == 11 and d[0] == "1" and d[1] in "3456789":
            continue
        return s
    raise RuntimeError("could not draw a safe distractor")


def bad_id(rng: random.Random) -> str:
    good = make_id(rng)
    wrong = rng.choice([c for c in ID_CHECK if c != good[-1]])
    return good[:17] + wrong


def bad_card(rng: random.Random) -> str:
    good = make_card(rng)
    return good[:-1] + str((int(good[-1]) + rng.randint(1, 9)) % 10)


def distractor(rng: random.Random, kind: str) -> str:
    if kind == "serial":
        return _safe_number(rng, lambda: "2024" + digits(rng, rng.choice((16, 18, 20))))
    if kind == "order":
        return rng.choice(("DD", "JY", "")) + _safe_number(
            rng,
            lambda: "2024" + f"{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}" + digits(rng, 10),
        )
    if kind == "voucher":
        return _safe_number(rng, lambda: "0" + digits(rng, rng.choice((7, 9, 11))))
    if kind == "amount":
        v = rng.choice((rng.uniform(1, 999), rng.uniform(1000, 99999), rng.uniform(1e5, 9e6)))
        return f"{v:,.2f}"
    if kind == "date":
        y, mo, d = rng.randint(2019, 2025), rng.randint(1, 12), rng.randint(1, 28)
        return rng.choice(
            (
                f"{y}-{mo:02d}-{d:02d}",
                f"{y}-{mo:02d}-{d:02d} "
                f"{rng.randint(8, 17):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}",
                f"{y}{mo:02d}{d:02d}",
                f"{y}/{mo:02d}/{d:02d}",
            )
        )
    if kind == "landline":
        area = rng.choice(("010", "021", "020", "0755", "0571", "025", "027", "028", "023"))
        n = digits(rng, 8 if len(area) == 3 else rng.choice((7, 8)))
        return rng.choice((f"{area}-{n}", f"({area}){n[:4]} {n[4:]}", f"{area}{n}"))
    if kind == "bad-id":
        return bad_id(rng)
    if kind == "bad-card":
        return bad_card(rng)
    if kind == "premasked":
        c, m, i = make_card(rng), make_mobile(rng), make_id(rng)
        return rng.choice(
            (
                c[:4] + "****" + c[-4:],
                c[:6] + "*" * (len(c) - 10) + c[-4:],
                m[:3] + "****" + m[-4:],
                i[:6] + "********" + i[-4:],
                i[:3] + "*" * 11 + i[-4:],
            )
        )
    if kind == "ip":
        return rng.choice(("10", "192.168", "172.16")) + "".join(
            f".{rng.randint(1, 254)}" for _ in range(3 if rng.random() < 0.4 else 2)
        )
    if kind == "postcode":
        return rng.choice(("100", "200", "510", "518", "310", "610", "430")) + digits(rng, 3)
    raise ValueError(kind)


def fmt_card(card: str, grouped: bool) -> str:
    return " ".join(card[i : i + 4] for i in range(0, len(card), 4)) if grouped else card


def fmt_mobile(m: str, style: int) -> str:
    return (m, f"{m[:3]} {m[3:7]} {m[7:]}", f"{m[:3]}-{m[3:7]}-{m[7:]}", f"+86 {m}")[style]


# ---------------------------------------------------------------------------------------------
# drawing with bookkeeping


@dataclasses.dataclass(frozen=True)
class Truth:
    type: str
    value: str
    font: str
    px: int
    shown: str  # how it was drawn: "plain", "grouped", "dashed" ...

    @property
    def key(self) -> tuple[str, str]:
        return (self.type, self.value[-4:].upper())


@dataclasses.dataclass(frozen=True)
class Decoy:
    kind: str
    value: str

    @property
    def last4(self) -> str:
        d = "".join(c for c in self.value if c.isdigit() or c in "xX*")
        return d[-4:].upper()


@dataclasses.dataclass
class Drawn:
    truths: list[Truth] = dataclasses.field(default_factory=list)
    decoys: list[Decoy] = dataclasses.field(default_factory=list)
    boxes: list[tuple[object, tuple[int, int, int, int]]] = dataclasses.field(default_factory=list)


def _cleartype_mask(text: str, f: ImageFont.FreeTypeFont) -> np.ndarray:
    """Coverage of `text` at three times the horizontal resolution, filtered like ClearType."""
    big = font_for_path(f, f.size * 3)
    _, _, right, bottom = big.getbbox(text)
    w3, h3 = right + 6, max(bottom, 1) + 3
    m = Image.new("L", (w3, h3), 0)
    ImageDraw.Draw(m).text((0, 0), text, font=big, fill=255)
    h = max(1, round(h3 / 3))
    w = max(1, math.ceil(w3 / 3))
    # rows at 1x, columns at 3x (one per sub-pixel)
    m = m.resize((w * 3, h), Image.Resampling.LANCZOS)
    a = np.asarray(m, dtype=np.float32) / 255.0
    k = np.array([1, 2, 3, 2, 1], dtype=np.float32) / 9.0
    a = cv2.filter2D(a, -1, k.reshape(1, 5), borderType=cv2.BORDER_CONSTANT)
    return a.reshape(h, w, 3)


_path_fonts: dict[tuple[str, int, int], ImageFont.FreeTypeFont] = {}


def font_for_path(f: ImageFont.FreeTypeFont, px: int) -> ImageFont.FreeTypeFont:
    key = (str(f.path), int(f.index), int(px))
    if key not in _path_fonts:
        _path_fonts[key] = ImageFont.truetype(str(f.path), int(px), index=int(f.index))
    return _path_fonts[key]


class Painter:
    """Draws text the way a chosen renderer would, and records what each run of text was."""

    def __init__(self, img: Image.Image, mode: str = "gray") -> None:
        self.img = img
        self.draw = ImageDraw.Draw(img)
        self.mode = mode  # gray (antialiased), cleartype (sub-pixel), bitmap (no antialiasing)
        self.out = Drawn()

    def width(self, text: str, fname: str, px: int) -> int:
        return int(font(fname, px).getlength(text))

    def text(
        self,
        xy: tuple[float, float],
        text: str,
        fname: str,
        px: int,
        fill: tuple[int, int, int] = (0, 0, 0),
        mode: str | None = None,
    ) -> tuple[int, int, int, int]:
        f = font(fname, px)
        mode = mode or self.mode
        x, y = int(xy[0]), int(xy[1])
        if mode == "cleartype":
            a = _cleartype_mask(text, f)
            h, w = a.shape[:2]
            W, H = self.img.size
            x0, y0, x1, y1 = max(0, x), max(0, y), min(W, x + w), min(H, y + h)
            if x1 > x0 and y1 > y0:
                sub = a[y0 - y : y1 - y, x0 - x : x1 - x]
                region = np.asarray(self.img.crop((x0, y0, x1, y1)), dtype=np.float32)
                fg = np.array(fill, dtype=np.float32)
                mixed = region * (1 - sub) + fg * sub
                self.img.paste(Image.fromarray(mixed.clip(0, 255).astype(np.uint8)), (x0, y0))
        else:
            self.draw.fontmode = "1" if mode == "bitmap" else "L"
            self.draw.text((x, y), text, font=f, fill=fill)
            self.draw.fontmode = "L"
        # the ink's box, not the line's: a snip or a scrolled view may cut the empty space above
        left, top, right, bottom = f.getbbox(text)
        return (x + left, y + top, max(1, right - left), max(1, bottom - top))

    def value(
        self,
        xy: tuple[float, float],
        kind: str,
        raw: str,
        shown: str,
        fname: str,
        px: int,
        fill: tuple[int, int, int] = (0, 0, 0),
        how: str = "plain",
    ) -> tuple[int, int, int, int]:
        box = self.text(xy, shown, fname, px, fill)
        t = Truth(kind, raw, fname, px, f"{how}/{self.mode}")
        self.out.truths.append(t)
        self.out.boxes.append((t, box))
        return box

    def decoy(
        self,
        xy: tuple[float, float],
        kind: str,
        shown: str,
        fname: str,
        px: int,
        fill: tuple[int, int, int] = (0, 0, 0),
    ) -> tuple[int, int, int, int]:
        box = self.text(xy, shown, fname, px, fill)
        d = Decoy(kind, shown)
        self.out.decoys.append(d)
        self.out.boxes.append((d, box))
        return box

    def rect(
        self,
        box: tuple[float, float, float, float],
        fill: object = None,
        outline: object = None,
        width: int = 1,
    ) -> None:
        self.draw.rectangle([int(v) for v in box], fill=fill, outline=outline, width=width)


class People:
    """Invented customers; no two in one image share a type and last four characters."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.used: set[tuple[str, str]] = set()

    def _fresh(self, kind: str, make: Callable[[random.Random], str]) -> str:
        while True:
            v = make(self.rng)
            if (kind, v[-4:]) not in self.used:
                self.used.add((kind, v[-4:]))
                return v

    def id(self) -> str:
        return self._fresh("CN_RESIDENT_ID", make_id)

    def card(self) -> str:
        return self._fresh("BANK_CARD", make_card)

    def mobile(self) -> str:
        return self._fresh("CN_MOBILE", make_mobile)


KIND_LABELS = {
    "serial": "交易流水号",
    "order": "订单编号",
    "voucher": "凭证号码",
    "amount": "交易金额",
    "date": "交易日期",
    "landline": "联系电话",
    "bad-id": "原证件号",
    "bad-card": "原卡号",
    "premasked": "关联账户",
    "ip": "终端地址",
    "postcode": "邮政编码",
}
DECOY_KINDS = tuple(KIND_LABELS)


# ---------------------------------------------------------------------------------------------
# screens (k = display scale: 1 at 100 %, 2 at 200 %)


def desktop(W: int, H: int, rng: random.Random) -> Image.Image:
    top = np.array(rng.choice(((0, 84, 166), (10, 60, 120), (40, 90, 60))), dtype=np.float32)
    ramp = np.linspace(0.7, 1.15, H, dtype=np.float32)[:, None, None]
    arr = np.clip(top[None, None, :] * ramp, 0, 255).repeat(W, axis=1).astype(np.uint8)
    return Image.fromarray(arr)


def taskbar(p: Painter, W: int, H: int, k: int, rng: random.Random) -> None:
    h = 40 * k
    p.rect((0, H - h, W, H), fill=(32, 32, 40))
    for i in range(6):
        p.rect(
            (10 * k + i * 48 * k, H - h + 6 * k, 10 * k + i * 48 * k + 32 * k, H - 8 * k),
            fill=rng.choice(((70, 130, 200), (200, 120, 40), (60, 160, 90), (190, 60, 60))),
        )
    p.text(
        (W - 90 * k, H - h + 4 * k),
        f"{rng.randint(8, 17):02d}:{rng.randint(0, 59):02d}",
        "sans",
        12 * k,
        (230, 230, 230),
    )
    p.text(
        (W - 100 * k, H - h + 20 * k), distractor(rng, "date")[:10], "sans", 12 * k, (230, 230, 230)
    )


def title_bar(
    p: Painter, x: int, y: int, w: int, k: int, title: str, colour: tuple[int, int, int]
) -> int:
    h = 30 * k
    p.rect((x, y, x + w, y + h), fill=colour)
    p.text((x + 10 * k, y + 7 * k), title, "sans", 12 * k, (255, 255, 255), mode="gray")
    for i, glyph in enumerate(("×", "□", "—")):
        p.text(
            (x + w - (i + 1) * 40 * k + 14 * k, y + 6 * k),
            glyph,
            "sans",
            13 * k,
            (255, 255, 255),
            mode="gray",
        )
    return y + h


def form_screen(
    rng: random.Random, W: int, H: int, k: int, mode: str, label_font: str, value_font: str, px: int
) -> tuple[Image.Image, Drawn]:
    """A Windows client form of a core-banking system (个人客户信息维护)."""
    img = desktop(W, H, rng)
    p = Painter(img, mode)
    people = People(rng)
    wx, wy = 20 * k, 14 * k
    ww, wh = W - 40 * k, H - 70 * k
    p.rect((wx, wy, wx + ww, wy + wh), fill=(240, 240, 240), outline=(100, 100, 100))
    y = title_bar(p, wx, wy, ww, k, "综合业务系统 - 个人客户信息维护 [交易码 0102]", (0, 90, 160))
    for i, m in enumerate(("文件(F)", "编辑(E)", "查询(Q)", "交易(T)", "帮助(H)")):
        p.text((wx + 10 * k + i * 70 * k, y + 5 * k), m, label_font, px, (0, 0, 0))
    y += 26 * k
    p.rect((wx, y, wx + ww, y + 34 * k), fill=(228, 228, 228))
    for i in range(9):
        p.rect(
            (wx + 8 * k + i * 36 * k, y + 4 * k, wx + 34 * k + i * 36 * k, y + 30 * k),
            outline=(160, 160, 160),
            fill=(250, 250, 250),
        )
    y += 46 * k
    col_w = (ww - 60 * k) // 2
    row_h = max(28, int(px * 2.3))
    label_w = 92 * k
    box_w = min(col_w - label_w - 20 * k, 260 * k)

    def field(cx: int, cy: int, label: str) -> tuple[int, int]:
        p.text((cx, cy + 4 * k), label, label_font, px, (0, 0, 0))
        bx = cx + label_w
        p.rect(
            (bx, cy, bx + box_w, cy + px + 10 * k), fill=(255, 255, 255), outline=(122, 122, 122)
        )
        return bx + 4 * k, cy + (px + 10 * k - px) // 2 - k

    sections = []
    for c in range(rng.randint(2, 3)):
        sections.append((("客户基本信息", "代理人信息", "联系人信息")[c], c))
    for title, c in sections:
        if y > wy + wh - 200 * k:
            break
        p.text((wx + 24 * k, y), title, label_font, px, (0, 0, 140))
        gy0 = y + px // 2
        y += row_h
        fields: list[tuple[str, Callable[[int, int], None]]] = []
        name = make_name(rng)
        rid, card, mob = people.id(), people.card(), people.mobile()
        fields.append(("客户姓名", lambda x, yy, n=name: p.text((x, yy), n, label_font, px)))
        fields.append(("证件类型", lambda x, yy: p.text((x, yy), "101-居民身份证", label_font, px)))
        fields.append(
            (
                "证件号码",
                lambda x, yy, v=rid: p.value((x, yy), "CN_RESIDENT_ID", v, v, value_font, px),
            )
        )
        fields.append(
            (
                "证件有效期",
                lambda x, yy: p.decoy(
                    (x, yy), "date", distractor(rng, "date")[:10], value_font, px
                ),
            )
        )
        fields.append(
            ("手机号码", lambda x, yy, v=mob: p.value((x, yy), "CN_MOBILE", v, v, value_font, px))
        )
        fields.append(
            (
                "联系电话",
                lambda x, yy: p.decoy(
                    (x, yy), "landline", distractor(rng, "landline"), value_font, px
                ),
            )
        )
        fields.append(
            ("借记卡号", lambda x, yy, v=card: p.value((x, yy), "BANK_CARD", v, v, value_font, px))
        )
        fields.append(
            (
                "邮政编码",
                lambda x, yy: p.decoy(
                    (x, yy), "postcode", distractor(rng, "postcode"), value_font, px
                ),
            )
        )
        if c == 0:
            for kind in rng.sample(
                ("serial", "voucher", "amount", "bad-id", "bad-card", "premasked", "order"), 4
            ):
                fields.append(
                    (
                        KIND_LABELS[kind],
                        lambda x, yy, kd=kind: p.decoy(
                            (x, yy), kd, distractor(rng, kd), value_font, px
                        ),
                    )
                )
        for i, (label, draw) in enumerate(fields):
            cx = wx + 30 * k + (i % 2) * (col_w + 20 * k)
            draw(*field(cx, y, label))
            if i % 2 == 1:
                y += row_h
        if len(fields) % 2:
            y += row_h
        p.rect((wx + 14 * k, gy0, wx + ww - 14 * k, y + 4 * k), outline=(190, 190, 190))
        y += 24 * k
    by = min(y + 10 * k, wy + wh - 80 * k)
    for i, b in enumerate(("确定(O)", "取消(C)", "打印(P)", "影像(I)")):
        bx = wx + ww - (4 - i) * 100 * k
        p.rect((bx, by, bx + 86 * k, by + 28 * k), fill=(225, 225, 225), outline=(112, 112, 112))
        p.text((bx + 18 * k, by + 6 * k), b, label_font, px)
    sy = wy + wh - 24 * k
    p.rect((wx, sy, wx + ww, wy + wh), fill=(225, 225, 225))
    p.text(
        (wx + 8 * k, sy + 4 * k),
        f"柜员: T{rng.randint(10000, 99999)}  机构: 3301{rng.randint(100, 999)}  终端: ",
        label_font,
        px,
    )
    p.decoy(
        (wx + 8 * k + p.width("柜员: T00000  机构: 3301000  终端: ", label_font, px), sy + 4 * k),
        "ip",
        distractor(rng, "ip"),
        value_font,
        px,
    )
    p.decoy((wx + ww - 180 * k, sy + 4 * k), "date", distractor(rng, "date"), value_font, px)
    taskbar(p, W, H, k, rng)
    return img, p.out


def terminal_screen(rng: random.Random, W: int, H: int, colour: str) -> tuple[Image.Image, Drawn]:
    """A legacy core-banking host session in a terminal emulator: fixed columns, one colour."""
    fg = {"green": (60, 255, 60), "white": (220, 220, 220), "amber": (255, 176, 0)}[colour]
    img = Image.new("RGB", (W, H), (0, 0, 0))
    p = Painter(img, rng.choice(("gray", "bitmap")))
    people = People(rng)
    px = rng.choice((16, 18, 20))
    cw = int(font("mono-cjk", px).getlength("0"))
    lh = int(px * 1.35)
    fname = "mono-cjk"

    def put(col: int, row: int) -> tuple[int, int]:
        return 8 + col * cw, 30 + row * lh

    p.rect((0, 0, W, 26), fill=(200, 200, 200))
    p.text(
        (6, 4),
        "PCOMM - 会话 A - [24 x 80]   文件  编辑  传送  外观  通讯  操作",
        "sans",
        12,
        (0, 0, 0),
        mode="gray",
    )
    p.text(
        put(0, 0),
        f"{rng.randint(1000, 9999)}  个人账户综合查询          "
        f"交易码:3112  柜员:{rng.randint(100000, 999999)}",
        fname,
        px,
        fg,
    )
    p.decoy(put(62, 0), "date", distractor(rng, "date")[:10], fname, px, fg)
    p.text(put(0, 1), "-" * 78, fname, px, fg)
    name = make_name(rng)
    rid, card, mob = people.id(), people.card(), people.mobile()
    p.text(put(0, 2), "卡  号:", fname, px, fg)
    p.value(put(9, 2), "BANK_CARD", card, card, fname, px, fg)
    p.text(put(34, 2), f"户  名: {name}", fname, px, fg)
    p.text(put(0, 3), "证件号:", fname, px, fg)
    p.value(put(9, 3), "CN_RESIDENT_ID", rid, rid, fname, px, fg)
    p.text(put(34, 3), "移动电话:", fname, px, fg)
    p.value(put(44, 3), "CN_MOBILE", mob, mob, fname, px, fg)
    p.text(put(0, 4), "开户行:", fname, px, fg)
    p.text(put(9, 4), f"3301{rng.randint(100, 999)}", fname, px, fg)
    p.text(put(34, 4), "余  额:", fname, px, fg)
    p.decoy(put(44, 4), "amount", distractor(rng, "amount"), fname, px, fg)
    p.text(put(0, 5), "-" * 78, fname, px, fg)
    p.text(put(0, 6), "序 交易日期 流水号               金额          对方账号", fname, px, fg)
    row = 7
    max_rows = (H - 30) // lh - 4
    while row < max_rows:
        p.text(put(0, row), f"{row - 6:02d}", fname, px, fg)
        p.decoy(
            put(3, row),
            "date",
            "".join(c for c in distractor(rng, "date") if c.isdigit())[:8],
            fname,
            px,
            fg,
        )
        p.decoy(put(12, row), "serial", distractor(rng, "serial")[:20], fname, px, fg)
        amt = distractor(rng, "amount")
        p.decoy(put(46 - len(amt), row), "amount", amt, fname, px, fg)
        r = rng.random()
        if r < 0.5:
            c = people.card()
            p.value(put(48, row), "BANK_CARD", c, c, fname, px, fg)
        elif r < 0.65:
            p.decoy(put(48, row), "premasked", distractor(rng, "premasked"), fname, px, fg)
        elif r < 0.8:
            p.decoy(put(48, row), "bad-card", bad_card(rng), fname, px, fg)
        else:
            p.text(put(48, row), "现金", fname, px, fg)
        row += 1
    p.text(put(0, row), "-" * 78, fname, px, fg)
    p.text(
        put(0, row + 1), "PF3=返回 PF7=上页 PF8=下页 PF12=打印      共 3 页 第 1 页", fname, px, fg
    )
    p.text(put(0, row + 2), "联系人电话:", fname, px, fg)
    p.decoy(put(12, row + 2), "landline", distractor(rng, "landline"), fname, px, fg)
    p.text(put(40, row + 2), "紧急联系人手机:", fname, px, fg)
    m2 = people.mobile()
    p.value(put(56, row + 2), "CN_MOBILE", m2, m2, fname, px, fg)
    return img, p.out


def browser_screen(
    rng: random.Random, W: int, H: int, k: int, mode: str, px: int, value_font: str
) -> tuple[Image.Image, Drawn]:
    """A browser-based banking page: header bar, breadcrumbs, a query form, a data grid, pages."""
    img = Image.new("RGB", (W, H), (255, 255, 255))
    p = Painter(img, mode)
    people = People(rng)
    s = "sans"
    p.rect((0, 0, W, 34 * k), fill=(222, 225, 230))
    p.rect((8 * k, 6 * k, 220 * k, 34 * k), fill=(255, 255, 255))
    p.text((16 * k, 12 * k), "综合柜面系统 - 客户查询", s, 12 * k, (30, 30, 30), mode="gray")
    p.rect((0, 34 * k, W, 70 * k), fill=(255, 255, 255))
    p.rect((90 * k, 40 * k, W - 120 * k, 64 * k), fill=(241, 243, 244))
    url = f"https://{distractor(rng, 'ip')}:8443/ccbs/cust/query?sid="
    p.decoy((104 * k, 45 * k), "ip", url, "arial", 13 * k, (60, 60, 60))
    p.text(
        (104 * k + p.width(url, "arial", 13 * k), 45 * k),
        digits(rng, 8),
        "arial",
        13 * k,
        (60, 60, 60),
    )
    # header bar: a gradient in the bank's colour (shows banding after 16-bit colour)
    hb = 70 * k
    red = rng.random() < 0.5
    c0 = np.array((190, 20, 30) if red else (0, 70, 150), dtype=np.float32)
    c1 = np.array((120, 5, 15) if red else (0, 40, 100), dtype=np.float32)
    grad = (
        c0[None, :] + (c1 - c0)[None, :] * np.linspace(0, 1, W, dtype=np.float32)[:, None]
    ).astype(np.uint8)
    img.paste(Image.fromarray(np.repeat(grad[None, :, :], 56 * k, axis=0)), (0, hb))
    p.text(
        (24 * k, hb + 14 * k),
        "XX银行 综合柜面业务系统",
        "sans-bold",
        20 * k,
        (255, 255, 255),
        mode="gray",
    )
    p.text(
        (W - 420 * k, hb + 20 * k),
        f"柜员：{make_name(rng)}  机构：支行营业部  ",
        s,
        px,
        (255, 255, 255),
    )
    p.decoy(
        (W - 160 * k, hb + 20 * k),
        "date",
        distractor(rng, "date")[:10],
        value_font,
        px,
        (255, 255, 255),
    )
    y = hb + 56 * k
    side = 190 * k
    p.rect((0, y, side, H), fill=(48, 55, 66))
    for i, m in enumerate(
        (
            "首页",
            "客户管理",
            "  客户查询",
            "  客户维护",
            "账户管理",
            "卡片管理",
            "凭证管理",
            "报表查询",
        )
    ):
        if i == 2:
            p.rect(
                (0, y + 8 * k + i * 40 * k, side, y + 8 * k + i * 40 * k + 36 * k),
                fill=(24, 144, 255),
            )
        p.text((22 * k, y + 16 * k + i * 40 * k), m, s, px + k, (230, 230, 230))
    x0 = side + 20 * k
    p.text((x0, y + 14 * k), "首页  >  客户管理  >  客户查询", s, px, (120, 120, 120))
    y += 46 * k
    p.rect((x0, y, W - 20 * k, y + 60 * k), outline=(225, 225, 225))
    p.text((x0 + 16 * k, y + 20 * k), "证件号码", s, px, (60, 60, 60))
    p.rect((x0 + 90 * k, y + 14 * k, x0 + 330 * k, y + 44 * k), outline=(200, 200, 200))
    p.text((x0 + 360 * k, y + 20 * k), "手机号码", s, px, (60, 60, 60))
    p.rect((x0 + 430 * k, y + 14 * k, x0 + 630 * k, y + 44 * k), outline=(200, 200, 200))
    p.rect((x0 + 660 * k, y + 14 * k, x0 + 740 * k, y + 44 * k), fill=(24, 144, 255))
    p.text((x0 + 684 * k, y + 20 * k), "查询", s, px, (255, 255, 255))
    y += 80 * k
    cols = [
        ("序号", 50),
        ("客户姓名", 90),
        ("证件号码", 190),
        ("手机号码", 130),
        ("卡号", 200),
        ("开户日期", 110),
        ("余额(元)", 120),
        ("操作", 110),
    ]
    total = sum(w for _, w in cols)
    avail = W - 20 * k - x0
    scale = avail / (total * k)
    widths = [int(w * k * scale) for _, w in cols]
    rh = int(px * 2.6)
    p.rect((x0, y, x0 + avail, y + rh), fill=(245, 247, 250))
    cx = x0
    for (name, _), w in zip(cols, widths, strict=True):
        p.text((cx + 8 * k, y + (rh - px) // 2 - k), name, "sans-bold", px, (50, 50, 50))
        cx += w
    y += rh
    n_rows = min(10, (H - y - 90 * k) // rh)
    for r in range(n_rows):
        if r % 2:
            p.rect((x0, y, x0 + avail, y + rh), fill=(250, 250, 250))
        p.draw.line([(x0, y + rh - 1), (x0 + avail, y + rh - 1)], fill=(232, 232, 232))
        ty = y + (rh - px) // 2 - k
        grey = (60, 60, 60)
        cell_x = [x0 + 8 * k + sum(widths[:j]) for j in range(len(widths))]
        p.text((cell_x[0], ty), str(r + 1), value_font, px, grey)
        p.text((cell_x[1], ty), make_name(rng), s, px, grey)
        if rng.random() < 0.85:
            v = people.id()
            p.value((cell_x[2], ty), "CN_RESIDENT_ID", v, v, value_font, px, grey)
        else:
            p.decoy(
                (cell_x[2], ty), "premasked", distractor(rng, "premasked"), value_font, px, grey
            )
        m = people.mobile()
        p.value((cell_x[3], ty), "CN_MOBILE", m, m, value_font, px, grey)
        if rng.random() < 0.85:
            c = people.card()
            p.value((cell_x[4], ty), "BANK_CARD", c, c, value_font, px, grey)
        else:
            p.decoy((cell_x[4], ty), "bad-card", bad_card(rng), value_font, px, grey)
        p.decoy((cell_x[5], ty), "date", distractor(rng, "date")[:10], value_font, px, grey)
        p.decoy((cell_x[6], ty), "amount", distractor(rng, "amount"), value_font, px, grey)
        p.text((cell_x[7], ty), "查看  编辑", s, px, (24, 144, 255))
        y += rh
    y += 16 * k
    p.text((x0, y + 6 * k), f"共 {rng.randint(40, 300)} 条", s, px, (90, 90, 90))
    px0 = W - 520 * k
    for i, t in enumerate(("<", "1", "2", "3", "4", "5", "…", "13", ">")):
        bx = px0 + i * 36 * k
        p.rect(
            (bx, y, bx + 30 * k, y + 30 * k),
            outline=(217, 217, 217),
            fill=(24, 144, 255) if t == "1" else (255, 255, 255),
        )
        p.text((bx + 10 * k, y + 6 * k), t, s, px, (255, 255, 255) if t == "1" else (60, 60, 60))
    p.text((px0 + 340 * k, y + 6 * k), "10条/页   跳至     页", s, px, (90, 90, 90))
    return img, p.out


def excel_screen(
    rng: random.Random, W: int, H: int, k: int, mode: str
) -> tuple[Image.Image, Drawn]:
    """An Excel-like customer list: ribbon, name box, formula bar, grid, frozen header, filter."""
    img = Image.new("RGB", (W, H), (255, 255, 255))
    p = Painter(img, mode)
    people = People(rng)
    px = 15 * k  # 11 pt at 96 DPI
    cf = "arial"  # Calibri stand-in for digits
    p.rect((0, 0, W, 30 * k), fill=(33, 115, 70))
    p.text(
        (12 * k, 7 * k),
        f"客户名单_{distractor(rng, 'date')[:10]}.xlsx - Excel",
        "sans",
        12 * k,
        (255, 255, 255),
        mode="gray",
    )
    p.rect((0, 30 * k, W, 120 * k), fill=(243, 243, 243))
    for i, t in enumerate(("文件", "开始", "插入", "页面布局", "公式", "数据", "审阅", "视图")):
        p.text((14 * k + i * 64 * k, 36 * k), t, "sans", 12 * k, (40, 40, 40))
    for i in range(14):
        p.rect((14 * k + i * 56 * k, 62 * k, 56 * k + i * 56 * k, 104 * k), outline=(210, 210, 210))
    fy = 122 * k
    p.rect((0, fy, W, fy + 26 * k), fill=(255, 255, 255), outline=(210, 210, 210))
    cols = [
        ("序号", 48),
        ("姓名", 80),
        ("身份证号", 190),
        ("手机", 120),
        ("卡号", 200),
        ("开卡日期", 100),
        ("金额", 100),
        ("备注", 180),
        ("", 80),
        ("", 80),
        ("", 80),
    ]
    rows_top = fy + 34 * k
    hdr_h = 22 * k
    rh = 20 * k
    rown_w = 40 * k
    # column letters
    p.rect((0, rows_top, W, rows_top + hdr_h), fill=(240, 240, 240))
    xs = [rown_w]
    for _, w in cols:
        xs.append(xs[-1] + int(w * k * 1.05))
    for i in range(len(cols)):
        p.text(
            ((xs[i] + xs[i + 1]) // 2 - 4 * k, rows_top + 3 * k),
            chr(65 + i),
            "sans",
            12 * k,
            (80, 80, 80),
        )
        p.draw.line([(xs[i], rows_top), (xs[i], H - 60 * k)], fill=(212, 212, 212))
    gy = rows_top + hdr_h
    n_rows = (H - 60 * k - gy) // rh
    selected: tuple[int, int] | None = None
    sel_value: tuple[str, str] | None = None
    for r in range(n_rows):
        ry = gy + r * rh
        p.rect((0, ry, rown_w, ry + rh), fill=(240, 240, 240))
        p.text((8 * k, ry + 3 * k), str(r + 1), "sans", 11 * k, (80, 80, 80))
        p.draw.line([(0, ry + rh), (xs[-1], ry + rh)], fill=(212, 212, 212))
        ty = ry + 3 * k  # Latin digits sit lower in the cell than the CJK face's box
        if r == 0:
            p.rect((xs[0] + 1, ry + 1, xs[-1], ry + rh), fill=(221, 235, 247))
            for i, (name, _) in enumerate(cols):
                if name:
                    p.text((xs[i] + 4 * k, ry), name, "sans-bold", 12 * k)
                    # the filter's drop-down button
                    bx = xs[i + 1] - 18 * k
                    p.rect(
                        (bx, ry + 2 * k, bx + 15 * k, ry + rh - 2 * k),
                        fill=(255, 255, 255),
                        outline=(160, 160, 160),
                    )
                    p.draw.polygon(
                        [
                            (bx + 4 * k, ry + 8 * k),
                            (bx + 11 * k, ry + 8 * k),
                            (bx + 7 * k, ry + 13 * k),
                        ],
                        fill=(60, 60, 60),
                    )
            # the frozen pane's line under the header
            p.draw.line([(0, ry + rh), (xs[-1], ry + rh)], fill=(120, 120, 120), width=max(1, k))
            continue
        p.text((xs[1] - 6 * k - p.width(str(r), cf, px), ty), str(r), cf, px)
        p.text((xs[1] + 4 * k, ry), make_name(rng), "sans", 12 * k + 2)
        v = people.id()
        if rng.random() < 0.1:
            # a resident ID typed as a number: Excel shows 1.10105E+17; nothing readable
            p.decoy(
                (xs[3] - 6 * k - p.width("1.10105E+17", cf, px), ty),
                "sci-notation",
                f"{int(v[:6]) / 1e5:.5f}E+17",
                cf,
                px,
            )
        else:
            p.value((xs[2] + 4 * k, ty), "CN_RESIDENT_ID", v, v, cf, px)
            p.draw.polygon(
                [(xs[2] + 1, ry + 1), (xs[2] + 6 * k, ry + 1), (xs[2] + 1, ry + 6 * k)],
                fill=(0, 128, 0),
            )
            if selected is None and r > 2 and rng.random() < 0.3:
                selected, sel_value = (2, r), ("CN_RESIDENT_ID", v)
        m = people.mobile()
        p.value((xs[4] - 6 * k - p.width(m, cf, px), ty), "CN_MOBILE", m, m, cf, px)
        c = people.card()
        p.value((xs[4] + 4 * k, ty), "BANK_CARD", c, c, cf, px)
        p.draw.polygon(
            [(xs[4] + 1, ry + 1), (xs[4] + 6 * k, ry + 1), (xs[4] + 1, ry + 6 * k)],
            fill=(0, 128, 0),
        )
        d = distractor(rng, "date")[:10].replace("-", "/")
        p.decoy((xs[6] - 6 * k - p.width(d, cf, px), ty), "date", d, cf, px)
        a = distractor(rng, "amount")
        p.decoy((xs[7] - 6 * k - p.width(a, cf, px), ty), "amount", a, cf, px)
        if rng.random() < 0.3:
            kind = rng.choice(("premasked", "bad-card", "order", "landline"))
            p.decoy((xs[7] + 4 * k, ty), kind, distractor(rng, kind), cf, px)
    if selected is None:
        selected = (4, 3)
        sel_value = None
    ci, ri = selected
    ry = gy + ri * rh
    p.rect((xs[ci] - k, ry - k, xs[ci + 1] + k, ry + rh + k), outline=(33, 115, 70), width=2 * k)
    p.rect(
        (xs[ci + 1] - 2 * k, ry + rh - 2 * k, xs[ci + 1] + 3 * k, ry + rh + 3 * k),
        fill=(33, 115, 70),
    )
    p.text((8 * k, fy + 4 * k), f"{chr(65 + ci)}{ri + 1}", cf, 13 * k)
    p.text((96 * k, fy + 3 * k), "×  ✓  fx", "dejavu", 12 * k, (100, 100, 100))
    if sel_value is not None:
        # the formula bar repeats the selected cell's text: the same value, drawn twice
        p.text((180 * k, fy + 4 * k), "'" + sel_value[1], cf, 13 * k)
    else:
        p.text((180 * k, fy + 4 * k), "=VLOOKUP(B4,客户!A:F,3,0)", cf, 13 * k)
    p.rect((0, H - 60 * k, W, H - 36 * k), fill=(240, 240, 240))
    for i, t in enumerate(("客户名单", "Sheet2", "对账")):
        p.text(
            (60 * k + i * 90 * k, H - 56 * k),
            t,
            "sans",
            12 * k,
            (33, 115, 70) if i == 0 else (60, 60, 60),
        )
    p.rect((0, H - 36 * k, W, H), fill=(33, 115, 70))
    p.text((12 * k, H - 30 * k), f"就绪     计数: {n_rows - 1}", "sans", 12 * k, (255, 255, 255))
    return img, p.out


def chat_screen(
    rng: random.Random, W: int, H: int, k: int, mode: str, flavour: str
) -> tuple[Image.Image, Drawn]:
    """A WeChat / 企业微信-like window: chat list, bubbles, avatars, emoji, pasted customers."""
    wecom = flavour == "wecom"
    img = Image.new("RGB", (W, H), (245, 245, 245))
    p = Painter(img, mode)
    people = People(rng)
    s = "sans"
    px = rng.choice((13, 14)) * k
    bar = 56 * k
    p.rect((0, 0, bar, H), fill=(46, 46, 46) if not wecom else (235, 238, 243))
    for i in range(6):
        p.rect(
            (14 * k, 20 * k + i * 56 * k, 42 * k, 48 * k + i * 56 * k),
            fill=(120, 120, 120) if not wecom else (150, 160, 180),
        )
    lst = 250 * k
    p.rect((bar, 0, bar + lst, H), fill=(230, 230, 230) if not wecom else (247, 248, 250))
    p.rect((bar + 12 * k, 22 * k, bar + lst - 12 * k, 48 * k), fill=(219, 219, 219))
    p.text((bar + 40 * k, 26 * k), "搜索", s, 12 * k, (150, 150, 150))
    for i in range(min(9, (H - 70 * k) // (64 * k))):
        yy = 64 * k + i * 64 * k
        if i == 1:
            p.rect(
                (bar, yy, bar + lst, yy + 64 * k),
                fill=(198, 198, 198) if not wecom else (221, 232, 250),
            )
        p.rect(
            (bar + 12 * k, yy + 12 * k, bar + 52 * k, yy + 52 * k),
            fill=rng.choice(
                ((244, 164, 96), (100, 149, 237), (60, 179, 113), (205, 92, 92), (147, 112, 219))
            ),
        )
        p.text(
            (bar + 62 * k, yy + 12 * k),
            rng.choice(
                (
                    "营业部工作群",
                    "运营主管",
                    "个贷-" + make_name(rng),
                    "大堂经理",
                    make_name(rng),
                    "支行综合柜员群",
                )
            ),
            s,
            px,
            (20, 20, 20),
        )
        p.text(
            (bar + 62 * k, yy + 34 * k),
            rng.choice(
                ("[图片]", "好的收到", "下午开会", "[文件] 客户名单.xlsx", "麻烦核一下", "明天早班")
            ),
            s,
            12 * k,
            (150, 150, 150),
        )
        p.text(
            (bar + lst - 50 * k, yy + 12 * k),
            f"{rng.randint(8, 17):02d}:{rng.randint(0, 59):02d}",
            s,
            11 * k,
            (170, 170, 170),
        )
    x0 = bar + lst
    p.rect((x0, 0, W, 60 * k), fill=(245, 245, 245))
    p.text((x0 + 24 * k, 18 * k), "营业部工作群(23)", s, 16 * k, (20, 20, 20))
    p.draw.line([(x0, 60 * k), (W, 60 * k)], fill=(220, 220, 220))
    input_top = H - 150 * k
    p.rect((x0, input_top, W, H), fill=(255, 255, 255))
    p.draw.line([(x0, input_top), (W, input_top)], fill=(220, 220, 220))
    for i in range(5):
        p.draw.ellipse(
            [
                x0 + 20 * k + i * 36 * k,
                input_top + 10 * k,
                x0 + 42 * k + i * 36 * k,
                input_top + 32 * k,
            ],
            outline=(120, 120, 120),
            width=k,
        )
    p.rect(
        (W - 110 * k, H - 44 * k, W - 20 * k, H - 14 * k),
        fill=(233, 233, 233) if not wecom else (50, 120, 230),
    )
    p.text(
        (W - 86 * k, H - 38 * k),
        "发送(S)",
        s,
        12 * k,
        (80, 80, 80) if not wecom else (255, 255, 255),
    )
    y = 76 * k
    maxw = int((W - x0) * 0.55)

    def wrap(text: str, fname: str) -> list[str]:
        lines, cur = [], ""
        for ch in text:
            if p.width(cur + ch, fname, px) > maxw - 24 * k:
                lines.append(cur)
                cur = ch
            else:
                cur += ch
        return [*lines, cur]

    def bubble(mine: bool, parts: list[tuple[str, str, str | None]]) -> None:
        """parts: (text, kind, raw); kind is 'text', a truth type or 'decoy:<kind>'."""
        nonlocal y
        flat = "".join(t for t, _, _ in parts)
        lines = wrap(flat, s)
        lh = int(px * 1.5)
        bw = max(p.width(line, s, px) for line in lines) + 24 * k
        bh = lh * len(lines) + 16 * k
        if y + bh > input_top - 20 * k:
            return
        av = (x0 + 20 * k, y) if not mine else (W - 56 * k, y)
        p.rect(
            (av[0], av[1], av[0] + 36 * k, av[1] + 36 * k),
            fill=rng.choice(((244, 164, 96), (100, 149, 237), (60, 179, 113), (205, 92, 92))),
        )
        bx = x0 + 68 * k if not mine else W - 68 * k - bw
        col = ((149, 236, 105) if not wecom else (201, 231, 255)) if mine else (255, 255, 255)
        p.draw.rounded_rectangle([bx, y, bx + bw, y + bh], radius=4 * k, fill=col)
        # lay the parts out character by character over the wrapped lines, so that a value split
        # by wrapping is still one value (its truth is kept; a reader must join the lines)
        cx, cy, li, used = bx + 12 * k, y + 8 * k, 0, 0
        for text, kind, raw in parts:
            segs: list[tuple[int, int, str]] = []
            rest = text
            while rest:
                room = len(lines[li]) - used
                take, rest = rest[:room], rest[room:]
                segs.append((cx, cy, take))
                cx += p.width(take, s, px)
                used += len(take)
                if used >= len(lines[li]) and li + 1 < len(lines):
                    li, used, cx, cy = li + 1, 0, bx + 12 * k, cy + lh
            for sx, sy, take in segs:
                p.text((sx, sy), take, s, px, (20, 20, 20))
            if kind.startswith("decoy:"):
                p.out.decoys.append(Decoy(kind[6:], text))
            elif kind != "text" and raw is not None:
                how = (
                    "wrapped"
                    if len(segs) > 1
                    else ("grouped" if " " in text or "-" in text else "plain")
                )
                p.out.truths.append(Truth(kind, raw, s, px, f"{how}/{p.mode}"))
        y += bh + 18 * k

    def stamp(text: str) -> None:
        nonlocal y
        w = p.width(text, s, 12 * k)
        p.text(((x0 + W) // 2 - w // 2, y), text, s, 12 * k, (170, 170, 170))
        y += 30 * k

    def emoji(mine: bool) -> None:
        nonlocal y
        ex = x0 + 68 * k if not mine else W - 110 * k
        p.rect(
            (
                x0 + 20 * k if not mine else W - 56 * k,
                y,
                (x0 + 56 * k) if not mine else W - 20 * k,
                y + 36 * k,
            ),
            fill=(100, 149, 237),
        )
        p.draw.ellipse([ex, y, ex + 40 * k, y + 40 * k], fill=(255, 204, 51))
        p.draw.ellipse([ex + 11 * k, y + 12 * k, ex + 16 * k, y + 18 * k], fill=(80, 50, 20))
        p.draw.ellipse([ex + 24 * k, y + 12 * k, ex + 29 * k, y + 18 * k], fill=(80, 50, 20))
        p.draw.arc(
            [ex + 10 * k, y + 16 * k, ex + 30 * k, y + 32 * k],
            20,
            160,
            fill=(80, 50, 20),
            width=2 * k,
        )
        y += 52 * k

    stamp(rng.choice(("上午 9:12", "昨天 16:05", "星期二 10:41")))
    bubble(False, [("今天系统有点慢，大家办业务注意核对凭证", "text", None)])
    emoji(True)
    for _ in range(rng.randint(2, 3)):
        name = make_name(rng)
        rid, card, mob = people.id(), people.card(), people.mobile()
        grouped = rng.random() < 0.5
        card_s = fmt_card(card, grouped)
        mob_s = fmt_mobile(mob, rng.randrange(3))
        parts: list[tuple[str, str, str | None]] = [
            (f"客户{name} 身份证", "text", None),
            (rid, "CN_RESIDENT_ID", rid),
        ]
        parts += [
            (" 卡号", "text", None),
            (card_s, "BANK_CARD", card),
            (" 电话", "text", None),
            (mob_s, "CN_MOBILE", mob),
            (
                rng.choice((" 麻烦帮忙查一下挂失进度", " 要补卡，资料已收", " 密码锁了")),
                "text",
                None,
            ),
        ]
        bubble(rng.random() < 0.5, parts)
        if rng.random() < 0.6:
            kind = rng.choice(("order", "amount", "landline", "premasked", "voucher", "bad-id"))
            bubble(
                rng.random() < 0.5,
                [
                    (f"{KIND_LABELS[kind]} ", "text", None),
                    (distractor(rng, kind), "decoy:" + kind, None),
                    (" 收到", "text", None),
                ],
            )
        stamp(f"{rng.randint(9, 17)}:{rng.randint(10, 59)}")
    bubble(True, [("好的收到", "text", None)])
    return img, p.out


def statement_page(
    rng: random.Random, W: int, zoom: float, mode: str, fname: str
) -> tuple[Image.Image, Drawn]:
    """A PDF bank statement page (个人账户交易明细) as a viewer shows it at `zoom` of 96 DPI."""
    px = max(7, round(13 * zoom))
    pw = int(794 * zoom)  # A4 at 96 DPI
    ph = int(1123 * zoom)
    page = Image.new("RGB", (pw, ph), (255, 255, 255))
    p = Painter(page, mode)
    people = People(rng)
    m = int(60 * zoom)
    p.text(
        (pw // 2 - p.width("XX银行个人账户交易明细对账单", "serif-bold", px + 6) // 2, m),
        "XX银行个人账户交易明细对账单",
        "serif-bold",
        px + 6,
    )
    y = m + int(46 * zoom)
    card, rid = people.card(), people.id()
    p.text((m, y), f"户名：{make_name(rng)}", "serif", px)
    p.text((m + int(300 * zoom), y), "卡号：", "serif", px)
    p.value(
        (m + int(300 * zoom) + p.width("卡号：", "serif", px), y),
        "BANK_CARD",
        card,
        card,
        fname,
        px,
    )
    y += int(px * 1.8)
    p.text((m, y), "证件号码：", "serif", px)
    p.value((m + p.width("证件号码：", "serif", px), y), "CN_RESIDENT_ID", rid, rid, fname, px)
    p.text((m + int(300 * zoom), y), "起止日期：", "serif", px)
    d1, d2 = distractor(rng, "date")[:10], distractor(rng, "date")[:10]
    p.decoy(
        (m + int(300 * zoom) + p.width("起止日期：", "serif", px), y),
        "date",
        f"{d1} 至 {d2}",
        fname,
        px,
    )
    y += int(px * 2.2)
    cols = [
        ("交易日期", 74),
        ("摘要", 56),
        ("交易金额", 80),
        ("账户余额", 84),
        ("对方账号/卡号", 170),
        ("对方户名", 64),
        ("渠道", 44),
        ("流水号", 100),
    ]
    total = sum(w for _, w in cols)
    xs = [m]
    for _, w in cols:
        xs.append(xs[-1] + int(w * (pw - 2 * m) / total))
    rh = int(px * 1.9)
    p.rect((m, y, pw - m, y + rh), fill=(217, 217, 217), outline=(0, 0, 0))
    for i, (name, _) in enumerate(cols):
        p.text((xs[i] + 3, y + (rh - px) // 2 - 1), name, "serif-bold", px - 1)
    y += rh
    total_in = total_out = 0.0
    n_rows = rng.randint(14, 22)
    for _ in range(n_rows):
        if y + rh > ph - int(130 * zoom):
            break
        ty = y + (rh - px) // 2 - 1
        p.text((xs[0] + 3, ty), distractor(rng, "date")[:10], fname, px)
        summary = rng.choice(("消费", "转账", "代发工资", "ATM取款", "快捷支付", "利息"))
        p.text((xs[1] + 3, ty), summary, "serif", px)
        v = rng.uniform(10, 20000)
        sign = -1 if summary in ("消费", "ATM取款", "快捷支付") else 1
        (total_in := total_in + v) if sign > 0 else (total_out := total_out + v)
        amt = f"{sign * v:,.2f}"
        p.decoy((xs[3] - 4 - p.width(amt, fname, px), ty), "amount", amt, fname, px)
        bal = distractor(rng, "amount")
        p.decoy((xs[4] - 4 - p.width(bal, fname, px), ty), "amount", bal, fname, px)
        r = rng.random()
        if r < 0.45:
            c = people.card()
            p.value((xs[4] + 3, ty), "BANK_CARD", c, c, fname, px)
        elif r < 0.65:
            p.decoy((xs[4] + 3, ty), "premasked", distractor(rng, "premasked"), fname, px)
        p.text((xs[5] + 3, ty), make_name(rng) if r < 0.65 else "", "serif", px)
        p.text((xs[6] + 3, ty), rng.choice(("网银", "柜面", "POS", "手机")), "serif", px)
        p.decoy((xs[7] + 3, ty), "serial", distractor(rng, "serial")[:14], fname, px - 1)
        p.draw.line([(m, y + rh), (pw - m, y + rh)], fill=(0, 0, 0))
        y += rh
    for x in xs:
        p.draw.line([(x, y - rh * (n_rows + 1)), (x, y)], fill=(0, 0, 0))
    y += int(px * 0.8)
    p.text((m, y), "合计：", "serif-bold", px)
    p.decoy(
        (m + int(60 * zoom), y),
        "amount",
        f"收入 {total_in:,.2f}   支出 {total_out:,.2f}",
        fname,
        px,
    )
    y += int(px * 2)
    p.text(
        (m, y), "本对账单仅供参考，如有疑问请致电客服热线 95xxx 或联系开户网点：", "serif", px - 1
    )
    p.decoy((m, y + int(px * 1.6)), "landline", distractor(rng, "landline"), fname, px - 1)
    p.text((pw - m - int(120 * zoom), ph - int(50 * zoom)), "第 1 页 / 共 3 页", "serif", px - 1)
    return page, p.out


def pdf_viewer(rng: random.Random, W: int, H: int, zoom: float) -> tuple[Image.Image, Drawn]:
    mode = rng.choice(("gray", "cleartype"))
    page, drawn = statement_page(rng, W, zoom, mode, rng.choice(("times", "serif", "arial")))
    img = Image.new("RGB", (W, H), (82, 86, 89) if rng.random() < 0.5 else (230, 230, 230))
    p = Painter(img, "gray")
    p.rect((0, 0, W, 40), fill=(50, 54, 57))
    p.text((14, 11), f"对账单_{digits(rng, 4)}.pdf", "sans", 13, (240, 240, 240))
    p.text((W // 2 - 60, 11), f"1 / 3     {int(zoom * 100)}%   +  -", "sans", 13, (240, 240, 240))
    px0 = (W - page.width) // 2
    top = 56 - int(
        rng.uniform(0, 0.35) * page.height
    )  # scrolled: the page may start above the view
    p.rect((px0 + 4, top + 4, px0 + page.width + 4, top + page.height + 4), fill=(40, 40, 40))
    img.paste(page, (px0, top))
    p.rect((0, 0, W, 40), fill=(50, 54, 57))
    p.text((14, 11), f"对账单_{digits(rng, 4)}.pdf", "sans", 13, (240, 240, 240))
    p.text((W // 2 - 60, 11), f"1 / 3     {int(zoom * 100)}%   +  -", "sans", 13, (240, 240, 240))
    # only values whose whole box is in view count; one cut by the window edge is a decoy
    out = Drawn(decoys=list(drawn.decoys))
    for obj, (_, by, _, bh) in drawn.boxes:
        if isinstance(obj, Truth):
            y0 = by + top
            if y0 >= 40 and y0 + bh <= H:
                out.truths.append(obj)
            elif y0 + bh > 40 and y0 < H:
                out.decoys.append(Decoy("cut-off", obj.value))
    return img, out


def printed_form(rng: random.Random, dpi: int) -> tuple[Image.Image, Drawn]:
    """A printed A4 application form (个人业务申请书) with the customer's details, at `dpi`."""
    s = dpi / 96
    pw, ph = int(8.27 * dpi), int(11.69 * dpi)
    page = Image.new("RGB", (pw, ph), (255, 255, 255))
    p = Painter(page, "gray")
    people = People(rng)
    px = int(14 * s)  # ~10.5 pt printed
    lf = rng.choice(("serif", "sans"))
    vf = rng.choice(("courier", "times", "serif", "arial"))
    m = int(70 * s)
    title = rng.choice(("个人业务申请书", "个人结算账户开户申请书", "银行卡挂失/补卡申请书"))
    p.text(
        (pw // 2 - p.width(title, "serif-bold", int(24 * s)) // 2, m),
        title,
        "serif-bold",
        int(24 * s),
    )
    y = m + int(60 * s)
    p.text((m, y), "申请日期：", lf, px)
    p.decoy((m + p.width("申请日期：", lf, px), y), "date", distractor(rng, "date")[:10], vf, px)
    p.text((pw - m - int(260 * s), y), "业务编号：", lf, px)
    p.decoy(
        (pw - m - int(260 * s) + p.width("业务编号：", lf, px), y),
        "order",
        distractor(rng, "order"),
        vf,
        px,
    )
    y += int(34 * s)
    rh = int(44 * s)
    rid, card, mob = people.id(), people.card(), people.mobile()
    rows: list[list[tuple[str, str, str | None]]] = [
        [("姓名", "text", make_name(rng)), ("性别", "text", rng.choice(("男", "女")))],
        [("证件类型", "text", "居民身份证"), ("证件号码", "CN_RESIDENT_ID", rid)],
        [("证件有效期", "decoy:date", distractor(rng, "date")[:10]), ("国籍", "text", "中国")],
        [
            ("移动电话", "CN_MOBILE", mob),
            ("固定电话", "decoy:landline", distractor(rng, "landline")),
        ],
        [("卡号/账号", "BANK_CARD", card), ("邮编", "decoy:postcode", distractor(rng, "postcode"))],
        [
            ("联系地址", "text", "XX省XX市XX区XX路" + str(rng.randint(1, 300)) + "号"),
            ("", "text", ""),
        ],
        [
            ("金额(小写)", "decoy:amount", "¥" + distractor(rng, "amount")),
            ("凭证号", "decoy:voucher", distractor(rng, "voucher")),
        ],
    ]
    if rng.random() < 0.6:
        agent_id, agent_mob = people.id(), people.mobile()
        rows.append(
            [("代理人证件号", "CN_RESIDENT_ID", agent_id), ("代理人电话", "CN_MOBILE", agent_mob)]
        )
    lw = int(130 * s)
    half = (pw - 2 * m) // 2
    top = y
    for row in rows:
        for j, (label, kind, val) in enumerate(row):
            x = m + j * half
            p.rect(
                (x, y, x + lw, y + rh),
                fill=(242, 242, 242),
                outline=(0, 0, 0),
                width=max(1, int(s)),
            )
            p.rect((x + lw, y, x + half, y + rh), outline=(0, 0, 0), width=max(1, int(s)))
            p.text((x + int(8 * s), y + (rh - px) // 2 - int(2 * s)), label, lf, px)
            if not val:
                continue
            vy = y + (rh - px) // 2 - int(2 * s)
            if kind == "text":
                p.text((x + lw + int(10 * s), vy), val, lf, px)
            elif kind.startswith("decoy:"):
                p.decoy((x + lw + int(10 * s), vy), kind[6:], val, vf, px)
            else:
                p.value((x + lw + int(10 * s), vy), kind, val, val, vf, px)
        y += rh
    p.rect((m, top, pw - m, y), outline=(0, 0, 0), width=max(1, int(2 * s)))
    y += int(30 * s)
    for line in (
        "本人保证以上所填资料真实、有效，并已阅读和同意相关章程及协议。",
        "客户签名：                     经办柜员：            复核：            业务公章：",
    ):
        p.text((m, y), line, lf, px)
        y += int(34 * s)
    p.text(
        (m, ph - m),
        f"第一联 银行留存    {distractor(rng, 'date')[:10]}",
        lf,
        int(12 * s),
        (90, 90, 90),
    )
    return page, p.out


# ---------------------------------------------------------------------------------------------
# capture effects


def to_cv(img: Image.Image) -> np.ndarray:
    return cv2.cvtColor(np.asarray(img.convert("RGB")), cv2.COLOR_RGB2BGR)


def from_cv(arr: np.ndarray) -> Image.Image:
    if arr.ndim == 2:
        return Image.fromarray(arr)
    return Image.fromarray(cv2.cvtColor(arr, cv2.COLOR_BGR2RGB))


def phone_photo(page: Image.Image, rng: random.Random) -> Image.Image:
    """A phone photo of a printed page on a desk: perspective, tilt, shadow, blur, noise."""
    src = to_cv(page)
    h, w = src.shape[:2]
    Wo, Ho = rng.choice(((1200, 1600), (1536, 2048), (1080, 1440)))
    desk = np.zeros((Ho, Wo, 3), np.float32)
    desk[:] = rng.choice(((70, 90, 120), (150, 150, 150), (40, 60, 80)))
    desk += (
        np.random.default_rng(rng.randint(0, 1 << 30)).normal(0, 6, desk.shape).astype(np.float32)
    )
    fill = rng.uniform(0.78, 0.92)
    pw, ph = Wo * fill, Wo * fill * h / w
    if ph > Ho * 0.95:
        ph = Ho * 0.95
        pw = ph * w / h
    cx, cy = Wo / 2 + rng.uniform(-0.03, 0.03) * Wo, Ho / 2 + rng.uniform(-0.03, 0.03) * Ho
    ang = math.radians(rng.uniform(-4, 4))
    corners = np.array([[-pw / 2, -ph / 2], [pw / 2, -ph / 2], [pw / 2, ph / 2], [-pw / 2, ph / 2]])
    rot = np.array([[math.cos(ang), -math.sin(ang)], [math.sin(ang), math.cos(ang)]])
    dst = corners @ rot.T + [cx, cy]
    # keystone: the top edge further from the lens than the bottom
    kx = rng.uniform(0.02, 0.07) * pw
    dst[0, 0] += kx
    dst[1, 0] -= kx
    dst += np.array([[rng.uniform(-8, 8), rng.uniform(-8, 8)] for _ in range(4)])
    M = cv2.getPerspectiveTransform(np.float32([[0, 0], [w, 0], [w, h], [0, h]]), np.float32(dst))
    warped = cv2.warpPerspective(src, M, (Wo, Ho), flags=cv2.INTER_AREA).astype(np.float32)
    mask = (
        cv2.warpPerspective(np.full((h, w), 255, np.uint8), M, (Wo, Ho)).astype(np.float32)[
            :, :, None
        ]
        / 255
    )
    out = desk * (1 - mask) + warped * mask
    # shadow: a soft gradient (the phone and the hand above the page) and a warm cast
    gx, gy = np.meshgrid(np.linspace(0, 1, Wo), np.linspace(0, 1, Ho))
    a = rng.uniform(0, 2 * math.pi)
    g = gx * math.cos(a) + gy * math.sin(a)
    g = (g - g.min()) / (g.max() - g.min())
    shade = 1 - rng.uniform(0.25, 0.45) * g
    out *= shade[:, :, None].astype(np.float32)
    out *= np.array([0.92, 0.98, 1.04], np.float32)  # BGR: warm indoor light
    out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.7, 1.4))
    out += (
        np.random.default_rng(rng.randint(0, 1 << 30))
        .normal(0, rng.uniform(3, 7), out.shape)
        .astype(np.float32)
    )
    return from_cv(np.clip(out, 0, 255).astype(np.uint8))


def gray_scan(page: Image.Image, rng: random.Random) -> tuple[Image.Image, str]:
    """A 300 dpi gray scan: paper tone, speckles, slight skew, maybe fed upside down or sideways."""
    g = np.asarray(page.convert("L"), dtype=np.float32)
    g = 255 - (255 - g) * rng.uniform(0.8, 0.95)  # toner not fully black
    g = g * rng.uniform(0.92, 0.97)  # paper tone
    nrng = np.random.default_rng(rng.randint(0, 1 << 30))
    g += nrng.normal(0, 4, g.shape)
    speck = nrng.random(g.shape) < 0.0006
    g[speck] = nrng.uniform(40, 120, int(speck.sum()))
    h, w = g.shape
    M = cv2.getRotationMatrix2D((w / 2, h / 2), rng.uniform(-1.0, 1.0), 1.0)
    g = cv2.warpAffine(g, M, (w, h), borderValue=235)
    g = cv2.GaussianBlur(g, (0, 0), 0.6)
    turn = rng.choice((0, 0, 90, 180, 270))
    if turn:
        g = np.rot90(g, turn // 90)
    return Image.fromarray(np.clip(g, 0, 255).astype(np.uint8)), f"rot{turn}"


def watermark(img: Image.Image, rng: random.Random, k: int) -> tuple[Image.Image, Drawn]:
    """The guard's own faint diagonal watermark, tiled: teller login, terminal, time."""
    W, H = img.size
    text = (
        f"T{rng.randint(10000, 99999)} 柜员{make_name(rng)} 终端SZ-{rng.randint(1000, 9999)} "
        f"{distractor(rng, 'date')[:16]}"
    )
    tile = Image.new("L", (int(560 * k), int(240 * k)), 0)
    ImageDraw.Draw(tile).text((10, int(100 * k)), text, font=font("sans", 16 * k), fill=255)
    tile = tile.rotate(rng.uniform(25, 35), expand=True)
    layer = Image.new("L", (W, H), 0)
    for yy in range(0, H, tile.height):
        for xx in range(-(yy // 3) % tile.width - tile.width, W, tile.width):
            layer.paste(tile, (xx, yy), tile)
    alpha = np.asarray(layer, np.float32)[:, :, None] / 255 * rng.uniform(0.10, 0.18)
    arr = np.asarray(img, np.float32)
    shade = np.array((128, 128, 128), np.float32)
    out = arr * (1 - alpha) + shade * alpha
    return Image.fromarray(out.astype(np.uint8)), Drawn(decoys=[Decoy("watermark", text)])


def rgb565(img: Image.Image) -> Image.Image:
    a = np.asarray(img.convert("RGB")).copy()
    a[:, :, 0] &= 0xF8
    a[:, :, 1] &= 0xFC
    a[:, :, 2] &= 0xF8
    return Image.fromarray(a)


# ---------------------------------------------------------------------------------------------
# the shapes


@dataclasses.dataclass
class Sample:
    shape: str
    name: str
    image: Image.Image
    ext: str
    quality: int | None
    drawn: Drawn
    note: str


def _text_style(rng: random.Random, i: int) -> tuple[str, str, str]:
    """(renderer, label font, value font) the way Windows shows a client app's 9 pt text."""
    return [
        ("cleartype", "serif", "serif"),  # SimSun-like, ClearType on
        ("bitmap", "serif", "serif"),  # SimSun at 12 px: embedded bitmaps, no smoothing
        ("cleartype", "sans", "sans"),  # Microsoft YaHei-like
        ("cleartype", "serif", "dejavu"),  # SimSun labels, Tahoma-like digits
        ("gray", "sans", "arial"),
    ][i % 5]


def shape_cleartype(rng: random.Random, i: int) -> Sample:
    mode, lf, vf = _text_style(rng, i)
    W, H = rng.choice(((1280, 1024), (1440, 900), (1920, 1080)))
    img, d = form_screen(rng, W, H, 1, mode, lf, vf, 12)
    return Sample(
        "cleartype", f"cleartype_{i:02d}", img, "png", None, d, f"{mode} {lf}/{vf} 12px {W}x{H}"
    )


def shape_terminal(rng: random.Random, i: int) -> Sample:
    colour = ("green", "white", "amber")[i % 3]
    W, H = rng.choice(((1024, 768), (1280, 1024), (1366, 768)))
    img, d = terminal_screen(rng, W, H, colour)
    return Sample("terminal", f"terminal_{i:02d}", img, "png", None, d, f"{colour} {W}x{H}")


def shape_browser(rng: random.Random, i: int) -> Sample:
    W, H = rng.choice(((1920, 1080), (1600, 900), (1440, 900)))
    mode = ("cleartype", "gray")[i % 2]
    vf = ("sans", "arial", "dejavu")[i % 3]
    img, d = browser_screen(rng, W, H, 1, mode, rng.choice((12, 13, 14)), vf)
    return Sample("browser", f"browser_{i:02d}", img, "png", None, d, f"{mode} {vf} {W}x{H}")


def shape_excel(rng: random.Random, i: int) -> Sample:
    W, H = rng.choice(((1920, 1080), (1366, 768), (1600, 900)))
    mode = ("cleartype", "gray")[i % 2]
    img, d = excel_screen(rng, W, H, 1, mode)
    return Sample("excel", f"excel_{i:02d}", img, "png", None, d, f"{mode} {W}x{H}")


def shape_snip(rng: random.Random, i: int) -> Sample:
    """A Win+Shift+S snip around one to three values; a value cut by its edge is a decoy."""
    src = i % 4
    if src == 0:
        mode, lf, vf = _text_style(rng, i)
        img, d = form_screen(rng, 1440, 900, 1, mode, lf, vf, 12)
    elif src == 1:
        img, d = browser_screen(rng, 1600, 900, 1, "cleartype", 13, "sans")
    elif src == 2:
        img, d = excel_screen(rng, 1366, 768, 1, "cleartype")
    else:
        img, d = terminal_screen(rng, 1024, 768, "green")
    truths = [(t, b) for t, b in d.boxes if isinstance(t, Truth)]
    _, (bx, by, bw, bh) = rng.choice(truths)
    cw = max(bw + 20, rng.randint(250, 600))
    ch = rng.randint(max(bh + 16, 50), 220)
    x0 = max(0, min(img.width - cw, bx - rng.randint(4, max(5, cw - bw - 4))))
    y0 = max(0, min(img.height - ch, by - rng.randint(4, max(5, ch - bh - 4))))
    crop = (x0, y0, x0 + cw, y0 + ch)
    out = Drawn()
    for obj, (ox, oy, ow, oh) in d.boxes:
        inside = ox >= x0 and oy >= y0 and ox + ow <= x0 + cw and oy + oh <= y0 + ch
        touches = ox < x0 + cw and ox + ow > x0 and oy < y0 + ch and oy + oh > y0
        if isinstance(obj, Truth):
            if inside:
                out.truths.append(obj)
            elif touches:
                out.decoys.append(Decoy("cut-off", obj.value))
        elif touches:
            out.decoys.append(obj)
    return Sample(
        "snip",
        f"snip_{i:02d}",
        img.crop(crop),
        "png",
        None,
        out,
        f"from {('form', 'browser', 'excel', 'terminal')[src]} {cw}x{ch}",
    )


def shape_chat(rng: random.Random, i: int) -> Sample:
    flavour = ("wechat", "wecom")[i % 2]
    W, H = rng.choice(((1000, 720), (1100, 800), (1280, 900)))
    mode = ("cleartype", "gray")[(i // 2) % 2]
    img, d = chat_screen(rng, W, H, 1, mode, flavour)
    return Sample("chat", f"chat_{i:02d}", img, "png", None, d, f"{flavour} {mode} {W}x{H}")


def shape_pdf(rng: random.Random, i: int) -> Sample:
    zoom = (1.0, 0.75)[i % 2]
    W, H = rng.choice(((1920, 1080), (1366, 768), (1600, 900)))
    img, d = pdf_viewer(rng, W, H, zoom)
    return Sample("pdf", f"pdf_{i:02d}", img, "png", None, d, f"zoom {int(zoom * 100)}% {W}x{H}")


def shape_photo(rng: random.Random, i: int) -> Sample:
    page, d = printed_form(rng, 150)
    img = phone_photo(page, rng)
    return Sample("photo", f"photo_{i:02d}", img, "jpg", 70, d, f"{img.width}x{img.height} q70")


def shape_scan(rng: random.Random, i: int) -> Sample:
    page, d = printed_form(rng, 300)
    img, turn = gray_scan(page, rng)
    ext = ("png", "tif")[i % 2]
    return Sample("scan", f"scan_{i:02d}", img, ext, None, d, f"300dpi gray {turn} {ext}")


def shape_watermark(rng: random.Random, i: int) -> Sample:
    if i % 3 == 0:
        mode, lf, vf = _text_style(rng, i)
        img, d = form_screen(rng, 1920, 1080, 1, mode, lf, vf, 12)
        base = "form"
    elif i % 3 == 1:
        img, d = terminal_screen(rng, 1280, 1024, "green")
        base = "terminal"
    else:
        img, d = browser_screen(rng, 1920, 1080, 1, "cleartype", 13, "sans")
        base = "browser"
    img, wd = watermark(img, rng, 1)
    d.decoys += wd.decoys
    return Sample("watermark", f"watermark_{i:02d}", img, "png", None, d, f"over {base}")


def shape_rdp(rng: random.Random, i: int) -> Sample:
    if i % 2 == 0:
        img, d = browser_screen(rng, 1920, 1080, 1, "cleartype", 13, "sans")
        base = "browser"
    else:
        mode, lf, vf = _text_style(rng, i)
        img, d = form_screen(rng, 1920, 1080, 1, mode, lf, vf, 12)
        base = f"form/{mode}/{vf}"
    how = ("565+jpeg", "downscale0.8", "565+downscale0.8+jpeg")[i % 3]
    q = None
    if "565" in how:
        img = rgb565(img)
    if "downscale" in how:
        img = img.resize((int(img.width * 0.8), int(img.height * 0.8)), Image.Resampling.BILINEAR)
    if "jpeg" in how:
        q = rng.randint(40, 55)
    return Sample(
        "rdp",
        f"rdp_{i:02d}",
        img,
        "jpg" if q else "png",
        q,
        d,
        f"{base} {how}{f' q{q}' if q else ''} {img.width}x{img.height}",
    )


def shape_hidpi(rng: random.Random, i: int) -> Sample:
    big = i % 2 == 0
    W, H, k = (3840, 2160, 2) if big else (1366, 768, 1)
    if (i // 2) % 2 == 0:
        img, d = browser_screen(rng, W, H, k, "cleartype", 12 * k, "sans")
        base = "browser"
    else:
        mode, lf, vf = _text_style(rng, i)
        img, d = form_screen(rng, W, H, k, mode, lf, vf, 12 * k)
        base = f"form/{mode}/{vf}"
    return Sample("hidpi", f"hidpi_{i:02d}", img, "png", None, d, f"{base} {W}x{H} at {k * 100}%")


SHAPES: dict[str, Callable[[random.Random, int], Sample]] = {
    "cleartype": shape_cleartype,
    "terminal": shape_terminal,
    "browser": shape_browser,
    "excel": shape_excel,
    "snip": shape_snip,
    "chat": shape_chat,
    "pdf": shape_pdf,
    "photo": shape_photo,
    "scan": shape_scan,
    "watermark": shape_watermark,
    "rdp": shape_rdp,
    "hidpi": shape_hidpi,
}
TYPES = ("CN_RESIDENT_ID", "BANK_CARD", "CN_MOBILE")
SHORT = {"CN_RESIDENT_ID": "ID", "BANK_CARD": "CARD", "CN_MOBILE": "MOB"}


# ---------------------------------------------------------------------------------------------
# running and scoring


def write(sample: Sample, folder: Path) -> Path:
    path = folder / f"{sample.name}.{sample.ext}"
    if sample.ext == "jpg":
        sample.image.convert("RGB").save(path, quality=sample.quality or 75)
    elif sample.ext == "tif":
        sample.image.save(path, compression="tiff_lzw", dpi=(300, 300))
    else:
        sample.image.save(path)
    return path


def teller_guard() -> list[str]:
    exe = Path(sys.executable).parent / ("teller-guard.exe" if os.name == "nt" else "teller-guard")
    if exe.exists():
        return [str(exe)]
    return [sys.executable, "-c", "import sys; from guard.cli import main; sys.exit(main())"]


def run_cli(folder: Path) -> tuple[dict[str, dict[str, object]], dict[str, float], float]:
    """Run the CLI once over the folder: findings and seconds (by output arrival) per file."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    cmd = [*teller_guard(), "scan", "--format", "json", "--recursive", str(folder)]
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    results: dict[str, dict[str, object]] = {}
    seconds: dict[str, float] = {}
    last = start
    assert proc.stdout is not None
    for line in proc.stdout:
        now = time.monotonic()
        line = line.strip()
        if not line:
            continue
        obj = json.loads(line)
        name = Path(str(obj.get("source", ""))).name
        results[name] = obj
        seconds[name] = now - last
        last = now
    err = proc.stderr.read() if proc.stderr else ""
    rc = proc.wait()
    if rc not in (0, 1, 2, 3):
        raise RuntimeError(f"teller-guard scan failed (exit {rc}): {err[-2000:]}")
    if err.strip():
        print("scan stderr (last lines):", *err.strip().splitlines()[-5:], sep="\n  ")
    return results, seconds, time.monotonic() - start


@dataclasses.dataclass
class Score:
    found: Counter[str] = dataclasses.field(default_factory=Counter)
    total: Counter[str] = dataclasses.field(default_factory=Counter)
    tp: int = 0
    fp: int = 0
    fp_kinds: Counter[str] = dataclasses.field(default_factory=Counter)
    seconds: list[float] = dataclasses.field(default_factory=list)
    images: int = 0
    errors: int = 0


def score(
    samples: list[Sample], results: dict[str, dict[str, object]], seconds: dict[str, float]
) -> None:
    per_shape: dict[str, Score] = defaultdict(Score)
    overall = Score()
    misses: list[tuple[str, str, str, str, str, str]] = []
    fps: list[tuple[str, str, str, str, str]] = []
    for s in samples:
        fname = f"{s.name}.{s.ext}"
        res = results.get(fname, {})
        sc = per_shape[s.shape]
        for target in (sc, overall):
            target.images += 1
            if fname in seconds:
                target.seconds.append(seconds[fname])
        if not res or res.get("error"):
            for target in (sc, overall):
                target.errors += 1
        findings = [f for f in res.get("findings", []) or [] if isinstance(f, dict)]  # type: ignore[union-attr]
        truth: dict[tuple[str, str], Truth] = {}
        for t in s.drawn.truths:
            truth.setdefault(t.key, t)
        seen: set[tuple[str, str]] = set()
        for f in findings:
            key = (str(f.get("type")), str(f.get("masked", ""))[-4:].upper())
            if key in truth:
                seen.add(key)
                continue
            if key in seen:
                continue
            seen.add(key)
            kinds = sorted({d.kind for d in s.drawn.decoys if d.last4 == key[1]})
            if not kinds:
                kinds = [
                    "other-type value"
                    if any(t.value[-4:].upper() == key[1] for t in s.drawn.truths)
                    else "unattributed"
                ]
            kind = "/".join(kinds)
            for target in (sc, overall):
                target.fp += 1
                target.fp_kinds[f"{key[0]}:{kind}"] += 1
            fps.append((s.shape, s.name, key[0], str(f.get("masked")), kind))
        for key, t in truth.items():
            hit = key in seen
            for target in (sc, overall):
                target.total[t.type] += 1
                target.found[t.type] += int(hit)
                target.tp += int(hit)
            if not hit:
                misses.append(
                    (
                        s.shape,
                        s.name,
                        SHORT[t.type],
                        key[1],
                        f"{t.font}/{t.px}px",
                        f"{t.shown}; {s.note}",
                    )
                )

    def ratio(a: int, b: int) -> str:
        return f"{a / b:.2f} ({a}/{b})" if b else "-"

    head = (
        f"{'shape':<10} {'imgs':>4} {'ID recall':>14} {'CARD recall':>14} {'MOB recall':>14} "
        f"{'all':>15} "
        f"{'precision':>16} {'s/img med':>9} {'max':>6}"
    )
    print(head)
    print("-" * len(head))
    order = list(SHAPES)
    for name in [
        *sorted(per_shape, key=lambda n: (order.index(n) if n in order else len(order), n)),
        "ALL",
    ]:
        sc = overall if name == "ALL" else per_shape[name]
        if name == "ALL":
            print("-" * len(head))
        secs = sorted(sc.seconds)
        med = secs[len(secs) // 2] if secs else float("nan")
        mx = secs[-1] if secs else float("nan")
        print(
            f"{name:<10} {sc.images:>4} "
            + " ".join(f"{ratio(sc.found[t], sc.total[t]):>14}" for t in TYPES)
            + f" {ratio(sc.tp, sum(sc.total.values())):>15} {ratio(sc.tp, sc.tp + sc.fp):>16}"
            + f" {med:>9.2f} {mx:>6.2f}"
            + (f"  ({sc.errors} unread)" if sc.errors else "")
        )
    print()
    print(
        "false positives by type:distractor kind:", dict(overall.fp_kinds.most_common()) or "none"
    )
    for shape, name, typ, masked, kind in fps:
        print(f"  FP {shape:<10} {name:<14} {typ:<15} {masked:<22} {kind}")
    print()
    print(f"misses ({len(misses)}): shape, image, type, last four, font/size, how drawn; image")
    for m in misses:
        print("  " + "  ".join(f"{v:<{w}}" for v, w in zip(m, (10, 14, 5, 5, 16, 0), strict=True)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=20240512)
    ap.add_argument("--per-shape", type=int, default=4, help="images per shape (default 4)")
    ap.add_argument(
        "--shapes", default=",".join(SHAPES), help="comma-separated: " + ",".join(SHAPES)
    )
    ap.add_argument("--out", type=Path, help="write the images (and truth.json) here")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = ap.parse_args()
    shapes = [s.strip() for s in args.shapes.split(",") if s.strip()]
    unknown = [s for s in shapes if s not in SHAPES]
    if unknown:
        ap.error(f"unknown shapes {unknown}; choose from {','.join(SHAPES)}")
    folder = args.out or Path(tempfile.mkdtemp(prefix="ocr-wild-"))
    folder.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    samples: list[Sample] = []
    for shape in shapes:
        for i in range(args.per_shape):
            rng = random.Random(f"{args.seed}/{shape}/{i}")
            sample = SHAPES[shape](rng, i)
            write(sample, folder)
            samples.append(sample)
    render_s = time.monotonic() - t0
    with (folder / "truth.json").open("w", encoding="utf-8") as fh:
        json.dump(
            {
                f"{s.name}.{s.ext}": {
                    "note": s.note,
                    "truths": [dataclasses.asdict(t) for t in s.drawn.truths],
                    "decoys": [dataclasses.asdict(d) for d in s.drawn.decoys],
                }
                for s in samples
            },
            fh,
            ensure_ascii=False,
            indent=1,
        )
    # the scanner reads images only; keep the truth out of its folder while it runs
    truth_path = folder / "truth.json"
    hidden = folder.parent / f".{folder.name}-truth.json"
    shutil.move(truth_path, hidden)
    try:
        load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
        print(
            f"{len(samples)} images in {folder} (rendered in {render_s:.1f} s); load average "
            f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; seed {args.seed}"
        )
        results, seconds, wall = run_cli(folder)
    finally:
        shutil.move(hidden, truth_path)
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    print(
        f"teller-guard scan: {wall:.1f} s for {len(samples)} images "
        f"({wall / max(1, len(samples)):.2f} s each); "
        f"load average after {load[0]:.2f}; s/img is the gap between output lines "
        "(the first holds start-up)"
    )
    print()
    score(samples, results, seconds)
    if not args.out and not args.keep:
        shutil.rmtree(folder, ignore_errors=True)
    else:
        print(f"\nimages and truth.json kept in {folder}")


if __name__ == "__main__":
    main()
