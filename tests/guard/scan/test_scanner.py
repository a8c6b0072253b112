"""Tests of the engine's public API: scan_text, scan_chunks (streaming), scan_file, scan_stream."""

from __future__ import annotations

import io
import random
import threading
from pathlib import Path

import pytest

from guard.model import Finding
from guard.scan import engine as scanner
from guard.scan.engine import FileResult, Scanner

SCANNER = Scanner(key=b"test-key")
ID = "11010519491231002X"
RECORDS = [
    f"身份证号{ID}，", "卡号 6222 0212 3456 7890 128；", "手机+86 138-1234-5678\n",
    "邮箱 zhang.san@bank.com.cn ", "统一社会信用代码91350100M000100Y43。", "账号：12345678901234\n",
    "流水号2026112410351200123，", "护照号E12345678 ", "'6217001234567890122,",
    "　１３８１２３４５６７８　",
]


def _text(seed: int, n: int = 400) -> str:
    r = random.Random(seed)
    filler = ["柜员复核。", "无异常\n", "时间 2026-11-24 10:35:12 ", "金额 5,000.00 元，", "ok "]
    return "".join(r.choice(RECORDS) if r.random() < 0.4 else r.choice(filler) for _ in range(n))


def _key(f: Finding) -> tuple[str, int, int, float, str, str]:
    return (f.type, f.start, f.end, f.score, f.masked, f.hash)


def test_scan_text_is_sorted_and_complete() -> None:
    text = "".join(RECORDS)
    found = SCANNER.scan_text(text)
    assert [f.start for f in found] == sorted(f.start for f in found)
    assert [f.type for f in found] == [
        "CN_RESIDENT_ID", "BANK_CARD", "CN_MOBILE", "EMAIL", "CN_USCC", "CN_BANK_ACCOUNT",
        "CN_PASSPORT", "BANK_CARD", "CN_MOBILE",
    ]


@pytest.mark.parametrize("seed", range(6))
def test_chunked_scan_equals_whole_scan(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    # small chunks and a small tail so that many cuts land inside this text
    monkeypatch.setattr(scanner, "_SAFE_FROM_END", 40)
    text = _text(seed)
    r = random.Random(seed)
    pieces, i = [], 0
    while i < len(text):
        step = r.randint(1, 120)
        pieces.append(text[i:i + step])
        i += step
    whole = [_key(f) for f in SCANNER.scan_text(text)]
    chunked = [_key(f) for f in SCANNER.scan_chunks(pieces)]
    assert chunked == whole and len(whole) > 50


def test_batches_are_the_stream_a_list_per_piece(tmp_path: Path) -> None:
    # the CLI reads findings a list at a time: the same findings, in order, no empty list
    s = SCANNER
    text = _text(7, n=70000)  # 1.5 MB: more than one 1 MiB read of the file
    pieces = [text[i:i + 5000] for i in range(0, len(text), 5000)]
    batches = list(s.scan_chunk_batches(pieces))
    assert len(batches) > 1 and all(batches)
    assert [_key(f) for b in batches for f in b] == [_key(f) for f in s.scan_chunks(pieces)]
    path = tmp_path / "export.txt"
    path.write_text(text, encoding="utf-8")
    file_batches = list(s.iter_file_batches(path))
    assert all(file_batches)
    flat = [_key(f) for b in file_batches for f in b]
    assert flat == [_key(f) for f in s.iter_file(path)] == [_key(f) for f in s.scan_text(text)]
    assert flat == [_key(f) for f in s.scan_file(path).findings]
    assert len(file_batches) > 1


def test_chunk_cut_never_splits_an_identifier(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scanner, "_SAFE_FROM_END", 5)
    text = "前" * 20 + ID + "后" * 20
    for cut in range(1, len(text)):
        got = [(f.start, f.end) for f in SCANNER.scan_chunks([text[:cut], text[cut:]])]
        assert got == [(20, 38)], cut


def test_scan_stream_and_file_result() -> None:
    result = SCANNER.scan_stream(io.BytesIO(f"身份证号{ID}".encode("gb18030")), "-")
    assert isinstance(result, FileResult) and result.source == "-" and result.error is None
    assert [(f.type, f.start) for f in result.findings] == [("CN_RESIDENT_ID", 4)]
    bad = SCANNER.scan_stream(io.BytesIO(bytes(range(256))), "-")
    assert bad.error == "binary file, not scanned" and bad.findings == []


def test_findings_never_carry_the_raw_value() -> None:
    text = "".join(RECORDS)
    for f in SCANNER.scan_text(text):
        raw = text[f.start:f.end]
        assert raw not in repr(f) and raw not in str(f.as_dict())


def test_one_scanner_shared_by_threads() -> None:
    text = _text(1)
    expected = [_key(f) for f in SCANNER.scan_text(text)]
    results: list[list[tuple[str, int, int, float, str, str]]] = []

    def work() -> None:
        results.append([_key(f) for f in SCANNER.scan_text(text)])

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [expected] * 4


def test_hostile_run_longer_than_the_lookback_is_cut_but_not_misread() -> None:
    text = "1" * 200_000 + "，身份证号" + ID + "，" + "8" * 100_000 + "13812345678"
    pieces = [text[i:i + 50_000] for i in range(0, len(text), 50_000)]
    whole = [_key(f) for f in SCANNER.scan_text(text)]
    assert [_key(f) for f in SCANNER.scan_chunks(pieces)] == whole
    assert [f[0] for f in whole] == ["CN_RESIDENT_ID"]


def test_a_key_less_scanner_finds_and_masks_the_same_and_leaves_hashing_to_the_key_holder(
        ) -> None:
    """Beside the machine service a teller's agent has no key (issue 8 item 1): its findings
    carry no hash, and the normalised value only in memory, for the service to hash."""
    text = _text(7)
    keyed = SCANNER.scan_text(text)
    keyless = Scanner(key=None).scan_text(text)
    assert keyed and len(keyless) == len(keyed)
    for k, u in zip(keyed, keyless, strict=True):
        assert isinstance(u, scanner.UnhashedFinding)
        assert (u.type, u.start, u.end, u.score, u.masked, u.category) == (
            k.type, k.start, k.end, k.score, k.masked, k.category)
        assert u.hash == ""
        # The key holder's hash of the carried value is the keyed scanner's hash.
        assert scanner.keyed_hash(b"test-key", u.value) == k.hash
        # The value never shows in the finding's printable or serialisable forms.
        assert u.value not in repr(u) and u.value not in str(u.as_dict())
        assert "value" not in u.as_dict()
    chunked = list(Scanner(key=None).scan_chunks(iter([text[:500], text[500:]])))
    assert [(f.start, f.value) for f in chunked] == [
        (f.start, f.value) for f in keyless if isinstance(f, scanner.UnhashedFinding)]
