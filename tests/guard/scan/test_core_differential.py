"""The compiled core (core/, `guard_core`) finds exactly what the Python reference engine finds.

Finding for finding — type, start, end, score, masked value, keyed hash, category — on random
text (the fuzz test's strategies, plus full-width and glued variants), streamed pieces, the
repository's corpus and the text documents of the independent document corpus. Skipped, with
the reason, only when the core is not built (scripts/setup.sh builds it when cargo is present).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from guard.scan import _core, structure
from guard.scan.engine import Scanner
from tests.guard.scan.test_fuzz import ALPHABET, PIECES, streamed, texts

pytestmark = pytest.mark.skipif(
    not _core.available(),
    reason="the compiled core guard_core is not built (run scripts/setup.sh with cargo present, "
    "or `maturin develop --release -m core/Cargo.toml`), or TELLER_GUARD_ENGINE=python",
)

HERE = Path(__file__).parent
CORPUS = HERE / "detectors" / "corpus" / "teller_corpus.jsonl"
DOCUMENTS = HERE / "document_corpus" / "documents"
TEXT_KINDS = ("csv", "html", "json", "kv", "prose", "report", "xml")
KEY = b"differential-key"

CORE = Scanner(key=KEY)
REFERENCE = Scanner(key=KEY, engine="python")

_WIDE = {c: chr(ord(c) + 0xFEE0)
         for c in "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz+-@._"}
_WIDE.update({" ": "\u3000"})


def _widen(text: str, picks: list[bool]) -> str:
    """Some characters of `text` in their full-width forms (a Chinese input method's output)."""
    if not picks:
        return text
    return "".join(_WIDE.get(c, c) if picks[i % len(picks)] else c for i, c in enumerate(text))


def rows(findings: list) -> list[tuple]:  # type: ignore[type-arg]
    return [(f.type, f.start, f.end, f.score, f.masked, f.hash, f.category) for f in findings]


def same(text: str) -> None:
    assert rows(CORE.scan_text(text)) == rows(REFERENCE.scan_text(text)), text


wide_texts = st.builds(_widen, texts, st.lists(st.booleans(), max_size=7))
glued_texts = st.lists(
    st.one_of(st.sampled_from(PIECES), st.sampled_from(["ID", "No", "TEL", "acct", "CARD", "x",
                                                        "E", "G", "_", "-", ".", "+86", "0086"]),
              st.text(alphabet="0123456789", min_size=1, max_size=19)),
    max_size=30).map("".join)


def test_the_core_is_the_one_selected() -> None:
    assert CORE._core is not None and REFERENCE._core is None


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts)
def test_random_text(text: str) -> None:
    same(text)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(wide_texts)
def test_full_width_text(text: str) -> None:
    same(text)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(glued_texts)
def test_glued_text(text: str) -> None:
    same(text)


@settings(max_examples=100, deadline=None)
@given(streamed(repeat=5))
def test_streamed_pieces(stream: tuple[str, list[str]]) -> None:
    _, pieces = stream
    assert rows(CORE.scan_chunks(pieces)) == rows(REFERENCE.scan_chunks(pieces))  # type: ignore[arg-type]


def test_the_repository_corpus() -> None:
    lines = CORPUS.read_text(encoding="utf-8").splitlines()
    assert len(lines) > 100
    found = 0
    for line in lines:
        text = json.loads(line)["text"]
        same(text)
        same(_widen(text, [True]))
        found += len(REFERENCE.scan_text(text))
    assert found > 100  # the corpus is not trivially empty of findings


@pytest.mark.parametrize("kind", TEXT_KINDS)
def test_the_document_corpus(kind: str) -> None:
    files = sorted(p for p in (DOCUMENTS / kind).iterdir() if p.is_file())
    assert files, f"no {kind} documents under {DOCUMENTS}"
    found = 0
    for path in files:
        core = rows(list(CORE.iter_file(path)))
        assert core == rows(list(REFERENCE.iter_file(path))), path.name
        found += len(core)
    assert found > 0


def test_alphabet_of_the_fuzz_test_is_covered() -> None:
    # every character the fuzz alphabet has, alone and in runs, scans the same
    for ch in ALPHABET:
        same(ch * 20)
        same("6222021234567890128" + ch + "13812345678")


