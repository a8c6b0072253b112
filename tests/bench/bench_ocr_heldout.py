"""Score image reading on screens and ID-card images rendered here, through `teller-guard scan`.

A held-out set: written from what bank-branch screens, chat windows, exports and ID-card copies
look like, without reading the detectors or the OCR code, so that it measures the reader against
the world rather than against itself. Every customer identifier drawn is recorded as ground truth
(type, value); distractors (serials, order numbers, amounts, dates, landlines, teller numbers,
look-alikes failing their check digit, pre-masked values, Excel's 6.22202E+18 …) are recorded by
kind so that a false positive can be named. The real CLI runs once over the folder
(`teller-guard scan --format json --recursive DIR`) and findings are matched to the truth per
image by (type, last four characters of the masked value).

A script, not a test: it asserts nothing and prints recall per type, precision, seconds per image,
the misses and the false positives (masked: last four characters only), per shape and overall.

    .venv/bin/python tests/bench/bench_ocr_heldout.py [--seed N] [--per-shape N] [--out DIR]
        [--keep] [--shapes form,chat,...] [--factors] [--min-confidence C]

The default (14 shapes x 4 images, ~1,370 identifiers, ~3,100 distractors) takes about 90 s at a
load average of 4 on two cores. `--factors` changes one thing at a time (value font, grouping,
size, JPEG quality, theme) on the same table and form screens, to tell causes apart.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import functools
import json
import math
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

REPO = Path(__file__).resolve().parents[2]

# --------------------------------------------------------------------------- identifiers

ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK = "10X98765432"

# Real county-level codes with the address and the issuing office printed on the card's back.
REGIONS = (
    ("110105", "北京市朝阳区建国路", "北京市公安局朝阳分局"),
    ("110108", "北京市海淀区中关村大街", "北京市公安局海淀分局"),
    ("110101", "北京市东城区东直门内大街", "北京市公安局东城分局"),
    ("310101", "上海市黄浦区南京东路", "上海市公安局黄浦分局"),
    ("310115", "上海市浦东新区世纪大道", "上海市公安局浦东分局"),
    ("440106", "广东省广州市天河区天河路", "广州市公安局天河区分局"),
    ("440305", "广东省深圳市南山区科技园路", "深圳市公安局南山分局"),
    ("320102", "江苏省南京市玄武区中山路", "南京市公安局玄武分局"),
    ("330106", "浙江省杭州市西湖区文三路", "杭州市公安局西湖区分局"),
    ("510107", "四川省成都市武侯区人民南路", "成都市公安局武侯区分局"),
    ("420106", "湖北省武汉市武昌区中南路", "武汉市公安局武昌区分局"),
    ("610113", "陕西省西安市雁塔区小寨东路", "西安市公安局雁塔分局"),
    ("370102", "山东省济南市历下区泉城路", "济南市公安局历下区分局"),
    ("500103", "重庆市渝中区解放碑民族路", "重庆市公安局渝中区分局"),
    ("120101", "天津市和平区南京路", "天津市公安局和平分局"),
    ("350203", "福建省厦门市思明区鹭江道", "厦门市公安局思明分局"),
    ("430104", "湖南省长沙市岳麓区麓山南路", "长沙市公安局岳麓分局"),
    ("410105", "河南省郑州市金水区花园路", "郑州市公安局金水分局"),
)

# Issuer prefixes of the big Chinese debit cards (bank, length), from the public BIN table.
BIG_BINS = (
    ("622202", 19), ("621226", 19), ("621288", 19), ("621558", 19), ("620058", 19),
    ("621700", 19), ("622700", 19), ("436742", 19), ("623668", 19), ("622848", 19),
    ("621661", 19), ("622262", 19), ("621799", 19), ("622150", 19), ("622188", 19),
    ("622588", 16), ("622580", 16), ("622609", 16), ("621483", 16), ("622908", 18),
    ("603367", 18),
)

MOBILE_PREFIXES = (
    "130", "131", "132", "133", "134", "135", "136", "137", "138", "139", "147", "150", "151",
    "152", "153", "155", "156", "157", "158", "159", "166", "173", "175", "176", "177", "178",
    "180", "181", "182", "183", "184", "185", "186", "187", "188", "189", "191", "193", "195",
    "198", "199",
)

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红建国志文斌浩宇欣怡子涵梓轩雨婷嘉"
NATIONS = ("汉", "汉", "汉", "汉", "回", "满", "壮", "蒙古", "苗", "土家")

TYPE_OF = {"id": "CN_RESIDENT_ID", "card": "BANK_CARD", "mobile": "CN_MOBILE"}
TYPES = ("CN_RESIDENT_ID", "BANK_CARD", "CN_MOBILE")


def id_check(body17: str) -> str:
    """The GB 11643 check character of the first 17 characters."""
    return ID_CHECK[sum(int(c) * w for c, w in zip(body17, ID_WEIGHTS, strict=True)) % 11]


def luhn_digit(partial: str) -> str:
    """The Luhn check digit to append to `partial`."""
    total = 0
    for i, ch in enumerate(reversed(partial)):
        n = int(ch)
        if i % 2 == 0:
            n *= 2
            if n > 9:
                n -= 9
        total += n
    return str((10 - total % 10) % 10)


def last4(text: str) -> str:
    """The last four letters or digits of a value as shown or as masked."""
    return "".join(ch for ch in text if ch.isalnum())[-4:].upper()


def load_bins() -> list[tuple[str, int]]:
    """Six-digit debit and credit prefixes from the public BIN table, for variety."""
    for path in (REPO / "resources/data/cn-card-bins.csv",
                 Path("/work/shared/data/cn-card-bins.csv")):
        if path.is_file():
            with path.open(encoding="utf-8") as fh:
                rows = list(csv.DictReader(fh))
            return [
                (r["bin"], int(r["length"]))
                for r in rows
                if len(r["bin"]) == 6 and r["length"].isdigit() and 16 <= int(r["length"]) <= 19
            ]
    return list(BIG_BINS)


@dataclass(frozen=True)
class Person:
    """One invented customer: the values that belong together on a card or a form."""

    name: str
    sex: str
    nation: str
    birth: dt.date
    region: tuple[str, str, str]
    id_no: str
    card: str
    mobile: str


@dataclass(frozen=True)
class Ident:
    """A customer identifier to draw; `shown` is how the screen formats it."""

    kind: str
    value: str
    shown: str
    optional: bool = False  # partly covered: a finding matches it, a miss does not count


@dataclass(frozen=True)
class Decoy:
    """A distractor that must not be reported, by kind."""

    kind: str
    text: str


Part = str | Ident | Decoy


@dataclass(frozen=True)
class Truth:
    type: str
    value: str
    font: str
    note: str
    optional: bool
    grouped: bool = False


class Values:
    """Makes identifiers and distractors, none sharing its last four characters on one image."""

    def __init__(self, rng: random.Random, bins: list[tuple[str, int]]) -> None:
        self.rng = rng
        self.bins = bins
        self.used: set[str] = set()

    def reset(self) -> None:
        self.used = set()

    def _fresh(self, make: Callable[[], str]) -> str:
        for _ in range(200):
            value = make()
            key = last4(value)
            if key not in self.used:
                self.used.add(key)
                return value
        raise RuntimeError("could not draw a value with unused last four characters")

    def digits(self, n: int) -> str:
        return "".join(self.rng.choice("0123456789") for _ in range(n))

    def birth(self) -> dt.date:
        start = dt.date(1950, 1, 1).toordinal()
        return dt.date.fromordinal(self.rng.randint(start, dt.date(2005, 12, 31).toordinal()))

    def id_no(self, *, birth: dt.date | None = None, region: str | None = None,
              sex: str | None = None, want_x: bool | None = None) -> str:
        if want_x is None:
            want_x = self.rng.random() < 0.25  # make sure X check characters are well represented

        def make() -> str:
            for _ in range(500):
                b = birth or self.birth()
                r = region or self.rng.choice(REGIONS)[0]
                seq = self.rng.randint(0, 99)
                male = (sex or self.rng.choice("男女")) == "男"
                odd = self.rng.randint(0, 4) * 2 + (1 if male else 0)
                body = f"{r}{b:%Y%m%d}{seq:02d}{odd}"
                check = id_check(body)
                if (check == "X") == want_x:
                    return body + check
            return body + check

        return self._fresh(make)

    def card(self) -> str:
        def make() -> str:
            prefix, length = (self.rng.choice(BIG_BINS) if self.rng.random() < 0.7
                              else self.rng.choice(self.bins))
            partial = prefix + self.digits(length - len(prefix) - 1)
            return partial + luhn_digit(partial)

        return self._fresh(make)

    def mobile(self) -> str:
        return self._fresh(lambda: self.rng.choice(MOBILE_PREFIXES) + self.digits(8))

    def name(self) -> str:
        return self.rng.choice(SURNAMES) + "".join(
            self.rng.choice(GIVEN) for _ in range(self.rng.choice((1, 2, 2))))

    def person(self) -> Person:
        sex = self.rng.choice("男女")
        region = self.rng.choice(REGIONS)
        birth = self.birth()
        return Person(self.name(), sex, self.rng.choice(NATIONS), birth, region,
                      self.id_no(birth=birth, region=region[0], sex=sex), self.card(),
                      self.mobile())

    # ---- distractors
    def decoy(self, kind: str) -> Decoy:
        rng = self.rng
        day = dt.datetime(2024, 1, 1) + dt.timedelta(minutes=rng.randint(0, 60 * 24 * 400))

        def make() -> str:
            if kind == "serial":  # transaction serial: date, time, branch sequence
                return rng.choice((f"{day:%Y%m%d%H%M%S}" + self.digits(6),
                                   f"{day:%Y%m%d}" + self.digits(12),
                                   "TX" + f"{day:%Y%m%d}" + self.digits(10)))
            if kind == "order":
                return rng.choice((f"{day:%Y%m%d}" + self.digits(10), "E" + f"{day:%Y%m%d}"
                                   + self.digits(9), "DD" + self.digits(16)))
            if kind == "amount":
                v = rng.choice((rng.uniform(1, 999), rng.uniform(1000, 99999),
                                rng.uniform(10000, 9999999)))
                return rng.choice((f"¥{v:,.2f}", f"{v:,.2f}", f"CNY {v:,.2f}", f"￥{v:.2f}"))
            if kind == "datetime":
                return rng.choice((f"{day:%Y-%m-%d %H:%M:%S}", f"{day:%Y/%m/%d}",
                                   f"{day:%Y年%m月%d日}", f"{day:%Y%m%d}", f"{day:%Y-%m-%d}"))
            if kind == "landline":
                area = rng.choice(("010", "021", "020", "0755", "0571", "028", "027", "025"))
                n = self.digits(8 if len(area) == 3 else rng.choice((7, 8)))
                n = rng.choice("2345678") + n[1:]
                return rng.choice((f"{area}-{n}", f"({area}){n}", f"{area} {n[:4]} {n[4:]}"))
            if kind == "teller":
                return rng.choice(("T0" + self.digits(4), "0" + self.digits(5),
                                   "GY" + self.digits(5)))
            if kind == "bad_id":
                body = self.id_no()[:17]
                self.used.discard(last4(body + id_check(body)))
                good = id_check(body)
                return body + rng.choice([c for c in "0123456789X" if c != good])
            if kind == "bad_card":
                prefix, length = rng.choice(BIG_BINS)
                partial = prefix + self.digits(length - 7)
                good = luhn_digit(partial)
                return partial + rng.choice([c for c in "0123456789" if c != good])
            if kind == "run11":  # 11 digits that are no mainland mobile
                head = rng.choice(("10", "11", "12", "2", "4", "5", "6", "8", "9"))
                return head + self.digits(11 - len(head))
            if kind == "voucher":
                return self.digits(rng.choice((8, 10, 12)))
            if kind == "cust_no":
                return rng.choice(("C" + self.digits(10), "1000" + self.digits(6),
                                   "8" + self.digits(11)))
            if kind.startswith("premasked"):  # a system that masks on screen already
                which = kind.partition(":")[2] or rng.choice(("mobile", "card", "id"))
                return {"mobile": lambda: rng.choice(MOBILE_PREFIXES) + "****" + self.digits(4),
                        "card": lambda: rng.choice(BIG_BINS)[0][:4] + " **** **** "
                        + self.digits(4),
                        "id": lambda: rng.choice(REGIONS)[0] + "********" + self.digits(3)
                        + rng.choice("0123456789X")}[which]()
            if kind == "date":
                return rng.choice((f"{day:%Y-%m-%d}", f"{day:%Y/%m/%d}", f"{day:%Y%m%d}",
                                   f"{day:%Y年%m月%d日}"))
            if kind == "sci":
                return f"{rng.uniform(6.2, 6.29):.5f}E+18"
            if kind == "postcode":
                return rng.choice(("100020", "200001", "510620", "518057", "310012", "610041"))
            if kind == "org":
                return self.digits(6)
            if kind == "ip":
                return f"10.{rng.randint(1, 254)}.{rng.randint(1, 254)}.{rng.randint(1, 254)}"
            raise ValueError(f"unknown distractor kind {kind!r}")

        base = kind.partition(":")[0]
        if base == "sci":  # its last four characters are "E+18" on every cell: no uniqueness
            return Decoy(base, make())
        for _ in range(50):  # a shared last four would let a false positive pass as a hit
            text = make()
            if last4(text) not in self.used:
                break
        self.used.add(last4(text))
        return Decoy(base, text)

    def ident(self, kind: str, value: str | None = None, style: str = "plain",
              optional: bool = False) -> Ident:
        if value is None:
            value = {"id": self.id_no, "card": self.card, "mobile": self.mobile}[kind]()
        return Ident(kind, value, shown_as(value, kind, style, self.rng), optional)


def shown_as(value: str, kind: str, style: str, rng: random.Random) -> str:
    """How a screen formats a value: plain, or grouped with spaces or dashes."""
    if style != "grouped":
        return value
    if kind == "card":
        return " ".join(value[i:i + 4] for i in range(0, len(value), 4))
    if kind == "mobile":
        sep = rng.choice((" ", " ", "-"))
        return f"{value[:3]}{sep}{value[3:7]}{sep}{value[7:]}"
    return rng.choice((f"{value[:6]} {value[6:14]} {value[14:]}",
                       " ".join(value[i:i + 4] for i in range(0, len(value), 4))))


# --------------------------------------------------------------------------- fonts and drawing

NOTO = "/usr/share/fonts/opentype/noto/"
URW = "/usr/share/fonts/opentype/urw-base35/"
DEJAVU = "/usr/share/fonts/truetype/dejavu/"
FACES: dict[str, tuple[str, int]] = {
    "NotoSansSC": (NOTO + "NotoSansCJK-Regular.ttc", 2),
    "NotoSansSC-Bold": (NOTO + "NotoSansCJK-Bold.ttc", 2),
    "NotoSerifSC": (NOTO + "NotoSerifCJK-Regular.ttc", 2),
    "NotoSerifSC-Bold": (NOTO + "NotoSerifCJK-Bold.ttc", 2),
    "NotoSansMonoSC": (NOTO + "NotoSansCJK-Regular.ttc", 7),
    "DejaVuSans": (DEJAVU + "DejaVuSans.ttf", 0),
    "DejaVuSans-Bold": (DEJAVU + "DejaVuSans-Bold.ttf", 0),
    "DejaVuSansMono": (DEJAVU + "DejaVuSansMono.ttf", 0),
    "DejaVuSansMono-Bold": (DEJAVU + "DejaVuSansMono-Bold.ttf", 0),
    "DejaVuSerif": (DEJAVU + "DejaVuSerif.ttf", 0),
    "NimbusSans": (URW + "NimbusSans-Regular.otf", 0),  # Arial/Helvetica metrics
    "NimbusSans-Bold": (URW + "NimbusSans-Bold.otf", 0),
    "NimbusRoman": (URW + "NimbusRoman-Regular.otf", 0),  # Times
    "NimbusMono": (URW + "NimbusMonoPS-Regular.otf", 0),  # Courier
    "NimbusMono-Bold": (URW + "NimbusMonoPS-Bold.otf", 0),
    "URWGothic": (URW + "URWGothic-Book.otf", 0),
}
CJK_FACES = ("NotoSansSC", "NotoSansSC-Bold", "NotoSerifSC", "NotoSerifSC-Bold", "NotoSansMonoSC")
LATIN_FACES = tuple(f for f in FACES if f not in CJK_FACES)


@dataclass(frozen=True)
class Font:
    face: str
    size: int

    @property
    def pil(self) -> ImageFont.FreeTypeFont:
        return _pil_font(self.face, self.size)

    @property
    def cjk(self) -> bool:
        return self.face in CJK_FACES

    def width(self, text: str) -> float:
        return self.pil.getlength(text)

    def scaled(self, s: float) -> Font:
        return Font(self.face, max(8, round(self.size * s)))

    def __str__(self) -> str:
        return f"{self.face} {self.size}px"


@functools.cache
def _pil_font(face: str, size: int) -> ImageFont.FreeTypeFont:
    path, index = FACES[face]
    return ImageFont.truetype(path, size, index=index)


RGB = tuple[int, int, int]


class Page:
    """An image being drawn and what was drawn on it: the truth and the distractors."""

    def __init__(self, size: tuple[int, int], bg: RGB | str, values: Values, note: str) -> None:
        self.im = Image.new("RGB", size, bg)
        self.d = ImageDraw.Draw(self.im)
        self.v = values
        self.note = note
        self.truth: list[Truth] = []
        self.decoys: list[Decoy] = []
        self.used_kinds: set[str] = set()
        values.reset()

    @property
    def w(self) -> int:
        return self.im.width

    @property
    def h(self) -> int:
        return self.im.height

    def rect(self, box: Sequence[float], fill: RGB | str | None = None,
             outline: RGB | str | None = None, width: int = 1, radius: float = 0) -> None:
        x0, y0, x1, y1 = (round(c) for c in box)
        if radius:
            self.d.rounded_rectangle((x0, y0, x1, y1), radius=round(radius), fill=fill,
                                     outline=outline, width=width)
        else:
            self.d.rectangle((x0, y0, x1, y1), fill=fill, outline=outline, width=width)

    def line(self, xy: Sequence[float], fill: RGB | str, width: int = 1) -> None:
        self.d.line([round(c) for c in xy], fill=fill, width=width)

    def run(self, x: float, baseline: float, parts: Sequence[Part], font: Font,
            fill: RGB | str, value_font: Font | None = None, tracking: float = 0,
            value_fill: RGB | str | None = None) -> float:
        """Draw text parts left to right on one baseline; identifiers are recorded as truth."""
        for part in parts:
            f = font
            colour = fill
            if isinstance(part, Ident):
                text = part.shown
                f = value_font or font
                colour = value_fill or fill
                self.truth.append(Truth(TYPE_OF[part.kind], part.value, str(f),
                                        self.note, part.optional, part.shown != part.value))
            elif isinstance(part, Decoy):
                text = part.text
                f = value_font if value_font and not _has_cjk(text) else font
                self.decoys.append(part)
            else:
                text = part
            if not f.cjk and _has_cjk(text):
                f = Font("NotoSansSC", f.size)
            if tracking:
                for ch in text:
                    self.d.text((x, baseline), ch, font=f.pil, fill=colour, anchor="ls")
                    x += f.width(ch) + tracking
            else:
                self.d.text((round(x), round(baseline)), text, font=f.pil, fill=colour,
                            anchor="ls")
                x += f.width(text)
        return x

    def width_of(self, parts: Sequence[Part], font: Font, value_font: Font | None = None) -> float:
        total = 0.0
        for part in parts:
            text = part if isinstance(part, str) else part.shown if isinstance(part, Ident) \
                else part.text
            f = value_font if value_font and not isinstance(part, str) else font
            if not f.cjk and _has_cjk(text):
                f = Font("NotoSansSC", f.size)
            total += f.width(text)
        return total

    def in_box(self, box: Sequence[float], parts: Sequence[Part], font: Font,
               fill: RGB | str, align: str = "left", pad: float = 6,
               value_font: Font | None = None, value_fill: RGB | str | None = None) -> None:
        """Draw parts vertically centred in a box (a cell, an input field)."""
        x0, y0, x1, y1 = box
        f = value_font or font
        asc, desc = f.pil.getmetrics()
        baseline = y0 + (y1 - y0 - (asc + desc)) / 2 + asc
        width = self.width_of(parts, font, value_font)
        if align == "right":
            x = x1 - pad - width
        elif align == "center":
            x = x0 + (x1 - x0 - width) / 2
        else:
            x = x0 + pad
        self.run(x, baseline, parts, font, fill, value_font=value_font, value_fill=value_fill)


def _has_cjk(text: str) -> bool:
    return any("\u2e80" <= ch <= "\u9fff" or "\uff00" <= ch <= "\uffef" for ch in text)


# --------------------------------------------------------------------------- themes

@dataclass(frozen=True)
class Theme:
    name: str
    bg: RGB
    panel: RGB
    text: RGB
    label: RGB
    field_bg: RGB
    field_border: RGB
    title_bg: RGB
    title_fg: RGB
    grid: RGB
    zebra: RGB
    header_bg: RGB
    accent: RGB


LIGHT = Theme("light", (240, 240, 240), (255, 255, 255), (20, 20, 20), (60, 60, 60),
              (255, 255, 255), (160, 166, 176), (0, 84, 166), (255, 255, 255), (200, 204, 210),
              (244, 247, 252), (226, 232, 240), (0, 102, 204))
CLASSIC = Theme("classic", (212, 208, 200), (236, 233, 216), (0, 0, 0), (0, 0, 0),
                (255, 255, 255), (127, 157, 185), (10, 36, 106), (255, 255, 255), (160, 160, 160),
                (255, 255, 225), (212, 208, 200), (49, 106, 197))
DARK = Theme("dark", (30, 30, 30), (37, 37, 38), (212, 212, 212), (150, 150, 150),
             (51, 51, 55), (80, 80, 88), (45, 45, 48), (204, 204, 204), (62, 62, 66),
             (42, 42, 46), (51, 51, 55), (14, 99, 156))
NAVY = Theme("navy", (16, 24, 40), (22, 33, 55), (224, 232, 240), (140, 160, 190),
             (30, 44, 70), (60, 80, 115), (10, 16, 28), (230, 236, 245), (45, 60, 88),
             (26, 38, 62), (34, 50, 80), (64, 158, 255))


# --------------------------------------------------------------------------- screen shapes

@dataclass
class Style:
    """Per-image choices: theme, scale, fonts, value formatting, colouring."""

    theme: Theme = LIGHT
    scale: float = 1.0
    font: Font = Font("NotoSansSC", 14)
    value_font: Font | None = None
    grouped: bool = False
    colourful: bool = False
    notes: list[str] = field(default_factory=list)


def _value_font(rng: random.Random, size: int) -> Font | None:
    choice = rng.choice((None, None, "DejaVuSans", "NimbusSans", "DejaVuSansMono", "NimbusMono",
                         "NimbusRoman", "DejaVuSerif", "NotoSerifSC", "NotoSansSC-Bold",
                         "DejaVuSans-Bold", "NimbusMono-Bold", "URWGothic"))
    return Font(choice, size) if choice else None


def window_chrome(p: Page, st: Style, title: str) -> tuple[float, float]:
    """A Windows-style application window: title bar, menu, tool bar. Returns the content top."""
    s, t = st.scale, st.theme
    f = st.font
    p.rect((0, 0, p.w, 30 * s), fill=t.title_bg)
    p.run(12 * s, 21 * s, [title], f, t.title_fg)
    for i, glyph in enumerate(("×", "□", "—")):
        p.run(p.w - (40 + 46 * i) * s, 21 * s, [glyph], Font("DejaVuSans", f.size), t.title_fg)
    p.rect((0, 30 * s, p.w, 56 * s), fill=t.panel)
    x = 10 * s
    for item in ("系统(S)", "个人业务(P)", "对公业务(C)", "查询(Q)", "打印(R)", "帮助(H)"):
        x = p.run(x, 48 * s, [item], f, t.text) + 22 * s
    p.line((0, 56 * s, p.w, 56 * s), fill=t.grid)
    p.rect((0, 57 * s, p.w, 92 * s), fill=t.bg)
    x = 10 * s
    for item in ("新建", "保存", "提交", "复核", "打印", "退出"):
        p.rect((x, 62 * s, x + 64 * s, 87 * s), fill=t.panel, outline=t.field_border)
        p.in_box((x, 62 * s, x + 64 * s, 87 * s), [item], f.scaled(0.9), t.text, align="center")
        x += 72 * s
    return 92 * s, p.h - 28 * s


def status_bar(p: Page, st: Style) -> None:
    s, t = st.scale, st.theme
    y0 = p.h - 28 * s
    p.rect((0, y0, p.w, p.h), fill=t.header_bg)
    f = st.font.scaled(0.9)
    parts: list[Part] = ["柜员号：", p.v.decoy("teller"), "   机构号：", p.v.decoy("org"),
                         "   终端：", p.v.decoy("ip"), "   ", p.v.decoy("datetime"),
                         "   通讯正常"]
    p.run(10 * s, y0 + 19 * s, parts, f, t.text)


FORM_FIELDS: tuple[tuple[str, str], ...] = (
    ("客户姓名", "name"), ("证件类型", "idtype"), ("证件号码", "id"), ("证件有效期", "validity"),
    ("卡号", "card"), ("账户类型", "acct"), ("手机号码", "mobile"), ("联系电话", "landline"),
    ("交易金额", "amount"), ("交易流水号", "serial"), ("凭证号码", "voucher"),
    ("客户号", "cust_no"), ("通讯地址", "address"), ("邮政编码", "postcode"),
    ("经办柜员", "teller"), ("交易日期", "datetime"),
    ("代理人证件号码", "bad_id"), ("业务参考号", "bad_card"), ("原预留号码", "premasked:mobile"),
    ("转入卡号", "card"), ("备用手机", "mobile"), ("内部编号", "run11"), ("订单编号", "order"),
)


def field_parts(p: Page, st: Style, kind: str, person: Person) -> list[Part]:
    style = "grouped" if st.grouped and p.v.rng.random() < 0.8 else "plain"
    rng = p.v.rng
    if kind == "name":
        return [person.name]
    if kind == "idtype":
        return ["居民身份证"]
    if kind == "acct":
        return [rng.choice(("个人结算账户", "一类账户", "二类账户", "借记卡"))]
    if kind == "address":
        return [person.region[1] + f"{rng.randint(1, 300)}号{rng.randint(1, 30)}栋"]
    if kind == "validity":
        y = rng.randint(2015, 2023)
        return [f"{y}.{rng.randint(1, 12):02d}.{rng.randint(1, 28):02d}-{y + 20}.03.01"]
    if kind == "id":
        return [p.v.ident("id", person.id_no, style)]
    if kind in ("card", "mobile"):  # the second card or mobile field holds another number
        own = person.card if kind == "card" else person.mobile
        first = kind not in p.used_kinds
        p.used_kinds.add(kind)
        return [p.v.ident(kind, own if first else None, style)]
    return [p.v.decoy(kind)]


COLOURWAYS: tuple[tuple[RGB, RGB], ...] = (
    ((200, 0, 0), (255, 228, 228)), ((255, 255, 255), (22, 119, 255)),
    ((0, 110, 40), (228, 255, 236)), ((120, 70, 0), (255, 243, 176)),
    ((130, 130, 130), (238, 238, 238)), ((255, 214, 0), (40, 40, 40)),
    ((0, 60, 160), (220, 235, 255)), ((255, 255, 255), (200, 40, 40)),
    ((90, 0, 140), (245, 230, 255)),
)


def form_screen(p: Page, st: Style) -> None:
    """A core-banking transaction form: labels beside values in input boxes, a recent-items grid."""
    s, t, rng = st.scale, st.theme, p.v.rng
    p.rect((0, 0, p.w, p.h), fill=t.bg)
    top, bottom = window_chrome(p, st, rng.choice(("XX银行综合业务系统 V5.2 - 个人活期开户",
                                                  "新一代核心业务系统 [柜面版]",
                                                  "柜面业务系统 - 借记卡挂失")))
    nav_w = 210 * s
    p.rect((0, top, nav_w, bottom), fill=t.panel)
    y = top + 26 * s
    for item in ("－ 个人业务", "    开户", "    销户", "    挂失/解挂", "    换卡", "    密码重置",
                 "＋ 对公业务", "＋ 查询业务", "＋ 凭证管理", "＋ 日终处理"):
        if y > bottom - 20 * s:
            break
        p.run(14 * s, y, [item], st.font, t.text)
        y += 28 * s
    x0 = nav_w + 20 * s
    p.rect((nav_w + 8 * s, top + 8 * s, p.w - 8 * s, bottom - 8 * s), fill=t.panel,
           outline=t.grid)
    p.run(x0, top + 40 * s, [rng.choice(("个人客户开户", "客户信息维护", "借记卡换卡",
                                        "账户挂失", "大额取款登记"))],
          Font("NotoSansSC-Bold", round(st.font.size * 1.3 * s)), t.text)
    person = p.v.person()
    must = [f for f in FORM_FIELDS[:8]]
    extra = list(FORM_FIELDS[8:])
    rng.shuffle(extra)
    fields = must + extra
    f = st.font.scaled(s)
    vf = st.value_font.scaled(s) if st.value_font else None
    label_w = max(f.width(lbl + "：") for lbl, _ in fields) + 10 * s
    box_w = max(300 * s, f.width("0" * 24) * 1.15)
    col_w = label_w + box_w + 40 * s
    cols = max(1, min(3, int((p.w - x0 - 20 * s) // col_w)))
    row_h = 38 * s
    y_start = top + 62 * s
    rows = max(3, int((bottom - 200 * s - y_start) // row_h))
    fields = fields[:rows * cols]
    for i, (label, kind) in enumerate(fields):
        cx = x0 + (i % cols) * col_w
        cy = y_start + (i // cols) * row_h
        p.in_box((cx, cy, cx + label_w, cy + 28 * s), [label + "："], f, t.label, align="right",
                 pad=4 * s)
        box = (cx + label_w + 4 * s, cy, cx + label_w + 4 * s + box_w, cy + 28 * s)
        fg, bg = t.text, t.field_bg
        if st.colourful and rng.random() < 0.7:
            fg, bg = rng.choice(COLOURWAYS)
        p.rect(box, fill=bg, outline=t.field_border)
        p.in_box(box, field_parts(p, st, kind, person), f, fg, pad=6 * s, value_font=vf)
    # a small grid of recent transactions: dates, amounts and serials only
    gy = y_start + ((len(fields) + cols - 1) // cols) * row_h + 16 * s
    heads = ("交易日期", "摘要", "交易金额", "余额", "交易流水号", "柜员")
    widths = (190, 110, 150, 160, 250, 100)
    if gy + 60 * s < bottom - 40 * s:
        fs = st.font.scaled(0.93 * s)
        x = x0
        p.rect((x0, gy, x0 + sum(widths) * s, gy + 26 * s), fill=t.header_bg)
        for head, w in zip(heads, widths, strict=True):
            p.in_box((x, gy, x + w * s, gy + 26 * s), [head], fs, t.text)
            x += w * s
        gy += 26 * s
        while gy + 26 * s < bottom - 44 * s:
            x = x0
            cells: list[list[Part]] = [[p.v.decoy("date")],
                                       [rng.choice(("转账", "取现", "存现", "代发工资", "消费"))],
                                       [p.v.decoy("amount")], [p.v.decoy("amount")],
                                       [p.v.decoy("serial")], [p.v.decoy("teller")]]
            for cell, w in zip(cells, widths, strict=True):
                p.in_box((x, gy, x + w * s, gy + 26 * s), cell, fs, t.text)
                p.line((x, gy + 26 * s, x + w * s, gy + 26 * s), fill=t.grid)
                x += w * s
            gy += 26 * s
    bx = p.w - 340 * s
    for label in ("确定", "取消", "打印"):
        p.rect((bx, bottom - 44 * s, bx + 90 * s, bottom - 16 * s), fill=t.accent, radius=3 * s)
        p.in_box((bx, bottom - 44 * s, bx + 90 * s, bottom - 16 * s), [label], f,
                 (255, 255, 255), align="center")
        bx += 104 * s
    status_bar(p, st)


TABLE_COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("序号", "seq", 50), ("客户姓名", "name", 90), ("证件号码", "id", 200), ("卡号", "card", 230),
    ("手机号码", "mobile", 140), ("开户日期", "date", 120), ("账户余额", "amount", 140),
    ("交易流水号", "serial", 240), ("联系电话", "landline", 140), ("经办柜员", "teller", 90),
)


def table_screen(p: Page, st: Style) -> None:
    """A customer or transaction query result: header row, grid lines, zebra stripes, a pager."""
    s, t, rng = st.scale, st.theme, p.v.rng
    p.rect((0, 0, p.w, p.h), fill=t.bg)
    top, bottom = window_chrome(p, st, rng.choice(("客户信息综合查询", "交易明细查询 - 柜面系统",
                                                  "批量代发结果查询")))
    f = st.font.scaled(s)
    vf = st.value_font.scaled(s) if st.value_font else None
    # query conditions
    p.run(20 * s, top + 32 * s, ["查询条件  证件类型：居民身份证   起始日期：",
                                p.v.decoy("datetime"), "   终止日期：", p.v.decoy("datetime")],
          f, t.text)
    p.rect((p.w - 200 * s, top + 12 * s, p.w - 110 * s, top + 40 * s), fill=t.accent, radius=3)
    p.in_box((p.w - 200 * s, top + 12 * s, p.w - 110 * s, top + 40 * s), ["查询"], f,
             (255, 255, 255), align="center")
    cols = list(TABLE_COLUMNS)
    scale_w = max(1.0, f.size / 14)
    total = sum(w for _, _, w in cols) * s * scale_w
    while total > p.w - 40 * s and len(cols) > 5:
        drop = next(c for c in reversed(cols) if c[1] in ("teller", "landline", "serial",
                                                           "date", "amount"))
        cols.remove(drop)
        total = sum(w for _, _, w in cols) * s * scale_w
    x0, y = 20 * s, top + 56 * s
    row_h = max(26 * s, f.size * 1.9)
    p.rect((x0, y, x0 + total, y + row_h), fill=t.header_bg)
    x = x0
    hf = Font("NotoSansSC-Bold", f.size)
    for head, _, w in cols:
        p.in_box((x, y, x + w * s * scale_w, y + row_h), [head], hf, t.text)
        p.line((x, y, x, y + row_h), fill=t.grid)
        x += w * s * scale_w
    y += row_h
    n = 0
    while y + row_h < bottom - 40 * s:
        n += 1
        person = p.v.person()
        if n % 2 == 0:
            p.rect((x0, y, x0 + total, y + row_h), fill=t.zebra)
        x = x0
        for _, kind, w in cols:
            style = "grouped" if st.grouped and rng.random() < 0.8 else "plain"
            cell: list[Part]
            if kind == "seq":
                cell = [str(n)]
            elif kind == "name":
                cell = [person.name]
            elif kind in ("id", "card", "mobile"):
                if rng.random() < 0.12:  # some systems mask part of the rows already
                    cell = [p.v.decoy("premasked:" + kind)] if kind != "id" else ["—"]
                elif kind == "mobile" and rng.random() < 0.1:
                    cell = [p.v.decoy("landline")]
                else:
                    cell = [p.v.ident(kind, {"id": person.id_no, "card": person.card,
                                             "mobile": person.mobile}[kind], style)]
            else:
                cell = [p.v.decoy(kind)]
            fg = t.text
            if st.colourful and kind in ("id", "card", "mobile") and rng.random() < 0.5:
                fg, bg = rng.choice(COLOURWAYS)
                p.rect((x + 1, y + 1, x + w * s * scale_w - 1, y + row_h - 1), fill=bg)
            p.in_box((x, y, x + w * s * scale_w, y + row_h), cell, f, fg,
                     align="right" if kind == "amount" else "left", value_font=vf)
            p.line((x, y, x, y + row_h), fill=t.grid)
            x += w * s * scale_w
        p.line((x0, y + row_h, x0 + total, y + row_h), fill=t.grid)
        y += row_h
    p.line((x0 + total, top + 56 * s, x0 + total, y), fill=t.grid)
    p.run(20 * s, bottom - 14 * s, [f"共 {rng.randint(n, 400)} 条  第 1/{rng.randint(2, 30)} 页  "
                                   "每页 ", str(n), " 条"], f, t.text)
    status_bar(p, st)


CHAT_LINES: tuple[tuple[str, ...] | str, ...] = (
    ("客户", "{name}", "，身份证号", "{id}", "，要办一张借记卡，手机", "{mobile}"),
    ("帮忙查一下卡号", "{card}", "为什么被冻结了"),
    ("客户说手机号换成", "{mobile}", "了，麻烦改一下预留"),
    ("这个客户身份证", "{id}", "，卡号", "{card}", "，今天来挂失"),
    ("好的，稍等"), ("收到"), ("已经处理了，流水号", "{serial}"),
    ("客户转账", "{amount}", "，对方说没到账"), ("有事打座机", "{landline}"),
    ("订单号", "{order}", "，客户要退款"), ("柜员号", "{teller}", "帮我复核一下"),
    ("卡号", "{card}", "，姓名", "{name}", "，手机", "{mobile}", "，帮忙核实"),
    ("身份证", "{bad_id}", "系统提示校验不通过，是不是输错了？"),
    ("凭证号", "{voucher}", "已经作废"), ("客户号", "{cust_no}"),
    ("明天上午10:30开会，别忘了"), ("客户手机", "{mobile}", "收不到验证码"),
)


def chat_screen(p: Page, st: Style) -> None:
    """A WeChat / WeCom-like chat window where the teller pasted a customer's details."""
    s, rng = st.scale, p.v.rng
    wecom = "wecom" in st.notes
    nav = (46, 46, 46) if not wecom else (32, 54, 90)
    self_bubble = (149, 236, 105) if not wecom else (200, 226, 255)
    p.rect((0, 0, p.w, p.h), fill=(245, 245, 245))
    p.rect((0, 0, 60 * s, p.h), fill=nav)
    list_w = 250 * s
    p.rect((60 * s, 0, 60 * s + list_w, p.h),
           fill=(230, 230, 230) if not wecom else (247, 248, 250))
    f = st.font.scaled(s)
    small = f.scaled(0.85)
    y = 80 * s
    for _ in range(int((p.h - 80 * s) // (64 * s))):
        avatar = (rng.randint(120, 220), rng.randint(120, 220), rng.randint(120, 220))
        p.rect((72 * s, y, 112 * s, y + 40 * s), fill=avatar, radius=4 * s)
        p.run(122 * s, y + 16 * s, [rng.choice(("营业部-", "运营-", "个金-", "")) + p.v.name()],
              f, (30, 30, 30))
        p.run(122 * s, y + 36 * s, [rng.choice(("[图片]", "好的", "收到，谢谢",
                                               "[文件] 客户名单.xlsx", "下午培训"))],
              small, (150, 150, 150))
        y += 64 * s
    cx0 = 60 * s + list_w
    p.rect((cx0, 0, p.w, 56 * s), fill=(245, 245, 245))
    p.run(cx0 + 24 * s, 36 * s, [rng.choice(("营业部运营群(12)", "王经理", "个金业务交流群(38)"))],
          f.scaled(1.1), (20, 20, 20))
    p.line((cx0, 56 * s, p.w, 56 * s), fill=(220, 220, 220))
    input_top = p.h - 150 * s
    p.line((cx0, input_top, p.w, input_top), fill=(220, 220, 220))
    p.rect((cx0, input_top + 1, p.w, p.h), fill=(255, 255, 255) if wecom else (245, 245, 245))
    p.run(cx0 + 20 * s, input_top + 30 * s, ["☺  ✂  ▭"], Font("DejaVuSans", f.size),
          (100, 100, 100))
    p.rect((p.w - 120 * s, p.h - 46 * s, p.w - 24 * s, p.h - 16 * s),
           fill=(233, 233, 233) if not wecom else (22, 119, 255), radius=3 * s)
    p.in_box((p.w - 120 * s, p.h - 46 * s, p.w - 24 * s, p.h - 16 * s), ["发送(S)"], small,
             (7, 193, 96) if not wecom else (255, 255, 255), align="center")
    # messages from the bottom up would need measuring first; lay out top-down and stop when full
    y = 76 * s
    max_w = (p.w - cx0) * 0.58
    line_h = f.size * 1.55
    person = p.v.person()
    misfits = 0
    clock = rng.randint(8 * 60, 11 * 60)  # minutes since midnight, for the time stamps
    while misfits < 6:
        # a branch group chat is mostly short replies; these are the days someone pastes details
        with_ident = [t for t in CHAT_LINES if "{id}" in t or "{card}" in t or "{mobile}" in t]
        template = rng.choice(with_ident if rng.random() < 0.6 else CHAT_LINES)
        template = (template,) if isinstance(template, str) else template
        parts: list[Part] = []
        for piece in template:
            if piece.startswith("{"):
                key = piece.strip("{}")
                if key == "name":
                    parts.append(person.name)
                elif key in ("id", "card", "mobile"):
                    style = "grouped" if (st.grouped or rng.random() < 0.25) else "plain"
                    parts.append(p.v.ident(key, None, style))
                else:
                    parts.append(p.v.decoy(key))
            else:
                parts.append(piece)
        lines = wrap(parts, f, max_w - 24 * s, p)
        bubble_h = len(lines) * line_h + 18 * s
        if y + bubble_h + 40 * s > input_top:  # try a shorter message; nothing was drawn yet
            misfits += 1
            continue
        if rng.random() < 0.3:
            clock += rng.randint(3, 50)
            stamp = f"{clock // 60:02d}:{clock % 60:02d}"
            p.run(cx0 + (p.w - cx0) / 2 - f.width(stamp) / 2, y + 12 * s, [stamp], small,
                  (170, 170, 170))
            y += 28 * s
            if y + bubble_h + 40 * s > input_top:
                misfits += 1
                continue
        mine = rng.random() < 0.55
        bw = max(p.width_of(line, f) for line in lines) + 24 * s
        if mine:
            bx1 = p.w - 70 * s
            bx0 = bx1 - bw
            p.rect((p.w - 58 * s, y, p.w - 22 * s, y + 36 * s), fill=(90, 140, 200), radius=4 * s)
        else:
            bx0 = cx0 + 70 * s
            bx1 = bx0 + bw
            p.rect((cx0 + 22 * s, y, cx0 + 58 * s, y + 36 * s), fill=(200, 150, 90), radius=4 * s)
        p.rect((bx0, y, bx1, y + bubble_h), fill=self_bubble if mine else (255, 255, 255),
               radius=5 * s)
        ly = y + 9 * s + f.pil.getmetrics()[0] + (line_h - f.size * 1.2) / 2
        for line in lines:
            p.run(bx0 + 12 * s, ly, line, f, (25, 25, 25))
            ly += line_h
        y += bubble_h + 18 * s


def wrap(parts: Sequence[Part], font: Font, max_w: float, p: Page) -> list[list[Part]]:
    """Wrap parts into lines: text may break between characters, an identifier never does."""
    tokens: list[Part] = []
    for part in parts:
        tokens.extend(list(part) if isinstance(part, str) else [part])
    lines: list[list[Part]] = [[]]
    width = 0.0
    for tok in tokens:
        w = p.width_of([tok], font)
        if width + w > max_w and lines[-1]:
            lines.append([])
            width = 0.0
        lines[-1].append(tok)
        width += w
    merged: list[list[Part]] = []
    for line in lines:
        out: list[Part] = []
        for tok in line:
            if isinstance(tok, str) and out and isinstance(out[-1], str):
                out[-1] = out[-1] + tok
            else:
                out.append(tok)
        merged.append(out)
    return merged


def excel_screen(p: Page, st: Style) -> None:
    """An Excel-like export: ribbon, formula bar, column letters, row numbers, a customer list."""
    s, rng = st.scale, p.v.rng
    f = st.font.scaled(s)
    vf = st.value_font.scaled(s) if st.value_font else Font("DejaVuSans", f.size)
    p.rect((0, 0, p.w, p.h), fill=(255, 255, 255))
    p.rect((0, 0, p.w, 32 * s), fill=(33, 115, 70))
    p.run(p.w / 2 - 120 * s, 22 * s, [rng.choice(("客户名单", "代发明细", "开户登记表")) +
                                     f"{rng.randint(202401, 202412)}.xlsx - Excel"], f,
          (255, 255, 255))
    p.rect((0, 32 * s, p.w, 60 * s), fill=(33, 115, 70))
    x = 12 * s
    for tab in ("文件", "开始", "插入", "页面布局", "公式", "数据", "审阅", "视图"):
        x = p.run(x, 52 * s, [tab], f, (255, 255, 255)) + 26 * s
    p.rect((0, 60 * s, p.w, 150 * s), fill=(243, 243, 243))
    p.line((0, 150 * s, p.w, 150 * s), fill=(210, 210, 210))
    # formula bar (filled once the selected cell is known)
    fb = (0, 152 * s, p.w, 180 * s)
    p.rect(fb, fill=(255, 255, 255), outline=(210, 210, 210))
    heads = [("姓名", "name", 90), ("身份证号码", "id", 210), ("银行卡号", "card", 230),
             ("手机", "mobile", 130), ("开户金额", "amount", 120), ("开户日期", "date", 120),
             ("备注", "note", 200), ("网点号", "org", 80)]
    col_x = [46 * s]
    for _, _, w in heads:
        col_x.append(col_x[-1] + w * s * max(1.0, f.size / 15))
    top = 184 * s
    row_h = max(20 * s, f.size * 1.45)
    p.rect((0, top, p.w, top + row_h), fill=(230, 230, 230))
    for i in range(len(heads) + 3):
        xx = col_x[i] if i < len(col_x) else col_x[-1] + (i - len(heads)) * 80 * s
        nx = col_x[i + 1] if i + 1 < len(col_x) else xx + 80 * s
        p.in_box((xx, top, nx, top + row_h), [chr(65 + i)], f.scaled(0.9), (80, 80, 80),
                 align="center")
        p.line((xx, top, xx, p.h - 50 * s), fill=(212, 212, 212))
    y = top + row_h
    r = 1
    selected: Ident | None = None
    selected_ref = "A1"
    while y + row_h < p.h - 56 * s:
        p.rect((0, y, 46 * s, y + row_h), fill=(230, 230, 230))
        p.in_box((0, y, 46 * s, y + row_h), [str(r)], f.scaled(0.9), (80, 80, 80), align="center")
        if r == 1:
            for i, (h, _, _) in enumerate(heads):
                p.in_box((col_x[i], y, col_x[i + 1], y + row_h), [h], f, (0, 0, 0))
        else:
            person = p.v.person()
            for i, (_, kind, _) in enumerate(heads):
                cell: list[Part]
                align = "left"
                if kind == "name":
                    cell = [person.name]
                elif kind == "card" and rng.random() < 0.2:
                    cell, align = [p.v.decoy("sci")], "right"  # a card typed as a number
                elif kind in ("id", "card", "mobile"):
                    ident = p.v.ident(kind, {"id": person.id_no, "card": person.card,
                                             "mobile": person.mobile}[kind])
                    cell = [ident]
                    if selected is None and rng.random() < 0.2:
                        selected = ident
                        selected_ref = f"{chr(65 + i)}{r}"
                        p.rect((col_x[i], y, col_x[i + 1], y + row_h), outline=(33, 115, 70),
                               width=2)
                elif kind == "amount":
                    cell, align = [p.v.decoy("amount")], "right"
                elif kind == "note":
                    cell = [rng.choice(("", "", "已核实", "代办", "老客户", "联系人手机见附件"))]
                else:
                    cell = [p.v.decoy(kind)]
                p.in_box((col_x[i], y, col_x[i + 1], y + row_h), cell, f, (0, 0, 0),
                         align=align, pad=4 * s, value_font=vf)
        p.line((0, y + row_h, p.w, y + row_h), fill=(212, 212, 212))
        y += row_h
        r += 1
    p.run(8 * s, 172 * s, [selected_ref], f, (0, 0, 0))
    p.run(90 * s, 172 * s, ["fx"], Font("NimbusRoman", f.size), (90, 90, 90))
    if selected is not None:  # Excel repeats the selected cell in the formula bar
        p.run(130 * s, 172 * s, [selected], f, (0, 0, 0), value_font=vf)
    p.rect((0, p.h - 50 * s, p.w, p.h - 24 * s), fill=(243, 243, 243))
    p.run(60 * s, p.h - 31 * s, ["Sheet1", "    Sheet2", "    ⊕"], f, (33, 115, 70))
    p.rect((0, p.h - 24 * s, p.w, p.h), fill=(33, 115, 70))
    p.run(10 * s, p.h - 7 * s, ["就绪"], f.scaled(0.9), (255, 255, 255))


def report_page(p: Page, st: Style) -> None:
    """A web report in a browser: large headings, 12 px body text, a small table."""
    s, rng = st.scale, p.v.rng
    p.rect((0, 0, p.w, p.h), fill=(255, 255, 255))
    p.rect((0, 0, p.w, 40 * s), fill=(222, 225, 230))
    ui = Font("NotoSansSC", round(13 * s))
    p.rect((8 * s, 6 * s, 260 * s, 40 * s), fill=(255, 255, 255), radius=6 * s)
    p.run(20 * s, 28 * s, ["个人客户信息报告 - 内网门户"], ui, (40, 40, 40))
    p.rect((0, 40 * s, p.w, 80 * s), fill=(255, 255, 255))
    p.rect((90 * s, 46 * s, p.w - 120 * s, 74 * s), fill=(241, 243, 244), radius=14 * s)
    p.run(110 * s, 65 * s, ["https://crm.bank.intra/report/view?rid=", p.v.decoy("voucher")],
          ui, (60, 60, 60))
    p.line((0, 80 * s, p.w, 80 * s), fill=(210, 210, 210))
    body = Font(rng.choice(("NotoSansSC", "NotoSerifSC")), round(12 * s))
    vf = st.value_font.scaled(12 / st.value_font.size * s) if st.value_font else None
    margin = max(40 * s, (p.w - 1100 * s) / 2)
    y = 80 * s + 60 * s
    p.run(margin, y, [rng.choice(("个人客户综合信息报告", "客户尽职调查报告", "业务办理回单"))],
          Font("NotoSansSC-Bold", round(rng.choice((28, 32, 36)) * s)), (20, 20, 20))
    y += 30 * s
    p.run(margin, y, ["生成时间：", p.v.decoy("datetime"), "   报告编号：", p.v.decoy("order")],
          body, (120, 120, 120))
    y += 20 * s
    p.line((margin, y, p.w - margin, y), fill=(220, 220, 220))
    width = p.w - 2 * margin
    for _section in range(6):
        y += 34 * s
        if y > p.h - 80 * s:
            break
        p.run(margin, y, [rng.choice(("一、客户基本信息", "二、账户信息", "三、联系方式",
                                      "四、近期交易", "五、风险提示", "六、备注"))],
              Font("NotoSansSC-Bold", round(rng.choice((18, 20, 22)) * s)), (30, 30, 30))
        y += 10 * s
        person = p.v.person()
        sentences: list[list[Part]] = [
            ["客户", person.name, "（证件号码：", p.v.ident("id", person.id_no), "），于",
             p.v.decoy("datetime"), "在本行开立借记卡", p.v.ident("card", person.card),
             "，预留手机号码", p.v.ident("mobile", person.mobile), "。"],
            ["该客户近三个月累计交易金额", p.v.decoy("amount"), "，最近一笔交易流水号",
             p.v.decoy("serial"), "，经办柜员", p.v.decoy("teller"), "。"],
            ["单位联系电话", p.v.decoy("landline"), "，邮编", p.v.decoy("postcode"),
             "，客户号", p.v.decoy("cust_no"), "。"],
            ["代理人证件号码", p.v.decoy("bad_id"), "经联网核查不一致，业务参考号",
             p.v.decoy("bad_card"), "。"],
        ]
        rng.shuffle(sentences)
        para: list[Part] = []
        for sent in sentences[:rng.randint(1, 3)]:
            para.extend(sent)
        for line in wrap(para, body, width, p):
            y += body.size * 1.7
            if y > p.h - 60 * s:
                break
            p.run(margin, y, line, body, (50, 50, 50), value_font=vf)
        # the truth was recorded when drawn, so lines cut at the page bottom cost nothing
    p.run(margin, p.h - 24 * s, ["第 1 页 / 共 ", str(rng.randint(2, 9)), " 页"], body,
          (150, 150, 150))


# --------------------------------------------------------------------------- ID cards

def id_card_front(v: Values, person: Person, width: int, cover: str | None = None,
                  note: str = "") -> tuple[Image.Image, Page]:
    """The front of a resident ID card (姓名 性别 民族 出生 住址 公民身份号码), scanned flat."""
    k = width / 856  # the card is 85.6 x 54 mm
    p = Page((width, round(540 * k)), (246, 242, 232), v, note)
    rng = v.rng
    arr = np.array(p.im, dtype=np.float32)
    yy, xx = np.mgrid[0:p.h, 0:p.w]
    arr[..., 0] -= 12 * xx / p.w
    arr[..., 2] += 8 * yy / p.h
    p.im.paste(Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)))
    p.d = ImageDraw.Draw(p.im)
    for i in range(14):  # faint guilloche lines
        pts = [(x, p.h * (0.1 + i * 0.065) + 6 * k * math.sin(x / (30 * k) + i))
               for x in range(0, p.w, 6)]
        p.d.line(pts, fill=(228, 226, 220), width=1)
    lab = Font("NotoSansSC", round(24 * k))
    val = Font(rng.choice(("NotoSansSC", "NotoSerifSC")), round(28 * k))
    blue = (60, 100, 150)
    ink = (25, 25, 25)
    p.run(60 * k, 90 * k, ["姓  名"], lab, blue)
    p.run(180 * k, 90 * k, [person.name], val, ink)
    p.run(60 * k, 160 * k, ["性  别"], lab, blue)
    p.run(180 * k, 160 * k, [person.sex], val, ink)
    p.run(300 * k, 160 * k, ["民  族"], lab, blue)
    p.run(410 * k, 160 * k, [person.nation], val, ink)
    p.run(60 * k, 230 * k, ["出  生"], lab, blue)
    x = p.run(180 * k, 230 * k, [str(person.birth.year)], val, ink)
    x = p.run(x + 10 * k, 230 * k, ["年"], lab, blue)
    x = p.run(x + 10 * k, 230 * k, [str(person.birth.month)], val, ink)
    x = p.run(x + 10 * k, 230 * k, ["月"], lab, blue)
    x = p.run(x + 10 * k, 230 * k, [str(person.birth.day)], val, ink)
    p.run(x + 10 * k, 230 * k, ["日"], lab, blue)
    p.run(60 * k, 300 * k, ["住  址"], lab, blue)
    addr = (person.region[1] + f"{rng.randint(1, 300)}号{rng.randint(1, 30)}栋"
            f"{rng.randint(1, 30)}0{rng.randint(1, 6)}室")
    for i in range(0, len(addr), 13):
        p.run(180 * k, (300 + (i // 13) * 40) * k, [addr[i:i + 13]], val, ink)
    # photo
    px0, py0, px1, py1 = 600 * k, 60 * k, 800 * k, 330 * k
    p.rect((px0, py0, px1, py1), fill=(222, 230, 236))
    cxp = (px0 + px1) / 2
    p.d.ellipse((cxp - 55 * k, py0 + 50 * k, cxp + 55 * k, py0 + 180 * k), fill=(120, 110, 105))
    p.d.ellipse((cxp - 100 * k, py0 + 170 * k, cxp + 100 * k, py1 + 80 * k), fill=(60, 64, 80))
    p.rect((px0, py1, px1, py1 + 80 * k), fill=(246, 242, 232))
    num_font = Font(rng.choice(("DejaVuSansMono-Bold", "NimbusMono-Bold", "DejaVuSans-Bold")),
                    round(34 * k))
    p.run(60 * k, 470 * k, ["公民身份号码"], lab, blue)
    ident = Ident("id", person.id_no, person.id_no, optional=cover is not None)
    num_x = 290 * k
    end = p.run(num_x, 472 * k, [ident], lab, ink, value_font=num_font, tracking=4 * k)
    if cover:
        per = (end - num_x) / 18
        first, count = {"middle": (6, 8), "tail": (12, 6), "head": (0, 6)}[cover]
        x0 = num_x + first * per - 4 * k
        x1 = x0 + count * per + 8 * k
        if rng.random() < 0.5:  # a sticky note
            p.rect((x0, 430 * k, x1, 490 * k), fill=(255, 236, 120), radius=3 * k)
        else:  # a finger: a skin-coloured capsule with a darker edge
            p.rect((x0, 380 * k, x1, 500 * k), fill=(222, 176, 150), outline=(190, 140, 118),
                   width=max(1, round(3 * k)), radius=(x1 - x0) / 2)
    return p.im, p


def id_card_back(v: Values, person: Person, width: int, note: str = "") -> tuple[Image.Image, Page]:
    """The back of a resident ID card: emblem, title, 签发机关 and 有效期限; no number."""
    k = width / 856
    p = Page((width, round(540 * k)), (236, 240, 244), v, note)
    rng = v.rng
    for i in range(16):
        pts = [(x, p.h * (0.05 + i * 0.06) + 8 * k * math.sin(x / (40 * k) + i * 0.7))
               for x in range(0, p.w, 6)]
        p.d.line(pts, fill=(214, 222, 232), width=1)
    p.d.ellipse((50 * k, 40 * k, 210 * k, 200 * k), fill=(200, 30, 30))
    p.d.regular_polygon((130 * k, 110 * k, 40 * k), 5, fill=(250, 210, 40))
    title = Font("NotoSansSC-Bold", round(44 * k))
    p.run(250 * k, 110 * k, ["中华人民共和国"], title, (30, 30, 30), tracking=14 * k)
    p.run(270 * k, 220 * k, ["居民身份证"], Font("NotoSansSC-Bold", round(64 * k)), (30, 30, 30),
          tracking=18 * k)
    lab = Font("NotoSansSC", round(24 * k))
    val = Font("NotoSansSC", round(26 * k))
    p.run(180 * k, 420 * k, ["签发机关"], lab, (60, 100, 150))
    p.run(330 * k, 420 * k, [person.region[2]], val, (25, 25, 25))
    p.run(180 * k, 480 * k, ["有效期限"], lab, (60, 100, 150))
    y = rng.randint(2012, 2023)
    start = f"{y}.{person.birth.month:02d}.{person.birth.day:02d}"
    p.run(330 * k, 480 * k, [Decoy("datetime", start + "-" + ("长期" if rng.random() < 0.2
                                                                 else f"{y + 20}" + start[4:]))],
          val, (25, 25, 25))
    return p.im, p


def photograph(card: Image.Image, rng: random.Random, canvas: tuple[int, int]) -> Image.Image:
    """The card photographed on a desk: perspective, slight rotation, blur, noise, uneven light."""
    w, h = canvas
    desk = np.zeros((h, w, 3), np.float32)
    base = np.array(rng.choice(((150, 110, 75), (190, 170, 140), (110, 80, 60), (200, 200, 196),
                                (70, 72, 80))), np.float32)
    desk[:] = base
    grain = np.sin(np.linspace(0, rng.uniform(40, 90), h))[:, None] * rng.uniform(4, 10)
    desk += grain[..., None]
    nprng = np.random.default_rng(rng.randint(0, 2**31))
    desk += nprng.normal(0, 3, desk.shape)
    cw = w * rng.uniform(0.55, 0.75)
    ch = cw * card.height / card.width
    cx, cy = w / 2 + rng.uniform(-0.08, 0.08) * w, h / 2 + rng.uniform(-0.06, 0.06) * h
    angle = math.radians(rng.uniform(-5, 5))
    corners = []
    for dx, dy in ((-1, -1), (1, -1), (1, 1), (-1, 1)):
        x, y = dx * cw / 2, dy * ch / 2
        xr = x * math.cos(angle) - y * math.sin(angle)
        yr = x * math.sin(angle) + y * math.cos(angle)
        j = 0.035 * cw  # perspective: each corner moves a little, as a hand-held phone does
        corners.append((cx + xr + rng.uniform(-j, j), cy + yr + rng.uniform(-j, j)))
    src = np.array([(0, 0), (card.width, 0), (card.width, card.height), (0, card.height)],
                   np.float32)
    m = cv2.getPerspectiveTransform(src, np.array(corners, np.float32))
    rgba = np.array(card.convert("RGB"), np.float32)
    warped = cv2.warpPerspective(rgba, m, (w, h), flags=cv2.INTER_LINEAR)
    mask = cv2.warpPerspective(np.ones(card.size[::-1], np.float32), m, (w, h))
    shadow = cv2.GaussianBlur(np.roll(mask, (round(0.01 * h), round(0.01 * w)), (0, 1)), (0, 0),
                              0.01 * w)
    desk *= (1 - 0.35 * shadow)[..., None]
    out = desk * (1 - mask[..., None]) + warped * mask[..., None]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    lx, ly = rng.uniform(0, w), rng.uniform(0, h)
    dist = np.hypot(xx - lx, yy - ly) / math.hypot(w, h)
    out *= (rng.uniform(1.0, 1.12) - rng.uniform(0.25, 0.45) * dist)[..., None]
    out = np.asarray(cv2.GaussianBlur(out, (0, 0), rng.uniform(0.7, 1.6)), np.float32)
    out += nprng.normal(0, rng.uniform(3, 7), out.shape)
    return Image.fromarray(np.clip(out, 0, 255).astype(np.uint8))


# --------------------------------------------------------------------------- the shapes

@dataclass
class Sample:
    shape: str
    name: str
    image: Image.Image
    fmt: str  # PNG or JPEG
    quality: int
    truth: list[Truth]
    decoys: list[Decoy]
    note: str
    card: str | None = None  # front / back / photo / covered, for the document check


# display scaling and resolutions: (width, height, Windows scale factor)
SCALED = ((1920, 1080, 1.5), (1366, 768, 1.0), (2560, 1440, 1.5), (1920, 1080, 1.25),
          (1600, 900, 1.0), (2560, 1440, 1.0), (1366, 768, 1.25), (1600, 900, 1.25))
SCREEN_SIZES = ((1920, 1080), (1920, 1080), (1366, 768), (1600, 900), (1440, 900), (1280, 1024))


def screen_style(rng: random.Random, theme: Theme | None = None) -> Style:
    size = rng.choice((12, 13, 14, 14, 15, 16))
    face = rng.choice(("NotoSansSC", "NotoSansSC", "NotoSerifSC", "NotoSansMonoSC"))
    return Style(theme=theme or rng.choice((LIGHT, LIGHT, CLASSIC)), font=Font(face, size),
                 value_font=_value_font(rng, size))


def make_screen(v: Values, shape: str, i: int) -> Sample:
    rng = v.rng
    st = screen_style(rng)
    size = rng.choice(SCREEN_SIZES)
    draw: Callable[[Page, Style], None] = rng.choice((form_screen, table_screen))
    fmt, quality = "PNG", 0
    if shape == "form":
        draw = form_screen
    elif shape == "table":
        draw = table_screen
    elif shape == "dark":
        st.theme = rng.choice((DARK, DARK, NAVY))
        draw = (form_screen, table_screen)[i % 2]
    elif shape == "chat":
        size = ((rng.randint(860, 1100), rng.randint(620, 820)) if i % 3 != 2
                else rng.choice(((1920, 1040), (1366, 728))))  # maximised, above the task bar
        st.font = Font("NotoSansSC", 14)
        st.value_font = None
        if i % 2:
            st.notes.append("wecom")
        draw = chat_screen
    elif shape == "excel":
        st.font = Font(rng.choice(("NotoSansSC", "NotoSansSC", "NotoSerifSC")),
                       rng.choice((14, 15, 15, 16)))
        st.value_font = Font(rng.choice(("DejaVuSans", "NimbusSans", "NotoSansSC")), st.font.size)
        draw = excel_screen
    elif shape == "report":
        size = rng.choice(((1920, 1080), (1440, 900), (1366, 768)))
        draw = report_page
    elif shape == "scaled":
        w, h, st.scale = SCALED[i % len(SCALED)]
        size = (w, h)
        st.font = Font(st.font.face, rng.choice((12, 14)))
    elif shape == "spaced":
        st.grouped = True
        st.value_font = _value_font(rng, st.font.size) or Font("DejaVuSansMono", st.font.size)
    elif shape == "colour":
        st.colourful = True
        st.value_font = Font(rng.choice(("NotoSerifSC", "NimbusRoman", "DejaVuSansMono",
                                         "NimbusMono-Bold", "NotoSansSC-Bold", "DejaVuSans-Bold",
                                         "URWGothic")), st.font.size + rng.choice((0, 1, 2)))
    elif shape == "jpeg":
        fmt, quality = "JPEG", rng.randint(60, 80)
        draw = (form_screen, table_screen, chat_screen, excel_screen)[i % 4]
        if draw is chat_screen:
            size = (rng.randint(860, 1100), rng.randint(620, 820))
            st.font, st.value_font = Font("NotoSansSC", 14), None
    theme = st.theme.name if draw in (form_screen, table_screen) else "own-colours"
    note = (f"{size[0]}x{size[1]}@{round(st.scale * 100)}% {theme} "
            f"{draw.__name__.replace('_screen', '').replace('_page', '')}"
            + (f" q{quality}" if quality else "") + (" grouped" if st.grouped else "")
            + (" colour" if st.colourful else ""))
    p = Page(size, st.theme.bg, v, note)
    draw(p, st)
    return Sample(shape, "", p.im, fmt, quality, p.truth, p.decoys, note)


def make_card(v: Values, shape: str, i: int) -> Sample:
    rng = v.rng
    person = v.person()
    v.reset()  # the person was drawn to fill the card; its last fours must not block others
    width = rng.choice((1012, 1012, 856, 1200))  # 300 dpi scan, 254 dpi, phone crop
    fmt, quality = "PNG", 0
    if shape == "idcard_front":
        if i % 3 == 2:  # an A4 photocopy at 150 dpi with both sides, as branches keep them
            front, fp = id_card_front(v, person, 506, note="A4 copy 150dpi")
            back, bp = id_card_back(v, person, 506, note="A4 copy 150dpi")
            page = Image.new("RGB", (1240, 1754), (250, 250, 250))
            page.paste(front, (367, 300))
            page.paste(back, (367, 760))
            page = page.convert("L").convert("RGB")
            return Sample(shape, "", page, "PNG", 0, fp.truth + bp.truth, fp.decoys + bp.decoys,
                          "A4 copy 150dpi front+back", card="front (A4 copy)")
        img, p = id_card_front(v, person, width, note=f"scan {width}px")
        return Sample(shape, "", img, fmt, quality, p.truth, p.decoys, f"scan {width}px",
                      card="front")
    if shape == "idcard_back":
        img, p = id_card_back(v, person, width, note=f"scan {width}px")
        if i % 3 == 2:
            canvas = rng.choice(((1600, 1200), (1280, 960), (2000, 1500)))
            return Sample(shape, "", photograph(img, rng, canvas), "JPEG", 85, p.truth, p.decoys,
                          f"photo {canvas[0]}x{canvas[1]}", card="back (photo)")
        return Sample(shape, "", img, fmt, quality, p.truth, p.decoys, f"scan {width}px",
                      card="back")
    if shape == "idcard_photo":
        canvas = rng.choice(((1600, 1200), (1280, 960), (2000, 1500), (1080, 1440)))
        note = f"photo {canvas[0]}x{canvas[1]}"
        img, p = id_card_front(v, person, 1012, note=note)
        return Sample(shape, "", photograph(img, rng, canvas), "JPEG", rng.randint(80, 92),
                      p.truth, p.decoys, note, card="photo")
    # idcard_covered
    cover = ("middle", "tail", "head")[i % 3]
    photo = i % 2 == 1
    note = f"covered {cover}" + (" photo" if photo else f" scan {width}px")
    img, p = id_card_front(v, person, 1012 if photo else width, cover=cover, note=note)
    if photo:
        canvas = rng.choice(((1600, 1200), (1280, 960)))
        return Sample(shape, "", photograph(img, rng, canvas), "JPEG", 85, p.truth, p.decoys,
                      note, card="covered (photo)")
    return Sample(shape, "", img, fmt, quality, p.truth, p.decoys, note, card="covered")


@dataclass(frozen=True)
class Variant:
    """One factor changed on a plain 1920x1080 light screen with NotoSansSC 14 px text."""

    label: str
    draw: Callable[[Page, Style], None]
    value_face: str | None = None
    body_face: str = "NotoSansSC"
    size: int = 14
    grouped: bool = False
    theme: Theme = LIGHT
    jpeg: int = 0


def _variants() -> list[Variant]:
    out: list[Variant] = []
    for draw, tag in ((table_screen, "table"), (form_screen, "form")):
        out.append(Variant(f"{tag}:base", draw))
        out.extend(Variant(f"{tag}:value={face}", draw, value_face=face)
                   for face in ("NotoSerifSC", "NimbusRoman", "DejaVuSans", "DejaVuSansMono",
                                "NimbusMono-Bold"))
        out.append(Variant(f"{tag}:grouped", draw, grouped=True))
        out.append(Variant(f"{tag}:grouped+DejaVuSansMono", draw, value_face="DejaVuSansMono",
                           grouped=True))
        out.extend(Variant(f"{tag}:size={n}", draw, size=n) for n in (12, 16, 18))
        out.extend(Variant(f"{tag}:jpeg q{q}", draw, jpeg=q) for q in (60, 80, 90))
        out.append(Variant(f"{tag}:dark", draw, theme=DARK))
    return out


FACTORS = _variants()


def factor_sample(v: Values, variant: Variant, i: int) -> Sample:
    st = Style(theme=variant.theme, font=Font(variant.body_face, variant.size),
               value_font=Font(variant.value_face, variant.size) if variant.value_face else None,
               grouped=variant.grouped)
    p = Page((1920, 1080), variant.theme.bg, v, variant.label)
    variant.draw(p, st)
    return Sample(variant.label, "", p.im, "JPEG" if variant.jpeg else "PNG", variant.jpeg,
                  p.truth, p.decoys, variant.label)


SHAPES: dict[str, Callable[[Values, str, int], Sample]] = {
    "form": make_screen, "table": make_screen, "dark": make_screen, "chat": make_screen,
    "excel": make_screen, "report": make_screen, "scaled": make_screen, "spaced": make_screen,
    "colour": make_screen, "jpeg": make_screen, "idcard_front": make_card,
    "idcard_back": make_card, "idcard_photo": make_card, "idcard_covered": make_card,
}


# --------------------------------------------------------------------------- scoring

@dataclass
class Scored:
    sample: Sample
    seconds: float | None
    findings: list[dict[str, object]]
    record: dict[str, object]
    hits: list[Truth] = field(default_factory=list)
    misses: list[Truth] = field(default_factory=list)
    fps: list[tuple[str, str, str]] = field(default_factory=list)  # type, last4, cause


def score(sample: Sample, record: dict[str, object], seconds: float | None) -> Scored:
    raw = record.get("findings") or []
    findings = [f for f in raw if isinstance(f, dict)] if isinstance(raw, list) else []
    out = Scored(sample, seconds, findings, record)
    pool: dict[tuple[str, str], list[Truth]] = defaultdict(list)
    for t in sample.truth:
        pool[(t.type, last4(t.value))].append(t)
    for f in findings:
        ftype, masked = str(f.get("type", "")), str(f.get("masked", ""))
        if ftype == "ID_CARD" and not last4(masked):  # the document marker, not an identifier
            continue
        key = (ftype, last4(masked))
        if pool.get(key):
            out.hits.append(pool[key].pop())
            continue
        out.fps.append((ftype, key[1], cause_of(ftype, masked, sample)))
    for left in pool.values():
        out.misses.extend(t for t in left if not t.optional)
    return out


def cause_of(ftype: str, masked: str, sample: Sample) -> str:
    """Name what an unmatched finding came from: a distractor kind, a misread, a confusion."""
    tail = last4(masked)
    for d in sample.decoys:
        if last4(d.text) == tail:
            return f"distractor:{d.kind}"
    for t in sample.truth:
        if last4(t.value) == tail:
            return f"type confusion ({t.type} drawn)"
    head = "".join(ch for ch in masked if ch.isalnum())[:3]
    for t in sample.truth:
        if t.type == ftype and t.value.startswith(head) and head:
            return f"misread of a drawn {t.type} (last four differ)"
    for d in sample.decoys:
        digits = "".join(ch for ch in d.text if ch.isalnum())
        if head and digits.startswith(head):
            return f"misread distractor:{d.kind}?"
    return "unattributed"


def document_of(record: dict[str, object], findings: list[dict[str, object]]) -> str:
    docs = {str(record["document"])} if record.get("document") else set()
    docs |= {str(f["document"]) for f in findings if f.get("document")}
    return ",".join(sorted(docs)) or "-"


def run_cli(cli: list[str], folder: Path) -> tuple[dict[str, tuple[dict[str, object], float]],
                                                   float, int, str]:
    """Run the scanner once over the folder; timestamp each JSON line as it arrives."""
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    start = time.perf_counter()
    exe, *extra = cli
    proc = subprocess.Popen([exe, "scan", "--format", "json", "--recursive", *extra, str(folder)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    out: dict[str, tuple[dict[str, object], float]] = {}
    for line in proc.stdout:
        stamp = time.perf_counter() - start
        line = line.strip()
        if not line:
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            print(f"  (a line that is not JSON: {line[:80]!r})")
            continue
        out[Path(str(rec.get("source", ""))).name] = (rec, stamp)
    stderr = proc.stderr.read() if proc.stderr else ""
    rc = proc.wait()
    return out, time.perf_counter() - start, rc, stderr


def ratio(a: int, b: int) -> str:
    return f"{a / b:.3f} ({a}/{b})" if b else "   -"


def report(scored: list[Scored], shapes: list[str], details: bool = True) -> None:
    print()
    wide = max(15, *(len(s) + 1 for s in shapes))
    head = (f"{'shape':<{wide}}{'img':>4}  {'ID recall':<16}{'card recall':<16}"
            f"{'mobile recall':<16}{'all recall':<19}{'precision':<19}{'FP':>3}  {'s/img':>6}")
    print(head)
    print("-" * len(head))

    def row(label: str, group: list[Scored]) -> None:
        cells = []
        for typ in TYPES:
            n = sum(1 for s in group for t in s.sample.truth if t.type == typ and not t.optional)
            hit = sum(1 for s in group for t in s.hits if t.type == typ and not t.optional)
            cells.append(ratio(hit, n))
        n_all = sum(1 for s in group for t in s.sample.truth if not t.optional)
        hit_all = sum(1 for s in group for t in s.hits if not t.optional)
        tp = sum(len(s.hits) for s in group)
        fp = sum(len(s.fps) for s in group)
        secs = [s.seconds for s in group if s.seconds is not None]
        med = f"{statistics.median(secs):6.2f}" if secs else "     -"
        print(f"{label:<{wide}}{len(group):>4}  {cells[0]:<16}{cells[1]:<16}{cells[2]:<16}"
              f"{ratio(hit_all, n_all):<19}{ratio(tp, tp + fp):<19}{fp:>3}  {med}")

    for shape in shapes:
        group = [s for s in scored if s.sample.shape == shape]
        if group:
            row(shape, group)
    print("-" * len(head))
    row("overall", scored)
    print("(s/img: median of the gaps between the CLI's per-file lines; the first file carries "
          "the start-up and the OCR worker's start)")

    if not details:
        fps = [(s, fp) for s in scored for fp in s.fps]
        for cause, n in Counter(fp[2] for _, fp in fps).most_common():
            print(f"  false positives: {n:3d}  {cause}")
        return
    print("\nRecall by what was drawn (all shapes; a factor's rows share images, so read them as"
          " leads, not causes)")
    factors: dict[str, Callable[[Scored, Truth], str]] = {
        "value font": lambda s, t: t.font.split()[0],
        "size px": lambda s, t: t.font.split()[1],
        "formatting": lambda s, t: "grouped" if t.grouped else "plain",
        "theme": lambda s, t: (s.sample.note.split()[1:2] or ["-"])[0]
        if "@" in s.sample.note else "card",
        "resolution@scale": lambda s, t: s.sample.note.split()[0] if "@" in s.sample.note
        else "card",
        "file": lambda s, t: s.sample.fmt,
    }
    for label, key in factors.items():
        tally: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for s in scored:
            hit_ids = Counter(id(t) for t in s.hits)
            for t in s.sample.truth:
                if t.optional:
                    continue
                k = key(s, t)
                tally[k][1] += 1
                if hit_ids[id(t)]:
                    tally[k][0] += 1
        cells = [f"{k} {h / n:.2f} ({h}/{n})" for k, (h, n) in
                 sorted(tally.items(), key=lambda kv: kv[1][0] / kv[1][1])]
        print(f"  {label:<17}" + "; ".join(cells))
    per_image = []
    for s in scored:
        n = sum(1 for t in s.sample.truth if not t.optional)
        if n:
            per_image.append((len([t for t in s.hits if not t.optional]) / n, s, n))
    per_image.sort(key=lambda x: x[0])
    print("\nWorst images (recall, identifiers, what it is)")
    for r, s, n in per_image[:10]:
        fonts = Counter(t.font for t in s.sample.truth).most_common(1)[0][0]
        print(f"    {s.sample.name:<24}{r:.2f} of {n:<4}{s.sample.note}; values in {fonts}")

    fps = [(s, fp) for s in scored for fp in s.fps]
    print(f"\nFalse positives: {len(fps)}")
    causes = Counter(fp[2] for _, fp in fps)
    for cause, n in causes.most_common():
        print(f"  {n:3d}  {cause}")
    for s, (typ, tail, cause) in fps:
        print(f"    {s.sample.shape:<15}{s.sample.name:<24}{typ:<16}…{tail:<6}{cause}")

    misses = [(s, t) for s in scored for t in s.misses]
    print(f"\nMisses: {len(misses)}")
    by_type_note = Counter((t.type, s.sample.shape) for s, t in misses)
    for (typ, shape), n in sorted(by_type_note.items()):
        print(f"  {n:3d}  {typ:<16}{shape}")
    for s, t in misses:
        print(f"    {s.sample.shape:<15}{s.sample.name:<24}{t.type:<16}…{last4(t.value):<6}"
              f"{t.font:<26}{t.note}")

    cards = [s for s in scored if s.sample.card]
    if cards:
        print("\nID-card images: document flag and the number")
        for s in cards:
            ids = [t for t in s.sample.truth if t.type == "CN_RESIDENT_ID"]
            got = [t for t in s.hits if t.type == "CN_RESIDENT_ID"]
            doc = document_of(s.record, s.findings)
            print(f"    {s.sample.card:<20}{s.sample.name:<26}document={doc:<10}"
                  f"number {'-' if not ids else ('found' if got else 'not found')}"
                  f"{' (covered: not counted in recall)' if any(t.optional for t in ids) else ''}"
                  f"   {s.sample.note}")
    others = [s for s in scored if not s.sample.card
              and "ID_CARD" in document_of(s.record, s.findings)]
    print(f"  screens flagged as an ID-card document: {len(others)}"
          + (": " + ", ".join(s.sample.name for s in others) if others else ""))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=20240315)
    ap.add_argument("--per-shape", type=int,
                    help="images per shape (default 4) or per variant with --factors (default 2)")
    ap.add_argument("--out", type=Path, help="write the images here (default: a temporary folder)")
    ap.add_argument("--keep", action="store_true", help="keep the images (and a masked truth.json)")
    ap.add_argument("--shapes", help="comma-separated subset of: " + ",".join(SHAPES))
    ap.add_argument("--cli", help="the teller-guard command (default: next to this Python)")
    ap.add_argument("--min-confidence", help="passed to the CLI (default: the CLI's own)")
    ap.add_argument("--factors", action="store_true",
                    help="instead of the shapes: one factor at a time (value font, grouping, size,"
                         " JPEG quality, theme) on the same table and form screens")
    args = ap.parse_args()

    shapes = list(SHAPES) if not args.shapes else [s.strip() for s in args.shapes.split(",")]
    unknown = [s for s in shapes if s not in SHAPES]
    if unknown:
        ap.error(f"unknown shapes {unknown}; choose from {','.join(SHAPES)}")
    if id_check("11010519491231002") != "X" or luhn_digit("7992739871") != "3":
        raise SystemExit("the check-character helpers are wrong; fix them before scoring")
    cli = [args.cli] if args.cli else None
    if cli is None:
        beside = Path(sys.executable).with_name("teller-guard")
        found = str(beside) if beside.exists() else shutil.which("teller-guard")
        if not found:
            raise SystemExit("teller-guard is not installed beside this Python; pass --cli")
        cli = [found]

    values = Values(random.Random(args.seed), load_bins())
    folder = args.out or Path(tempfile.mkdtemp(prefix="tg-heldout-"))
    folder.mkdir(parents=True, exist_ok=True)
    samples: list[Sample] = []
    t0 = time.perf_counter()
    per = args.per_shape or (2 if args.factors else 4)
    made: list[tuple[str, int, Callable[[], Sample]]] = []
    if args.factors:
        for vi, variant in enumerate(FACTORS):
            made.extend((f"f{vi:02d}", i, functools.partial(factor_sample, values, variant, i))
                        for i in range(per))
        shapes = [v.label for v in FACTORS]
    else:
        made.extend((shape, i, functools.partial(SHAPES[shape], values, shape, i))
                    for shape in shapes for i in range(per))
    for prefix, i, make in made:
        # one generator per image: the same seed gives the same image whatever --shapes says;
        # with --factors every variant of a layout draws the same values
        values.rng = random.Random(f"{args.seed}:factors:{i}" if args.factors
                                   else f"{args.seed}:{prefix}:{i}")
        sample = make()
        ext = "jpg" if sample.fmt == "JPEG" else "png"
        sample.name = f"{prefix}-{i:02d}.{ext}"
        params = {"quality": sample.quality} if sample.fmt == "JPEG" else {"optimize": False}
        sample.image.save(folder / sample.name, sample.fmt, **params)
        samples.append(sample)
    gen_s = time.perf_counter() - t0
    n_truth = sum(len(s.truth) for s in samples)
    print(f"rendered {len(samples)} images ({n_truth} identifiers, "
          f"{sum(len(s.decoys) for s in samples)} distractors) in {gen_s:.1f} s into {folder}")
    print(f"load before the scan: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} "
          f"{os.getloadavg()[2]:.2f}; seed {args.seed}; {per} per "
          f"{'variant' if args.factors else 'shape'}")
    if args.keep:
        truth = {s.name: {"shape": s.shape, "note": s.note, "card": s.card,
                          "truth": [{"type": t.type, "last4": last4(t.value), "font": t.font,
                                     "optional": t.optional} for t in s.truth],
                          "distractors": Counter(d.kind for d in s.decoys)} for s in samples}
        (folder / "truth.json").write_text(json.dumps(truth, ensure_ascii=False, indent=1),
                                           encoding="utf-8")

    if args.min_confidence is not None:
        cli = [*cli, "--min-confidence", args.min_confidence]
    records, wall, rc, stderr = run_cli(cli, folder)
    print(f"CLI: {' '.join([cli[0], 'scan --format json --recursive', *cli[1:]])} DIR"
          f" -> exit {rc}, "
          f"{wall:.1f} s wall, {wall / max(1, len(samples)):.2f} s per image overall; "
          f"load after: {os.getloadavg()[0]:.2f}")
    if stderr.strip():
        print("CLI stderr (first lines):")
        for line in stderr.strip().splitlines()[:10]:
            print("   ", line[:160])
    order = sorted(records.items(), key=lambda kv: kv[1][1])
    gaps: dict[str, float] = {}
    prev = None
    for name, (_, stamp) in order:
        if prev is not None:
            gaps[name] = stamp - prev
        prev = stamp
    scored = []
    for s in samples:
        rec, _ = records.get(s.name, ({"error": "no line from the CLI"}, 0.0))
        if "findings" not in rec:
            print(f"  {s.name}: no findings list: {str(rec.get('error', rec))[:120]}")
        scored.append(score(s, rec, gaps.get(s.name)))
    report(scored, shapes, details=not args.factors)
    if not args.keep and args.out is None:
        shutil.rmtree(folder, ignore_errors=True)
    elif not args.keep:
        print(f"(images left in {folder}; --keep also writes truth.json)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
