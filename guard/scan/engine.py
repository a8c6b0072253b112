"""The scanning engine: turns text and files into `Finding`s with the detector registry.

    scanner = Scanner(key=install_key)      # keyed hashes with the install key
    scanner = Scanner(key=None)             # a teller's agent beside the machine service: no key;
                                            # findings are `UnhashedFinding`s the service hashes
    scanner.scan_text("身份证号11010519491231002X") -> [Finding(type="CN_RESIDENT_ID", ...)]
    scanner.scan_file("export.csv")         -> FileResult(source, findings, error)

How a text is scanned, step by step:

1. find candidates with ONE compiled regex pass (`CANDIDATE`): runs of 7+ ASCII or full-width
   digits, optionally grouped by one or two spaces/hyphens into groups of 3+ digits (fixed-width
   exports and OCR double the spaces), with a trailing X;
   and every `@`. The pattern starts with a character class, so the regex engine skips in C to the
   next digit; it has no nested ambiguous quantifier, so its time is linear in the text;
2. per candidate only: fold full-width forms (`guard.scan.normalize`, one char for one, so
   offsets stay those of the teller's text), drop the ones that are part of something else
   (decimals, amounts, codes glued to letters, e-mail local parts), split grouped runs into
   identifiers;
3. ask the detectors what each identifier is, with the label that applies to it: the key of its
   field, the header of its column or the nearest context word before it, and the hints of its
   record (`guard.scan.structure`, `guard.scan.detectors.context`); keep the best type;
4. report what passes the confidence threshold: span, score, masked value, keyed hash
   (HMAC-SHA256 of the normalised value), category. Raw values never leave this module, except
   as the in-memory `UnhashedFinding.value` of a key-less scanner, which the session agent hands
   to the machine service over the local channel (the service holds the key and hashes it).

Files are read by `guard.scan.documents`: text files are streamed in chunks and cut only at a
character that no identifier can contain, so nothing is split and each finding is reported once with
global offsets; xlsx/docx/pdf and HTML pages are scanned as their extracted text, streamed too
(xlsx row by row). One `structure.Layout` per text or file carries the document's structure (the
current table header) from piece to piece.
"""

from __future__ import annotations

import hmac
import itertools
import operator
import os
import re
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from guard.model import Finding
from guard.scan import _core, documents, structure
from guard.scan.detectors import (
    BANK_CARD,
    CATEGORIES,
    CN_BANK_ACCOUNT,
    CN_MOBILE,
    CN_PASSPORT,
    CN_RESIDENT_ID,
    CN_USCC,
    EMAIL,
    TYPES,
    UnknownTypeError,
    bank_account,
    bank_card,
    context,
    email,
    mobile,
    passport,
    resident_id,
    uscc,
)
from guard.scan.detectors import mask as _mask
from guard.scan.normalize import FOLD_TABLE

_D = "0-9\uff10-\uff19"
_SEP = "[ \\-\u00a0\u2000-\u200b\u202f\u205f\u3000\uff0d\u2010-\u2014\u2212]"
_XCH = "[Xx\uff38\uff58]"

CANDIDATE = re.compile(
    rf"[@\uff20{_D}](?:(?<=[@\uff20])|[{_D}]{{2}}"
    rf"(?:[{_D}]{{4,}}(?:{_SEP}{{1,2}}[{_D}]{{3,}})*|[{_D}]{{0,3}}(?:{_SEP}{{1,2}}[{_D}]{{3,}})+)"
    rf"{_XCH}?)"
)
"""Where identifiers can be: digit runs (7+ digits, maybe grouped) and `@` (or full-width `＠`)."""

_GROUP = re.compile(r"[0-9]+X?")
_DASHES = frozenset("-\uff0d\u2010\u2011\u2012\u2013\u2014\u2212")
_SHORT_TAIL = re.compile(rf"{_SEP}{{1,2}}[{_D}]{{1,2}}{_XCH}?(?![{_D}A-Za-z])")
_SEP_CHARS = frozenset(" -\u00a0\u202f\u205f\u3000\uff0d\u2010\u2011\u2012\u2013\u2014\u2212"
                       + "".join(chr(c) for c in range(0x2000, 0x200C)))
