"""Screenshot folders: a new image file written there is read and handed over as it is written.

The platform's screenshot folders (`default_folders`: ~/Pictures/Screenshots, ~/Pictures,
~/Desktop; on Windows also Pictures\\Screenshots under the user profile and OneDrive) plus the
policy's `[screen] folders` are watched with watchdog (inotify, ReadDirectoryChangesW). A file
is read once its size has stopped changing; its first bytes decide whether it is an image. The
observation names the file by its masked path (a path may itself hold an identifier). A decision
of `block` — or a `justify` the teller cancels — moves the file to the quarantine.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from guard.events import ScreenKind
from guard.model import Channel, Finding, Observation
from guard.pipeline.pipeline import Enforcement, Pipeline, mask_text
from guard.watchers.base import FileScanner, Mover, ThreadedWatcher

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})
SETTLE_S = 0.4  # a file whose size has not changed for this long is written


def default_folders(home: Path | None = None) -> list[Path]:
    """Where this platform's capture tools put screenshots."""
    home = home or Path.home()
    folders = [home / "Pictures" / "Screenshots", home / "Pictures", home / "Desktop",
               home / "图片", home / "桌面"]
    if sys.platform == "win32":
        profile = Path(os.environ.get("USERPROFILE", str(home)))
        folders += [profile / "Pictures" / "Screenshots", profile / "OneDrive" / "Pictures" /
                    "Screenshots", profile / "Videos" / "Captures"]
    return folders


def expand(folder: str) -> Path:
    return Path(os.path.expandvars(os.path.expanduser(folder)))


def masked_path(pipeline: Pipeline, path: str) -> str:
    """`path` with any identifier in it masked (scanned like any text)."""
    try:
        return mask_text(path, pipeline.scan(path))
    except Exception:  # a scanner failure must not put a raw path in the event
        return f"<{len(path)} characters>{Path(path).suffix[:8]}"


class ScreenshotFolderWatcher(ThreadedWatcher):
    """Reads new image files in screenshot folders (the `Watcher` protocol)."""

    name = "screenshot_files"

    def __init__(self, pipeline: Pipeline, scanner: FileScanner | None, *,
                 quarantine: Mover | None = None,
                 folders: Callable[[], Sequence[Path]] | None = None,
                 settle_s: float = SETTLE_S) -> None:
        self._pipeline = pipeline
        self._scanner = scanner
        self._quarantine = quarantine
        self._folders = folders or self._policy_folders
        self._settle_s = settle_s
        self._cond = threading.Condition()
        self._pending: dict[str, tuple[float, int]] = {}  # path -> (last change, size then)
        self._stopping = False
        self._observer: Any = None
        self._thread: threading.Thread | None = None
        self._unavailable: str | None = None
        self.watched: list[Path] = []
        self.on_handled: Callable[[Any], None] | None = None

    def _policy_folders(self) -> list[Path]:
        section = self._pipeline.policy().screen
        out = default_folders() if section.default_folders else []
        return out + [expand(f) for f in section.folders]

    def start(self) -> None:
        if self._thread is not None:
            return
        if not self._pipeline.policy().screen.files:
            self._unavailable = "screenshot folders turned off by policy"
            return
        if self._scanner is None:
            self._unavailable = "no image scanner loaded"
            return
        try:
            from watchdog.events import FileSystemEvent, FileSystemEventHandler
            from watchdog.observers import Observer
        except ImportError as exc:
            self._unavailable = f"watchdog is not installed ({exc})"
            return
        watcher = self

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event: FileSystemEvent) -> None:
                if event.is_directory or event.event_type not in (
                        "created", "modified", "moved", "closed"):
                    return
                raw = getattr(event, "dest_path", "") or event.src_path
                watcher.noticed(os.fsdecode(raw))

        observer = Observer()
        seen: set[str] = set()
        for folder in self._folders():
            key = os.path.normcase(os.path.abspath(folder))
            if key in seen or not folder.is_dir():
                continue
            seen.add(key)
            try:
                observer.schedule(Handler(), str(folder), recursive=False)
                self.watched.append(folder)
            except OSError as exc:
                log.warning("screenshot folder not watched (%s)", exc.strerror or exc)
        self._stopping = False
        observer.daemon = True
        observer.start()
        self._observer = observer
        self._thread = threading.Thread(target=self._run, name="screenshot-files", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(2.0)
            self._observer = None
        if self._thread is not None:
            self._thread.join(2.0)
            self._thread = None

    # -- watchdog's thread
    def noticed(self, path: str) -> None:
        if Path(path).suffix.lower() not in IMAGE_SUFFIXES:
            return
        with self._cond:
            self._pending[path] = (time.monotonic(), -1)
            self._cond.notify_all()

    # -- the worker: wait for each file to settle, then read it
    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return
                self._cond.wait(self._settle_s / 2)
                now = time.monotonic()
                ready = []
                for path, (since, size) in list(self._pending.items()):
                    try:
                        current = os.stat(path).st_size
                    except OSError:
                        del self._pending[path]  # gone again (a temp file renamed away)
                        continue
                    if current != size:
                        self._pending[path] = (now, current)
                    elif now - since >= self._settle_s:
                        del self._pending[path]
                        ready.append(path)
            for path in ready:
                try:
                    self.handle_file(path)
                except Exception:  # one bad file must not end the channel
                    log.exception("screenshot file not handled")

    def handle_file(self, path: str) -> None:
        """Read one file and hand it over (the worker thread; tests call it directly)."""
        assert self._scanner is not None
        shown = masked_path(self._pipeline, path)
        meta: dict[str, object] = {"file": shown}
        findings: list[Finding] = []
        result = self._scanner.scan_file(path)
        if result.error:
            meta["scan_error"] = result.error[:300]
        else:
            findings = list(result.findings)
        if findings:
            meta["boxes"] = ";".join(",".join(str(v) for v in f.box) for f in findings
                                     if f.box is not None)[:480]
        detail: dict[str, str | int | float | bool | None] = {}  # read after enforcement

        def quarantine() -> bool:
            if self._quarantine is None:
                return False
            try:
                moved = self._quarantine.move(path, shown)
            except OSError as exc:
                log.warning("screenshot file not quarantined: %s", exc)
                return False
            detail["quarantined"] = True
            detail["quarantine_encrypted"] = bool(moved.encrypted)  # sealed to IT's key or not
            return True

        handled = self._pipeline.handle(
            Observation(Channel.SCREEN, ScreenKind.SCREENSHOT_FILE, meta=meta),
            Enforcement(block=quarantine), findings=findings, detail=detail)
        if self.on_handled is not None:
            self.on_handled(handled)
