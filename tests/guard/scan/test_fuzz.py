"""Fuzz and robustness tests: random and hostile text never breaks the engine or blows up its work.

No timed assertions: linear behaviour is shown by counting the engine's own operations (candidate
matches, identifier checks, label look-ups) on hostile input of size n and 4n. The wall-clock
figures live in tests/bench/bench_scan.py.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from guard.scan.detectors import TYPES, context
from guard.scan.engine import CANDIDATE, Scanner

SCANNER = Scanner(key=b"fuzz-key")

ALPHABET = (
    "0123456789０１２３４５６７８９ -\u3000\u00a0\u200b－+＋@.XxＸｘEG"
    "abcz_'\"，。：:=\n\r\t身份证号卡手机流水订单金额元护照账户"
)
PIECES = [
    "11010519491231002X", "6222021234567890128", "13812345678", "+86 ", "0086", "身份证号",
    "卡号", "流水号", "@", "a@b.cn", "91350100M000100Y43", "E12345678", "账号", ".00元",
    "6222 0212 3456 7890 128", "138-1234-5678", "20261124103512",
    # table, key and record shapes: header rows, delimiters, quotes, keys, elements, banks
    "户名,账号,证件号码\n", "姓名\t身份证号\t手机\n", "户名    账号        手机号码\n",
    ",", "\t", "|", ";", '"', "'", "    ", '"acctNo": "', "<CertNo>", "</CertNo>", "acct_no=",
    "\\u8d26\\u53f7", "凭证号,", "中国银行XX支行", "证件类型护照，证件号码", "110105491231002",
    "44028939616529021", "3381 5173 9179 7192 77", "19412345678", "付款",
]
texts = st.one_of(
    st.text(alphabet=ALPHABET, max_size=400),
    st.lists(st.one_of(st.sampled_from(PIECES), st.text(alphabet=ALPHABET, max_size=8)),
             max_size=60).map("".join),
    st.text(max_size=200),  # any Unicode, surrogates and all
)


@st.composite
def streamed(draw: st.DrawFn, repeat: int) -> tuple[str, list[str]]:
    """A text of pieces (repeated `repeat` times) and the same text cut into chunks of drawn
    sizes, as a stream arrives."""
    parts = draw(st.lists(st.sampled_from([*PIECES, "中文", "\n", " ", "，"]), min_size=1,
                          max_size=40))
    sizes = draw(st.lists(st.integers(min_value=1, max_value=50), min_size=1, max_size=20))
    text = "".join(parts) * repeat
    pieces, pos, i = [], 0, 0
    while pos < len(text):
        n = sizes[i % len(sizes)]
        pieces.append(text[pos:pos + n])
        pos, i = pos + n, i + 1
    return text, pieces


def check(text: str) -> None:
    found = SCANNER.scan_text(text)
    assert [f.start for f in found] == sorted(f.start for f in found)
    for f in found:
        assert 0 <= f.start < f.end <= len(text)
        assert f.type in TYPES and 0.5 <= f.score <= 1.0 and len(f.hash) == 64
        assert "*" in f.masked and text[f.start:f.end] != f.masked


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts)
def test_random_text_never_breaks(text: str) -> None:
    check(text)


@settings(max_examples=100, deadline=None)
@given(streamed(repeat=20))
def test_chunked_equals_whole(stream: tuple[str, list[str]]) -> None:
    text, pieces = stream
    whole = [(f.type, f.start, f.end, f.hash) for f in SCANNER.scan_text(text)]
    assert [(f.type, f.start, f.end, f.hash) for f in SCANNER.scan_chunks(pieces)] == whole


HOSTILE = {
    "digits": "1",
    "digit-space": "1 ",
    "groups": "1234 ",
    "hyphen-groups": "123-",
    "fullwidth": "１２３４５　",
    "ats": "@",
    "local-parts": "a@",
    "dots": "a.",
    "domain-ish": "a1-.",
    "id-like": "11010519491231002X",
    "x-runs": "1234567X",
    "labels": "身份证号卡号流水号",
    "plus86": "+86 ",
    "mixed": "6222 0212 3456 7890 128 13812345678 ",
    "alnum": "91350100M000100Y43",
    "csv-rows": "户名,账号,手机\n张三,44028939616529021,13812345678\n",
    "one-long-csv-row": "44028939616529021,",
    "quoted-cells": '"44028939616529021","a,b",',
    "aligned-rows": "户名    账号\n张三    44028939616529021\n",
    "aligned-long-line": "张三    44028939616529021    ",
    "json-keys": '"payerAcctNo": "44028939616529021", ',
    "xml-elements": "<AcctNo>44028939616529021</AcctNo>",
    "bank-rows": "中国银行上海支行 44028939616529021 ",
    "header-lines": "户名,账号,证件号码\n",
    "key-ends": '":=：> ',
}


class Counter:
    """Counts the engine's per-candidate work while it scans."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.identifier = 0
        self.labels = 0
        scanner_cls = Scanner
        original_identifier = scanner_cls._identifier
        original_label = context.nearest_label

        def counted_identifier(inner_self, *args, **kwargs):  # type: ignore[no-untyped-def]
            self.identifier += 1
            return original_identifier(inner_self, *args, **kwargs)

        def counted_label(*args, **kwargs):  # type: ignore[no-untyped-def]
            self.labels += 1
            return original_label(*args, **kwargs)

        original_plain = scanner_cls._plain

        def counted_plain(inner_self, *args, **kwargs):  # type: ignore[no-untyped-def]
            self.identifier += 1
            return original_plain(inner_self, *args, **kwargs)

        monkeypatch.setattr(scanner_cls, "_identifier", counted_identifier)
        monkeypatch.setattr(scanner_cls, "_plain", counted_plain)
        monkeypatch.setattr(context, "nearest_label", counted_label)

    def ops(self, text: str) -> tuple[int, int, int]:
        self.identifier = self.labels = 0
        Scanner(key=b"k").scan_text(text)
        candidates = sum(1 for _ in CANDIDATE.finditer(text))
        return candidates, self.identifier, self.labels


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_input_work_grows_linearly(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    unit = HOSTILE[name]
    counter = Counter(monkeypatch)
    n = 20000 // len(unit) + 1
    small = counter.ops(unit * n)
    large = counter.ops(unit * (4 * n))
    for a, b in zip(small, large, strict=True):
        # linear: 4x the input, about 4x the work (quadratic work would be 16x)
        assert b <= 4.2 * a + 50, (name, small, large)
    # and each unit of input costs a bounded number of checks
    assert large[1] <= 30 * (4 * n) and large[2] <= 30 * (4 * n)


def test_hostile_megabyte_inputs_complete() -> None:
    for unit in HOSTILE.values():
        check(unit * (1_000_000 // len(unit)))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(st.sampled_from(PIECES), st.text(alphabet=ALPHABET, max_size=8)),
                max_size=80).map("".join))
def test_html_pages_never_break(body: str) -> None:
    from guard.scan import documents

    page = "<html><body><table><tr><th>户名</th><th>账号</th></tr><tr><td>" + body.replace(
        "\n", "</td><td>") + "</td></tr></table></body></html>"
    text = "".join(documents.html_chunks([page[:50], page[50:]]))
    check(text)
