"""`teller-guard scan --format json`'s writer: the same bytes `json.dumps` gave, streamed."""

from __future__ import annotations

import io
import json
import random

import pytest

from guard.commands.scan import _JsonFile, finding_json
from guard.model import Category, Finding
from guard.scan.engine import UnhashedFinding

ODD_TEXT = ['110***********002X', '138****5678', 'a"b\\c', "tab\there\nline", "\x00\x1f\x7f",
            "全角＊＊＊", "\udcff\udc80", "u***@example.com", "", "é\u2028\u2029"]


def _findings(n: int, seed: int = 3) -> list[Finding]:
    r = random.Random(seed)
    out: list[Finding] = []
    for i in range(n):
        box = (r.randint(0, 4000), r.randint(0, 4000), r.randint(1, 900), r.randint(1, 90)) \
            if r.random() < 0.2 else None
        score = r.choice([1.0, 0.5, 0.95, 0.1 + 0.2, r.random(), 0.99999, 0.123456789, 0.0])
        kind = Finding if r.random() < 0.9 else UnhashedFinding
        out.append(kind(type=r.choice(["CN_RESIDENT_ID", "BANK_CARD", "EMAIL", 'x"y']),
                        start=i * 10, end=i * 10 + r.randint(1, 30), score=score,
                        masked=r.choice(ODD_TEXT), hash=r.choice(["ab" * 32, ""]),
                        category=r.choice(list(Category)), box=box))
    return out


def _pieces(findings: list[Finding], seed: int) -> list[list[Finding]]:
    """`findings` cut as the engine hands them over, one list per scanned piece of the text:
    pieces of every size, below, at and above a write's batch."""
    r = random.Random(seed)
    pieces: list[list[Finding]] = []
    i = 0
    while i < len(findings):
        n = r.choice([1, 2, _JsonFile.BATCH - 1, _JsonFile.BATCH, _JsonFile.BATCH + 1, 700])
        pieces.append(findings[i:i + n])
        i += n
    return pieces


def test_each_finding_is_written_as_json_dumps_wrote_it() -> None:
    for f in _findings(2000):
        assert finding_json(f) == json.dumps(f.as_dict(), ensure_ascii=False)


@pytest.mark.parametrize("n", [0, 1, _JsonFile.BATCH - 1, _JsonFile.BATCH, 3 * _JsonFile.BATCH + 7,
                               5000])
@pytest.mark.parametrize("error", [None, "damaged xlsx file, not scanned (KeyError)"])
def test_a_file_object_is_the_record_json_dumps_wrote(n: int, error: str | None) -> None:
    findings = _findings(n, seed=n)
    out = io.StringIO()
    writer = _JsonFile(out, "客户/清单 \"1\".csv")
    for piece in _pieces(findings, seed=n):
        writer.findings(piece)
    writer.close(error)
    # what the command wrote when it held the whole record: source, findings (left out when the
    # file failed before any finding), error
    record: dict[str, object] = {"source": "客户/清单 \"1\".csv"}
    if findings or error is None:
        record["findings"] = [f.as_dict() for f in findings]
    if error is not None:
        record["error"] = error
    assert out.getvalue() == json.dumps(record, ensure_ascii=False) + "\n"


def test_findings_reach_the_output_before_the_file_ends() -> None:
    # streamed: a dense file's findings do not wait in memory for its end
    out = io.StringIO()
    writer = _JsonFile(out, "big.log")
    writer.findings(_findings(_JsonFile.BATCH))
    assert out.getvalue().count('"type"') == _JsonFile.BATCH
    writer.close(None)
    assert json.loads(out.getvalue())["source"] == "big.log"
