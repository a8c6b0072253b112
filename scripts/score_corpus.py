"""Scores `teller-guard scan --format json` against a labelled JSONL corpus of teller texts.

    .venv/bin/python scripts/score_corpus.py [CORPUS.jsonl] [--stdin] [--min-confidence C]
                                             [--quiet] [--json-out PATH]

Each corpus line is {"text": ..., "entities": [{"type", "start", "end"}], optionally "case"
and "hard"}. A finding matches a label when type, start and end all agree. By default every text
is written byte-exact (UTF-8, line endings untouched) to its own file in a temporary folder and
the whole folder is scanned by one `teller-guard scan` process; `--stdin` instead pipes each
text to `teller-guard scan --format json -` (slower, one process per text).

Prints per-type and overall micro precision/recall/F1, the same for the texts marked hard, and
every miss and false alarm with the value masked and digits in the context hidden.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = ROOT / "tests" / "guard" / "scan" / "detectors" / "corpus" / "teller_corpus.jsonl"
DIGITS = set("0123456789０１２３４５６７８９")


@dataclass(frozen=True)
class Span:
    """One labelled or reported identifier: which text, its type and its character span."""

    doc: int
    type: str
    start: int
    end: int


def _command() -> list[str]:
    exe = Path(sys.executable).with_name("teller-guard")
    if exe.exists():
        return [str(exe)]
    return [sys.executable, "-m", "guard.cli"]


def _scan_batch(texts: list[str], min_confidence: float | None) -> list[list[dict[str, object]]]:
    extra = [] if min_confidence is None else ["--min-confidence", str(min_confidence)]
    with tempfile.TemporaryDirectory(prefix="tg-corpus-") as tmp:
        paths = []
        for i, text in enumerate(texts):
            path = Path(tmp) / f"{i:05d}.txt"
            path.write_bytes(text.encode("utf-8"))
            paths.append(str(path))
        proc = subprocess.run([*_command(), "scan", "--format", "json", *extra, *paths],
                              capture_output=True, check=False)
        if proc.returncode not in (0, 1):
            raise SystemExit(f"teller-guard scan failed with status {proc.returncode}: "
                             f"{proc.stderr.decode('utf-8', 'replace')[-2000:]}")
        by_source: dict[str, list[dict[str, object]]] = {}
        for line in proc.stdout.decode("utf-8").splitlines():
            if line.strip():
                record = json.loads(line)
                if "error" in record:
                    raise SystemExit(f"scan error on {record['source']}: {record['error']}")
                by_source[record["source"]] = record["findings"]
        return [by_source.get(p, []) for p in paths]


def _scan_stdin(texts: list[str], min_confidence: float | None) -> list[list[dict[str, object]]]:
    extra = [] if min_confidence is None else ["--min-confidence", str(min_confidence)]
    results = []
    for text in texts:
        proc = subprocess.run([*_command(), "scan", "--format", "json", *extra, "-"],
                              input=text.encode("utf-8"), capture_output=True, check=False)
        if proc.returncode not in (0, 1):
            raise SystemExit(f"teller-guard scan failed with status {proc.returncode}")
        record = json.loads(proc.stdout.decode("utf-8").splitlines()[0])
        results.append(record.get("findings", []))
    return results


def mask(value: str) -> str:
    if len(value) <= 7:
        return "*" * len(value)
    return value[:3] + "*" * (len(value) - 7) + value[-4:]


def _show(text: str, span: Span) -> str:
    def hide(s: str) -> str:
        hidden = "".join("#" if c in DIGITS else c for c in s)
        return hidden.replace("\r", "\\r").replace("\n", "\\n")

    before = hide(text[max(0, span.start - 12):span.start])
    after = hide(text[span.end:span.end + 12])
    value = mask(text[span.start:span.end])
    return f"{span.type:15} [{span.start},{span.end}) …{before}⟦{value}⟧{after}…"


def prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    p = tp / (tp + fp) if tp + fp else 1.0
    r = tp / (tp + fn) if tp + fn else 1.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", nargs="?", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--stdin", action="store_true", help="one scan process per text via '-'")
    parser.add_argument("--min-confidence", type=float, default=None)
    parser.add_argument("--quiet", action="store_true", help="scores only, no misses listed")
    parser.add_argument("--json-out", type=Path, help="also write the scores as JSON here")
    args = parser.parse_args()

    records = [json.loads(line) for line in args.corpus.read_text(encoding="utf-8").splitlines()
               if line.strip()]
    texts = [rec["text"] for rec in records]
    found = (_scan_stdin if args.stdin else _scan_batch)(texts, args.min_confidence)

    gold = {Span(i, e["type"], e["start"], e["end"]) for i, rec in enumerate(records)
            for e in rec["entities"]}
    pred = {Span(i, str(f["type"]), int(f["start"]), int(f["end"]))  # type: ignore[call-overload]
            for i, fs in enumerate(found) for f in fs}
    tp, fp, fn = gold & pred, pred - gold, gold - pred
    hard_docs = {i for i, rec in enumerate(records) if rec.get("hard")}

    scores: dict[str, dict[str, float]] = {}
    print(f"corpus {args.corpus.name}: {len(records)} texts, {len(gold)} labels, "
          f"{len(hard_docs)} hard texts")
    print(f"{'type':16} {'tp':>4} {'fp':>4} {'fn':>4} {'P':>6} {'R':>6} {'F1':>6}")
    types = sorted({s.type for s in gold | pred})
    count = Counter
    tps, fps, fns = count(s.type for s in tp), count(s.type for s in fp), count(s.type for s in fn)
    for kind in types:
        p, r, f = prf(tps[kind], fps[kind], fns[kind])
        scores[kind] = {"tp": tps[kind], "fp": fps[kind], "fn": fns[kind], "p": p, "r": r, "f1": f}
        print(f"{kind:16} {tps[kind]:4} {fps[kind]:4} {fns[kind]:4} {p:6.3f} {r:6.3f} {f:6.3f}")
    for label, docs in (("ALL (micro)", None), ("HARD (micro)", hard_docs)):
        t = sum(1 for s in tp if docs is None or s.doc in docs)
        fpos = sum(1 for s in fp if docs is None or s.doc in docs)
        fneg = sum(1 for s in fn if docs is None or s.doc in docs)
        p, r, f = prf(t, fpos, fneg)
        scores[label] = {"tp": t, "fp": fpos, "fn": fneg, "p": p, "r": r, "f1": f}
        print(f"{label:16} {t:4} {fpos:4} {fneg:4} {p:6.3f} {r:6.3f} {f:6.3f}")

    if not args.quiet:
        for title, spans in (("misses (labelled, not reported)", fn),
                             ("false alarms (reported, not labelled)", fp)):
            print(f"\n{title}: {len(spans)}")
            for s in sorted(spans, key=lambda s: (records[s.doc].get("case", ""), s.doc, s.start)):
                print(f"  #{s.doc:<4} {records[s.doc].get('case', ''):24} "
                      f"{_show(records[s.doc]['text'], s)}")
    if args.json_out:
        args.json_out.write_text(json.dumps(scores, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
