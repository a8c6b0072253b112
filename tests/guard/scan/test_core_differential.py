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

from guard.scan import _core
from guard.scan.engine import Scanner
from tests.guard.scan.test_fuzz import ALPHABET, PIECES, texts

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
@given(st.lists(st.sampled_from([*PIECES, "中文", "\n", " ", "，"]), min_size=1, max_size=40),
       st.lists(st.integers(min_value=1, max_value=50), min_size=1, max_size=20))
def test_streamed_pieces(parts: list[str], sizes: list[int]) -> None:
    text = "".join(parts) * 5
    pieces, pos, i = [], 0, 0
    while pos < len(text):
        n = sizes[i % len(sizes)]
        pieces.append(text[pos:pos + n])
        pos, i = pos + n, i + 1
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
