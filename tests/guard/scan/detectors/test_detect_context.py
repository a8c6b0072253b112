"""Tests of context labels, hard negatives across types, masking and the Scanner's options."""

from __future__ import annotations

import pytest

from guard.scan.detectors import TYPES, UnknownTypeError, context, mask
from guard.scan.engine import ScanError, Scanner
from guard.scan.normalize import fold, needs_fold

SCANNER = Scanner(key=b"test-key")
ID = "11010519491231002X"
CARD = "6222021234567890128"


def found(text: str, scanner: Scanner = SCANNER) -> list[tuple[str, str]]:
    return [(f.type, text[f.start:f.end]) for f in scanner.scan_text(text)]


@pytest.mark.parametrize(("before", "kind"), [
    ("身份证号：", context.ID), ("证件编号", context.ID), ("客户ID=", context.ID),
    ("卡号", context.CARD), ("CARD_NO=", context.CARD), ("收款账号 ", context.ACCOUNT),
    ("手机号码:", context.MOBILE), ("Mobile: ", context.MOBILE), ("护照号", context.PASSPORT),
    ("统一社会信用代码", context.USCC), ("流水号：", context.NEG), ("交易流水号", context.NEG),
    ("Order No.", context.NEG), ("valid ", None), ("paid ", None), ("", None),
    ("交易时间 2026-11-24 客户 ", None),  # a negative word counts only right before
    ("卡号6222021234567890128 客户 ", None),  # another number stands between
    ("身份证号码（18位）：", context.ID),
    ("身份证编号：", context.ID), ("Visa ", context.CARD), ("账号\t户名\t余额\r\n", None),
    ("单据号", context.NEG), ("客户编号", context.NEG),
])
def test_nearest_label(before: str, kind: str | None) -> None:
    assert context.nearest_label(before, len(before)) == kind


HARD_NEGATIVES = [
    "流水号2026112410351200123",
    "交易流水号：20261124103512001234",
    "时间20261124103512",
    "20261124103512",
    "订单号 4111111111111111",
    "快递单号 SF1234567890123",
    "单号：6222021234567890128",
    "金额：13812345678.00元",
    "版本 10.0.19041.1234",
    "日期 2026-11-24 10:35:12",
    "1234567890123456789012345678901234567890",
    "IP 192.168.100.200 端口 8080",
    "ORD20261124138123456789",
    "座机 0755-12345678",
    "ORD-20261124-13812345678",
    "SN-13812345678",
    '{"orderNo":"6222021234567890128"}',
    "IMEI 356938035643809",
]


@pytest.mark.parametrize("text", HARD_NEGATIVES)
def test_hard_negatives(text: str) -> None:
    assert found(text) == []


def test_record_with_everything() -> None:
    text = (f"2026-11-24 10:35:12 柜员T0012 客户张三，身份证号{ID}，手机138-1234-5678，"
            f"卡号 6222 0212 3456 7890 128，流水号202611241035120001，金额5,000.00元，"
            f"邮箱zs@bank.cn")
    assert found(text) == [
        ("CN_RESIDENT_ID", ID), ("CN_MOBILE", "138-1234-5678"),
        ("BANK_CARD", "6222 0212 3456 7890 128"), ("EMAIL", "zs@bank.cn"),
    ]


def test_offsets_with_crlf_and_fullwidth_text() -> None:
    text = "姓名：张三\r\n证件：" + ID + "\r\n手机：１３８１２３４５６７８\r\n"
    spans = [(f.type, f.start, f.end) for f in SCANNER.scan_text(text)]
    assert spans == [("CN_RESIDENT_ID", 10, 28), ("CN_MOBILE", 33, 44)]


def test_threshold_global_and_per_type() -> None:
    text = "借记卡号：6222021234567890120 身份证号" + ID  # Luhn-failing card scores 0.65
    assert [t for t, _ in found(text)] == ["BANK_CARD", "CN_RESIDENT_ID"]
    strict = Scanner(key=b"k", min_confidence=0.9)
    assert [t for t, _ in found(text, strict)] == ["CN_RESIDENT_ID"]
    per_type = Scanner(key=b"k", min_confidence={"BANK_CARD": 0.99})
    assert [t for t, _ in found(text, per_type)] == ["CN_RESIDENT_ID"]


def test_types_filter() -> None:
    only_cards = Scanner(key=b"k", types=["BANK_CARD"])
    assert found(f"卡号{CARD} 身份证号{ID}", only_cards) == [("BANK_CARD", CARD)]


def test_bad_options_are_refused() -> None:
    with pytest.raises(UnknownTypeError, match="NOPE"):
        Scanner(key=b"k", types=["NOPE"])
    with pytest.raises(ScanError, match="between 0 and 1"):
        Scanner(key=b"k", min_confidence=1.5)


def test_the_scan_command_hashes_with_the_configured_key(
        tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json
    import subprocess
    import sys

    monkeypatch.setenv("TELLER_GUARD_HASH_KEY", "00" * 32)
    monkeypatch.setenv("TELLER_GUARD_DATA_DIR", str(tmp_path))
    run = subprocess.run([sys.executable, "-m", "guard.cli", "scan", "--format", "json", "-"],
                         input=ID.encode(), capture_output=True, check=False)
    assert run.returncode == 1, run.stderr
    [finding] = json.loads(run.stdout.splitlines()[0])["findings"]
    assert finding["hash"] == Scanner(key=bytes(32)).scan_text(ID)[0].hash


@pytest.mark.parametrize(("type_", "value", "masked"), [
    ("BANK_CARD", "6222021234567890128", "622202*********0128"),
    ("CN_MOBILE", "13812345678", "138****5678"),
    ("CN_RESIDENT_ID", "11010519491231002X", "110***********002X"),
    ("EMAIL", "zhangsan@bank.cn", "z***@bank.cn"),
    ("CN_USCC", "91350100M000100Y43", "**************0Y43"),
    ("CN_PASSPORT", "E12345678", "*****5678"),
    ("CN_BANK_ACCOUNT", "1234", "****"),
])
def test_mask(type_: str, value: str, masked: str) -> None:
    assert mask(type_, value) == masked


def test_mask_unknown_type() -> None:
    with pytest.raises(UnknownTypeError):
        mask("SSN", "123")
    assert len(TYPES) == 7


def test_fold_keeps_length_and_offsets() -> None:
    raw = "１３８\u3000１２３４－５６７８ ｘ，中文"
    folded = fold(raw)
    assert folded == "138 1234-5678 x，中文" and len(folded) == len(raw)
    assert needs_fold(raw) and not needs_fold("plain ascii 123") and not needs_fold("中文，标点")
    assert fold("plain") == "plain"