# -- the document structure the core computes itself (core/src/layout.rs) -----------------------
# Header rows in every shape the layout reads, rows of quoted and unquoted cells under them,
# aligned columns with wide characters, and the record words (banks, `Bank` beside letters,
# CJK or punctuation, payments, names) a row's hints come from.

_HEADER_CELLS = ["户名", "姓名", "账号", "卡号", "证件号码", "身份证号", "手机", "联系电话",
                 "开户行", "流水号", "凭证号", "金额", "acctNo", "Card No", "ID", "name", "bank",
                 "备注", "payee acct", "Tel", "客户名称", "订单号"]
_CELL_VALUES = ["6222021234567890128", "6222 0212 3456 7890 128", "11010519491231002X",
                "110105491231002", "13812345678", "138-1234-5678", "E12345678",
                "91350100M000100Y43", "20261124103512", "62148301234567", "3381 5173 9179 7192 77",
                "1234567890123", "张三", "中国银行XX支行", "Bank of China", "xBank", "BANK",
                "中Bank", "_Bank", "付款", "payee", "Transfer", "", " ", "123.00元"]
_DELIMITERS = [",", "\t", "|", ";", "\x1f"]


def _cell(value: str, quote: int) -> str:
    if quote == 1:
        return '"' + value.replace('"', '""') + '"'
    if quote == 2:
        return " \"" + value + "\" "  # spaces around a quoted cell
    if quote == 3:
        return "'" + value  # Excel's leading apostrophe
    if quote == 4:
        return '"' + value  # a quote never closed
    return value


@st.composite
def table_texts(draw: st.DrawFn) -> str:
    delimiter = draw(st.sampled_from(_DELIMITERS))
    header = draw(st.lists(st.sampled_from(_HEADER_CELLS), min_size=2, max_size=6))
    lines = [draw(st.sampled_from(["", "客户清单", "导出时间 2026-11-24\n", "  标题  "]))]
    lines.append(delimiter.join(_cell(h, draw(st.integers(0, 2))) for h in header))
    for _ in range(draw(st.integers(1, 8))):
        n = len(header) + draw(st.integers(-2, 2))
        cells = [_cell(draw(st.sampled_from(_CELL_VALUES)), draw(st.integers(0, 4)))
                 for _ in range(max(0, n))]
        lines.append(delimiter.join(cells))
        if draw(st.booleans()):
            lines.append(draw(st.sampled_from(PIECES)))  # prose or a key between the rows
    return draw(st.sampled_from(["\n", "\r\n"])).join(lines)


@st.composite
def aligned_texts(draw: st.DrawFn) -> str:
    header = draw(st.lists(st.sampled_from(_HEADER_CELLS), min_size=2, max_size=5))
    gap = draw(st.sampled_from(["  ", "    ", "\u3000", "\t"]))
    lines = [gap.join(header)]
    for _ in range(draw(st.integers(1, 6))):
        row = [draw(st.sampled_from(_CELL_VALUES)) for _ in header]
        pad = draw(st.sampled_from(["", " ", "  ", "中", "ｘ"]))
        lines.append(pad + gap.join(row))
    return "\n".join(lines)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(table_texts())
def test_delimited_tables(text: str) -> None:
    same(text)
    same(_widen(text, [True, False]))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(aligned_texts())
def test_aligned_tables(text: str) -> None:
    same(text)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(table_texts(), st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=10))
def test_streamed_tables(text: str, sizes: list[int]) -> None:
    # a header in one streamed piece labels the rows of the next, in the core as in the reference
    text = text * 3
    pieces, pos, i = [], 0, 0
    while pos < len(text):
        n = sizes[i % len(sizes)]
        pieces.append(text[pos:pos + n])
        pos, i = pos + n, i + 1
    assert rows(CORE.scan_chunks(pieces)) == rows(REFERENCE.scan_chunks(pieces))  # type: ignore[arg-type]


