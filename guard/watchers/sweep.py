"""The at-rest sweep: the teller's folders are read for retained ID-card images and customer files.

`Sweeper.run(roots)` walks the folders (Desktop, Documents, Downloads, Pictures, the screenshot
folders, the receive folders of WeChat, QQ/TIM and DingTalk, temp), reads every image and document
with the session's scanner (images through OCR, documents as text) and hands each file holding
customer data to `Pipeline.handle` as one `file/retained` observation named by its masked path.
It is incremental: a state file keeps each file's size and modification time, saved as the sweep
goes, so the next sweep — or this one after a restart — reads only files changed since. It runs
at idle priority (this thread's nice value on Linux, BELOW_NORMAL on Windows) and sleeps to stay
within a CPU budget. `SweepWatcher` runs it on the policy's schedule.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from guard.events import EventType, FileKind
from guard.model import Action, Channel, Finding, Observation, Outcome
from guard.pipeline.pipeline import Pipeline, mask_text
from guard.watchers.base import FileScanner, Mover, PollingWatcher

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})
DOCUMENT_SUFFIXES = frozenset({".txt", ".csv", ".tsv", ".xlsx", ".xlsm", ".docx", ".pdf",
                               ".html", ".htm", ".json", ".xml", ".log", ".md", ".rtf"})
SKIP_DIRS = frozenset({".git", "node_modules", "__pycache__", ".cache", "$recycle.bin"})
STATE_SAVE_EVERY = 200
STATE_VERSION = 1


def default_folders(home: Path | None = None) -> list[Path]:
    """The folders a teller keeps files in, on this platform."""
    home = home or Path.home()
    docs = home / "Documents"
    folders = [home / "Desktop", docs, home / "Downloads", home / "Pictures",
               home / "Pictures" / "Screenshots", home / "桌面", home / "文档", home / "下载",
               home / "图片",
               docs / "WeChat Files", docs / "xwechat_files", docs / "Tencent Files",
               docs / "DingTalk", home / ".config" / "DingTalk"]
    if sys.platform == "win32":
        appdata = os.environ.get("APPDATA")
        if appdata:
            folders += [Path(appdata) / "DingTalk", Path(appdata) / "Tencent"]
        folders.append(Path(tempfile.gettempdir()))
    else:
        folders.append(Path(tempfile.gettempdir()))
    return folders


def lower_priority(whole_process: bool = False) -> str:
    """Run the calling thread (or, for the command line, the whole process) at idle priority;
    returns what was done. Children started afterwards (the OCR worker) inherit it on Linux."""
    try:
        if sys.platform == "win32":
            import ctypes

            kernel32 = ctypes.WinDLL("kernel32")  # type: ignore[attr-defined,unused-ignore]
            if whole_process:
                kernel32.SetPriorityClass(kernel32.GetCurrentProcess(), 0x00004000)
                return "process BELOW_NORMAL"
            kernel32.SetThreadPriority(kernel32.GetCurrentThread(), -1)  # BELOW_NORMAL
            return "thread BELOW_NORMAL"
        if whole_process:
            os.nice(19 - os.nice(0))
            return "process nice 19"
        if sys.platform.startswith("linux"):
            # On Linux a thread has its own nice value: lower only the sweep's thread.
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
            return "thread nice 19"
    except (OSError, AttributeError) as exc:
        log.info("sweep priority not lowered (%s)", exc)
    return "unchanged"


class CpuBudget:
    """Sleeps so this thread's CPU time stays within `share` of the wall time."""

    def __init__(self, share: float, clock: Callable[[], float] = time.monotonic,
                 cpu: Callable[[], float] = time.thread_time) -> None:
        self.share = share
        self._clock, self._cpu = clock, cpu
        self._wall0, self._cpu0 = clock(), cpu()
        self.slept = 0.0

    def pace(self, stop: threading.Event | None = None) -> None:
        used = self._cpu() - self._cpu0
        elapsed = self._clock() - self._wall0
        owed = used / self.share - elapsed
        if owed > 0.005:
            self.slept += owed
            if stop is not None:
                stop.wait(owed)
            else:
                time.sleep(owed)


@dataclass(frozen=True, slots=True)
class Retained:
    """A file holding customer data: its masked path and findings (never the values)."""

    masked_path: str
    findings: tuple[Finding, ...]
    quarantined: bool = False
    encrypted: bool = False
    """Quarantined sealed to IT's key (False: moved only, or not quarantined)."""


