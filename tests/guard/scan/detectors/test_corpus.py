"""Scores the engine on the labelled teller-text corpus (micro-F1 over exact type and span)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from guard.scan.engine import Scanner

CORPUS = Path(__file__).resolve().parent / "corpus" / "teller_corpus.jsonl"
RECORDS = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines() if line]


def _f1(records: list[dict]) -> tuple[float, int, int, int]:  # type: ignore[type-arg]
    scanner = Scanner(key=b"corpus-key")
    tp = fp = fn = 0
    for rec in records:
        gold = {(e["type"], e["start"], e["end"]) for e in rec["entities"]}
        pred = {(f.type, f.start, f.end) for f in scanner.scan_text(rec["text"])}
        tp += len(gold & pred)
        fp += len(pred - gold)
        fn += len(gold - pred)
    return 2 * tp / (2 * tp + fp + fn), tp, fp, fn


def test_corpus_covers_every_case_of_the_issue() -> None:
    cases = {rec["case"] for rec in RECORDS}
    assert len(RECORDS) >= 300
    assert {"serial", "serial_luhn", "id_wrong_check", "mobile_bad_prefix", "landline",
            "card_failing_luhn_ctx", "card_apostrophe", "digits_in_run", "timestamp",
            "order_tracking", "dates_versions", "amount", "csv", "json", "kv_log"} <= cases


@pytest.mark.parametrize(("subset", "floor"), [("all", 0.98), ("hard", 0.95)])
def test_micro_f1(subset: str, floor: float) -> None:
    records = RECORDS if subset == "all" else [r for r in RECORDS if r["hard"]]
    f1, tp, fp, fn = _f1(records)
    assert f1 >= floor, f"micro-F1 {f1:.3f} on {subset} (tp {tp}, fp {fp}, fn {fn})"
