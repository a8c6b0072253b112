"""Document structure: the field, column and record each candidate sits in, and what they label.

Tellers' documents put the label where the document's shape puts it, not always beside the value:

- a table's header row labels every cell under it, however many rows below (CSV/TSV with any
  delimiter and quoted cells, xlsx/docx/HTML tables extracted as tab-separated rows, and
  whitespace-aligned text tables and report printouts, matched by display column);
- a key labels its value: a JSON key (`"acctNo": "…"`, escaped `"\\u8bc1…"` keys too), an XML
  element (`<CertNo>…`), `key=value` and `key：value`;
- the record (row) adds context: a bank or branch name raises an account number, a passport word
  in an earlier field turns a generic 证件号码 into a passport's.

`Layout` is the per-document state the engine asks, one candidate at a time and in text order:
`label(text, start)` is the label kind (`context.ID`, …, `context.NEG`) that applies to the
candidate at `text[start]`, and `row(text, start)` the hints of its record. Lines are looked at
once each (a line's cells, a header found above it), and a header is looked for only in the
lines between two candidate lines, at most `HEADER_LOOKBACK` characters above; so the work stays
linear in the text and the state is a few header cells, whatever the document's size.
"""

from __future__ import annotations

import bisect
import functools
import re
from dataclasses import dataclass
from typing import Final

from guard.scan.detectors import context

NAME: Final = "NAME"
"""A column that holds people's or companies' names (raises bare cards in its rows)."""
BANK: Final = "BANK"
"""A column that holds bank or branch names (raises account numbers in its rows)."""

HEADER_LOOKBACK = 4096
"""Characters above a candidate line searched for a header row (title rows, page headers)."""
_MAX_HEADER_LINE = 1024
_MAX_CELLS = 64

_NAME_WORDS = (
    "姓名", "户名", "客户姓名", "客户名称", "名称", "持卡人", "收款人", "付款人", "收款人名称",
    "付款人名称", "收款方", "付款方", "账户名称", "账户名", "户主", "联系人", "客户", "单位名称",
    "企业名称", "公司名称", "员工姓名", "职工姓名", "借款人", "name", "customer", "holder",
    "payee", "payer", "beneficiary",
)
_BANK_WORDS = ("开户行", "开户银行", "开户网点", "银行", "支行", "网点名称", "bank", "branch")

_ASCII_KEYS: dict[str, str] = {
    "cert": context.ID, "certno": context.ID, "certnum": context.ID, "idnum": context.ID,
    "idcard": context.ID, "zjhm": context.ID, "sfzh": context.ID, "certificateno": context.ID,
    "idnumber": context.ID, "idno": context.ID, "credentialno": context.ID,
    "acc": context.ACCOUNT, "accno": context.ACCOUNT, "acctno": context.ACCOUNT,
    "accountno": context.ACCOUNT, "acct": context.ACCOUNT, "account": context.ACCOUNT,
    "acctnum": context.ACCOUNT, "accountnumber": context.ACCOUNT, "zh": context.ACCOUNT,
    "iban": context.ACCOUNT,
    "card": context.CARD, "cardno": context.CARD, "cardnum": context.CARD, "pan": context.CARD,
    "cardnumber": context.CARD,
    "mobile": context.MOBILE, "mobileno": context.MOBILE, "phone": context.MOBILE,
    "phoneno": context.MOBILE, "tel": context.MOBILE, "telno": context.MOBILE,
    "cell": context.MOBILE, "cellphone": context.MOBILE, "sjhm": context.MOBILE,
    "passport": context.PASSPORT, "passportno": context.PASSPORT,
    "uscc": context.USCC, "creditcode": context.USCC, "socialcreditcode": context.USCC,
    "taxno": context.USCC, "taxid": context.USCC, "orgcode": context.USCC,
    "email": context.EMAIL, "mail": context.EMAIL,
    "voucher": context.NEG, "voucherno": context.NEG, "serial": context.NEG,
    "serialno": context.NEG, "order": context.NEG, "orderno": context.NEG, "orderid": context.NEG,
    "trace": context.NEG, "traceid": context.NEG, "traceno": context.NEG, "txn": context.NEG,
    "txnid": context.NEG, "txnno": context.NEG, "trade": context.NEG, "tradeno": context.NEG,
    "ref": context.NEG, "refno": context.NEG, "seq": context.NEG, "seqno": context.NEG,
    "batch": context.NEG, "batchno": context.NEG, "invoice": context.NEG, "invoiceno": context.NEG,
    "tracking": context.NEG, "trackingno": context.NEG, "waybill": context.NEG,
    "waybillno": context.NEG, "request": context.NEG, "requestid": context.NEG,
    "session": context.NEG, "sessionid": context.NEG, "msgid": context.NEG, "branch": context.NEG,
    "branchno": context.NEG, "teller": context.NEG, "tellerno": context.NEG, "amount": context.NEG,
    "amt": context.NEG, "balance": context.NEG, "time": context.NEG, "timestamp": context.NEG,
    "date": context.NEG, "total": context.NEG, "contract": context.NEG, "contractno": context.NEG,
    "loan": context.NEG, "loanno": context.NEG, "bill": context.NEG, "billno": context.NEG,
    "terminal": context.NEG, "merchant": context.NEG, "merchantno": context.NEG,
    "name": NAME, "custname": NAME, "acctname": NAME, "accountname": NAME, "holder": NAME,
    "payee": NAME, "payer": NAME, "customer": NAME, "bank": BANK, "bankname": BANK,
    "openbank": BANK,
}
_FILLER = frozenset({"no", "num", "number", "id", "code", "nbr"})

