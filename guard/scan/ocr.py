"""Offline OCR of screens and images: recognise only the text lines that can hold an identifier.

The models ship inside the `rapidocr_onnxruntime` wheel (PaddleOCR PP-OCRv4 on onnxruntime); they
are loaded from its package folder and nothing is downloaded. This module runs inside the OCR
worker process (`guard.scan.ocr_worker`); importing it costs nothing, since OpenCV, numpy and
onnxruntime are imported only when an `OcrEngine` first reads an image.

How a screen is read (`OcrEngine.read`, mode ``fast``):

1. find text lines with OpenCV, no model: morphological gradient, threshold, long ruling lines
   (table grids, input-box outlines) removed, then characters joined horizontally by a closing
   sized from the median glyph height; each connected blob is a line box (~20 ms on 1080p);
   when that median is under `MIN_GLYPH_H` (960x540, 1366x768, a photo of a screen), the lines
   are found again on the image enlarged with INTER_CUBIC to `READ_GLYPH_H` px glyphs, where
   digits that blurred into each other count as digits (`find_regions(touching=True)`), and the
   crops of step 3 are cut from the image as it came;
2. keep the boxes that can hold an identifier: wide enough for 9+ narrow glyphs and made of at
   least 9 digit-shaped glyphs (tall, narrow, of one height), less those that are one plain run
   of 10, 12 or 14 glyphs with no box beside them (serial numbers: no detector reports those
   lengths without a label); an image with few lines (a photographed card) has every line
   recognised;
3. recognise only those crops with the recognition model (no detection model, no orientation
   classifier), its element-wise operators fused in memory (`guard.scan.ocr_graph`), each crop
   at its own width, two at a time on two cores (`Recogniser`), reusing the text of any crop
   whose pixels were already seen (`TileCache`, keyed by a hash of the crop); each crop the
   model reads teaches its digits' bitmaps, which read the crops left (`GlyphTemplates`: a
   screen draws each digit with the same pixels, so a crop whose every glyph is a bitmap the
   model read as a digit, or as digits that touch, is read from them: three quarters of the
   crops of a 1080p teller screen; `OcrEngine._stream`); a line wider than `MAX_CROP_ASPECT` times
   its height is read in pieces cut at its gaps (`_pieces`); then, in a second round, the label
   box just left of a value on the same screen line (its context words), only for a value whose
   text holds a number only a label can say the type of (`needs_context`: accounts, passports,
   legacy IDs, unlabelled runs; not an ID with its check character, a mobile, a card on a known
   issuer range with its Luhn digit);
4. return `TextLine`s: text, box in image pixels, recognition score.

Mode ``full`` is the engine's own pipeline over the whole image (detection model, orientation
classifier, every line recognised): slower, for comparison, and what mode ``fast`` turns to for a
photograph or a scan (`photographic`: sensor noise and blur leave few pixels equal to their
neighbour, where a screen is mostly flat fills). Its detection model finds the tilted, blurred and
unevenly lit lines of a card photographed on a desk that the model-free line finder misses.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import util as importlib_util
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

if TYPE_CHECKING:
    from concurrent.futures import Future

    import numpy as np

Box = tuple[int, int, int, int]
Mode = Literal["fast", "full"]

MODEL_PACKAGE: Final = "rapidocr_onnxruntime"
MODEL_FILES: Final = {
    "det": "models/ch_PP-OCRv4_det_infer.onnx",
    "cls": "models/ch_ppocr_mobile_v2.0_cls_infer.onnx",
    "rec": "models/ch_PP-OCRv4_rec_infer.onnx",
}
INSTALL_HINT: Final = (
    "install the OCR parts: pip install --no-deps rapidocr_onnxruntime==1.4.4 and "
    "pip install opencv-python-headless onnxruntime numpy pyclipper shapely six PyYAML Pillow tqdm"
)

SMALL_IMAGE_LINES = 40
"""An image with at most this many text lines (a card, a photo, a form) has every line read."""
TILE_CACHE_ENTRIES = 4096
MIN_DIGIT_GLYPHS = 9
"""The shortest identifier the detectors report has 9 characters (passports, 9-digit runs)."""


class OcrError(Exception):
    """OCR could not read an image; the message says why, never what the image shows."""


class OcrUnavailableError(OcrError):
    """The OCR package or its models are missing from this installation."""


@dataclass(frozen=True, slots=True)
class TextLine:
    """One recognised line of text and where it is, in image pixels `(x, y, w, h)`."""

    text: str
    box: Box
    score: float


@dataclass(frozen=True, slots=True)
class ReadResult:
    """The lines recognised in one image and what reading it cost."""

    lines: tuple[TextLine, ...]
    stats: dict[str, int | float] = field(default_factory=dict)


def model_dir() -> Path:
    """The folder of the installed OCR package that holds the model files (no import needed)."""
    spec = importlib_util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise OcrUnavailableError(f"OCR is not installed ({MODEL_PACKAGE} missing): {INSTALL_HINT}")
    root = Path(next(iter(spec.submodule_search_locations)))
    for rel in MODEL_FILES.values():
        if not (root / rel).is_file():
            raise OcrUnavailableError(
                f"OCR model file {rel} is missing from {MODEL_PACKAGE}; reinstall: {INSTALL_HINT}"
            )
    return root


def _no_spinning(threads: int) -> Any:
    """Make every onnxruntime session of the OCR package use `threads` threads, none spinning.

    Spinning threads burn a core while waiting for work; on a teller PC that is the teller's core.
    The package builds its sessions in one place (`OrtInferSession._init_sess_opts`); this wraps it.
    """
    from rapidocr_onnxruntime.utils import infer_engine

    cls = infer_engine.OrtInferSession
    original = cls.__dict__["_init_sess_opts"].__func__

    def options(config: dict[str, Any]) -> Any:
        opts = original(config)
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
        return opts

    if not getattr(original, "_guard_no_spinning", False):
        options._guard_no_spinning = True  # type: ignore[attr-defined]
        cls._init_sess_opts = staticmethod(options)
    return cls


class TileCache:
    """Recognised text of crops already seen, keyed by a hash of their pixels (bounded, LRU)."""

    def __init__(self, entries: int = TILE_CACHE_ENTRIES) -> None:
        self._entries = entries
        self._items: OrderedDict[bytes, tuple[str, float]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(crop: np.ndarray) -> bytes:
        h = hashlib.blake2b(digest_size=16)
        h.update(repr(crop.shape).encode())
        h.update(crop.tobytes())
        return h.digest()

    def get(self, key: bytes) -> tuple[str, float] | None:
        hit = self._items.get(key)
        if hit is None:
            self.misses += 1
            return None
        self._items.move_to_end(key)
        self.hits += 1
        return hit

    def put(self, key: bytes, value: tuple[str, float]) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self._entries:
            self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)


TEMPLATE_CHARS: Final = frozenset("0123456789X-")
"""What `GlyphTemplates` learns and reads: the characters identifiers and the numbers beside them
are written in, each one connected glyph."""
TEMPLATE_MIN_SCORE: Final = 0.9
"""A crop teaches its glyphs only when the model read it at least this sure."""
STREAM_WINDOW: Final = 32
"""How many of the crops waiting (in reading order) are weighed for the model's next one."""

UNSPACED_SLACK: Final = (3, 0.15)
SPACED_EXTRA: Final = (5, 0.3)
"""Two glyphs of a crop whose centres stand at most the crop's median distance plus the larger
of `UNSPACED_SLACK` (half-pixels, or a share of that median) apart have no space between them;
at least the median plus the larger of `SPACED_EXTRA`, a space; between, the model reads it.
Measured on rendered screens: glyph positions rounded to whole pixels move digits a pixel and a
half either way at 11 px, 12 % of their pitch at 16 px; a space adds 40-60 % of it."""