_ALNUM_BACK = re.compile(r"[0-9A-Za-z\uff10-\uff19\uff21-\uff3a\uff41-\uff5a]{1,24}\Z")
_ALNUM_FWD = re.compile(r"[0-9A-Za-z\uff10-\uff19\uff21-\uff3a\uff41-\uff5a]{0,24}")
_RUN7 = re.compile(rf"[{_D}]{{7}}")
_PREFIX_BACK = re.compile(
    rf"(?<![{_D}A-Za-z])(?:[+\uff0b]|00|\uff10\uff10)?[8\uff18][6\uff16][)\uff09]?{_SEP}?\Z"
)
_LETTER = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    + "".join(chr(c) for c in range(0xFF21, 0xFF3B))
    + "".join(chr(c) for c in range(0xFF41, 0xFF5B))
)
_DIGIT = frozenset("0123456789" + "".join(chr(c) for c in range(0xFF10, 0xFF1A)))
_PLUS = frozenset("+\uff0b")
# Letters written straight before a number that are a label, not part of a code (`ID110…`).
_GLUED_LABELS: dict[str, str] = {
    "ID": context.ID, "IDNO": context.ID, "NO": "", "TEL": context.MOBILE,
    "MOBILE": context.MOBILE, "PHONE": context.MOBILE, "CARD": context.CARD,
    "CARDNO": context.CARD, "ACCT": context.ACCOUNT, "SFZ": context.ID,
}
# Characters next to a plain digit run that need the general path (letters, digits, e-mail and
# name characters, decimals, a + or a hyphen); any other neighbour leaves the run as it is.
_AT = frozenset("@\uff20")  # the full-width ＠ of a Chinese input method too
_PREV_SPECIAL = _LETTER | _DIGIT | _AT | frozenset("_.+\uff0b-")
_NEXT_SPECIAL = _LETTER | _AT | frozenset("_")
_WORD = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_PREFIX_LAST = _SEP_CHARS | frozenset(")\uff096\uff16")  # what a +86 prefix can end with
_CARD_GROUPINGS = frozenset({(4, 4, 4, 4), (4, 4, 4, 4, 3), (4, 4, 4, 4, 2), (4, 4, 4, 4, 4),
                             (6, 13), (4, 4, 4, 7), (4, 6, 5), (4, 4, 5), (4, 4, 4, 3)})
_MAX_DIGITS = 25  # longest identifier (account numbers); longer runs are something else

_BY_SPAN = operator.attrgetter("start", "end")

CHUNK_CHARS = 1 << 20
"""Bytes read and decoded per streaming step of a text file (1 MiB)."""
CONTEXT_CHARS = 128
"""Characters kept before each chunk for context (labels, e-mail local parts, letter codes)."""


class ScanError(Exception):
    """The engine was asked for something it cannot do (unknown type, bad threshold)."""


@dataclass(frozen=True, slots=True)
class FileResult:
    """What scanning one file gave: its findings, or why it could not be read.

    `source` is the path as given (or "-" for standard input). For xlsx, docx, pdf and HTML the
    finding offsets are into the extracted text (cells joined by tabs, rows and paragraphs by
    newlines, pages by newlines), not into the file's bytes.
    """

    source: str
    findings: list[Finding] = field(default_factory=list)
    error: str | None = None


@dataclass(frozen=True, slots=True)
class UnhashedFinding(Finding):
    """A finding of a key-less scanner: `hash` is empty and `value` is the normalised value the
    keyed hash is computed from, for the one holder of the key (the machine service).

    The value lives in memory only: `as_dict()` leaves it out, `repr()` does not show it, and an
    event never carries it (`guard.pipeline` hands it to the sink beside the event).
    """

    value: str = field(default="", repr=False, compare=False)