_CAMEL = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")
_CJK = r"[\u3400-\u9fff]"
_WIDE = (r"[\u1100-\u115f\u2e80-\u303e\u3041-\ua4cf\uac00-\ud7a3\uf900-\ufaff"
         r"\ufe30-\ufe4f\uff00-\uff60\uffe0-\uffe6]")


# These two wide character classes cost ~15 ms to compile (re builds their big charsets in
# Python): compiled on first use, so a scan whose text never asks (the compiled core without
# header rows) does not pay for them at start-up.
@functools.cache
def _cjk() -> re.Pattern[str]:
    return re.compile(_CJK)


@functools.cache
def _wide() -> re.Pattern[str]:
    return re.compile(_WIDE)


_FIVE_DIGITS = re.compile(r"[0-9\uff10-\uff19]{5}")
_ALIGN_GAP = re.compile(r"(?:[ \u3000]{2,}|\t)")
_BANK_IN_ROW = re.compile(r"银行|支行|分行|信用社|农商行|农信社|储蓄所|\bBank\b|\bBANK\b")
_PASSPORT_BEFORE = re.compile(r"护照|[Pp]assport|PASSPORT")
_PAYMENT = re.compile(r"付款|收款|转账|转入|转出|汇款|汇入|代发|扣款|还款|缴费|支付|消费|"
                      r"[Pp]ayee|[Pp]ayer|[Tt]ransfer|[Pp]ayment")
# A key written straight before its value: `"key": "`, `key=`, `key：`, `<Key>`, `<Key attr="…">`.
_KEY_BEFORE = re.compile(
    r"""(?:["']?((?:\\u[0-9a-fA-F]{4}|[A-Za-z_\u3400-\u9fff])(?:\\u[0-9a-fA-F]{4}|[\w.\-()（）])"""
    r"""{0,40})["']?[ \t]*[:=：][ \t]*["'\[]?[ \t]*['`]?"""
    r"""|<([A-Za-z_][\w.\-:]{0,40})(?:\s[^<>]{0,80})?>[ \t]*)\Z"""
)
_KEY_PUNCT = " \t\"'`*:：()（）[]【】#.-_\ufeff"  # characters stripped, as a set
_TABULAR = re.compile("[\t,|;\x1f]|  |\u3000")
_HEADERISH = re.compile(
    r"^(?=[^\n]*(?:[\t,|;\x1f]|  |\u3000))(?![^\n]*[0-9\uff10-\uff19]{5})[^\n]{3,1024}$",
    re.MULTILINE)
_KEY_END = frozenset("\"':=：>' \t`[")
_KEY_WINDOW = 100
_KEY_FILL = frozenset("\"' \t`[")
_KEY_SEPARATORS = frozenset(":=：>")
ROW_BEHIND = 120
"""Characters of the record looked at before a candidate (within the engine's kept context)."""
ROW_AHEAD = 200
"""Characters of the record looked at after it (within what a streamed piece always has)."""


@dataclass(frozen=True, slots=True)
class RowHints:
    """What the candidate's record says beyond its own label."""

    bank: bool = False
    """A bank or branch name stands in the row (or a bank column has a value)."""
    name: bool = False
    """The row is a customer list's: it has a name column."""
    payment: bool = False
    """The row or line is a payment: 付款, 收款, 转账, payee …"""