GlyphKey = tuple[int, int, int, bytes]  # width, height, top below the crop's ink top, bitmap


@dataclass(frozen=True, slots=True)
class _Glyph:
    """One connected component of a crop's ink: its bitmap key and its columns."""

    key: GlyphKey
    x: int
    w: int


def _otsu_text(gray: np.ndarray) -> tuple[np.ndarray, bool]:
    """A gray crop binarised on its own (Otsu), its text 255 whichever its tone (the text is the
    minority of its pixels), and whether the text was the dark side."""
    import cv2

    _, bw = cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    dark_text = cv2.countNonZero(bw) * 2 > bw.size
    return (cv2.bitwise_not(bw) if dark_text else bw), dark_text


def _glyphs(crop: np.ndarray) -> list[_Glyph] | None:
    """The crop's glyphs left to right, each an 8-connected component of its ink (Otsu, the
    text the minority); None when two components share columns (a glyph of parts: a colon, a
    Chinese character), which one glyph per component cannot read."""
    import cv2
    import numpy as np

    gray = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY) if crop.ndim == 3 else crop
    bw, _dark = _otsu_text(gray)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(bw, connectivity=8)
    if n < 2:
        return None
    order = sorted(range(1, n), key=lambda k: int(stats[k, 0]))
    top = int(stats[1:, 1].min())
    out: list[_Glyph] = []
    for k in order:
        x, y, w, h = (int(v) for v in stats[k, :4])
        if out and x < out[-1].x + out[-1].w:
            return None
        bitmap = np.packbits(labels[y:y + h, x:x + w] == k).tobytes()
        out.append(_Glyph((w, h, y - top, bitmap), x, w))
    return out


