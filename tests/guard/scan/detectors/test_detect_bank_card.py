"""Table-driven tests of BANK_CARD detection: Luhn, BIN table, grouping, context (pos. and neg.)."""

from __future__ import annotations

import hashlib
import hmac
import random

import pytest
from stdnum import luhn

from guard.scan.detectors import bank_card
from guard.scan.engine import Scanner

SCANNER = Scanner(key=b"test-key")


def found(text: str) -> list[tuple[str, str]]:
    return [(f.type, text[f.start:f.end]) for f in SCANNER.scan_text(text)]


def with_luhn(body: str) -> str:
    return body + luhn.calc_check_digit(body)


ICBC = with_luhn("622202123456789012")  # 19 digits, Chinese BIN 622202
CMB16 = with_luhn("622588123456789")  # 16 digits
CCB = with_luhn("436742123456789012")  # Chinese BIN that looks like Visa
ICBC_NO_LUHN = next(ICBC[:-1] + d for d in "0123456789" if not luhn.is_valid(ICBC[:-1] + d))
VISA = "4111111111111111"
BIN18 = min(b for b, lengths in bank_card.bin_table().items() if len(b) == 6 and 18 in lengths)
CARD18 = with_luhn(BIN18 + "12345678901")
FULL_WIDTH_ICBC = "".join(chr(ord(c) + 0xFEE0) for c in ICBC)
MC_DATE = with_luhn("202611241035120")  # Luhn-valid, in the 2221-2720 range, reads as a date


def g4(n: str, sep: str = " ") -> str:
    return sep.join(n[i:i + 4] for i in range(0, len(n), 4))


POSITIVE = [
    ("卡号" + ICBC, ICBC),
    ("卡号：" + ICBC + "，", ICBC),
    ("转入" + ICBC + "成功", ICBC),  # Chinese BIN + Luhn needs no label
    (g4(ICBC), g4(ICBC)),  # 4-4-4-4-3
    ("卡号 " + g4(ICBC, "-"), g4(ICBC, "-")),
    ("银行卡号　" + g4(CMB16, "\u3000"), g4(CMB16, "\u3000")),
    ("'" + ICBC, ICBC),  # Excel's leading apostrophe
    ("'" + CMB16 + ",张三", CMB16),
    ("card_no=" + CCB + "&", CCB),
    ("借记卡号：" + ICBC_NO_LUHN, ICBC_NO_LUHN),  # fails Luhn: known BIN + card word
    ("账号：" + ICBC_NO_LUHN, ICBC_NO_LUHN),
    ("Card: " + VISA, VISA),
    ("信用卡 " + g4(VISA), g4(VISA)),
    (g4(VISA), g4(VISA)),  # grouped like a card
    ("卡号" + FULL_WIDTH_ICBC, FULL_WIDTH_ICBC),
    ("卡号：" + g4(CARD18), g4(CARD18)),  # 4-4-4-4-2
    ('{"cardNo":"' + ICBC + '"}', ICBC),
    ("身份证号" + ICBC, ICBC),  # a full card number under the wrong label is still a card
    ("卡号：" + g4(CMB16, "  ") + "（复印件）", g4(CMB16, "  ")),  # fixed-width export, OCR
    ("卡号 " + g4(ICBC, "\u00a0\u00a0"), g4(ICBC, "\u00a0\u00a0")),
]

NEGATIVE = [
    ICBC_NO_LUHN,  # fails Luhn, no card word
    "流水号" + ICBC_NO_LUHN,
    "流水号：" + ICBC,  # Luhn by chance in a serial-number context
    "订单号" + VISA,
    "交易号:" + CMB16,
    "tracking no. " + VISA,
    VISA,  # Luhn-valid bare 16 digits, no Chinese BIN, no context
    "参考号" + with_luhn("123456789012345678"),
    MC_DATE,  # a timestamp-like serial that passes Luhn
    "20261124103512",
    "1" + ICBC,  # inside a longer digit run
    ICBC + "00",
    "金额" + CMB16 + ".00",
    CMB16 + "元",
    "0000000000000000",
    "A" + ICBC,
    # 18 digits laid out like a resident ID (Gansu 62…, birth date) with a wrong check digit:
    # a Chinese BIN and Luhn by chance, but a mistyped ID, not a card
    "导入失败记录：622901200702067767，",
    "身份证号622623194902175560校验失败",
]


@pytest.mark.parametrize(("text", "span"), POSITIVE)
def test_found(text: str, span: str) -> None:
    assert found(text) == [("BANK_CARD", span)]


@pytest.mark.parametrize("text", NEGATIVE)
def test_not_found(text: str) -> None:
    assert [t for t, _ in found(text) if t == "BANK_CARD"] == []


def test_luhn_failing_card_scores_lower() -> None:
    good = SCANNER.scan_text("借记卡号：" + ICBC)[0].score
    bad = SCANNER.scan_text("借记卡号：" + ICBC_NO_LUHN)[0].score
    assert good > bad >= 0.5


def test_mask_keeps_first_six_last_four() -> None:
    (f,) = SCANNER.scan_text("卡号 " + g4(ICBC))
    assert f.masked == ICBC[:6] + "*" * 9 + ICBC[-4:]


@pytest.mark.parametrize(("digits", "known"), [
    ("6222021234567890128", True), ("1234561234567890", False), ("4367421234567890129", True),
])
def test_bin_table(digits: str, known: bool) -> None:
    assert (bank_card.chinese_bin(digits) is not None) is known
    assert len(bank_card.bin_table()) > 1000


def test_luhn_valid_agrees_with_stdnum() -> None:
    rng = random.Random(2026)
    numbers = ["".join(rng.choice("0123456789") for _ in range(rng.randint(1, 25)))
               for _ in range(20000)]
    numbers += [with_luhn(n[:-1]) for n in numbers[:2000] if len(n) > 1]
    assert sum(bank_card.luhn_valid(n) for n in numbers) > 2000  # both answers are exercised
    assert [bank_card.luhn_valid(n) for n in numbers] == [luhn.is_valid(n) for n in numbers]


def _longest_bin_by_walk(digits: str) -> tuple[int, bool] | None:
    table = bank_card.bin_table()
    for n in range(len(digits), 2, -1):
        if digits[:n] in table:
            return n, len(digits) in table[digits[:n]]
    return None


def test_remembered_bin_lookup_agrees_with_a_plain_walk() -> None:
    rng = random.Random(7)
    prefixes = sorted(bank_card.bin_table())
    numbers = [p + "".join(rng.choice("0123456789") for _ in range(rng.randint(13, 19) - len(p)))
               for p in prefixes]
    numbers += ["62" + "".join(rng.choice("0123456789") for _ in range(15)) for _ in range(5000)]
    for digits in numbers + numbers:  # the second pass answers from the cache
        assert bank_card.chinese_bin(digits) == _longest_bin_by_walk(digits), digits[:6]


def test_finding_hash_is_hmac_sha256_of_the_normalised_value() -> None:
    (f,) = SCANNER.scan_text("卡号 " + g4(ICBC))
    assert f.hash == hmac.new(b"test-key", ICBC.encode(), hashlib.sha256).hexdigest()