_NO_HINTS = RowHints()


@functools.lru_cache(maxsize=8192)
def classify_key(key: str) -> str | None:
    """The label kind a field name, header cell or key says (`context.ID`, …, `NAME`, `BANK`)."""
    if "\\u" in key:
        key = _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), key)
    key = key.strip(_KEY_PUNCT)
    if not key or len(key) > 40:
        return None
    if _cjk().search(key) is not None:
        kind = context.nearest_label(key, len(key), window=len(key))
        if kind is not None:
            return kind
        stripped = key.rstrip("0123456789")
        for words, k in ((_NAME_WORDS, NAME), (_BANK_WORDS, BANK)):
            if any(stripped.endswith(w) for w in words if not w.isascii()):
                return k
        ascii_part = "".join(ch if ch.isascii() else " " for ch in key).strip()
        return classify_key(ascii_part) if ascii_part else None
    tokens = [t.lower() for t in _CAMEL.findall(key)]
    # the last words name the field (payerAcctNo, cust_id_no): try the longest tail first
    for i in range(len(tokens)):
        tail = "".join(tokens[i:])
        kind = _ASCII_KEYS.get(tail) or context.kind_of_word(tail)
        if kind is not None:
            return kind
    while tokens and tokens[-1] in _FILLER:  # custNo, userId: a filler after an unknown word
        tokens.pop()
        for i in range(len(tokens)):
            kind = _ASCII_KEYS.get("".join(tokens[i:]))
            if kind is not None and kind not in (context.EMAIL,):
                return kind
    return None


@dataclass(frozen=True, slots=True)
class _Header:
    """A table's header row: its delimiter (or None for aligned columns) and its cells' kinds."""

    delimiter: str | None
    kinds: tuple[str | None, ...]
    spans: tuple[tuple[int, int], ...] = ()  # display columns of aligned headers


def _split_cells(line: str, delimiter: str) -> list[tuple[int, int]]:
    """(start, end) of each cell of a delimited line; quoted cells may hold the delimiter."""
    if '"' not in line:
        out: list[tuple[int, int]] = []
        pos = 0
        while True:
            nxt = line.find(delimiter, pos)
            if nxt < 0:
                out.append((pos, len(line)))
                return out
            out.append((pos, nxt))
            pos = nxt + 1
    return [(m.start(), m.end()) for m in _cell_pattern(delimiter).finditer(line)
            if m.start() == 0 or line[m.start() - 1] == delimiter]


@functools.cache
def _cell_pattern(delimiter: str) -> re.Pattern[str]:
    d = re.escape(delimiter)
    return re.compile(rf'[ \t]*"[^"]*(?:""[^"]*)*"[ \t]*|[^"{d}\n]*(?:"[^{d}\n]*)*')


def _delimiter_of(line: str) -> str | None:
    if "\t" in line:
        return "\t"
    best, count = None, 0
    for d in (",", "|", ";", "\x1f"):  # not "，": prose is full of it
        c = line.count(d)
        if c > count:
            best, count = d, c
    return best


def _all_names(cells: list[str]) -> bool:
    return all(0 < len(c.strip(' "\'')) <= 12 and not any(ch.isdigit() for ch in c)
               for c in cells)


def _width(text: str) -> int:
    return len(text) + len(_wide().findall(text))


def _header_of(line: str) -> _Header | None:
    """The line as a header row, or None when it does not look like one."""
    if len(line) > _MAX_HEADER_LINE or _FIVE_DIGITS.search(line) is not None:
        return None
    delimiter = _delimiter_of(line)
    if delimiter is not None:
        cells = [line[a:b] for a, b in _split_cells(line, delimiter)]
        if len(cells) < 2 or len(cells) > _MAX_CELLS:
            return None
        kinds = tuple(classify_key(c) if len(c.strip()) <= 24 else None for c in cells)
        labelled = sum(k is not None for k in kinds)
        # one label is enough when every cell reads as a column name (short, no digits at all)
        if labelled < 2 and not (labelled == 1 and _all_names(cells)):
            return None
        return _Header(delimiter, kinds)
    if _ALIGN_GAP.search(line) is None:
        return None
    spans: list[tuple[int, int]] = []
    kinds_l: list[str | None] = []
    pos = 0
    for gap in [*_ALIGN_GAP.finditer(line), None]:
        end = gap.start() if gap is not None else len(line)
        cell = line[pos:end]
        if cell.strip():
            lead = len(cell) - len(cell.lstrip())
            start = _width(line[:pos + lead])
            spans.append((start, start + _width(cell.strip())))
            kinds_l.append(classify_key(cell.strip()) if len(cell.strip()) <= 24 else None)
        if gap is not None:
            pos = gap.end()
    if len(spans) < 2 or sum(k is not None for k in kinds_l) < 2 or len(spans) > _MAX_CELLS:
        return None
    return _Header(None, tuple(kinds_l), tuple(spans))