class Scanner:
    """Finds customer data in text and files; safe to share between threads.

    `key` is the install key for the keyed hashes. None makes a key-less scanner (a teller's
    session agent when the machine service runs: the key never reaches a teller's process): it
    finds and masks the same, and returns `UnhashedFinding`s with an empty hash.
    """

    def __init__(
        self,
        key: bytes | None,
        min_confidence: float | Mapping[str, float] = 0.5,
        types: Collection[str] | None = None,
        *,
        engine: str | None = None,
    ) -> None:
        """`engine`: "python" forces the reference path; None uses the compiled core when it is
        installed and not switched off (`guard.scan._core`)."""
        if engine not in (None, "python"):
            raise ScanError(f"unknown engine {engine!r}; known: python (or None for the default)")
        self._key = key
        self._mac = hmac.new(key, digestmod="sha256") if key is not None else None
        default = 0.5
        per_type: Mapping[str, float] = {}
        if isinstance(min_confidence, Mapping):
            per_type = min_confidence
        else:
            default = float(min_confidence)
        for name in list(per_type) + list(types or ()):
            if name not in CATEGORIES:
                raise UnknownTypeError(f"unknown finding type {name!r}; known: {', '.join(TYPES)}")
        thresholds = {t: float(per_type.get(t, default)) for t in TYPES}
        for t, v in thresholds.items():
            if not 0.0 <= v <= 1.0:
                raise ScanError(f"confidence threshold for {t} must be between 0 and 1, got {v}")
        wanted = set(TYPES if types is None else types)
        # a type that is not wanted gets a threshold no score reaches
        self._threshold = {t: (v if t in wanted else 2.0) for t, v in thresholds.items()}
        # the compiled core (guard._core) runs the same per-candidate path when it is installed;
        # this class's own methods below are the reference and the fallback. The key-less mode
        # (values kept in memory for the machine service to hash) runs on the reference path.
        self._core = (None if engine == "python" or key is None
                      else _core.make(key, self._threshold, _GLUED_LABELS, _CARD_GROUPINGS))

    # -- text -----------------------------------------------------------------------------------

    def scan_text(self, text: str) -> list[Finding]:
        """All findings in `text`, sorted by start; offsets are into `text` as given."""
        out: list[Finding] = []
        layout = structure.Layout()
        if not self._scan(text, 0, len(text), 0, out, layout):
            out.sort(key=_BY_SPAN)
        return out

    def scan_chunks(self, chunks: Iterable[str]) -> Iterator[Finding]:
        """Findings of a text given as consecutive pieces, with offsets into the whole text.

        Memory stays bounded by the piece size: the text is cut only after a character no
        identifier can contain (a Chinese character, a newline, punctuation), so no identifier is
        split, and each piece is scanned with `CONTEXT_CHARS` of the previous one before it.
        """
        for found in self.scan_chunk_batches(chunks):
            yield from found

    def scan_chunk_batches(self, chunks: Iterable[str]) -> Iterator[list[Finding]]:
        """`scan_chunks`' findings, one sorted list per scanned piece (never an empty list).

        For a caller that handles findings many at a time (the CLI's JSON writer): a list per
        piece instead of one generator step per finding through every layer above.
        """
        def piece(buf: str, lo: int, hi: int, base: int,
                  layout: structure.Layout) -> list[Finding] | None:
            found: list[Finding] = []
            if not self._scan(buf, lo, hi, base, found, layout):
                found.sort(key=_BY_SPAN)
            return found or None

        return _pieces(chunks, piece)

    def json_batches(self, chunks: Iterable[str], parts: Mapping[str, tuple[str, str]]
                     ) -> Iterator[tuple[int, str]] | None:
        """`scan_chunk_batches`' findings as JSON text, per scanned piece (how many, the text), or
        None when only the reference engine runs (no compiled core, or a key-less scanner).

        The text is each finding as `{"type": …, "start": …, "end": …, "masked": …,
        "confidence": …, "category": …, "hash": …}` (the keys of `Finding.as_dict`), joined by
        ", ", in (start, end) order; `parts[type]` is that type's `{"type": <type>, "start": ` and
        `, "category": <category>, "hash": `, encoded by the caller. The compiled core writes it
        without building a `Finding` (the CLI's JSON Lines cost as much as the scan before).
        """
        core = self._core
        if core is None or not hasattr(core, "scan_json"):
            return None
        heads = [parts[t][0] for t in core.types]
        mids = [parts[t][1] for t in core.types]
        today = _core.today()

        def piece(buf: str, lo: int, hi: int, base: int,
                  layout: structure.Layout) -> tuple[int, str] | None:
            n, text = core.scan_json(buf, lo, hi, base, layout, today, heads, mids)
            return (n, text) if n else None

        return _pieces(chunks, piece)

    # -- files ----------------------------------------------------------------------------------

    def scan_file(self, path: str | os.PathLike[str]) -> FileResult:
        """Scan one file; a file that cannot be read gives a `FileResult` with `error` set."""
        source = os.fspath(path)
        findings: list[Finding] = []
        try:
            for found in self.iter_file_batches(path):
                findings.extend(found)
        except (documents.UnreadableFileError, OSError) as exc:
            return FileResult(source, [], read_error(exc))
        return FileResult(source, findings)

    def iter_file(self, path: str | os.PathLike[str]) -> Iterator[Finding]:
        """The findings of one file as they are found (bounded memory, for the CLI's output).

        Raises `documents.UnreadableFileError` or `OSError` (`read_error` words the reason),
        possibly after some findings were given.
        """
        for found in self.iter_file_batches(path):
            yield from found

    def iter_file_batches(self, path: str | os.PathLike[str]) -> Iterator[list[Finding]]:
        """`iter_file`'s findings a list at a time (one per scanned piece of the file)."""
        with open(path, "rb") as fh:
            yield from self.iter_binary_batches(fh)

    def scan_stream(self, fh: documents.BinaryFile, source: str) -> FileResult:
        """Scan an open seekable binary file (e.g. standard input spooled to a temporary file)."""
        try:
            return FileResult(source, self._scan_binary(fh))
        except (documents.UnreadableFileError, OSError) as exc:
            return FileResult(source, [], read_error(exc, "input"))

    def _scan_binary(self, fh: documents.BinaryFile) -> list[Finding]:
        findings: list[Finding] = []
        for found in self.iter_binary_batches(fh):
            findings.extend(found)
        return findings

    def iter_binary(self, fh: documents.BinaryFile) -> Iterator[Finding]:
        """The findings of an open binary file, streamed (bounded memory for any file size).

        Raises `documents.UnreadableFileError` (possibly after some findings were given) or
        `OSError`.
        """
        for found in self.iter_binary_batches(fh):
            yield from found

    def iter_binary_batches(self, fh: documents.BinaryFile) -> Iterator[list[Finding]]:
        """`iter_binary`'s findings a list at a time (one per scanned piece of the file)."""
        return self.scan_chunk_batches(text_chunks(fh))

    # -- engine ---------------------------------------------------------------------------------

    def _scan(
        self, text: str, lo: int, hi: int, base: int, out: list[Finding], layout: structure.Layout
    ) -> bool:
        """Append findings for candidates starting in text[lo:hi] (offsets + base) to `out`.

        True when `out` is known to be in (start, end) order already (the compiled core says so
        when it appended them in that order); False: the caller sorts it.
        """
        if self._core is not None:
            return self._core.scan(text, lo, hi, base, out, layout, _core.today())
        token_end = -1  # end of the last letter-glued code handled (its later runs are inside it)
        size = len(text)
        letters, seps = _LETTER, _SEP_CHARS
        for m in CANDIDATE.finditer(text, lo):
            s, e = m.span()
            if s >= hi:
                break
            tok = m.group()
            if tok in _AT:
                self._email(text, s, base, out)
                continue
            if s < token_end:
                continue
            if tok.isdigit() and tok.isascii():
                # the common case, a plain run of ASCII digits between ordinary characters: no
                # folding, grouping, glued letters or prefix to look at
                prev = text[s - 1] if s else ""
                nxt = text[e] if e < size else ""
                if prev not in _PREV_SPECIAL and nxt not in _NEXT_SPECIAL:
                    n = e - s
                    if 8 <= n <= _MAX_DIGITS and (
                        _plausible(tok, n) or context.hinted(text, s) or _gate(layout, text, s, tok)
                    ):
                        self._plain(text, s, e, tok, n, base, out, layout)
                    continue  # else a serial number, timestamp or amount: nothing it could be
            elif e - s == 18 and tok[17] in "Xx" and tok.isascii() and tok[:17].isdigit():
                prev = text[s - 1] if s else ""
                nxt = text[e] if e < size else ""
                if prev not in _PREV_SPECIAL and nxt not in _NEXT_SPECIAL:
                    self._plain_x(text, s, e, tok[:17] + "X", base, out, layout)
                    continue
            if tok[-5:-4] in seps and e + 1 < size and text[e] in seps:
                # a last group of 1-2 digits after groups of 4: 17/18-digit cards, and resident
                # IDs written 4-4-4-4-2 (1101 0519 4912 3100 2X)
                tail = _SHORT_TAIL.match(text, e)
                if tail is not None:
                    e = tail.end()
                    tok = text[s:e]
            if not tok.isascii():
                tok = tok.translate(FOLD_TABLE)
            glued = ""
            prev = text[s - 1] if s else ""
            nxt = text[e] if e < size else ""
            if tok[-1] in "Xx" and not (len(tok) >= 18 and tok[-2] in "0123456789"):
                nxt = "X"  # a trailing letter that cannot be an ID check char: a glued code
            if nxt in _AT or prev in _AT:
                continue  # part of an e-mail address
            if (prev == "_" and s >= 2 and text[s - 2] in _WORD) or (
                nxt == "_" and e + 1 < size and text[e + 1] in _WORD
            ):
                continue  # part of a code-like name (wxid_1380…, IMG_2026…); 张三_1101….pdf is not
            if prev in _DIGIT:
                continue  # the rest of a digit run that a (hostile-length) chunk cut split
            if prev in letters or nxt in letters:
                token_end, glued, go = self._glued(text, s, e, base, out, layout)
                if not go:
                    continue
            if prev == "." and s >= 2 and text[s - 2] in _DIGIT:
                continue  # the decimals of a number, or part of a version string
            if prev in _PLUS and not tok.startswith("86"):
                continue  # a foreign phone number
            if (
                prev == "-"
                and s >= 2
                and text[s - 2].isascii()
                and text[s - 2].isalnum()
                and _PREFIX_BACK.search(text, max(0, s - 5), s) is None
            ):
                continue  # the tail of a hyphenated code (ORD-20261124-…)
            if not glued and tok.isdigit():  # the common case: one plain run of digits
                n = len(tok)
                if n < 8 or n > _MAX_DIGITS or not (
                    _plausible(tok, n) or context.hinted(text, s) or _gate(layout, text, s, tok)
                ):
                    continue  # a serial number, timestamp or amount: nothing it could be
                self._identifier(text, [(s, e, tok)], 0, 0, base, out, "", layout, gated=True)
                continue
            self._digits(text, s, e, tok, base, out, glued, layout)
        return False  # the caller sorts (a +86 prefix or a glued code can start before the last)

    def _glued(
        self, text: str, s: int, e: int, base: int, out: list[Finding], layout: structure.Layout
    ) -> tuple[int, str, bool]:
        """A digit run touching letters: a USCC/passport code, a glued label, or some other code.

        Returns (end of the code, label kind given by glued letters, whether to go on with the
        run as a plain number).
        """
        back = _ALNUM_BACK.search(text, max(0, s - 24), s)
        t_start = back.start() if back else s
        fwd = _ALNUM_FWD.match(text, e)
        t_end = fwd.end() if fwd else e
        if t_start < s and _RUN7.search(text, t_start, s):
            return t_end, "", False  # handled at the code's first digit run
        code = text[t_start:t_end]
        if not code.isascii():
            code = code.translate(FOLD_TABLE)
        code = code.upper()
        label: str | None = None
        if len(code) == 18 and not code.isdigit():
            sc = uscc.score(code, label := layout.label(text, t_start))
            if sc is not None:
                self._emit(CN_USCC, t_start, t_end, sc, code, base, out)
                return t_end, "", False
        if len(code) <= 10 and code[0].isalpha():
            if label is None:
                label = layout.label(text, t_start)
            if label in (None, context.ID) and layout.passport_before(text, t_start):
                label = context.PASSPORT  # 证件类型：护照，证件号码：E…
            sc = passport.score(code, label)
            if sc is not None:
                self._emit(CN_PASSPORT, t_start, t_end, sc, code, base, out)
                return t_end, "", False
        if t_end == e and t_start < s:
            kind = _GLUED_LABELS.get(code[: s - t_start])
            if kind is not None:
                return t_end, kind, True
        return t_end, "", False

    def _digits(
        self, text: str, s: int, e: int, tok: str, base: int, out: list[Finding], glued: str,
        layout: structure.Layout,
    ) -> None:
        """Split a (possibly grouped) digit run into identifiers and report them."""
        if tok.isdigit() or (tok[-1] == "X" and tok[:-1].isdigit()):
            groups: list[tuple[int, int, str]] = [(s, e, tok)]
        else:
            tok = tok.upper()
            groups = [(s + g.start(), s + g.end(), g.group()) for g in _GROUP.finditer(tok)]
        n = len(groups)
        i = 0
        while i < n:
            j_max = i
            total = len(groups[i][2])
            while j_max + 1 < n and total + len(groups[j_max + 1][2]) <= _MAX_DIGITS:
                j_max += 1
                total += len(groups[j_max][2])
            for j in range(j_max, i - 1, -1):
                if (i > 0 and text[groups[i][0] - 1] in _DASHES) or (
                    j + 1 < n and text[groups[j][1]] in _DASHES
                ):
                    continue  # hyphen-joined to digits it leaves out: part of a longer code
                if self._identifier(text, groups, i, j, base, out, glued if i == 0 else "",
                                    layout):
                    i = j + 1
                    break
            else:
                i += 1

    def _plain(
        self, text: str, start: int, end: int, value: str, n: int, base: int, out: list[Finding],
        layout: structure.Layout,
    ) -> None:
        """`_identifier` for one plain run of 9-25 ASCII digits already found plausible.

        The same decisions as `_identifier` with one group, no glued label and no X, without its
        general bookkeeping: most candidates in teller text take this path.
        """
        label = layout.label(text, start)
        if context.amount_after(text, end):
            label = context.NEG
        best_type, best, best_value, start = self._decide(
            text, start, value, n, label, layout, has_x=False, first=True, joined=False,
            grouping=False)
        if best_type and best >= self._threshold[best_type]:
            self._emit(best_type, start, end, best, best_value, base, out)

    def _plain_x(
        self, text: str, start: int, end: int, value: str, base: int, out: list[Finding],
        layout: structure.Layout,
    ) -> None:
        """`_identifier` for 17 plain ASCII digits and an X: a resident ID, a USCC or nothing."""
        label = layout.label(text, start)
        if context.amount_after(text, end):
            label = context.NEG
        sc = resident_id.score(value, label)
        if sc is not None:
            if sc >= self._threshold[CN_RESIDENT_ID]:
                self._emit(CN_RESIDENT_ID, start, end, sc, value, base, out)
            return
        sc = uscc.score(value, label)  # X is a USCC check character too (91110108340870889X)
        if sc is not None:
            self._emit(CN_USCC, start, end, sc, value, base, out)

    def _identifier(
        self,
        text: str,
        groups: list[tuple[int, int, str]],
        i: int,
        j: int,
        base: int,
        out: list[Finding],
        glued: str,
        layout: structure.Layout,
        gated: bool = False,
    ) -> bool:
        """Report groups[i..j] as one identifier if it is one; True when its digits are used up.

        Validated identifiers under the threshold are used up too, so that their groups are not
        read again as smaller identifiers. `gated` when the caller already found the digits
        plausible or a card/account word nearby.
        """
        start, end = groups[i][0], groups[j][1]
        value = groups[i][2] if i == j else "".join(g[2] for g in groups[i : j + 1])
        n = len(value)
        if n > _MAX_DIGITS or n < 8:
            return False
        has_x = "X" in value
        if has_x and (n != 18 or value.index("X") != 17):
            return False
        if not (gated or glued or has_x or _plausible(value, n) or context.hinted(text, start)
                or _gate(layout, text, start, value)):
            return False  # nothing it could be, and no card/account word nearby to say otherwise
        label = glued or layout.label(text, start)
        if context.amount_after(text, end):
            label = context.NEG
        shape = tuple(len(g[2]) for g in groups[i : j + 1]) if j > i else ()
        grouping = shape in _CARD_GROUPINGS
        fours = bool(shape) and set(shape[:-1]) == {4} and 1 <= shape[-1] <= 4
        best_type, best, best_value, start = self._decide(
            text, start, value, n, label, layout, has_x=has_x, first=i == 0, joined=j > i,
            grouping=grouping, fours=fours)
        if not best_type:
            return False
        if best >= self._threshold[best_type]:
            self._emit(best_type, start, end, best, best_value, base, out)
            return True
        return best >= 0.3

    def _decide(
        self, text: str, start: int, value: str, n: int, label: str | None,
        layout: structure.Layout, *, has_x: bool, first: bool, joined: bool, grouping: bool,
        fours: bool = False,
    ) -> tuple[str, float, str, int]:
        """Which identifier `n` digits (`value`) starting at `start` are, if any.

        Returns (type or "", score, the value to mask and hash, start including a +86 prefix).
        `first`: nothing of the same number stands before it, so a +86 prefix may; `joined`: the
        digits were written in several groups; `grouping`: the groups have a card's shape;
        `fours`: groups of four and a shorter last one, as account numbers are printed.
        """
        best_type = ""
        best = 0.0
        best_value = value
        if n == 18:
            sc = resident_id.score(value, label)
            if sc is not None:
                if label != context.NEG:
                    return CN_RESIDENT_ID, sc, value, start  # an ID, whether Luhn passes or not
                best_type, best = CN_RESIDENT_ID, sc
            if not has_x:
                sc = uscc.score(value, label)
                if sc is not None and sc > best:
                    best_type, best = CN_USCC, sc
        if has_x:
            return best_type, best, best_value, start
        if n == 11:
            prefix = (
                _PREFIX_BACK.search(text, max(0, start - 5), start)
                if first and start and text[start - 1] in _PREFIX_LAST
                else None
            )
            sc = mobile.score(value, label, joined or prefix is not None)
            if sc is not None and sc > best:
                best_type, best = CN_MOBILE, sc
                if prefix is not None:
                    start = prefix.start()
                    closed = ")" in prefix.group() or "）" in prefix.group()
                    if closed and text[start - 1 : start] in ("(", "（"):
                        start -= 1  # (+86)138…: the brackets belong to the prefix
        elif (n == 13 and value.startswith("86")) or (n == 15 and value.startswith("0086")):
            sc = mobile.score(value[-11:], label, True)
            if sc is not None and sc > best:
                best_type, best, best_value = CN_MOBILE, sc, value[-11:]
                if n == 13 and first and start > 0 and text[start - 1] in _PLUS:
                    start -= 1  # +8613812345678
        if 13 <= n <= 19:
            sc = bank_card.score(value, label, grouping)
            if label is None and (sc is None or sc < 0.8) and best < 0.5:
                # not a card by itself: a customer list's or a payment's record may make it one
                hints = layout.row(text, start)
                if hints.name or hints.payment:
                    sc = bank_card.score(value, label, grouping, row_hint=True)
            if sc is not None and sc > best:
                best_type, best, best_value = BANK_CARD, sc, value
        if n == 15:
            sc = resident_id.score_legacy(value, label)
            if sc is not None and sc > best:
                best_type, best, best_value = CN_RESIDENT_ID, sc, value
        elif n == 9:
            if label in (None, context.ID) and layout.passport_before(text, start):
                label = context.PASSPORT
            sc = passport.score(value, label)
            if sc is not None and sc > best:
                best_type, best = CN_PASSPORT, sc
        if label == context.ACCOUNT:
            # Chinese personal accounts are card numbers: an issued card number under an account
            # label is a card, anything else an account
            # (a Chinese BIN; a foreign-looking IIN under an account label reads as an account)
            if best_type == BANK_CARD and bank_card.chinese_bin(value) is not None:
                return best_type, best, best_value, start
            sc = bank_account.score(value, label)
            if sc is not None:
                return CN_BANK_ACCOUNT, max(sc, best), value, start
        elif best < 0.5 and label is None and (not joined or fours) and layout.bank_near(
            text, start
        ):
            sc = bank_account.score(value, None, bank_in_row=True)
            if sc is not None:
                best_type, best, best_value = CN_BANK_ACCOUNT, sc, value
        return best_type, best, best_value, start

    def _email(self, text: str, at: int, base: int, out: list[Finding]) -> None:
        found = email.find(text, at)
        if found is None:
            return
        start, end, value = found
        self._emit(EMAIL, start, end, email.score(value), value, base, out)

    def _emit(
        self, t: str, start: int, end: int, score: float, value: str, base: int, out: list[Finding]
    ) -> None:
        if score < self._threshold[t]:
            return
        if self._mac is None:  # key-less: the machine service hashes `value`
            out.append(UnhashedFinding(t, base + start, base + end, round(score, 4),
                                       _mask(t, value), "", CATEGORIES[t], value=value))
            return
        mac = self._mac.copy()  # the keyed state is prepared once per scanner
        mac.update(value.encode("utf-8"))
        out.append(Finding(t, base + start, base + end, round(score, 4), _mask(t, value),
                           mac.hexdigest(), CATEGORIES[t]))