@dataclass
class SweepReport:
    """What one sweep did (counts, the retained files by masked path, unreadable ones)."""

    seen: int = 0
    scanned: int = 0
    unchanged: int = 0
    skipped: int = 0
    errors: int = 0
    retained: list[Retained] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)  # masked paths
    still_retained: list[str] = field(default_factory=list)  # unchanged, found before (masked)
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    stopped: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "seen": self.seen, "scanned": self.scanned, "unchanged": self.unchanged,
            "skipped": self.skipped, "errors": self.errors, "seconds": round(self.seconds, 3),
            "cpu_seconds": round(self.cpu_seconds, 3), "stopped": self.stopped,
            "retained": [{"file": r.masked_path, "quarantined": r.quarantined,
                          **({"quarantine_encrypted": r.encrypted} if r.quarantined else {}),
                          "findings": [{"type": f.type, "masked": f.masked,
                                        **({"bbox": list(f.box)} if f.box else {})}
                                       for f in r.findings]} for r in self.retained],
            "unreadable": self.unreadable, "still_retained": self.still_retained,
        }


class SweepState:
    """Size and modification time of every file already read, in a JSON file written
    atomically; a file whose record still matches is not read again."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.files: dict[str, list[int]] = {}
        self.load()

    def load(self) -> None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if data.get("version") == STATE_VERSION and isinstance(data.get("files"), dict):
                self.files = {str(k): list(v) for k, v in data["files"].items()}
        except FileNotFoundError:
            return
        except (OSError, ValueError, AttributeError) as exc:  # a damaged state: sweep it all
            log.warning("sweep state unreadable (%s); every file is read again",
                        exc.__class__.__name__)
            self.files = {}

    def unchanged(self, path: str, st: os.stat_result) -> bool:
        record = self.files.get(path)
        return record is not None and record[:2] == [st.st_size, st.st_mtime_ns]

    def found_before(self, path: str) -> int:
        record = self.files.get(path)
        return int(record[2]) if record is not None and len(record) > 2 else 0

    def mark(self, path: str, st: os.stat_result, found: int) -> None:
        self.files[path] = [st.st_size, st.st_mtime_ns, found]

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump({"version": STATE_VERSION, "files": self.files}, fh)
        if os.name != "nt":
            os.chmod(tmp, 0o600)
        os.replace(tmp, self.path)


def walk(roots: Iterable[Path]) -> Iterator[str]:
    """Every regular file under `roots` with a suffix the sweep reads, each once; symlinks are
    not followed (a link out of the teller's folders is not the teller's file)."""
    seen: set[str] = set()
    stack = [os.fspath(r) for r in roots]
    while stack:
        top = stack.pop()
        if os.path.isfile(top):
            entries = [top]
        else:
            try:
                with os.scandir(top) as it:
                    items = list(it)
            except OSError:
                continue
            entries = []
            for entry in items:
                try:
                    if entry.is_dir(follow_symlinks=False):
                        if entry.name.casefold() not in SKIP_DIRS:
                            stack.append(entry.path)
                    elif entry.is_file(follow_symlinks=False):
                        entries.append(entry.path)
                except OSError:
                    continue
        for path in sorted(entries):
            key = os.path.normcase(os.path.abspath(path))
            suffix = os.path.splitext(path)[1].lower()
            if key in seen or suffix not in IMAGE_SUFFIXES | DOCUMENT_SUFFIXES:
                continue
            seen.add(key)
            yield os.path.abspath(path)


class Sweeper:
    """One sweep over folders: read changed files, report each one holding customer data."""

    def __init__(self, pipeline: Pipeline, scanner: FileScanner, state: SweepState, *,
                 quarantine: Mover | None = None, max_file_bytes: int = 64 << 20,
                 cpu_share: float = 0.25,
                 progress: Callable[[SweepReport, str], None] | None = None) -> None:
        self._pipeline = pipeline
        self._scanner = scanner
        self._state = state
        self._quarantine = quarantine
        self._max = max_file_bytes
        self._cpu_share = cpu_share
        self._progress = progress

    def masked(self, path: str) -> str:
        try:
            return mask_text(path, self._pipeline.scan(path))
        except Exception:  # a scanner failure must not put a raw path anywhere
            return f"<{len(path)} characters>{Path(path).suffix[:8]}"

    def run(self, roots: Sequence[Path], stop: threading.Event | None = None,
            quarantine: bool = False) -> SweepReport:
        report = SweepReport()
        budget = CpuBudget(self._cpu_share)
        t0, c0 = time.monotonic(), time.thread_time()
        done_since_save = 0
        for path in walk(roots):
            if stop is not None and stop.is_set():
                report.stopped = True
                break
            report.seen += 1
            budget.pace(stop)  # every file, read or not: walking a big tree costs CPU too
            try:
                st = os.stat(path, follow_symlinks=False)
            except OSError:
                report.errors += 1
                continue
            if not stat.S_ISREG(st.st_mode) or st.st_size == 0 or st.st_size > self._max:
                report.skipped += 1
                continue
            if self._state.unchanged(path, st):
                report.unchanged += 1
                if self._state.found_before(path):
                    report.still_retained.append(self.masked(path))
                continue
            result = self._scanner.scan_file(path)
            report.scanned += 1
            if result.error:
                report.errors += 1
                report.unreadable.append(self.masked(path))
            findings = [f for f in result.findings
                        if f.score >= self._pipeline.policy().threshold(f.type)]
            if findings:
                report.retained.append(self._retained(path, tuple(findings), quarantine))
            # A file that could not be read is tried again next time (it may become readable).
            if not result.error:
                self._state.mark(path, st, len(findings))
            done_since_save += 1
            if done_since_save >= STATE_SAVE_EVERY:
                self._state.save()
                done_since_save = 0
            if self._progress is not None:
                self._progress(report, path)
        self._state.save()
        report.seconds = time.monotonic() - t0
        report.cpu_seconds = time.thread_time() - c0
        self._finish(report)
        return report

    def _retained(self, path: str, findings: tuple[Finding, ...], quarantine: bool) -> Retained:
        shown = self.masked(path)
        moved = encrypted = False
        meta: dict[str, object] = {"file": shown}
        document = next((f.type for f in findings if f.type == "ID_CARD"), None)
        if document or Path(path).suffix.lower() in IMAGE_SUFFIXES:
            meta["document"] = "ID_CARD" if document or any(
                f.type == "CN_RESIDENT_ID" for f in findings) else "image"
        if quarantine and self._quarantine is not None:
            try:
                encrypted = bool(self._quarantine.move(path, shown).encrypted)
                moved = True
            except OSError as exc:
                meta["quarantine_error"] = str(exc)[:200]
        meta["quarantined"] = moved
        if moved:
            # whether the teller's account can still read it back (no key in policy: it can)
            meta["quarantine_encrypted"] = encrypted
        self._pipeline.handle(Observation(Channel.FILE, FileKind.RETAINED, meta=meta),
                              findings=findings)
        return Retained(shown, findings, moved, encrypted)

    def _finish(self, report: SweepReport) -> None:
        self._pipeline.record(
            EventType.FILE_SWEEP_DONE, Channel.FILE, Action.AUDIT, Outcome.RECORDED,
            detail={"seen": report.seen, "scanned": report.scanned,
                    "unchanged": report.unchanged, "retained": len(report.retained),
                    "errors": report.errors, "stopped": report.stopped,
                    "seconds": round(report.seconds, 1)})


class SweepWatcher(PollingWatcher):
    """Runs the sweep on `[sweep]`'s schedule on its own low-priority thread (the `Watcher`
    protocol). The time of the last completed sweep is kept next to the state, so a restart
    neither sweeps again at once nor forgets one that was due; an interrupted sweep resumes
    (the files it read are unchanged in the state)."""

    name = "sweep"

    def __init__(self, pipeline: Pipeline, scanner: FileScanner | None, state_dir: Path, *,
                 quarantine: Mover | None = None,
                 folders: Callable[[], Sequence[Path]] | None = None) -> None:
        self._pipeline = pipeline
        self._scanner = scanner
        self._state_dir = state_dir
        self._quarantine = quarantine
        self._folders = folders or self._policy_folders
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._unavailable: str | None = None
        self.last_report: SweepReport | None = None

    def _policy_folders(self) -> list[Path]:
        section = self._pipeline.policy().sweep
        out = default_folders() if section.default_folders else []
        return out + [Path(os.path.expandvars(os.path.expanduser(f))) for f in section.folders]

    def start(self) -> None:
        if self._thread is not None:
            return
        if self._scanner is None:
            self._unavailable = "no scanner loaded"
            return
        self._start_thread("sweep")

    def _last_path(self) -> Path:
        return self._state_dir / "sweep-last.json"

    def due_in(self) -> float:
        """Seconds until the next sweep is due (0: now)."""
        interval = self._pipeline.policy().sweep.interval_h * 3600
        try:
            last = float(json.loads(self._last_path().read_text())["finished"])
        except (OSError, ValueError, KeyError, TypeError):
            return 0.0
        return max(0.0, last + interval - time.time())

    def _run(self) -> None:
        lower_priority()
        while not self._stop.is_set():
            section = self._pipeline.policy().sweep
            if not section.enabled:
                self._stop.wait(60)
                continue
            wait = self.due_in()
            if wait > 0:
                self._stop.wait(min(wait, 600))
                continue
            try:
                self.sweep_once()
            except Exception:  # the schedule outlives one failed sweep
                log.exception("scheduled sweep failed")
                self._stop.wait(600)

    def sweep_once(self) -> SweepReport:
        assert self._scanner is not None
        section = self._pipeline.policy().sweep
        sweeper = Sweeper(self._pipeline, self._scanner, SweepState(
            self._state_dir / "sweep-state.json"), quarantine=self._quarantine,
            max_file_bytes=int(section.max_file_mb * 1024 * 1024), cpu_share=section.cpu_share)
        report = sweeper.run([f for f in self._folders() if f.exists()], stop=self._stop,
                             quarantine=section.quarantine)
        self.last_report = report
        if not report.stopped:
            self._state_dir.mkdir(parents=True, exist_ok=True)
            self._last_path().write_text(json.dumps({"finished": time.time()}))
        return report
