"""The USB guard (machine service): a removable volume is announced to the teller before use,
and every file written to it is scanned when the write completes.

A poll thread (every `poll_s`) lists the removable volumes (`RemovableVolumes`, plus policy
``usb.mount_points``). A new volume is made read-only first where policy says so and the
platform can (``read_only_until_justified``), then a ``volume_mounted`` observation goes to the
pipeline: a justification (or an acknowledgement) opens a window of ``allow_window_min``
minutes (0: until the volume goes) in which it is writable; at the end of the window it is made
read-only again and the teller asked again; cancelling, no answer or ``block`` ejects it.
While mounted, watchdog (inotify) reports each file closed after writing or moved onto the
volume; a worker scans it (documents through the scanner's file reading, text streamed, at
most ``max_scan_mb`` of it: the event then says it was partly scanned) and hands a
``file_written`` observation to the pipeline; ``delete_on_findings`` deletes a copy with
customer data. A file that cannot be scanned is reported with the reason, never ignored.
"""

from __future__ import annotations

import io
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from guard.events import UsbKind
from guard.model import Action, Channel, Finding, Observation
from guard.pipeline.pipeline import DetailValue, Enforcement, Pipeline
from guard.platforms.base import PlatformUnavailable, RemovableVolumes, Volume
from guard.policy.decide import is_silent, relevant_findings
from guard.scan import documents

log = logging.getLogger(__name__)

POLL_S = 0.5
MB = 1024 * 1024


@runtime_checkable
class _StreamScanning(Protocol):
    """What `guard.scan.engine.Scanner` offers for a file given as an open binary stream."""

    def scan_stream(self, fh: Any, source: str) -> Any: ...


class _Head(io.RawIOBase):
    """The first `limit` bytes of a file, seekable, as a file of its own."""

    def __init__(self, raw: io.BufferedReader, limit: int) -> None:
        self._raw = raw
        self._limit = limit
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        want = min(len(buffer), self._limit - self._pos)
        if want <= 0:
            return 0
        self._raw.seek(self._pos)
        data = self._raw.read(want)
        buffer[:len(data)] = data
        self._pos += len(data)
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._limit}[whence]
        self._pos = max(0, min(self._limit, base + offset))
        return self._pos

    def tell(self) -> int:
        return self._pos


@dataclass(frozen=True, slots=True)
class FileScan:
    """What scanning one written file gave; `skipped` says what was not scanned and why."""

    findings: tuple[Finding, ...] = ()
    skipped: str = ""
    partly: bool = False


def scan_file(pipeline: Pipeline, path: Path, max_bytes: int) -> FileScan:
    """Scan `path` within `max_bytes`: text is streamed (only its first `max_bytes` when it is
    larger), documents (xlsx, docx, pdf) are read whole when within the bound."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            kind = documents.sniff(fh)
            partly = size > max_bytes
            if partly and kind != documents.TEXT:
                return FileScan(skipped=f"{kind} document over {max_bytes // MB} MB, "
                                        "not scanned")
            source: Any = io.BufferedReader(_Head(fh, max_bytes)) if partly else fh
            scanner = pipeline.scanner
            if isinstance(scanner, _StreamScanning):
                result = scanner.scan_stream(source, str(path))
                if result.error:
                    return FileScan(skipped=str(result.error))
                findings = tuple(result.findings)
            else:  # a text-only scanner (tests): the text, read within the bound
                text = documents.extract_text(source, kind) if kind != documents.TEXT else \
                    "".join(documents.TextReader(source).chunks())
                findings = tuple(pipeline.scan(text))
    except documents.UnreadableFileError as exc:
        return FileScan(skipped=str(exc))
    except OSError as exc:
        return FileScan(skipped=f"cannot read the file: {exc.strerror or type(exc).__name__}")
    if partly:
        return FileScan(findings, f"only the first {max_bytes // MB} MB of "
                                  f"{size / MB:.0f} MB scanned", True)
    return FileScan(findings)


@dataclass
class _Mounted:
    volume: Volume
    watch: Any = None
    allowed_until: float | None = None  # monotonic end of the window; inf: until removed
    asking: bool = False
    made_read_only: bool = False
    written: set[str] = field(default_factory=set)


class _Handler:
    """watchdog's callbacks (its observer thread): queue each completed write."""

    def __init__(self, put: Callable[[Path], None]) -> None:
        self._put = put

    def dispatch(self, event: Any) -> None:
        if getattr(event, "is_directory", False):
            return
        kind = getattr(event, "event_type", "")
        if kind == "closed":
            self._put(Path(os.fsdecode(event.src_path)))
        elif kind == "moved":
            self._put(Path(os.fsdecode(event.dest_path)))


