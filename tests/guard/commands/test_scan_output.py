"""`teller-guard scan --format json`'s writer: the same bytes `json.dumps` gave, streamed.

The compiled core writes the JSON of its findings itself (`Scanner.json_batches`): the same
bytes as `finding_json` of the Python reference engine's findings, on random text, streamed
pieces and the document corpus.
"""

from __future__ import annotations

import io
import json
import random
from collections.abc import Iterable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from guard.commands.scan import _file_text, _json_parts, _JsonFile, finding_json
from guard.model import Category, Finding
from guard.scan.engine import Scanner, UnhashedFinding
from tests.guard.scan.test_core_differential import DOCUMENTS, TEXT_KINDS, _widen, glued_texts
from tests.guard.scan.test_fuzz import streamed, texts

KEY = b"json-key"
CORE = Scanner(key=KEY)
REFERENCE = Scanner(key=KEY, engine="python")
needs_core = pytest.mark.skipif(
    CORE.json_batches([], _json_parts()) is None,
    reason="the compiled core guard_core is not built, is older than `scan_json`, or "
    "TELLER_GUARD_ENGINE=python",
)

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


def test_the_reference_engine_has_no_json_batches() -> None:
    # the Python path (and a key-less scanner) writes its findings with finding_json
    assert REFERENCE.json_batches(["13812345678"], _json_parts()) is None
    assert Scanner(key=None).json_batches(["13812345678"], _json_parts()) is None


def _core_json(chunks: Iterable[str]) -> tuple[int, str]:
    encoded = CORE.json_batches(chunks, _json_parts())
    assert encoded is not None
    pieces = list(encoded)
    assert all(n > 0 and text for n, text in pieces)  # no empty piece is handed over
    return sum(n for n, _ in pieces), ", ".join(text for _, text in pieces)


def _reference_json(chunks: Iterable[str]) -> tuple[int, str]:
    found = [f for piece in REFERENCE.scan_chunk_batches(chunks) for f in piece]
    return len(found), ", ".join(map(finding_json, found))


def same_json(text: str) -> None:
    assert _core_json([text]) == _reference_json([text]), text


@needs_core
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts)
def test_core_json_of_random_text(text: str) -> None:
    same_json(text)


@needs_core
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(glued_texts, st.lists(st.booleans(), max_size=7))
def test_core_json_of_glued_and_full_width_text(text: str, picks: list[bool]) -> None:
    # +86 prefixes, glued labels and full-width digits
    same_json(_widen(text, picks))


@needs_core
@settings(max_examples=100, deadline=None)
@given(streamed(repeat=5))
def test_core_json_of_streamed_pieces(stream: tuple[str, list[str]]) -> None:
    _, pieces = stream
    assert _core_json(pieces) == _reference_json(pieces)


@needs_core
def test_core_json_of_prefixed_and_grouped_numbers() -> None:
    # the span of `(+86)138…` starts at its bracket, a grouped card's ends after its last group
    text = "联系 (+86)13812345678 / 6222021234567890128 ，(+86) 139-1234-5678"
    assert _core_json([text]) == _reference_json([text])
    assert _core_json([text])[0] >= 2


@needs_core
@pytest.mark.parametrize("kind", [*TEXT_KINDS, "xlsx", "docx"])
def test_core_json_of_the_document_corpus(kind: str) -> None:
    files = sorted(p for p in (DOCUMENTS / kind).iterdir() if p.is_file())
    assert files, f"no {kind} documents under {DOCUMENTS}"
    found = 0
    for path in files:
        core = _core_json(_file_text(str(path)))
        assert core == _reference_json(_file_text(str(path))), path.name
        found += core[0]
    assert found > 0


@needs_core
def test_core_json_is_the_command_output_of_the_findings(tmp_path: Path) -> None:
    # the whole record the command writes: the core's text through _JsonFile as finding_json's
    lines = [f"客户{i} 身份证号11010519491231002X 卡号6222 0212 3456 7890 128 a{i}@b.cn"
             for i in range(3000)]
    path = tmp_path / "log.txt"
    path.write_text("\n".join(lines), encoding="utf-8")
    by_core, by_reference = io.StringIO(), io.StringIO()
    core_writer = _JsonFile(by_core, "log.txt")
    reference_writer = _JsonFile(by_reference, "log.txt")
    encoded = CORE.json_batches(_file_text(str(path)), _json_parts())
    assert encoded is not None
    for _, text in encoded:
        core_writer.joined(text)
    for piece in REFERENCE.scan_chunk_batches(_file_text(str(path))):
        reference_writer.findings(piece)
    core_writer.close(None)
    reference_writer.close(None)
    assert by_core.getvalue() == by_reference.getvalue()
    assert len(json.loads(by_core.getvalue())["findings"]) == 9000
