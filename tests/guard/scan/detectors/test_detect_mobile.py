"""Table-driven tests of CN_MOBILE detection: prefixes, groupings, +86/0086 (pos. and neg.)."""

from __future__ import annotations

import pytest

from guard.scan.detectors import mobile
from guard.scan.engine import Scanner

SCANNER = Scanner(key=b"test-key")


def found(text: str) -> list[tuple[str, str]]:
    return [(f.type, text[f.start:f.end]) for f in SCANNER.scan_text(text)]


POSITIVE = [
    ("手机13812345678", "13812345678"),
    ("电话：13812345678。", "13812345678"),
    ("联系方式 138-1234-5678", "138-1234-5678"),
    ("138 1234 5678", "138 1234 5678"),
    ("+86 13812345678", "+86 13812345678"),
    ("tel:+86-138-1234-5678", "+86-138-1234-5678"),
    ("0086 13812345678", "0086 13812345678"),
    ("008613812345678", "008613812345678"),
    ("8613812345678", "8613812345678"),
    ("+8613812345678", "+8613812345678"),
    ("电话(+86)13812345678", "(+86)13812345678"),
    ("（+86） 138-1234-5678", "（+86） 138-1234-5678"),
    ("86 138 1234 5678", "86 138 1234 5678"),
    ("＋８６　１３８１２３４５６７８", "＋８６　１３８１２３４５６７８"),
    ("手机１３８１２３４５６７８", "１３８１２３４５６７８"),
    ("mobile=19912345678&", "19912345678"),
    ("张三,13812345678,北京", "13812345678"),
    ("'18612345678", "18612345678"),
    ("Tel13812345678", "13812345678"),
    ("预留手机号：166 1234 5678", "166 1234 5678"),
    ("手机 138  1234  5678 ", "138  1234  5678"),
    ("回访录音_13812345678_张三.mp3", "13812345678"),  # doubled spaces of a fixed-width export
]

NEGATIVE = [
    "12012345678",  # no such mobile prefix
    "10012345678",
    "手机11012345678",
    "电话 010-12345678",  # landlines
    "0755-12345678",
    "(021)61234567",
    "400-820-8820",
    "913812345678",  # inside longer digit runs
    "138123456789",
    "订单号13812345678",
    "金额13812345678.00",
    "13812345678元",
    "v13812345678",
    "2026-11-24 10:35:12",
    "1381234567",  # 10 digits
    "+1 4155551234567",  # a foreign number
    "wxid_13812345678",  # a chat account name
    "user_13812345678_bak",
]


@pytest.mark.parametrize(("text", "span"), POSITIVE)
def test_found(text: str, span: str) -> None:
    assert found(text) == [("CN_MOBILE", span)]


@pytest.mark.parametrize("text", NEGATIVE)
def test_not_found(text: str) -> None:
    assert found(text) == []


def test_two_numbers_in_one_spaced_run() -> None:
    text = "联系人 13812345678 13912345678 18612345678"
    assert found(text) == [("CN_MOBILE", n) for n in ("13812345678", "13912345678", "18612345678")]


def test_mask_and_hash_ignore_the_prefix() -> None:
    a = SCANNER.scan_text("+86 138-1234-5678")[0]
    b = SCANNER.scan_text("13812345678")[0]
    assert a.masked == b.masked == "138****5678" and a.hash == b.hash


@pytest.mark.parametrize(("number", "valid"), [
    ("13812345678", True), ("14512345678", True), ("19212345678", True), ("17012345678", True),
    ("12012345678", False), ("14012345678", False), ("1381234567", False),
])
def test_number_plan(number: str, valid: bool) -> None:
    assert mobile.is_mobile(number) is valid


def test_a_currency_in_the_next_cell_is_not_the_numbers_unit() -> None:
    # a table row read off a screen or an export: mobile column, then an amount column
    strict = Scanner(key=b"test-key", min_confidence=0.0)
    scores = {text: [round(f.score, 2) for f in strict.scan_text(text)]
              for text in ("13812345678\tCNY 841.73", "13812345678\nCNY 841.73",
                           "13812345678 CNY", "13812345678元")}
    assert scores["13812345678\tCNY 841.73"] == [0.9]
    assert scores["13812345678\nCNY 841.73"] == [0.9]
    assert scores["13812345678 CNY"] == [0.3]  # one space: the unit of an amount
    assert scores["13812345678元"] == [0.3]