class UsbGuard:
    """Guards removable volumes for the machine service (the `Watcher` protocol).

    `poll()` is one step of the poll thread and `drain()` handles queued files (tests call them
    directly); volume prompts run on their own threads, so one volume's question does not hold
    up another volume or the file scans."""

    name = "usb"

    def __init__(self, pipeline: Pipeline, volumes: RemovableVolumes, *, poll_s: float = POLL_S,
                 clock: Callable[[], float] = time.monotonic,
                 observer_factory: Callable[[], Any] | None = None) -> None:
        self._pipeline = pipeline
        self._volumes = volumes
        self._poll_s = poll_s
        self._clock = clock
        self._observer_factory = observer_factory
        self._lock = threading.RLock()
        self._mounted: dict[Path, _Mounted] = {}
        self._files: queue.Queue[Path | None] = queue.Queue()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._askers: list[threading.Thread] = []
        self._observer: Any = None
        self._problem: str | None = None

    # -- lifecycle
    def start(self) -> None:
        if self._threads:
            return
        self._stop.clear()
        try:
            self._observer = self._make_observer()
            self._observer.start()
        except (ImportError, OSError, PlatformUnavailable) as exc:
            self._problem = f"files written to removable drives are not scanned: {exc}"
            log.warning("usb guard: %s", self._problem)
            self._observer = None
        for target, name in ((self._run, "usb-guard"), (self._scan_loop, "usb-guard-files")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def _make_observer(self) -> Any:
        if self._observer_factory is not None:
            return self._observer_factory()
        from watchdog.observers import Observer

        return Observer()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        self._files.put(None)
        for thread in self._threads:
            thread.join(timeout)
        self._threads = []
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout)
            self._observer = None

    @property
    def state(self) -> str:
        with self._lock:
            problem = self._problem
        if problem:
            return f"unavailable: {problem}"
        if self._threads and not all(t.is_alive() for t in self._threads):
            return "unavailable: usb guard stopped"
        return "running"

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll()
            except Exception:  # the loop must survive anything the platform throws
                log.exception("usb guard poll failed")
            self._stop.wait(self._poll_s)

    def _scan_loop(self) -> None:
        while (path := self._files.get()) is not None:
            try:
                self.file_written(path)
            except Exception:
                log.exception("usb guard: scanning a written file failed")

    # -- volumes
    def mounted(self) -> list[Volume]:
        with self._lock:
            return [m.volume for m in self._mounted.values()]

    def poll(self) -> None:
        section = self._pipeline.policy().usb
        try:
            now_mounted = {v.mount_point: v for v in self._volumes.volumes(section.mount_points)}
        except PlatformUnavailable as exc:
            with self._lock:
                self._problem = str(exc)
            return
        with self._lock:
            gone = [p for p in self._mounted if p not in now_mounted]
            for point in gone:
                self._forget(point)
            new = [v for p, v in now_mounted.items() if p not in self._mounted]
            for volume in new:
                self._mounted[volume.mount_point] = _Mounted(volume)
                self._watch(volume)
            now = self._clock()
            expired = [m for m in self._mounted.values()
                       if m.allowed_until is not None and now >= m.allowed_until
                       and not m.asking]
        for volume in new:
            self._ask_async(volume, window_expired=False)
        for m in expired:
            log.info("usb: the window for %s ended", m.volume.mount_point)
            self._ask_async(m.volume, window_expired=True)

    def _watch(self, volume: Volume) -> None:
        if self._observer is None:
            return
        try:
            watch = self._observer.schedule(_Handler(self._queue_file), str(volume.mount_point),
                                            recursive=True)
        except OSError as exc:
            log.warning("usb: files on %s are not watched: %s", volume.mount_point, exc)
            return
        self._mounted[volume.mount_point].watch = watch

    def _forget(self, point: Path) -> None:
        m = self._mounted.pop(point, None)
        if m is not None and m.watch is not None and self._observer is not None:
            try:
                self._observer.unschedule(m.watch)
            except (KeyError, OSError):
                pass  # the watch ended with the mount

    def _queue_file(self, path: Path) -> None:
        self._files.put(path)

    def _ask_async(self, volume: Volume, *, window_expired: bool) -> None:
        with self._lock:
            m = self._mounted.get(volume.mount_point)
            if m is None or m.asking:
                return
            m.asking = True
            m.allowed_until = None
        thread = threading.Thread(target=self.volume_mounted, args=(volume, window_expired),
                                  name="usb-guard-ask", daemon=True)
        with self._lock:
            self._askers = [t for t in self._askers if t.is_alive()] + [thread]
        thread.start()

    def wait_prompts(self, timeout: float = 30.0) -> bool:
        """Wait until no volume prompt is running (tests); False when one still is."""
        deadline = time.monotonic() + timeout
        with self._lock:
            askers = list(self._askers)
        for thread in askers:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in askers)

    def volume_mounted(self, volume: Volume, window_expired: bool = False) -> None:
        """Warn about `volume`, ask per policy and enforce the answer. Its own thread."""
        try:
            self._volume_mounted(volume, window_expired)
        finally:
            with self._lock:
                m = self._mounted.get(volume.mount_point)
                if m is not None:
                    m.asking = False

    def _volume_mounted(self, volume: Volume, window_expired: bool) -> None:
        section = self._pipeline.policy().usb
        detail: dict[str, DetailValue] = {}
        if section.read_only_until_justified:
            made = self._volumes.remount(volume, read_only=True)
            detail["read_only"] = "yes" if made else "not_possible"
            with self._lock:
                m = self._mounted.get(volume.mount_point)
                if m is not None:
                    m.made_read_only = made
        meta: dict[str, object] = {"volume": str(volume.mount_point), "device": volume.device,
                                   "fs": volume.fs_type}
        if window_expired:
            meta["window_expired"] = True
        observation = Observation(Channel.USB, UsbKind.VOLUME_MOUNTED, meta=meta)
        decision = self._pipeline.decide(observation, ())

        def allow() -> bool:
            return self._allow(volume, detail)

        def eject() -> bool:
            ok = self._volumes.eject(volume)
            detail["volume_state"] = "ejected" if ok else "eject_failed"
            if ok:
                with self._lock:
                    self._forget(volume.mount_point)
            return ok

        if is_silent(decision) or decision.action in (Action.AUDIT, Action.NOTIFY):
            allow()
            self._pipeline.handle(observation, Enforcement(), findings=(), detail=detail)
            return
        self._pipeline.handle(observation, Enforcement(allow=allow, block=eject), findings=(),
                              detail=detail)

    def _allow(self, volume: Volume, detail: dict[str, DetailValue]) -> bool:
        section = self._pipeline.policy().usb
        with self._lock:
            m = self._mounted.get(volume.mount_point)
            if m is None:
                return False
            minutes = section.allow_window_min
            m.allowed_until = (self._clock() + minutes * 60) if minutes else None
            made_ro = m.made_read_only
        detail["volume_state"] = "allowed"
        if minutes:
            detail["allowed_min"] = minutes
        if made_ro:
            writable = self._volumes.remount(volume, read_only=False)
            detail["read_only"] = "no" if writable else "remount_failed"
        return True

    # -- files
    def drain(self) -> None:
        """Handle every file queued so far on the calling thread (tests)."""
        while True:
            try:
                path = self._files.get_nowait()
            except queue.Empty:
                return
            if path is not None:
                self.file_written(path)

    def _volume_of(self, path: Path) -> Volume | None:
        with self._lock:
            for point, m in self._mounted.items():
                if point == path or point in path.parents:
                    return m.volume
        return None

    def file_written(self, path: Path) -> None:
        """Scan one file written to a removable volume and hand it to the pipeline."""
        volume = self._volume_of(path)
        if volume is None or not path.is_file():
            return  # not on a guarded volume (any more), or already gone
        section = self._pipeline.policy().usb
        result = scan_file(self._pipeline, path, int(section.max_scan_mb * MB))
        try:
            size = path.stat().st_size
        except OSError:
            size = -1
        meta: dict[str, object] = {"volume": str(volume.mount_point),
                                   "file": str(path.relative_to(volume.mount_point)),
                                   "size": size}
        if result.skipped:
            meta["skipped"] = result.skipped
        if result.partly:
            meta["partly_scanned"] = True
        observation = Observation(Channel.USB, UsbKind.FILE_WRITTEN, meta=meta)
        detail: dict[str, DetailValue] = {}

        def delete() -> bool:
            try:
                path.unlink()
            except OSError as exc:
                log.warning("usb: %s not deleted: %s", path.name, exc.strerror)
                detail["file_state"] = "delete_failed"
                return False
            detail["file_state"] = "deleted"
            return True

        if section.delete_on_findings and relevant_findings(result.findings,
                                                            self._pipeline.policy()):
            decision = self._pipeline.decide(observation, result.findings)
            if decision.action is not Action.BLOCK:  # block deletes through the pipeline
                delete()
        self._pipeline.handle(observation, Enforcement(block=delete), findings=result.findings,
                              detail=detail)


class _NoVolumes:
    """The volumes of a platform where none can be listed: `volumes()` says why."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def volumes(self, mount_points: tuple[str, ...] = ()) -> list[Volume]:
        raise PlatformUnavailable(self.reason)

    def remount(self, volume: Volume, *, read_only: bool) -> bool:
        return False

    def eject(self, volume: Volume) -> bool:
        return False


def usb_channel(volumes_factory: Callable[[], RemovableVolumes]
                ) -> Callable[[Pipeline], UsbGuard]:
    """The machine service's channel factory: a `UsbGuard` on the platform's volumes."""
    def make(pipeline: Pipeline) -> UsbGuard:
        try:
            volumes = volumes_factory()
        except PlatformUnavailable as exc:
            volumes = _NoVolumes(str(exc))
        return UsbGuard(pipeline, volumes)
    return make
