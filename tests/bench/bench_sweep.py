"""Benchmark: a sweep of 10,000 files (documents, a few images, clean ones): files/s, CPU share.

    python tests/bench/bench_sweep.py [--files 10000] [--images 20] [--cpu-share 0.25]

Renders a tree like a teller's Desktop/Documents/Downloads (text notes, CSV customer lists, a few
ID-card images), runs `Sweeper` at idle priority within the CPU budget, then a second,
incremental sweep, and prints files/s, the sweep's CPU share (its thread plus the OCR worker) and
the wall time of each.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from guard.app.image_scanner import ImageCapableScanner
from guard.scan.engine import Scanner
from guard.watchers.sweep import Sweeper, SweepState, lower_priority
from tests.guard.scan.test_images import encode, render_id_card
from tests.support.core import Core

ID = "11010519491231002X"


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def build(root: Path, files: int, images: int) -> dict[str, int]:
    """The tree; returns how many files of each kind hold customer data (by suffix)."""
    card = encode(render_id_card(ID), "PNG")
    folders = [root / d for d in ("Desktop", "Documents", "Downloads", "Documents/WeChat Files")]
    for f in folders:
        f.mkdir(parents=True, exist_ok=True)
    expected = {".csv": 0, ".png": images}
    for i in range(files - images):
        folder = folders[i % len(folders)]
        if i % 10 == 0:
            expected[".csv"] += 1
            (folder / f"客户名单{i}.csv").write_text(
                f"姓名,身份证号,手机\n张三,{ID},13812345678\n李四,110105194912310021,13912345678\n",
                encoding="utf-8")
        else:
            (folder / f"note{i}.txt").write_text("会议纪要：明天九点开会，讨论网点排班。\n" * 20,
                                                 encoding="utf-8")
    for i in range(images):
        (folders[0] / f"身份证{i}.png").write_bytes(card)
    return expected


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=10_000)
    ap.add_argument("--images", type=int, default=20)
    ap.add_argument("--cpu-share", type=float, default=0.25)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "home"
        expected = build(root, args.files, args.images)
        print(f"priority: {lower_priority()}")
        core = Core()
        scanner = ImageCapableScanner(Scanner(key=b"k" * 32))
        core.pipeline.scanner = scanner
        for label in ("first", "incremental"):
            sweeper = Sweeper(core.pipeline, scanner, SweepState(Path(tmp) / "state.json"),
                              cpu_share=args.cpu_share)
            c0 = children_cpu()
            t0 = time.monotonic()
            report = sweeper.run([root])
            wall = time.monotonic() - t0
            cpu = report.cpu_seconds + (children_cpu() - c0)
            worker_note = "" if scanner.ocr.running() else " (OCR worker counted after exit)"
            print(f"{label}: {report.seen} files, {report.scanned} read, {report.unchanged} "
                  f"unchanged, {len(report.retained)} retained in {wall:.1f} s -> "
                  f"{report.seen / wall:.0f} files/s; sweep thread CPU {report.cpu_seconds:.1f} s "
                  f"= {report.cpu_seconds / wall:.0%} of one core (budget {args.cpu_share:.0%}); "
                  f"with the OCR worker {cpu / wall:.0%}{worker_note}")
            if label == "first":
                # the customer lists are one in ten of the files that are not images (998 of
                # 9,980 by default), so 1,018 retained is every file that holds customer data
                for suffix, kind in ((".png", "ID-card images"), (".csv", "customer lists")):
                    got = sum(1 for r in report.retained if r.masked_path.endswith(suffix))
                    print(f"  retained {got} of {expected[suffix]} {kind}")
                print(f"  unreadable {len(report.unreadable)}, errors {report.errors}")
        scanner.stop()
        print(f"OCR worker CPU (after exit) {children_cpu():.1f} s; cores: {os.cpu_count()}")


if __name__ == "__main__":
    main()