@pytest.mark.parametrize(("text", "types"), [
    ("户名,账号\n张三,6222021234567890128\n李四,\"6222 0212 3456 7890 128\"\n",
     ["BANK_CARD", "BANK_CARD"]),
    # a doubled quote closing the cell, a bank name in the row
    ("账号\t备注\n\"62148301234567\"\"\"\t中国银行XX支行\n", ["CN_BANK_ACCOUNT"]),
    ("账号,开户行\n\"62148301234567,1\",xBank\n62148301234567,Bank\n",
     ["CN_BANK_ACCOUNT", "CN_BANK_ACCOUNT"]),
    ("户名    账号        手机号码\n张三    62148301234567  13812345678\n", ["CN_BANK_ACCOUNT"]),
    ("姓名\u3000证件号码\n张三\u3000110105491231002\n", ["CN_RESIDENT_ID"]),
    ("付款人 中国银行 账号62148301234567 payee", ["CN_BANK_ACCOUNT"]),
    # `\bBank\b` as Python's re reads it: a CJK or accented letter before it is a word character
    ("Bank" + "6" * 13 + "\n中国Bank 62148301234567\néBank 62148301234567\n", []),
])
def test_table_shapes(text: str, types: list[str]) -> None:
    same(text)
    assert [f.type for f in REFERENCE.scan_text(text)] == types


@pytest.mark.parametrize("mark", ["  ", "\t", ",", "\u3000", "\n", "@a.cn ",
                                  "１３８１２３４５６７８"])
def test_every_offset_of_a_skipped_block(mark: str) -> None:
    # the core passes runs of uninteresting characters 16 at a time: whatever marks a line as a
    # table row (two spaces, a delimiter) or ends it, or starts a candidate, at every offset
    for k in range(40):
        for filler in ("张", "a", " "):
            same("户名  账号  备注\n" + filler * k + mark + "62148301234567" + filler * 3
                 + " 中国银行\n付款 6222021234567890128\n")


# -- the key before a value, matched in the core (core/src/keys.rs) -----------------------------
# `structure._KEY_BEFORE.search` is the reference: the core's key span is compared with it at
# every end position of fuzzed JSON, XML, key=value and key：value text (full-width, quoted,
# escaped, nested, over-long keys, odd Unicode for `\w` and `\s`), and the findings after them.

_KEY_WORDS = ["idNo", "acctNo", "id_card_no", "cardNo", "mobile", "phone", "orderNo", "serialNo",
              "custName", "email", "zjhm", "sfzh", "账号", "证件号码", "身份证号", "手机号码",
              "流水号", "户名", "开户行", "acct.no", "acct-no", "Acct(No)", "账号（卡号）",
              "payerAcctNo", "x", "_", "ns:acctNo", "CertNo", "a" * 41, "b" * 42]
_KEY_CHARS = "aZx_09.-()（）中账号é²\u0663\U00020000\\u"
_VALUES = ["62148301234567", "6222021234567890128", "11010519491231002X", "13812345678",
           "20261124103512", "１３８１２３４５６７８", "6222 0212 3456 7890 128", "abc", ""]
_FORMS = ['"{k}": "{v}"', '"{k}":"{v}"', "'{k}' : '{v}'", "{k}={v}", '{k} = "{v}"', "{k}：{v}",
          "{k}\t:\t[{v}]", '"{k}": ["{v}"]', "{k}=`{v}", "{k}: '{v}", '{k}:"  `{v}',
          "<{k}>{v}</{k}>", '<{k} type="x">{v}</{k}>', "<{k}\u3000a=1>{v}", "<{k}>  {v}",
          "<{k}\n" + "a" * 79 + ">{v}", "<{k} " + "a" * 80 + ">{v}", "<{k}<>{v}",
          '{{"outer": {{"{k}": "{v}"}}}}', '{{"{k}": {{"inner": "{v}"}}}}', "{k}：：{v}",
          '"{k}" "{v}"', "{k}:\u00a0{v}", '"{k}\\": "{v}"']


def _escaped(word: str, how: int) -> str:
    """The key as an exporter writes it: as is, non-ASCII as \\uXXXX, or every character so."""
    if how == 0:
        return word
    hexed = "\\u{:04X}" if how == 3 else "\\u{:04x}"
    return "".join(hexed.format(ord(c)) if (how >= 2 or not c.isascii()) and ord(c) < 0x10000
                   else c for c in word)