_T = TypeVar("_T")


def _pieces(chunks: Iterable[str],
            scan: Callable[[str, int, int, int, structure.Layout], _T | None]) -> Iterator[_T]:
    """What `scan(buf, lo, hi, base, layout)` gives for each scanned piece of a text given as
    consecutive chunks (None: nothing in that piece), with offsets into the whole text.

    Memory stays bounded by the piece size: the text is cut only after a character no
    identifier can contain (a Chinese character, a newline, punctuation), so no identifier is
    split, and each piece is scanned with `CONTEXT_CHARS` of the previous one before it.
    """
    buf = ""
    buf_base = 0  # global offset of buf[0]
    lo = 0  # first position of buf not scanned yet
    layout = structure.Layout()
    for chunk in chunks:
        if not chunk:
            continue
        buf += chunk
        cut = _safe_cut(buf, lo)
        if cut <= lo:
            continue
        layout.begin()
        found = scan(buf, lo, cut, buf_base, layout)
        if found is not None:
            yield found
        # keep the context, and the lines the structure pass has not looked at yet (a header
        # row may be among them), at most a header look-back's worth
        keep_from = max(0, min(cut - CONTEXT_CHARS,
                               max(layout.pending(), cut - structure.HEADER_LOOKBACK)))
        buf = buf[keep_from:]
        buf_base += keep_from
        layout.shift(keep_from)
        lo = cut - keep_from
    if lo < len(buf):
        layout.begin()
        found = scan(buf, lo, len(buf), buf_base, layout)
        if found is not None:
            yield found


