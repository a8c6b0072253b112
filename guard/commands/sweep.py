"""`teller-guard sweep`: look through the teller's folders for retained ID-card images and files
holding customer data.

    teller-guard sweep [--format text|json] [--state FILE] [--quarantine] [--full] [PATH...]

Without PATHs the platform's teller folders are swept (Desktop, Documents, Downloads, Pictures,
screenshot folders, WeChat Files, Tencent Files, DingTalk, temp). Images are read through OCR,
documents as text. Incremental: only files changed since the last sweep with the same state file
are read (`--full` reads everything); an interrupted sweep resumes. Runs at idle priority within a
CPU budget, with a progress line on a terminal. Prints the masked list of files to remove (text),
or one JSON report. `--events FILE` appends each event (masked findings only) as a JSON line.

Exit status: 0 nothing retained; 1 files with customer data found; 2 bad usage.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from guard.model import Event
    from guard.pipeline.prompt import PromptAnswer, PromptRequest
    from guard.watchers.sweep import SweepReport


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("sweep", help="find retained ID-card images and customer files",
                       description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("paths", nargs="*", metavar="PATH",
                   help="folders or files (default: the teller's folders)")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.add_argument("--state", type=Path,
                   help="state file (default: sweep-state.json in the data directory)")
    p.add_argument("--full", action="store_true", help="read every file, not only changed ones")
    p.add_argument("--quarantine", action="store_true",
                   help="move files holding customer data to the guard's quarantine")
    p.add_argument("--events", type=Path, help="append the events as JSON Lines to this file")
    p.add_argument("--cpu-share", type=float, default=None,
                   help="CPU budget as a share of one core (default: the policy's [sweep])")
    p.set_defaults(func=run)


class _JsonLinesSink:
    def __init__(self, path: Path | None) -> None:
        self._path = path
        self._lock = threading.Lock()
        self.count = 0

    def record(self, event: Event) -> None:
        self.count += 1
        if self._path is None:
            return
        with self._lock, open(self._path, "a", encoding="utf-8") as fh:
            fh.write(event.to_json() + "\n")


class _Quiet:
    """The command line's prompter: nobody is asked; the report lists the files instead."""

    def notify(self, request: PromptRequest) -> None:
        return None

    def ask(self, request: PromptRequest) -> PromptAnswer:
        from guard.pipeline.prompt import PromptAnswer

        return PromptAnswer(proceed=False, timed_out=True)


def run(args: argparse.Namespace) -> int:
    from guard import identity, paths
    from guard.app.image_scanner import ImageCapableScanner
    from guard.enforce.quarantine import Quarantine
    from guard.pipeline.pipeline import Pipeline
    from guard.policy.store import PolicyStore
    from guard.scan.engine import Scanner
    from guard.watchers.sweep import Sweeper, SweepState, default_folders, lower_priority

    if args.cpu_share is not None and not 0 < args.cpu_share <= 1:
        print("teller-guard sweep: --cpu-share must be in (0, 1]", file=sys.stderr)
        return 2
    data = paths.data_dir()
    store = PolicyStore(cache_dir=data)
    policy = store.reload()
    roots = [Path(p) for p in args.paths] or [f for f in default_folders() if f.exists()]
    missing = [str(r) for r in roots if not r.exists()]
    if missing:
        print(f"teller-guard sweep: no such file or folder: {', '.join(missing)}",
              file=sys.stderr)
        return 2
    priority = lower_priority(whole_process=True)
    scanner = ImageCapableScanner(Scanner(key=identity.hash_key(data),
                                          min_confidence=min(policy.thresholds.values())))
    sink = _JsonLinesSink(args.events)
    pipeline = Pipeline(scanner=scanner, policy=store.current, prompter=_Quiet(),
                        sink=sink, device=identity.device(data), teller=identity.teller())
    state_path = args.state or data / "sweep-state.json"
    state = SweepState(state_path)
    if args.full:
        state.files = {}
    tty = sys.stderr.isatty() and args.format == "text"

    def progress(r: SweepReport, path: str) -> None:
        if tty:
            sys.stderr.write(f"\r\x1b[K扫描 {r.scanned} 个文件 (未变 {r.unchanged}) · "
                             f"发现 {len(r.retained)} 个留存客户资料文件")
            sys.stderr.flush()

    sweeper = Sweeper(pipeline, scanner, state,
                      quarantine=Quarantine(data / "quarantine") if args.quarantine else None,
                      max_file_bytes=int(policy.sweep.max_file_mb * 1024 * 1024),
                      cpu_share=args.cpu_share or policy.sweep.cpu_share, progress=progress)
    try:
        report = sweeper.run(roots, quarantine=args.quarantine)
    finally:
        scanner.stop()
        if tty:
            sys.stderr.write("\r\x1b[K")
    if args.format == "json":
        out = report.as_dict()
        out["priority"] = priority
        out["state"] = str(state_path)
        print(json.dumps(out, ensure_ascii=False))
    else:
        _print_text(report)
    return 1 if report.retained or report.still_retained else 0


def _print_text(r: SweepReport) -> None:
    retained = r.retained
    if retained:
        print("请删除以下留存客户资料的文件 (Files holding customer data — please remove):")
        for item in retained:
            kinds = ", ".join(sorted({f.type for f in item.findings}))
            moved = "  [已隔离 quarantined]" if item.quarantined else ""
            print(f"  {item.masked_path}  ({kinds}){moved}")
    if r.still_retained:
        print("上次检查已发现、仍未删除 (found before, still there):")
        for path in r.still_retained:
            print(f"  {path}")
    for path in r.unreadable:
        print(f"  无法读取 (unreadable): {path}")
    print(f"共检查 {r.seen} 个文件：读取 {r.scanned}，未变 {r.unchanged}，"
          f"跳过 {r.skipped}，无法读取 {r.errors}；留存客户资料 {len(retained)} 个"
          f"（{r.seconds:.1f} 秒）")