keys = st.one_of(
    st.builds(_escaped, st.sampled_from(_KEY_WORDS), st.integers(0, 3)),
    st.builds(_widen, st.sampled_from(_KEY_WORDS), st.lists(st.booleans(), max_size=3)),
    st.text(alphabet=_KEY_CHARS, min_size=1, max_size=50),
)
keyed_texts = st.lists(
    st.builds(lambda sep, form, k, v: sep + form.format(k=k, v=v),
              st.sampled_from([", ", "\n", " ", "&", "; ", "", "{", "}", "\u3000", "\r\n"]),
              st.sampled_from(_FORMS), keys, st.sampled_from(_VALUES)),
    min_size=1, max_size=6,
).map("".join)
key_noise = st.text(alphabet="\"'`:=：<>[] \t\u3000\u0085\u2028\n\\u0aF_.-()（）中A1²\U00020000",
                    max_size=160)


def reference_span(text: str, ls: int, end: int) -> tuple[int, int] | None:
    m = structure._KEY_BEFORE.search(text, max(ls, end - structure._KEY_WINDOW), end)
    if m is None:
        return None
    return m.span(1) if m.group(1) is not None else m.span(2)


def same_keys(text: str) -> int:
    """The core's key span equals the reference's at every end; returns how many were keys."""
    core = CORE._core
    assert core is not None
    found = 0
    for end in range(len(text) + 1):
        ls = text.rfind("\n", 0, end) + 1
        for lo in {0, ls}:  # `Layout.key` searches from 0, `Layout.label` from the line start
            want = reference_span(text, lo, end)
            assert core.key_span(text, lo, end, structure.Layout()) == want, (text, lo, end)
            found += want is not None
    return found


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(keyed_texts)
def test_key_spans(text: str) -> None:
    same_keys(text)
    same_keys(_widen(text, [True, False, False]))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(key_noise)
def test_key_spans_of_noise(text: str) -> None:
    same_keys(text)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(keyed_texts)
def test_keyed_text(text: str) -> None:
    same(text)
    same(_widen(text, [True, False]))


@pytest.mark.parametrize(("text", "key"), [
    ('{"idNo": "', "idNo"),
    ("{'acct.no' : '", "acct.no"),
    ('"\\u8d26\\u53f7":"', "\\u8d26\\u53f7"),
    ("\\u8D26\\u53F7=", "\\u8D26\\u53F7"),
    ("账号（卡号）：", "账号（卡号）"),
    ("x" + "a" * 40 + "=", "x" + "a" * 40),  # 41 characters: the longest key
    ("y" + "a" * 41 + "=", "a" * 41),  # 42: the leftmost key that fits is a shorter one
    ("12ab=", "ab"),  # a key starts with a letter, `_`, CJK or an escape
    ('<ns:CertNo type="x">', "ns:CertNo"),
    ("<CertNo\u3000a=1>  ", "CertNo"),
    ('"k": [ `', "k"),
    ("\u00e9\u00b2\U00020000=", None),  # Python's \w holds them, but a key cannot start so
    ("a\u00e9\u00b2\U00020000=", "a\u00e9\u00b2\U00020000"),
    ("<a " + "b" * 80 + ">", "a"),
    ("<a " + "b" * 81 + ">", None),  # attributes longer than 80
    ("<a\u2028b>", "a"),  # Python's \s
    ("k : : ", None),
    ("k=\n", None),
])
def test_key_table(text: str, key: str | None) -> None:
    end = len(text)
    want = reference_span(text, 0, end)
    assert (text[want[0]:want[1]] if want else None) == key
    assert CORE._core.key_span(text, 0, end, structure.Layout()) == want  # type: ignore[attr-defined]
    same(text + "62148301234567")


def _decoded(data: bytes) -> str:
    """A corpus document's text: UTF-16 by its BOM, else UTF-8, else GB18030 (its exporters')."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return data.decode("utf-16")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("gb18030")


def test_key_spans_of_the_document_corpus() -> None:
    found = 0
    for kind in ("json", "kv", "xml"):
        for path in sorted(p for p in (DOCUMENTS / kind).iterdir() if p.is_file()):
            found += same_keys(_decoded(path.read_bytes())[:3000])
    assert found > 50