def text_chunks(fh: documents.BinaryFile) -> Iterator[str]:
    """The text the scanner reads of an open binary file, piece by piece (`CHUNK_CHARS` bytes
    read per piece): a text file decoded, an HTML page as its text, xlsx/docx/pdf extracted.

    Raises `documents.UnreadableFileError` or `OSError` as it goes (the file is identified when
    the first piece is asked for).
    """
    kind, encoding = documents.identify(fh)
    if kind != documents.TEXT:
        yield from documents.extract_chunks(fh, kind)
        return
    chunks = documents.TextReader(fh, encoding, guessed=True).chunks(CHUNK_CHARS)
    first = next(chunks, "")
    pieces: Iterator[str] = itertools.chain((first,), chunks)
    if documents.looks_like_html(first[:4096]):
        pieces = documents.html_chunks(pieces)
    yield from pieces


def keyed_hash(key: bytes, value: str) -> str:
    """The keyed hash a scanner with `key` gives the normalised `value` (HMAC-SHA256, hex): the
    machine service hashes an `UnhashedFinding.value` with it."""
    return hmac.new(key, value.encode("utf-8"), "sha256").hexdigest()


_GATE_KINDS = frozenset({context.ACCOUNT, context.CARD, context.ID})


def _gate(layout: structure.Layout, text: str, start: int, value: str) -> bool:
    """Whether the candidate's column or record may make an implausible-looking number one."""
    if layout.column(text, start) in _GATE_KINDS or layout.key(text, start) in _GATE_KINDS:
        return True
    if len(value) < bank_account.ROW_MIN_DIGITS or bank_account.dated(value):
        return False  # nothing a bank name in the row could make an account of
    return layout.bank_near(text, start)