class Layout:
    """Structure state of one document, asked about its candidates in text order.

    The engine makes one per `scan_text` and per streamed file. Streaming, it calls `begin`
    before scanning each piece, keeps the buffer from `pending()` on (bounded by
    `HEADER_LOOKBACK`) and calls `shift` when it drops the text before, so a header row at the end
    of one piece still labels the rows of the next, exactly as in the whole text.
    """

    def __init__(self) -> None:
        # The compiled core (core/src/layout.rs) runs these questions on this same state, which it
        # reads when a scan starts and writes back when it ends: these fields, `_Header`'s and
        # `RowHints`' are its interface (renamed here, renamed there).
        self._header: _Header | None = None
        self._seen = 0  # start of the first line not looked at for a header yet
        self._ls = -1  # the current line: text[_ls:_le]
        self._le = -1
        self._cells: list[tuple[int, int]] | None = None
        self._cell_starts: list[int] = []
        self._hints: RowHints | None = None
        self._hints_at = -1
        self._wpos = 0  # display column bookkeeping of the current (aligned) line
        self._wcol = 0

    def begin(self) -> None:
        """The buffer changed (a streamed piece was added): forget the current line."""
        self._ls = self._le = -1
        self._hints = None

    def pending(self) -> int:
        """Where the lines not looked at yet start; the streaming caller keeps them."""
        return self._seen

    def shift(self, n: int) -> None:
        """The caller dropped the first `n` characters of its buffer."""
        self._seen = max(0, self._seen - n)

    # -- per candidate --------------------------------------------------------------------------

    def label(self, text: str, start: int) -> str | None:
        """The label kind that applies to the candidate at `text[start]`, or None."""
        ls = self._line(text, start)
        key = self._key_before(text, ls, start)
        if key is not None:
            return key
        header = self._header
        if header is not None and self._cells is not None:
            i = bisect.bisect_right(self._cell_starts, start) - 1
            if 0 <= i < len(self._cells):
                cs = ls + self._cells[i][0]
                kind = header.kinds[i] if i < len(header.kinds) else None
                if kind is not None and kind not in (NAME, BANK):
                    inside = context.nearest_label(text, start, min(context.WINDOW, start - cs))
                    return inside if inside is not None else kind
        elif header is not None and header.delimiter is None and header.spans:
            kind = self._aligned_kind(text, ls, start)
            if kind is not None:
                gap = start
                while gap > ls and text[gap - 1] not in " \t\u3000":
                    gap -= 1
                inside = context.nearest_label(text, start, min(context.WINDOW, start - gap))
                return inside if inside is not None else kind
        return context.nearest_label(text, start)

    def column(self, text: str, start: int) -> str | None:
        """The kind of the candidate's column header only (cheap gate for unlabelled numbers)."""
        header = self._header
        if header is None:
            return None  # no table so far: nothing to look up
        ls = self._line(text, start)
        if self._cells is not None:
            i = bisect.bisect_right(self._cell_starts, start) - 1
            return header.kinds[i] if 0 <= i < len(header.kinds) else None
        if header.delimiter is None:
            return self._aligned_kind(text, ls, start)
        return None

    def row(self, text: str, start: int) -> RowHints:
        """The hints of the candidate's record (its line)."""
        ls = self._line(text, start)
        if self._hints is None or self._hints_at != start:
            # a bounded window of the record, so a streamed text gives the same hints as a whole
            line = text[max(ls, start - ROW_BEHIND):min(self._le, start + ROW_AHEAD)]
            self._hints_at = start
            header = self._header
            named = header is not None and NAME in header.kinds and (
                self._cells is not None or header.delimiter is None)
            self._hints = RowHints(
                bank=_BANK_IN_ROW.search(line) is not None,
                name=named,
                payment=_PAYMENT.search(line) is not None,
            ) if line else _NO_HINTS
        return self._hints

    def key(self, text: str, start: int) -> str | None:
        """The kind of the key written straight before the candidate (`"acctNo": "`), or None."""
        if start == 0 or text[start - 1] not in _KEY_END:
            return None
        return self._key_before(text, 0, start)  # a key holds no newline: no line needed

    def bank_near(self, text: str, start: int) -> bool:
        """`row(text, start).bank` for the engine's gate, without the other hints."""
        if self._hints is not None and self._hints_at == start:
            return self._hints.bank
        ls = self._line(text, start)
        return _BANK_IN_ROW.search(
            text, max(ls, start - ROW_BEHIND), min(self._le, start + ROW_AHEAD)) is not None

    def passport_before(self, text: str, start: int) -> bool:
        """A passport word stands in an earlier field of the record (`证件类型护照，证件号码…`)."""
        return _PASSPORT_BEFORE.search(text, max(0, start - _KEY_WINDOW), start) is not None

    # -- internals ------------------------------------------------------------------------------

    def _line(self, text: str, start: int) -> int:
        if self._ls <= start < self._le or (start == self._le and self._ls >= 0):
            return self._ls
        floor = max(self._le, 0)
        nl = text.rfind("\n", floor, start)
        ls = nl + 1 if nl >= 0 else floor
        le = text.find("\n", start)
        le = len(text) if le < 0 else le
        if _TABULAR.search(text, ls, le) is not None:
            # only a table row can use a header: prose and log lines leave the lines above them
            # for the next table row to look at
            if ls > self._seen:
                self._find_header(text, self._seen, ls)
            self._seen = max(self._seen, le + 1)
        self._ls, self._le = ls, le
        self._hints = None
        self._wpos, self._wcol = ls, 0
        self._cells = None
        header = self._header
        if header is not None and header.delimiter is not None:
            line = text[ls:le].rstrip("\r")
            cells = _split_cells(line, header.delimiter) if len(line) < 65536 else []
            n = len(header.kinds)
            if n - 1 <= len(cells) <= n + 1 and not (len(cells) == n - 1 and n == 2):
                self._cells = cells
                self._cell_starts = [ls + a for a, _ in cells]
        return ls

    def _find_header(self, text: str, lo: int, hi: int) -> None:
        """The nearest header row in text[lo:hi] (whole lines, bounded lookback) becomes current.

        One regex pass picks the lines that could be a header (a delimiter or an aligned gap, no
        long number; `^` never matches inside a line, so a line cut by the look-back is left out);
        only those are split and classified, nearest first.
        """
        floor = max(lo, hi - HEADER_LOOKBACK)
        for m in reversed(_HEADERISH.findall(text, floor, hi)):
            header = _header_of(m.rstrip("\r"))
            if header is not None:
                self._header = header
                return

    def _aligned_kind(self, text: str, ls: int, start: int) -> str | None:
        header = self._header
        assert header is not None
        if start < self._wpos:
            self._wpos, self._wcol = ls, 0
        self._wcol += _width(text[self._wpos:start])
        self._wpos = start
        col = self._wcol
        end = start
        limit = min(len(text), start + 64)
        while end < limit and (text[end].isalnum() or (text[end] == " " and end + 1 < limit
                                                       and text[end + 1].isdigit())):
            end += 1
        vend = col + (end - start)
        best, best_overlap, best_i = None, 0, -1
        for i, (a, b) in enumerate(header.spans):
            nxt = header.spans[i + 1][0] if i + 1 < len(header.spans) else b + 64
            overlap = min(vend, max(b, nxt - 1)) - max(col, a)
            if overlap > best_overlap:
                best, best_overlap, best_i = header.kinds[i], overlap, i
        if best_i < 0:
            return None
        return best

    def _key_before(self, text: str, ls: int, start: int) -> str | None:
        if start == 0 or text[start - 1] not in _KEY_END:
            return None
        # cheap first: a key's separator (: = ： > ) within the few quote/space characters before
        p = start - 1
        while p > ls and start - p < 6 and text[p] in _KEY_FILL:
            p -= 1
        if text[p] not in _KEY_SEPARATORS:
            return None
        m = _KEY_BEFORE.search(text, max(ls, start - _KEY_WINDOW), start)
        if m is None:
            return None
        return _key_kind(m.group(1) or m.group(2))


def _key_kind(key: str) -> str | None:
    """The label kind a key gives the value after it: a name, bank or e-mail key gives none."""
    kind = classify_key(key)
    if kind in (NAME, BANK, context.EMAIL):
        return None
    return kind


__all__ = ["BANK", "HEADER_LOOKBACK", "NAME", "Layout", "RowHints", "classify_key"]