class GlyphTemplates:
    """The glyphs of one image's digits as the model read them, to read its other values without
    the model.

    A screen draws every digit of one font and size with the same pixels (or with a few variants,
    one per sub-pixel position): once the model has read a crop of digits whose glyphs are one
    component each, each component's exact bitmap is that digit (a component of digits that
    touch, as wide as k digits, is those k: `_spans`). A crop whose every glyph is such a bitmap,
    whose glyphs stand clearly a space apart or clearly not (`SPACED_EXTRA`) and whose ID or card
    carries its check digit is read from them; any other crop (an unknown glyph, one of parts, a
    gap that could be either, noise) goes to the model, whose reading teaches more glyphs. A
    bitmap read as two different characters is never used.
    """

    def __init__(self) -> None:
        self._chars: dict[GlyphKey, tuple[str, float]] = {}
        self._conflicts: set[GlyphKey] = set()

    def __len__(self) -> int:
        return len(self._chars)

    def learn(self, crop: np.ndarray, text: str, score: float) -> None:
        """Teach the glyphs of a crop the model read as `text` with `score`: only a crop of
        `TEMPLATE_CHARS` whose glyphs can be told apart (`_spans`), read at least
        `TEMPLATE_MIN_SCORE`."""
        self.learn_glyphs(_glyphs(crop), text, score)

    def learn_glyphs(self, glyphs: list[_Glyph] | None, text: str,
                     score: float) -> set[GlyphKey]:
        """`learn` from a crop's glyphs (`_glyphs`) already found; returns the bitmaps it made
        readable."""
        chars = text.replace(" ", "")
        if score < TEMPLATE_MIN_SCORE or not chars or not set(chars) <= TEMPLATE_CHARS:
            return set()
        spans = None if glyphs is None else _spans(glyphs, chars, spaced=" " in text.strip())
        if glyphs is None or spans is None:
            return set()
        new: set[GlyphKey] = set()
        for glyph, ch in zip(glyphs, spans, strict=True):
            known = self._chars.get(glyph.key)
            if known is not None and known[0] != ch:
                self._conflicts.add(glyph.key)
                new.discard(glyph.key)
            elif known is None or known[1] < score:
                if known is None and glyph.key not in self._conflicts:
                    new.add(glyph.key)
                self._chars[glyph.key] = (ch, score)
        return new

    def read(self, crop: np.ndarray) -> tuple[str, float] | None:
        """The crop's text and the lowest score of the readings that taught its glyphs, or None
        when the model must read it."""
        return self.read_glyphs(_glyphs(crop)) if self._chars else None

    def unknown(self, glyphs: list[_Glyph]) -> set[GlyphKey]:
        """The glyphs of a crop that cannot be read from their bitmaps (yet)."""
        return {g.key for g in glyphs if g.key not in self._chars or g.key in self._conflicts}

    def read_glyphs(self, glyphs: list[_Glyph] | None) -> tuple[str, float] | None:
        """`read` from a crop's glyphs (`_glyphs`) already found."""
        if glyphs is None or self.unknown(glyphs):
            return None
        known = [self._chars.get(glyph.key) for glyph in glyphs]
        shown = [k[0] for k in known if k is not None]
        # the distance between two glyphs' centres, per character (touching digits are one)
        pitches = [_pitch(a, b) / ((len(sa) + len(sb)) / 2) for a, b, sa, sb
                   in zip(glyphs, glyphs[1:], shown, shown[1:], strict=False)]
        pitch = sorted(pitches)[len(pitches) // 2] if pitches else 0
        out: list[str] = []
        score = min(k[1] for k in known if k is not None)
        for k, chars in enumerate(shown):
            out.append(chars)
            if k + 1 == len(glyphs):
                break
            if pitches[k] >= pitch + max(SPACED_EXTRA[0], SPACED_EXTRA[1] * pitch):
                out.append(" ")
            elif pitches[k] > pitch + max(UNSPACED_SLACK[0], UNSPACED_SLACK[1] * pitch):
                return None  # neither clearly a space nor clearly none
        text = "".join(out)
        return (text, score) if _check_digits_hold(text) else None


def _check_digits_hold(text: str) -> bool:
    """Whether a number read from glyphs has the check digit its length calls for: 18 characters
    a resident ID's (GB 11643) or a card's (Luhn), 15-19 digits a card's. A glyph taught wrong
    would break it, and the model reads the crop again; numbers of other lengths (mobiles) carry
    no check digit."""
    from guard.scan.detectors.bank_card import luhn_valid
    from guard.scan.detectors.resident_id import check_character

    compact = text.replace(" ", "").replace("-", "")
    if len(compact) == 18 and compact[:17].isdigit():
        return check_character(compact[:17]) == compact[17] or luhn_valid(compact)
    if 15 <= len(compact) <= 19 and compact.isdigit():
        return luhn_valid(compact)
    return True


TOUCHING_LAST_INK: Final = 0.3
"""How much of its advance the right side bearing of a digit, and the gap to the next, take:
digits that touch, k of them, are about k - 0.3 advances wide."""
TOUCHING_SLACK: Final = 0.3
"""A glyph of touching digits is taken for k digits only when its width is within this many
advances of k's."""


def _spans(glyphs: list[_Glyph], chars: str, *, spaced: bool) -> list[str] | None:
    """The characters of `chars` each glyph shows: one each when they are as many; else, for a
    run of digits without spaces (tabular digits, one advance each), as many as its width holds
    (digits that touch are one glyph), None where a width is not clearly a whole number of
    digits or the counts do not add up."""
    if len(glyphs) == len(chars):
        return list(chars)
    if spaced or len(glyphs) > len(chars) or not chars.isdigit():
        return None
    extent = glyphs[-1].x + glyphs[-1].w - glyphs[0].x
    advance = extent / (len(chars) - TOUCHING_LAST_INK)
    out: list[str] = []
    at = 0
    for glyph in glyphs:
        digits = glyph.w / advance + TOUCHING_LAST_INK
        k = max(1, round(digits))
        if k > 1 and abs(digits - k) > TOUCHING_SLACK:
            return None
        out.append(chars[at:at + k])
        at += k
    return out if at == len(chars) else None


def _joined(read: list[tuple[str, float]], cuts: list[tuple[int, int, str]]) -> tuple[str, float]:
    """The reading of a crop from the readings of its pieces (`_pieces`): each cut was a gap, a
    space where it was one wide; the lowest score."""
    text = "".join(str(t).strip() + join
                   for (t, _s), (_a, _b, join) in zip(read, cuts, strict=True))
    return text.strip(), float(min(s for _t, s in read))


def _pitch(left: _Glyph, right: _Glyph) -> int:
    """Twice the distance between two glyphs' centres: digits of one font are as far apart
    whatever their ink's width (a "1" has wider margins than a "0"); a space sets them a third
    to a half further apart."""
    return 2 * right.x + right.w - 2 * left.x - left.w


# -- finding text lines without a model ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Regions:
    """Line boxes of an image, and which of them can hold an identifier."""

    boxes: tuple[Box, ...]
    candidates: frozenset[int]
    glyph_h: int
    runs: dict[int, int] = field(default_factory=dict)
    """Glyphs of each candidate that is one plain run of evenly spaced ones (`_run_length`)."""


PHOTO_FLAT_SHARE: Final = 0.5
"""Below this share of pixels equal to their right neighbour an image is a photograph or a scan.
Measured on the bench's screens: 0.91 as PNG, 0.74-0.78 as JPEG at quality 30-60, 0.86 halved;
a rendered ID card 0.96 (0.87 as JPEG); the same card photographed (noise, blur, a lighting
gradient) 0.07-0.36."""


def photographic(gray: np.ndarray) -> bool:
    """Whether a grayscale image is a photograph or a scan rather than a screen (every 4th row)."""
    import numpy as np

    rows = gray[::4]
    if rows.shape[1] < 2:
        return False
    equal = int(np.count_nonzero(rows[:, 1:] == rows[:, :-1]))
    return equal < PHOTO_FLAT_SHARE * rows[:, 1:].size


def find_regions(gray: np.ndarray, *, touching: bool = False) -> Regions:
    """Text line boxes of a grayscale image, found with OpenCV morphology (no model).

    `touching`: the image was upscaled from small text, whose digits blur into one another;
    a component of two to five digits' width then counts as that many (`_could_hold_identifier`).
    """
    import cv2
    import numpy as np

    h, w = gray.shape[:2]
    grad = cv2.morphologyEx(gray, cv2.MORPH_GRADIENT, np.ones((2, 2), np.uint8))
    _, bw = cv2.threshold(grad, 40, 255, cv2.THRESH_BINARY)
    # ruling lines (table grids, input-box outlines) would join neighbouring lines into one blob
    long_h = cv2.morphologyEx(bw, cv2.MORPH_OPEN, cv2.getStructuringElement(
        cv2.MORPH_RECT, (max(40, w // 40), 1)))
    long_v = cv2.morphologyEx(bw, cv2.MORPH_OPEN, cv2.getStructuringElement(
        cv2.MORPH_RECT, (1, max(30, h // 30))))
    bw = cv2.bitwise_and(bw, cv2.bitwise_not(cv2.bitwise_or(long_h, long_v)))
    _n, _, stats, _ = cv2.connectedComponentsWithStats(bw, connectivity=8)
    sizes = stats[1:, cv2.CC_STAT_HEIGHT]
    glyph = sizes[(sizes >= 6) & (sizes <= 200)]
    glyph_h = int(np.median(glyph)) if glyph.size else 12
    # a table's column rules and an input box's sides, shorter than the long ones above but
    # taller than any glyph's stroke, would join two cells' text or stand in a value's crop
    rules = cv2.morphologyEx(bw, cv2.MORPH_OPEN, cv2.getStructuringElement(
        cv2.MORPH_RECT, (1, max(8, round(RULE_GLYPHS * glyph_h)))))
    bw = cv2.bitwise_and(bw, cv2.bitwise_not(rules))
    # join the glyphs of a line (and digit groups split by one space), not two table cells
    join = max(3, round(glyph_h * 0.75))
    lines = cv2.morphologyEx(bw, cv2.MORPH_CLOSE, cv2.getStructuringElement(
        cv2.MORPH_RECT, (join, max(1, glyph_h // 5))))
    # and never across a grid's vertical rule, strong or faint (a light grey, under the edge
    # threshold above, found on a lower one), running through several rows: a right-aligned
    # amount up to the rule would join the number in the cell before it ("17891868197CNY
    # 9,404,711.27"); a shorter rule may be a large character's stroke, so it only is not ink
    _, walls = cv2.threshold(grad, FAINT_EDGE, 255, cv2.THRESH_BINARY)
    walls = cv2.morphologyEx(walls, cv2.MORPH_OPEN, cv2.getStructuringElement(
        cv2.MORPH_RECT, (1, max(12, round(FAINT_RULE_GLYPHS * glyph_h)))))
    lines = cv2.bitwise_and(lines, cv2.bitwise_not(walls))
    m, line_labels, line_stats, _ = cv2.connectedComponentsWithStats(lines, connectivity=8)
    boxes: list[Box] = []
    for i in range(1, m):
        x, y, bw_, bh, _area = (int(v) for v in line_stats[i])
        if bh < 6 or bh > 8 * glyph_h + 40 or bw_ < 4:
            continue
        boxes.extend(_split_rows(bw, line_labels, i, (x, y, bw_, bh), glyph_h))
    held = [_could_hold_identifier(gray, b, touching=touching) for b in boxes]
    boxes, held = _join_groups(gray, boxes, held, glyph_h, touching=touching)
    order = sorted(range(len(boxes)), key=lambda i: (boxes[i][1], boxes[i][0]))
    boxes = [boxes[i] for i in order]
    candidates = frozenset(k for k, i in enumerate(order) if held[i])
    runs = {i: n for i in candidates if (n := _run_length(gray, boxes[i])) is not None}
    return Regions(tuple(boxes), candidates, glyph_h, runs)


def _split_rows(bw: np.ndarray, blobs: np.ndarray, blob: int, box: Box,
                glyph_h: int) -> list[Box]:
    """A box two or more text lines tall cut into its lines, at the rows between them that
    hold (almost) no ink: lines a JPEG's ringing or a tight line spacing joined into one blob,
    or a line and a stub of a cell's border, which the recogniser, reading one line per crop,
    would read as one garbled line. A box with one line in it is cut down to that line.

    `bw`: the image's edge mask the lines were found in; `blobs`, `blob`: the label image of
    the joined lines and this box's label in it (another blob's ink inside this box's bounding
    rectangle is not this box's). A box under two glyphs tall, or one whose rows all hold ink,
    is kept whole.
    """
    import numpy as np

    x, y, w, h = box
    if h < 2 * glyph_h or w < 3 * glyph_h:
        return [box]
    mine = (blobs[y:y + h, x:x + w] == blob) & (bw[y:y + h, x:x + w] > 0)
    ink = np.count_nonzero(mine, axis=1)
    empty = ink <= max(1, int(0.03 * ink.max()))
    cuts: list[tuple[int, int]] = []
    top = None
    for r in range(h + 1):
        if r < h and not empty[r]:
            top = r if top is None else top
        elif top is not None:
            cuts.append((top, r))
            top = None
    lines = [(a, b) for a, b in cuts if b - a >= 0.6 * glyph_h]
    if not lines or (len(lines) == 1 and lines[0][1] - lines[0][0] >= 0.7 * h):
        return [box]
    out = []
    for a, b in lines:
        cols = np.flatnonzero(np.count_nonzero(mine[a:b], axis=0))
        out.append((x + int(cols[0]), y + a, int(cols[-1] - cols[0]) + 1, b - a))
    return out


DIGIT_ASPECT: Final = 0.95
"""The widest a digit is for its height: a bold sans digit's 0.9 (DejaVu Sans Bold), under a
Chinese character's 1.0 when it is one component."""
SERIF_ASPECT: Final = 0.85
"""The same for a box binarised for hairlines: there the strokes of Chinese characters join
into more square components, which 0.95 would count (a line of Chinese text, 18 px, became a
candidate); 0.85 still takes a monospace bold digit."""
FAINT_EDGE: Final = 12
"""The edge strength (morphological gradient) of a grid's faintest rules: a light grey line on
white, as a spreadsheet or a JPEG of one shows it; the text's edges are taken at 40."""
FAINT_RULE_GLYPHS: Final = 3.0
"""A faint vertical rule is taken only this many glyph heights long (a grid's rule runs through
several rows): at the lower threshold a JPEG's ringing lengthens a serif 1's stem."""
RULE_GLYPHS: Final = 1.6
"""A vertical stroke this many median glyph heights tall is a rule, not part of a glyph (a
Chinese character's strokes are at most ~1.2 of a digit's height)."""
GROUP_GAP: Final = 1.6
"""Digit groups this many glyph heights apart or closer may be one number (`_join_groups`): a
monospace font's space is a whole digit wide, wider than the line finder's closing joins."""


def _join_groups(gray: np.ndarray, boxes: list[Box], held: list[bool], glyph_h: int, *,
                 touching: bool) -> tuple[list[Box], list[bool]]:
    """Boxes on one line that cannot hold an identifier alone but can together (`6222 0212
    3456 7890 128` in a monospace font, its groups found apart) joined into one box.

    Only boxes that hold no identifier by themselves are joined, so a value and its label, or
    two values in neighbouring cells, stay apart.
    """
    import bisect

    gap_max = GROUP_GAP * glyph_h
    by_x = sorted(range(len(boxes)), key=lambda i: boxes[i][0])
    xs = [boxes[i][0] for i in by_x]
    used: set[int] = set()
    out: list[Box] = []
    out_held: list[bool] = []
    for i in by_x:
        if i in used:
            continue
        used.add(i)
        if held[i]:
            out.append(boxes[i])
            out_held.append(True)
            continue
        chain, cur = [i], boxes[i]
        while True:
            x, y, w, h = cur
            nxt = None
            lo = bisect.bisect_left(xs, x + w)
            hi = bisect.bisect_right(xs, x + w + gap_max)
            for j in by_x[lo:hi]:
                bx, by, bw, bh = boxes[j]
                if j in used or held[j] or abs(bh - boxes[chain[-1]][3]) > 0.3 * max(bh, h):
                    continue
                if min(y + h, by + bh) - max(y, by) >= 0.7 * min(h, bh):
                    nxt = j
                    break
            if nxt is None:
                break
            chain.append(nxt)
            used.add(nxt)
            bx, by, bw, bh = boxes[nxt]
            cur = (x, min(y, by), bx + bw - x, max(y + h, by + bh) - min(y, by))
        if len(chain) > 1 and _could_hold_identifier(gray, cur, touching=touching):
            out.append(cur)
            out_held.append(True)
        else:
            out.extend(boxes[k] for k in chain)
            out_held.extend(False for _ in chain)
    return out, out_held


HAIRLINE_INK: Final = 0.7
"""How far from the text's tone towards the background a pixel still counts as ink when a box
is binarised for thin strokes (`_ink(hairline=True)`)."""


def _ink(gray: np.ndarray, box: Box, *, hairline: bool = False) -> np.ndarray:
    """The box's crop binarised on its own (Otsu), the text white (light text on a dark bar
    inverted).

    `hairline`: the threshold moved `HAIRLINE_INK` of the way from the text's median tone to the
    background's, so that the anti-aliased 1 px strokes of a serif font (SimSun's digits, grey
    on screen) stay joined to their glyph instead of breaking it into pieces; a sans font's
    neighbouring digits touch more often that way, so the digit filter tries both.
    """
    import numpy as np

    x, y, w, h = box
    crop = gray[y:y + h, x:x + w]
    bw, dark_text = _otsu_text(crop)
    if not hairline:
        return bw
    text = bw > 0
    if text.all() or not text.any():
        return bw
    fg, bg = float(np.median(crop[text])), float(np.median(crop[~text]))
    level = fg + HAIRLINE_INK * (bg - fg)
    ink = crop < level if dark_text else crop > level
    return ink.astype(np.uint8) * 255


def _run_length(gray: np.ndarray, box: Box) -> int | None:
    """How many glyphs the box holds, when that can be told for sure: one run, no spaces, each
    glyph one component of the line's height (or two or more that touch, exactly that many
    glyphs wide), at an even pitch (a tabular-digit number).

    None when in doubt: a component wider than the pitch by other than whole glyphs, a glyph in
    pieces or a space (a gap off the pitch), Chinese characters (several components of other
    heights), or more touching components than single ones.
    """
    import cv2
    import numpy as np

    _x, _y, _w, h = box
    _n, _, stats, _ = cv2.connectedComponentsWithStats(_ink(gray, box), connectivity=8)
    stats = stats[1:]
    if not len(stats):
        return None
    tall = stats[:, cv2.CC_STAT_HEIGHT] >= max(5, h // 3)
    order = np.argsort(stats[tall, cv2.CC_STAT_LEFT], kind="stable")
    lefts = stats[tall, cv2.CC_STAT_LEFT][order].astype(np.float64)
    widths = stats[tall, cv2.CC_STAT_WIDTH][order].astype(np.float64)
    if lefts.size < 3:
        return None
    small = stats[~tall]
    if small.size and (small[:, cv2.CC_STAT_HEIGHT] >= 3).any():
        return None  # a hyphen, a dot, a stroke: not one plain run
    steps = np.diff(lefts)
    pitch = float(np.median(steps))
    if pitch <= 0:
        return None
    single = float(np.median(widths))
    # touching glyphs (kerned pairs of a screen font): one component, k pitches less a gap wide
    glyphs = np.maximum(1.0, 1.0 + np.rint((widths - single) / pitch))
    wide = glyphs > 1
    if (np.abs(widths[wide] - single - (glyphs[wide] - 1) * pitch) > 0.2 * pitch).any():
        return None
    if 2 * int(wide.sum()) >= lefts.size or (widths[~wide] > 1.05 * pitch).any():
        return None
    if (np.abs(steps - glyphs[:-1] * pitch) >= 0.4 * pitch).any():
        return None  # a space or a glyph in pieces: off the pitch
    count = int(glyphs.sum())
    return count if count >= MIN_DIGIT_GLYPHS else None


def _could_hold_identifier(gray: np.ndarray, box: Box, *, touching: bool = False) -> bool:
    """Wide enough for 9 narrow glyphs, and at least that many digit-shaped glyphs in it, with
    the box binarised as it is (Otsu) or, failing that, keeping hairlines (`_ink`)."""
    return (_digit_glyphs(gray, box, touching=touching, hairline=False)
            or _digit_glyphs(gray, box, touching=touching, hairline=True))


def _digit_glyphs(gray: np.ndarray, box: Box, *, touching: bool, hairline: bool) -> bool:
    """`_could_hold_identifier` for one binarisation of the box.

    The crop is binarised on its own, so each digit is one component: digits share one height
    and are about half as wide as tall, while Chinese characters are as wide as tall.
    """
    import cv2
    import numpy as np

    _x, _y, w, h = box
    if w < 3 * h // 2 or h < 7:
        return False
    # hairline strokes meet at corners only (a serif 4's or 7's diagonal): 8-connected there,
    # but not in enlarged small text, where that joins a date's dash to its digits
    corners = hairline and not touching
    n, labels, stats, _ = cv2.connectedComponentsWithStats(_ink(gray, box, hairline=hairline),
                                                           connectivity=8 if corners else 4)
    # touching digits: fewer components than digits, so only the count below can tell
    fewest = 2 if touching else MIN_DIGIT_GLYPHS
    if n <= fewest:
        return False
    hs = stats[1:, cv2.CC_STAT_HEIGHT]
    ws = stats[1:, cv2.CC_STAT_WIDTH]
    # 6 px: a noise floor, half the glyph height this is run at (small text is enlarged first)
    glyphs = hs >= 6
    if int(glyphs.sum()) < fewest:
        return False
    # the digits' height: the commonest among the tall components (a Chinese character's
    # radicals and strokes are shorter pieces, more of them than its whole glyphs)
    tall = glyphs & (hs >= 0.75 * float(np.percentile(hs[glyphs], 90)))
    mode = int(np.bincount(hs[tall]).argmax())
    level = glyphs & (np.abs(hs - mode) <= max(1, mode // 10))
    widest = SERIF_ASPECT if hairline else DIGIT_ASPECT
    digit = level & (ws >= 0.25 * hs) & (ws <= widest * hs)
    count = int(digit.sum())
    if touching:
        # digits of upscaled small text touch: a component 2-8 digits wide is that many digits
        measured = count >= 3
        pitch = float(np.median(ws[digit])) if measured else 0.55 * mode
        # up to 8 digits in one component when the single ones give their pitch, 5 on a guess
        wide = level & (ws > widest * hs) & (ws <= (8.5 if measured else 5.5) * pitch)
        for k in np.flatnonzero(wide):
            inked = ws[k] - _dash_columns(labels, stats[k + 1], int(k) + 1, mode)
            count += int(np.rint(inked / pitch))
    elif count < MIN_DIGIT_GLYPHS:
        # a screen font's digits that touch in places (Arial-like at 15 px: "75", "222"): a
        # component exactly 2-4 digits wide at the line's level is that many; a Chinese
        # character, as wide as tall, is not a whole number of digits that close
        broad = digit & (ws >= 0.45 * hs)
        if int(broad.sum()) >= 3:
            unit = float(np.median(ws[broad]))
            gap = _digit_gap(stats[1:][broad], unit)
            for k in np.flatnonzero(level & (ws > widest * hs)):
                # n digits that touch: n glyphs, with no gap between them (their ink met) or
                # with the gaps that stand between the line's other digits (anti-aliasing
                # bridged them)
                for between in (0.0, gap):
                    n_digits = int(np.rint((ws[k] + between) / (unit + between)))
                    expected = n_digits * unit + (n_digits - 1) * between
                    if 2 <= n_digits <= 4 and abs(ws[k] - expected) <= 0.12 * n_digits * unit:
                        count += n_digits
                        break
    if count < MIN_DIGIT_GLYPHS:
        return False
    # the digits must span the box's width at their pitch, not be a few strokes of a word
    return count * mode * 0.45 <= w


def _digit_gap(stats: np.ndarray, unit: float) -> float:
    """The median gap between neighbouring digits of about `unit` px, from their components'
    stats (left, top, width, height): what two digits that touch closed (0 when none stand
    side by side)."""
    import numpy as np

    lefts = np.sort(stats[:, 0])
    rights = np.sort(stats[:, 0] + stats[:, 2])
    gaps = lefts[1:] - rights[:-1]
    near = gaps[(gaps >= 0) & (gaps < unit)]
    return float(np.median(near)) if near.size else 0.0


def _dash_columns(labels: np.ndarray, stat: np.ndarray, label: int, glyph_h: int) -> int:
    """How many of a component's columns are dashes run into digits ("2024-" of a date in
    small text): runs, each at least 0.3 glyph wide, of columns inked only in the middle band of
    the glyph height. Touching digits have none such (a 4's bar overhangs its stem by a pixel).
    """
    import numpy as np

    x, y, w, h = (int(v) for v in stat[:4])
    ink = labels[y:y + h, x:x + w] == label
    rows = np.arange(h)[:, None]
    top = np.where(ink, rows, h).min(axis=0)
    bottom = np.where(ink, rows, -1).max(axis=0)
    middle = (top > 0.25 * h) & (bottom < 0.75 * h) & (bottom >= 0)
    dashes, run = 0, 0
    for mid in [*middle, False]:
        if mid:
            run += 1
            continue
        if run >= 0.3 * glyph_h:
            dashes += run  # both of a date's dashes, when its digits all touch
        run = 0
    return dashes


def _left_label(boxes: tuple[Box, ...], i: int) -> int | None:
    """The box just left of box `i` on the same line (its field label), if one is near."""
    x, y, _w, h = boxes[i]
    best: int | None = None
    best_gap = 4 * h  # a form label sits close; the cell before in a table row does not
    for j, (bx, by, bw, bh) in enumerate(boxes):
        if j == i or bx + bw > x + 2:
            continue
        overlap = min(y + h, by + bh) - max(y, by)
        if overlap < 0.5 * min(h, bh):
            continue
        gap = x - (bx + bw)
        if gap < best_gap:
            best, best_gap = j, gap
    return best


_TRAILING_RUN: Final = re.compile(r"[0-9]{3,}[-\s]?$")


def _ends_in_digits(text: str) -> bool:
    """Whether recognised text ends in a run of digits (maybe cut by a wrap: "150-1717-296")."""
    return _TRAILING_RUN.search(text.rstrip()) is not None


def line_below(box: Box, boxes: Sequence[Box]) -> int | None:
    """The index in `boxes` of the box that starts the next text line under `box` at its left
    edge (left edges within 0.6 line heights, at most 0.8 heights + 2 px below, a line of about
    its height), the nearest if several: where a long line wraps (a chat bubble, a remark field),
    its number goes on there. The line a value runs on into is read by this rule
    (`OcrEngine.read`) and joined to it by the same one (`guard.scan.images`)."""
    x, y, _w, h = box
    best: int | None = None
    best_gap = 0.8 * h + 2
    for j, other in enumerate(boxes):
        bx, by, _bw, bh = other
        gap = by - (y + h)
        if other == box or gap < -2 or gap > best_gap or abs(bx - x) > 0.6 * h:
            continue
        if abs(bh - h) > 0.5 * h:
            continue
        best, best_gap = j, gap
    return best


def pick(regions: Regions) -> list[int]:
    """Indexes of the boxes that may be recognised: identifier candidates and their labels, or all.

    `OcrEngine.read` recognises the candidates first and a label only when its value needs it
    (`plan`, `needs_context`); this is the most it can read.
    """
    first, labels = plan(regions)
    return sorted(set(first) | set(labels.values()))


def plan(regions: Regions, *, skip_runs: bool = True) -> tuple[list[int], dict[int, int]]:
    """The boxes to recognise first, and for each candidate value the label box left of it.

    An image with few lines has every line read at once (no labels left for later).
    `skip_runs`: leave out the serial numbers (`UNREPORTED_RUNS`) with nothing beside them.
    """
    if len(regions.boxes) <= SMALL_IMAGE_LINES:
        return list(range(len(regions.boxes))), {}
    labels: dict[int, int] = {}
    first: list[int] = []
    for i in sorted(regions.candidates):
        j = _left_label(regions.boxes, i)
        if skip_runs and j is None and regions.runs.get(i) in UNREPORTED_RUNS:
            continue  # a serial number's length and nothing beside it that could say otherwise
        first.append(i)
        if j is not None and j not in regions.candidates:
            labels[i] = j
    return first, labels


_RUN = re.compile(r"[0-9A-Za-z]+(?:[ \-]{1,2}[0-9A-Za-z]{3,})*"
                  r"(?:[ \-]{1,2}[0-9A-Za-z]{1,2}(?![0-9A-Za-z]))?")
"""A run of letters and digits, maybe in groups of 3+ after one or two spaces or hyphens and a
short last group, as the scanner joins groups (`guard.scan.engine.CANDIDATE`); joining more here
than it does would only ask for more labels."""
UNREPORTED_RUNS: Final = frozenset({10, 12, 14})
"""Lengths of a plain run of digits that no detector reports without a label: not an ID (15, 18),
a mobile (11, 13 and 15 with 86/0086), a passport (9, labelled anyway), nor an issued card length
(15-19); only an account label or a bank name beside it could make it an account number. A value
box of one such run with no box beside it is not read (a table's serial-number column)."""
SELF_EVIDENT = 0.85
"""A value the detectors score at least this high without a label is found without its label."""


def needs_context(text: str) -> bool:
    """Whether the field label beside a value recognised as `text` can change what is found in it.

    No: when the text holds no run of 7+ digits (nothing any detector reports), or when every
    such run is an identifier by its own digits: a resident ID with its check character, a mobile
    number, a card on a known issuer range with its Luhn digit. Yes for anything else (account
    numbers, passports, legacy 15-digit IDs, letter codes, unlabelled runs): only a label says
    what those are. Asked for each value before its label is recognised (`OcrEngine.read`).
    """
    from guard.scan.detectors import bank_card, mobile, resident_id
    from guard.scan.normalize import FOLD_TABLE

    for m in _RUN.finditer(text.translate(FOLD_TABLE)):
        run = m.group()
        compact = run.replace(" ", "").replace("-", "").upper()
        digits = compact[:-1] if compact.endswith("X") else compact
        if sum(c.isdigit() for c in compact) < 7:
            continue
        if not digits.isdigit():
            return True  # letters in it: a passport, a USCC or a code; the label decides
        n = len(compact)
        if n == 18 and (resident_id.score(compact, None) or 0.0) >= SELF_EVIDENT:
            continue
        if compact != digits:
            return True  # an X that is not a valid ID's check character
        if n == 11 and mobile.is_mobile(compact):
            continue
        grouped = " " in run or "-" in run
        if 13 <= n <= 19 and (bank_card.score(compact, None, grouped) or 0.0) >= SELF_EVIDENT:
            continue
        return True
    return False


READ_GLYPH_H: Final = 13
"""The median glyph height (`find_regions`) the line finder, the digit filter and the recogniser
read best at: a 1080p teller screen's, where the filter's constants were set."""
MIN_GLYPH_H: Final = 12
"""Below this median glyph height the image is upscaled to `READ_GLYPH_H` first. Measured on the
bench's screens: glyphs of 11 px (a 1366x768 screen, a 1080p one at 75 %) lose 2-6 % of their
values read as they are, none upscaled; 7 px (960x540) lose 70 % as they are."""
MAX_UPSCALE: Final = 4.0
"""Text smaller than a quarter of `READ_GLYPH_H` is not made readable by interpolation."""
BLURRED_FACTOR: Final = 2.0
"""Enlarged this much or more (glyphs under 6.5 px), a crop keeps more margin (`_recognise`)."""
MAX_UPSCALED_PIXELS: Final = 16_000_000
"""An enlarged image stays under this many pixels (48 MB as BGR), whatever its glyphs say."""


def upscale_factor(glyph_h: float, size: tuple[int, int] = (0, 0)) -> float:
    """How much to enlarge an image of `size` (w, h) whose median glyph is `glyph_h` px tall
    before reading it: 1.0 when it is read as it is."""
    if glyph_h >= MIN_GLYPH_H:
        return 1.0
    factor = min(MAX_UPSCALE, READ_GLYPH_H / max(1.0, glyph_h))
    pixels = size[0] * size[1]
    if pixels:
        factor = min(factor, (MAX_UPSCALED_PIXELS / pixels) ** 0.5)
    return factor if factor > 1.05 else 1.0


def _upscaled(bgr: np.ndarray, factor: float) -> tuple[np.ndarray, np.ndarray, Regions, float]:
    """The image enlarged (INTER_CUBIC) so that its glyphs are about `READ_GLYPH_H` px tall, its
    gray copy, its regions and the factor used.

    The first factor is a guess: `find_regions` counts no glyph under 6 px, so on tiny text its
    median is too high. Measured again on the enlarged image, it is corrected once.
    """
    import cv2

    h, w = bgr.shape[:2]
    for attempt in range(2):
        big = cv2.resize(bgr, (round(w * factor), round(h * factor)),
                         interpolation=cv2.INTER_CUBIC)
        gray = cv2.cvtColor(big, cv2.COLOR_BGR2GRAY)
        regions = find_regions(gray, touching=True)
        if attempt or regions.glyph_h >= MIN_GLYPH_H:
            break
        # the glyphs' height in the original image, measured where they are large enough
        again = upscale_factor(regions.glyph_h / factor, (w, h))
        if again <= factor * 1.05:
            break
        factor = again
    return big, gray, regions, factor


MAX_CROP_ASPECT: Final = 40
"""A crop wider than this many times its height is read in pieces (`_pieces`): the model's time
and memory grow faster than its input's width (one line of 16,000 px, 17 px glyphs, read whole:
9.7 s on one core and a 1.5 GB worker; the widest line of a 1080p teller screen is 24 times its
height)."""


SPACE_GAP: Final = 0.2
"""A gap between glyphs this many crop heights wide or wider (a quarter of a glyph's height and
more) is a space: pieces cut there are joined with one (`_pieces`)."""


def _pieces(crop: np.ndarray) -> list[tuple[int, int, str]]:
    """Column ranges [x0, x1) that cut `crop` into pieces of at most `MAX_CROP_ASPECT` times its
    height, each cut in the emptiest columns of the last quarter of its piece (the gap between
    two words or glyphs, the widest such gap), so that no glyph is cut; one range if it is
    narrow enough. With each range, what joins its text to the next one's: a space where the
    cut was a space wide (`SPACE_GAP`), nothing where it was the gap between two glyphs (a long
    run of Chinese or of digits has no other)."""
    import cv2
    import numpy as np

    h, w = crop.shape[:2]
    longest = MAX_CROP_ASPECT * max(1, h)
    if w <= longest:
        return [(0, w, "")]
    gray = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY) if crop.ndim == 3 else crop
    bw, _dark = _otsu_text(gray)
    ink = np.count_nonzero(bw, axis=0)
    out: list[tuple[int, int, str]] = []
    start = 0
    while w - start > longest:
        lo = start + longest * 3 // 4
        window = ink[lo:start + longest]
        emptiest = window == window.min()
        # the widest run of the emptiest columns, cut in its middle
        best, best_len, run_at = 0, 0, -1
        for k, empty in enumerate(np.append(emptiest, False)):
            if empty and run_at < 0:
                run_at = k
            elif not empty and run_at >= 0:
                if k - run_at > best_len:
                    best, best_len = run_at + (k - run_at) // 2, k - run_at
                run_at = -1
        cut = lo + best
        wide = window.min() == 0 and best_len >= SPACE_GAP * h
        out.append((start, cut, " " if wide else ""))
        start = cut
    out.append((start, w, ""))
    return out


def _scaled_box(box: Box, factor: float) -> Box:
    if factor == 1.0:
        return box
    x, y, w, h = box
    return (int(x / factor), int(y / factor), max(1, round(w / factor)), max(1, round(h / factor)))


# -- the engine -----------------------------------------------------------------------------------


class Recogniser:
    """The recognition model alone, on its own onnxruntime session, one crop per `session.run`.

    The model is loaded with its element-wise operators fused (`guard.scan.ocr_graph`: the same
    arithmetic, 1.5x less CPU). Each crop is resized to the model's 48 px height at its own
    aspect ratio (the package's recogniser pads every crop to at least 320 px wide: most screen
    values are narrower, and the model's cost grows with the width). Crops are read by a pool
    of `threads` threads calling one session whose operators run single-threaded: measured
    here, two crops at once on two cores cost less CPU than one crop on two intra-op threads,
    and batches of crops padded to one width cost more CPU than the same crops one by one.
    """

    HEIGHT: Final = 48

    fused: dict[str, int]
    """How many operator groups `guard.scan.ocr_graph.fuse` rewrote (`{"error": 1}` if it could
    not, then the model runs as shipped)."""
    fuse_error: str = ""

    def __init__(self, model: Path, threads: int) -> None:
        import onnxruntime as ort
        from rapidocr_onnxruntime.ch_ppocr_rec.utils import CTCLabelDecode

        opts = ort.SessionOptions()
        opts.log_severity_level = 4
        opts.enable_cpu_mem_arena = False  # the arena keeps the peak of the widest crop
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
        self.fused = {}
        source: bytes | str = str(model)
        try:
            from guard.scan.ocr_graph import fuse

            source, self.fused = fuse(model.read_bytes())
        except (ImportError, OSError, ValueError) as exc:  # GraphRewriteError is a ValueError
            # protobuf missing or a model laid out otherwise: the model as shipped, only slower
            self.fused = {"error": 1}
            self.fuse_error = type(exc).__name__
        self.session = ort.InferenceSession(source, sess_options=opts,
                                            providers=["CPUExecutionProvider"])
        chars = self.session.get_modelmeta().custom_metadata_map.get("character")
        if not chars:
            raise OcrUnavailableError(
                f"OCR model {model.name} carries no character list; reinstall: {INSTALL_HINT}")
        self._decode = CTCLabelDecode(character=chars.splitlines())
        del source  # ~10 MB of model bytes, now inside the session
        self._input = self.session.get_inputs()[0].name
        self._threads = max(1, threads)
        self._pool: Any = None

    def _one(self, crop: np.ndarray) -> tuple[str, float]:
        import math

        import cv2
        import numpy as np

        h, w = crop.shape[:2]
        width = max(8, math.ceil(self.HEIGHT * w / max(1, h)))
        resized = cv2.resize(crop, (width, self.HEIGHT))
        # the model's input: CHW, scaled from [0, 255] to [-1, 1]
        x = resized.astype(np.float32).transpose(2, 0, 1)[np.newaxis] / np.float32(127.5)
        x -= np.float32(1.0)
        preds = self.session.run(None, {self._input: x})[0]
        text, score = self._decode(preds)[0]
        return str(text), float(score)

    def _executor(self) -> Any:
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="ocr-rec")
        return self._pool

    def submit(self, crop: np.ndarray) -> Future[tuple[str, float]]:
        """Read one crop on the pool (at once, on this thread, with one thread)."""
        if self._threads == 1:
            from concurrent.futures import Future

            done: Future[tuple[str, float]] = Future()
            done.set_result(self._one(crop))
            return done
        return self._executor().submit(self._one, crop)

    def __call__(self, crops: list[np.ndarray]) -> list[tuple[str, float]]:
        if self._threads == 1 or len(crops) < 2:
            return [self._one(c) for c in crops]
        self._executor()
        # widest first, so the last crops to finish are short ones and both cores end together
        order = sorted(range(len(crops)), key=lambda i: -crops[i].shape[1] / crops[i].shape[0])
        out: list[tuple[str, float]] = [("", 0.0)] * len(crops)
        for i, value in zip(order, self._pool.map(self._one, [crops[i] for i in order]),
                            strict=True):
            out[i] = value
        return out


class OcrEngine:
    """Reads text off images with the packaged models; one per worker process, not thread-safe."""

    def __init__(self, threads: int | None = None, cache_entries: int = TILE_CACHE_ENTRIES,
                 *, all_labels: bool = False, skip_runs: bool = True,
                 templates: bool = True) -> None:
        """`all_labels` reads the label of every candidate value, needed or not, and
        `skip_runs=False` every candidate value (`plan`); `templates=False` has the model read
        every crop (`GlyphTemplates`): for the benchmark's comparisons."""
        self._threads = threads or max(1, min(2, os.cpu_count() or 1))
        self._all_labels = all_labels
        self._skip_runs = skip_runs
        self._templates = templates
        self._rec: Recogniser | None = None
        self._full: Any = None
        self.cache = TileCache(cache_entries)

    def _recogniser(self) -> Recogniser:
        if self._rec is None:
            self._rec = Recogniser(model_dir() / MODEL_FILES["rec"], self._threads)
        return self._rec

    def _full_engine(self) -> Any:
        if self._full is None:
            model_dir()
            _no_spinning(self._threads)
            from rapidocr_onnxruntime import RapidOCR

            self._full = RapidOCR()
        return self._full

    def read(self, image: np.ndarray, mode: Mode = "fast") -> ReadResult:
        """The text lines of a BGR (or grayscale, or BGRA) uint8 image."""
        import time

        import cv2

        t0, cpu0 = time.perf_counter(), time.process_time()
        if image.ndim == 2:
            bgr = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        elif image.shape[2] == 4:
            bgr = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
        else:
            bgr = image
        if mode == "full":
            return self._read_full(bgr, t0, cpu0)
        gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
        if photographic(gray):
            result = self._read_full(bgr, t0, cpu0)
            result.stats["photo"] = 1
            return result
        regions = find_regions(gray)
        factor = upscale_factor(regions.glyph_h, (gray.shape[1], gray.shape[0]))
        orig = bgr
        if factor > 1.0:
            # small text: the line finder and the digit filter need glyphs of READ_GLYPH_H px
            bgr, gray, regions, factor = _upscaled(bgr, factor)
        t_regions = time.perf_counter() - t0
        first, labels = plan(regions, skip_runs=self._skip_runs)
        texts: dict[int, tuple[str, float]] = {}
        # crops are cut from the image as it came: the recogniser enlarges them to its 48 px
        # itself, and one interpolation reads better than two (683x384: 54 of 64 values read
        # against 49 from the enlarged image's crops; 691x389: 52 of 81 against 33)
        src = orig if factor > 1.0 else None
        glyphs = GlyphTemplates() if self._templates else None
        recognised, templated = self._recognise(bgr, regions.boxes, first, texts, src, factor,
                                                glyphs)
        # a label is read only for a value whose reading it can change (see `needs_context`)
        wanted = sorted({j for i, j in labels.items()
                         if j not in texts and (self._all_labels or needs_context(texts[i][0]))})
        # and the line a value that ends a line may run on into (a chat bubble's wrap)
        runs_on = sorted({j for i in first if i in texts and _ends_in_digits(texts[i][0])
                          and (j := line_below(regions.boxes[i], regions.boxes)) is not None
                          and j not in texts} - set(wanted))
        more = self._recognise(bgr, regions.boxes, wanted + runs_on, texts, src, factor, glyphs)
        recognised, templated = recognised + more[0], templated + more[1]
        chosen = sorted(texts)
        lines = tuple(
            TextLine(texts[i][0], _scaled_box(regions.boxes[i], factor), texts[i][1])
            for i in chosen if texts[i][0].strip()
        )
        stats: dict[str, int | float] = {
            "regions": len(regions.boxes), "candidates": len(regions.candidates),
            "recognised": recognised, "templated": templated,
            "cached": len(chosen) - recognised - templated,
            "labels": len(wanted), "labels_skipped": len(set(labels.values())) - len(wanted),
            "upscale": round(factor, 3), "glyph_h": regions.glyph_h,
            "regions_s": round(t_regions, 4), "total_s": round(time.perf_counter() - t0, 4),
            "cpu_s": round(time.process_time() - cpu0, 4),
        }
        return ReadResult(lines, stats)

    def _recognise(self, bgr: np.ndarray, boxes: tuple[Box, ...], chosen: list[int],
                   texts: dict[int, tuple[str, float]], source: np.ndarray | None = None,
                   factor: float = 1.0, glyphs: GlyphTemplates | None = None) -> tuple[int, int]:
        """Put the text of boxes `chosen` into `texts`, from the tile cache, the glyphs the model
        has read in this image (`glyphs`) or the model.

        `source`: the image `bgr` was enlarged from by `factor`; the crops are cut from it.
        The model's readings teach the glyphs (`GlyphTemplates`) that read the crops left
        (`_stream`). Returns how many boxes the model read (a wide one in several pieces) and
        how many the glyphs did.
        """
        import math

        pending: list[tuple[int, bytes, np.ndarray]] = []
        ih, iw = bgr.shape[:2]
        for i in chosen:
            x, y, w, h = boxes[i]
            pad_y, pad_x = max(2, h // 6), max(3, h // 3)
            if source is not None and factor >= BLURRED_FACTOR:
                # text this small needs more of the line's margin (691x389 screens: 151 of 243
                # values read with a third of the height above and below, 139 with a sixth;
                # at 1366x768, enlarged 1.2x, a third lost 9 of 192 that a sixth reads)
                pad_y = max(2, h // 3)
            x0, y0 = max(0, x - pad_x), max(0, y - pad_y)
            x1, y1 = min(iw, x + w + pad_x), min(ih, y + h + pad_y)
            if source is not None:
                crop = source[int(y0 / factor):math.ceil(y1 / factor),
                              int(x0 / factor):math.ceil(x1 / factor)]
            else:
                crop = bgr[y0:y1, x0:x1]
            key = TileCache.key(crop)
            hit = self.cache.get(key)
            if hit is not None:
                texts[i] = hit
            else:
                pending.append((i, key, crop))
        if glyphs is None or len(pending) < 2:
            for (i, key, crop), value in zip(pending, self._model([c for _i, _k, c in pending]),
                                             strict=True):
                self.cache.put(key, value)
                texts[i] = value
                if glyphs is not None:
                    glyphs.learn(crop, *value)
            return len(pending), 0
        return self._stream(pending, texts, glyphs)

    def _stream(self, pending: list[tuple[int, bytes, np.ndarray]],
                texts: dict[int, tuple[str, float]],
                glyphs: GlyphTemplates) -> tuple[int, int]:
        """Read `pending` crops, each by the model or from the glyphs it has read so far.

        The model is kept busy with one crop more than it has threads; each crop it reads
        teaches its glyphs at once, and every crop whose glyphs are then all known is read from
        them. The next crop for the model is the one whose unknown glyphs the most crops left are
        waiting for. Readings are taken in the order the crops were handed to the model, so the
        same image is read the same way whatever the threads' timing.
        """
        from collections import deque

        rec = self._recogniser()
        # crops handed to the model: box, cache key, pieces, a reading per piece
        queue: deque[tuple[int, bytes, list[tuple[int, int, str]],
                           list[Future[tuple[str, float]]]]] = deque()

        def hand_over(i: int, key: bytes, crop: np.ndarray) -> None:
            cuts = _pieces(crop)
            queue.append((i, key, cuts, [rec.submit(crop[:, a:b]) for a, b, _join in cuts]))

        waiting = {i: (key, crop) for i, key, crop in pending}  # in reading order
        for i, key, crop in pending[:self._threads + 1]:
            hand_over(i, key, crop)  # the model starts while the glyphs are found
            del waiting[i]
        found = {i: _glyphs(crop) for i, _key, crop in pending}
        missing: dict[int, int] = {}  # crop -> how many of its glyph bitmaps are unknown
        by_key: dict[GlyphKey, set[int]] = {}  # an unknown bitmap -> the crops waiting for it
        for i in waiting:
            g = found[i]
            if g is not None:
                keys = glyphs.unknown(g)
                missing[i] = len(keys)
                for k in keys:
                    by_key.setdefault(k, set()).add(i)
        modelled = templated = 0
        ready = [i for i in waiting if missing.get(i) == 0]
        while waiting or queue:
            for i in ready:
                value = glyphs.read_glyphs(found[i]) if i in waiting else None
                if value is None:
                    missing.pop(i, None)  # known bitmaps, but spaces or a check digit unclear
                    continue
                key, _crop = waiting.pop(i)
                missing.pop(i, None)
                self.cache.put(key, value)
                texts[i] = value
                templated += 1
            ready = []
            while waiting and len(queue) <= self._threads:
                i = self._next_for_model(waiting, missing, by_key, glyphs, found)
                key, crop = waiting.pop(i)
                missing.pop(i, None)
                hand_over(i, key, crop)
            if not queue:
                continue
            i, key, cuts, futures = queue.popleft()
            value = _joined([f.result() for f in futures], cuts)
            modelled += 1
            texts[i] = value
            self.cache.put(key, value)
            if len(cuts) == 1:
                for k in glyphs.learn_glyphs(found[i], *value):
                    for j in by_key.pop(k, ()):
                        if j in missing:
                            missing[j] -= 1
                            if missing[j] == 0:
                                ready.append(j)
        return modelled, templated

    @staticmethod
    def _next_for_model(waiting: dict[int, tuple[bytes, np.ndarray]], missing: dict[int, int],
                        by_key: dict[GlyphKey, set[int]], glyphs: GlyphTemplates,
                        found: dict[int, list[_Glyph] | None]) -> int:
        """Of the first `STREAM_WINDOW` crops waiting, the one whose unknown glyphs the most
        waiting crops share (it teaches the most); the first waiting crop when none teaches."""
        best, best_gain = next(iter(waiting)), 0
        for n, i in enumerate(waiting):
            if n == STREAM_WINDOW:
                break
            g = found[i]
            if g is None or i not in missing:
                continue
            gain = sum(len(by_key.get(k, ())) for k in glyphs.unknown(g))
            if gain > best_gain:
                best, best_gain = i, gain
        return best

    def _model(self, crops: list[np.ndarray]) -> list[tuple[str, float]]:
        """The model's reading of each crop; a wide one is read in pieces (`_pieces`)."""
        pieces = [_pieces(crop) for crop in crops]
        flat = [crop[:, a:b] for crop, cuts in zip(crops, pieces, strict=True)
                for a, b, _join in cuts]
        if not flat:
            return []
        results = iter(self._recogniser()(flat))
        return [_joined([next(results) for _ in cuts], cuts) for cuts in pieces]

    def _read_full(self, bgr: np.ndarray, t0: float, cpu0: float) -> ReadResult:
        import time

        result, _ = self._full_engine()(bgr)
        lines = []
        for points, text, score in result or ():
            xs = [int(p[0]) for p in points]
            ys = [int(p[1]) for p in points]
            box = (min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys))
            lines.append(TextLine(str(text), box, float(score)))
        stats: dict[str, int | float] = {
            "regions": len(lines), "recognised": len(lines),
            "total_s": round(time.perf_counter() - t0, 4),
            "cpu_s": round(time.process_time() - cpu0, 4),
        }
        return ReadResult(tuple(lines), stats)