def read_error(exc: BaseException, what: str = "file") -> str:
    """Why a file could not be read, for the user (never the file's content)."""
    if isinstance(exc, documents.UnreadableFileError):
        return str(exc)
    if isinstance(exc, IsADirectoryError):
        return "is a directory, not a file"
    if isinstance(exc, FileNotFoundError):
        return "no such file"
    if isinstance(exc, PermissionError):
        return "permission denied"
    reason = (exc.strerror if isinstance(exc, OSError) else None) or type(exc).__name__
    return f"cannot read the {what}: {reason}"


def _plausible(value: str, n: int) -> bool:
    """Whether the digits could be some identifier without a label's help (cheap checks only).

    False means only a card or account label could make it one; the caller then looks for such
    a word before paying for the full label look-up (serial numbers and timestamps stop here).
    """
    if n == 11:
        return mobile.shaped(value)  # the label decides blocks phonenumbers does not know
    if n == 18 and (value[:2] in resident_id.PROVINCES or uscc.plausible(value)):
        return True
    if n == 15 and value[:2] in resident_id.PROVINCES:
        return True
    if (n == 13 and value.startswith("86")) or (n == 15 and value.startswith("0086")):
        return True
    if 13 <= n <= 19:
        return bank_card.chinese_bin(value) is not None or bank_card.international_iin(value)
    return n == 9


