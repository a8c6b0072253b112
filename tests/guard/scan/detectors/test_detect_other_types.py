"""Table-driven tests of EMAIL, CN_USCC, CN_PASSPORT and CN_BANK_ACCOUNT detection."""

from __future__ import annotations

import pytest
from stdnum.cn import ric, uscc

from guard.scan.engine import Scanner

SCANNER = Scanner(key=b"test-key")


def found(text: str) -> list[tuple[str, str]]:
    return [(f.type, text[f.start:f.end]) for f in SCANNER.scan_text(text)]


USCC_A = "91350100M000100Y43"
USCC_B = "91110108MA01C7XX5E"
USCC_DIGITS = next(
    b + uscc.calc_check_digit(b)
    for b in (f"9144030070846{i:04d}" for i in range(200))
    if uscc.calc_check_digit(b).isdigit()
)
# 18 digits laid out like a resident ID with a wrong check digit that passes the USCC check
ID_TYPO_USCC = "513230197004087962"
assert uscc.is_valid(ID_TYPO_USCC) and not ric.is_valid(ID_TYPO_USCC)

CASES = [
    # e-mail
    ("邮箱zhangsan@bank.com.cn，", [("EMAIL", "zhangsan@bank.com.cn")]),
    ("Email: li.si+vip@example.com;", [("EMAIL", "li.si+vip@example.com")]),
    ("'wang_wu@corp.cn", [("EMAIL", "wang_wu@corp.cn")]),
    ("email=zs@x.cn&", [("EMAIL", "zs@x.cn")]),
    ("<zs@bank.cn>联系", [("EMAIL", "zs@bank.cn")]),
    ("QQ邮箱13812345678@qq.com", [("EMAIL", "13812345678@qq.com")]),
    ("邮箱：zhang＠qq.com，", [("EMAIL", "zhang＠qq.com")]),  # full-width input method
    ("QQ邮箱13812345678＠qq.com", [("EMAIL", "13812345678＠qq.com")]),
    ("ＺＨＡＮＧ＠ｅｘａｍｐｌｅ．ｃｏｍ", []),  # full-width address: not folded for e-mail
    ("user@localhost", []),
    ("@@@@ a@b 1@2.3", []),
    ("see .@example.com", []),
    # USCC
    ("统一社会信用代码：" + USCC_A, [("CN_USCC", USCC_A)]),
    ("单位" + USCC_B + "，", [("CN_USCC", USCC_B)]),
    ("税号 " + USCC_DIGITS, [("CN_USCC", USCC_DIGITS)]),
    ("统一社会信用代码：" + USCC_A[:-1] + "4", []),
    ("流水号" + USCC_A, []),
    ("导入失败记录：" + ID_TYPO_USCC + "，", []),  # a mistyped resident ID, not a code
    ("统一社会信用代码 " + ID_TYPO_USCC, [("CN_USCC", ID_TYPO_USCC)]),
    # passport
    ("护照号码：E12345678", [("CN_PASSPORT", "E12345678")]),
    ("Passport No. EA1234567", [("CN_PASSPORT", "EA1234567")]),
    ("护照 G12345678。", [("CN_PASSPORT", "G12345678")]),
    ("E12345678", []),
    ("订单E12345678", []),
    ("护照号码：X12345678", []),
    # account
    ("账号：12345678901234", [("CN_BANK_ACCOUNT", "12345678901234")]),
    ("收款账户 3100 1234 5678 9012 345", [("CN_BANK_ACCOUNT", "3100 1234 5678 9012 345")]),
    ("对公账户31001234567890123456789", [("CN_BANK_ACCOUNT", "31001234567890123456789")]),
    ("12345678901234", []),
    ("账号：2026112410351200123", [("CN_BANK_ACCOUNT", "2026112410351200123")]),
    ("acct no. 2026112410351200123", [("CN_BANK_ACCOUNT", "2026112410351200123")]),
    ('{"accountNo":"1234567890123"}', [("CN_BANK_ACCOUNT", "1234567890123")]),
    ("收款账号：4022697886540714", [("CN_BANK_ACCOUNT", "4022697886540714")]),  # Luhn by chance
    ("账号：123456", []),
    ("账号：12345678901234567890123456", []),  # 26 digits: longer than any account
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_cases(text: str, expected: list[tuple[str, str]]) -> None:
    assert found(text) == expected


def test_email_mask() -> None:
    (f,) = SCANNER.scan_text("邮箱：Zhang.San@Bank.COM")
    assert f.masked == "Z***@bank.com"


def test_account_mask_keeps_last_four() -> None:
    (f,) = SCANNER.scan_text("账号：12345678901234")
    assert f.masked == "**********1234"