_SAFE_FROM_END = 256
_SAFE_LOOKBACK = 65536
_UNSAFE = frozenset(
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz@._%+-'`!#$&*/=?^{|}~ "
    "\uff0b\uff0d\uff20\uff0e\u00a0\u3000\u202f\u205f\u2010\u2011\u2012\u2013\u2014\u2212"
    + "".join(chr(c) for c in range(0x2000, 0x200C))
    + "".join(chr(c) for c in range(0xFF10, 0xFF1A))
    + "".join(chr(c) for c in range(0xFF21, 0xFF3B))
    + "".join(chr(c) for c in range(0xFF41, 0xFF5B))
)
"""Characters an identifier, its grouping or an e-mail address can contain."""


def _safe_cut(buf: str, lo: int) -> int:
    """Where to stop scanning `buf`: right after a character no candidate can contain.

    Leaves at least `_SAFE_FROM_END` characters unscanned (the next chunk completes them) and looks
    back at most `_SAFE_LOOKBACK` characters for such a character (a newline is the usual one);
    hostile text without one is cut anyway.
    """
    limit = len(buf) - _SAFE_FROM_END
    if limit <= lo:
        return lo
    nl = buf.rfind("\n", max(lo, limit - _SAFE_LOOKBACK), limit)
    if nl >= 0:
        return nl + 1
    floor = max(lo, limit - _SAFE_LOOKBACK)
    p = limit
    while p > floor and buf[p - 1] in _UNSAFE:
        p -= 1
    if p > floor:
        return p
    # no safe character: wait for more text, unless the run is already hostile-long
    return limit if floor > lo else lo
