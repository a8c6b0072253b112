"""The print guard (machine service): every job on a guarded queue is held, scanned, and
released or cancelled by the service as policy and the teller decide.

A poll thread (every 200 ms) keeps the spooler's queues guarded as `[print]` says (every queue
except `exempt_queues`) and notices each new job; a small worker pool reads the job's document
(PDF and text through `guard.scan.documents`, PostScript through Ghostscript's text device),
scans it, and hands a ``job_held`` observation to the pipeline. The decision's enforcement
releases or cancels the job itself: audit and notify release it, confirm and justify ask the
job owner's session (`RemotePrompter`; no answer, or no session: cancel), block cancels it.
A job still unresolved after the pipeline returns (a failed prompt, an unknown action) is
cancelled: the safe choice.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from guard.events import PrintKind
from guard.model import Action, Channel, Observation
from guard.pipeline.pipeline import DetailValue, Enforcement, Pipeline
from guard.platforms.base import (
    PlatformUnavailable,
    PrintDocument,
    PrintJob,
    PrintSpooler,
    SpoolerError,
)
from guard.policy.decide import is_silent, relevant_findings
from guard.scan import documents

log = logging.getLogger(__name__)

POLL_S = 0.2
QUEUE_SYNC_S = 2.0
GS_TIMEOUT_S = 30.0


@runtime_checkable
class _ReportsWeakness(Protocol):
    """A spooler whose hold tellers may be able to lift on some queues (the Windows spooler,
    where "Manage documents" lets a job's owner resume it) says why, per queue."""

    def weakness(self, queue: str) -> str | None: ...


@dataclass(frozen=True, slots=True)
class DocumentText:
    """What could be read from a job's document: its text, pages and producing application;
    `skipped` says why (part of) it was not read ("" when all of it was)."""

    text: str = ""
    pages: int | None = None
    app: str = ""
    skipped: str = ""


def _pdf(path: Path) -> DocumentText:
    import pypdf

    with open(path, "rb") as fh:
        reader = pypdf.PdfReader(fh)
        if reader.is_encrypted:
            try:
                reader.decrypt("")
            except Exception:  # pypdf's own errors for unsupported or wrong passwords
                return DocumentText(skipped="encrypted PDF, not scanned")
        meta = reader.metadata
        app = str((meta.creator or meta.producer or "") if meta is not None else "")[:200]
        pages = len(reader.pages)
        fh.seek(0)
        # pages without a text layer are rendered and read by OCR there (bounded)
        read = list(documents.pdf_pages(fh))
    text = "\n".join(page.text for page in read)
    unread = [page.skipped for page in read if page.skipped]
    skipped = f"{len(unread)} page(s) not read ({unread[0]})" if unread else ""
    if not text.strip():
        return DocumentText(pages=pages, app=app,
                            skipped=f"PDF without a text layer, not scanned"
                                    f"{': ' + skipped if skipped else ''}")
    return DocumentText(text=text, pages=pages, app=app, skipped=skipped)


def _postscript(path: Path) -> DocumentText:
    gs = shutil.which("gs")
    if gs is None:
        return DocumentText(skipped="PostScript not scanned: Ghostscript (gs) is not installed")
    try:
        out = subprocess.run([gs, "-q", "-dNOPAUSE", "-dBATCH", "-dSAFER", "-sDEVICE=txtwrite",
                              "-sOutputFile=-", str(path)], capture_output=True,
                             timeout=GS_TIMEOUT_S, check=False, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return DocumentText(skipped=f"PostScript not scanned: over {GS_TIMEOUT_S:.0f} s")
    if out.returncode != 0:
        return DocumentText(skipped="damaged PostScript, not scanned")
    return DocumentText(text=out.stdout.decode("utf-8", errors="replace"))


def _text(path: Path) -> DocumentText:
    with open(path, "rb") as fh:
        reader = documents.TextReader(fh)
        parts: list[str] = []
        for chunk in reader.chunks():
            parts.append(chunk)
        return DocumentText(text="".join(parts))


def read_document(path: Path, max_bytes: int) -> DocumentText:
    """The text of a spooled document (PDF, PostScript, plain text), decided by its content;
    anything else, or a document over `max_bytes`, comes back with `skipped` set."""
    try:
        size = path.stat().st_size
        if size > max_bytes:
            return DocumentText(skipped=f"document over {max_bytes // (1024 * 1024)} MB, "
                                        "not scanned")
        with open(path, "rb") as fh:
            head = fh.read(16)
        if head.startswith(b"%PDF-"):
            return _pdf(path)
        if head.startswith(b"%!") or head.startswith(b"\x04%!"):
            return _postscript(path)
        return _text(path)
    except documents.UnreadableFileError as exc:
        return DocumentText(skipped=str(exc))
    except OSError as exc:
        return DocumentText(skipped=f"document not readable: {exc.strerror or 'error'}")
    except Exception as exc:  # pypdf raises its own types for damaged files
        return DocumentText(skipped=f"damaged document, not scanned ({type(exc).__name__})")


class PrintHold:
    """Guards the spooler's queues for the machine service (the `Watcher` protocol).

    `poll()` is one step of the poll thread (tests may call it directly); jobs are handled on
    up to `workers` threads, each blocking while the teller is asked."""

    name = "print"

    def __init__(self, pipeline: Pipeline, spooler: PrintSpooler, *, poll_s: float = POLL_S,
                 workers: int = 4) -> None:
        self._pipeline = pipeline
        self._spooler = spooler
        self._poll_s = poll_s
        self._workers = workers
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._in_flight: set[int] = set()
        self._guarded: set[str] = set()
        self._last_sync = 0.0
        self._problem: str | None = None

    # -- lifecycle
    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._pool = ThreadPoolExecutor(max_workers=self._workers,
                                        thread_name_prefix="print-hold-job")
        self._thread = threading.Thread(target=self._run, name="print-hold", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        if self._pool is not None:
            # Jobs being asked about stay held in the spooler; the next start handles them.
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    @property
    def state(self) -> str:
        with self._lock:
            problem = self._problem
        if problem:
            return f"unavailable: {problem}"
        if self._thread is not None and not self._thread.is_alive():
            return "unavailable: print guard stopped"
        weak = self.weaknesses()
        if weak:
            return "degraded: " + "; ".join(f"printer {q}: {why}" for q, why in weak.items())
        return "running"

    def weaknesses(self) -> dict[str, str]:
        """The guarded queues whose hold tellers could lift, and why (as the spooler says)."""
        if not isinstance(self._spooler, _ReportsWeakness):
            return {}
        with self._lock:
            guarded = sorted(self._guarded)
        found = {q: self._spooler.weakness(q) for q in guarded}
        return {q: why for q, why in found.items() if why}

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll()
            except Exception as exc:  # the loop must survive anything a spooler throws
                log.exception("print guard poll failed")
                self._set_problem(f"{exc.__class__.__name__}: {exc}"[:300])
            self._stop.wait(self._poll_s)

    def _set_problem(self, problem: str | None) -> None:
        with self._lock:
            if problem != self._problem and problem:
                log.warning("print guard: %s", problem)
            self._problem = problem

    # -- one poll
    def sync_queues(self) -> list[str]:
        """Guard every queue policy does not exempt; give exempted ones back. The guarded
        queues."""
        section = self._pipeline.policy().print
        guarded: list[str] = []
        for queue in self._spooler.queues():
            if section.exempts(queue):
                if queue in self._guarded or self._last_sync == 0.0:
                    self._spooler.unguard(queue)
                self._guarded.discard(queue)
                continue
            self._spooler.guard(queue)
            self._guarded.add(queue)
            guarded.append(queue)
        return guarded

    def poll(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        try:
            if now - self._last_sync >= QUEUE_SYNC_S or not self._guarded:
                self.sync_queues()
                self._last_sync = now
            jobs = self._spooler.jobs(sorted(self._guarded))
        except (SpoolerError, PlatformUnavailable) as exc:
            self._set_problem(str(exc))
            return
        self._set_problem(None)
        for job in jobs:
            if job.state not in ("pending", "held"):
                continue
            with self._lock:
                if job.id in self._in_flight:
                    continue
                self._in_flight.add(job.id)
            try:
                self._spooler.hold(job)
            except SpoolerError as exc:
                log.warning("print job %d not held: %s", job.id, exc)
            pool = self._pool
            if pool is None:
                self.handle_job(job)
            else:
                pool.submit(self.handle_job, job)

    # -- one job
    def handle_job(self, job: PrintJob) -> None:
        """Read, scan, decide, ask and enforce for one held job. A worker thread."""
        try:
            self._handle(job)
        except Exception:  # one job's failure must not stop the guard: cancel it, safely
            log.exception("print job %d failed; cancelling it", job.id)
            self._cancel(job, {})
        finally:
            with self._lock:
                self._in_flight.discard(job.id)

    def _handle(self, job: PrintJob) -> None:
        policy = self._pipeline.policy()
        read = self._read(job, int(policy.print.max_document_mb * 1024 * 1024))
        meta: dict[str, object] = {
            "printer": job.queue, "document": job.title or f"job {job.id}", "job": job.id,
            "teller": job.user, "user": job.user, "format": job.format, "size": job.size_bytes,
        }
        pages = read.pages or job.pages
        if pages:
            meta["pages"] = pages
        if read.skipped:
            meta["skipped"] = read.skipped
        observation = Observation(Channel.PRINT, PrintKind.JOB_HELD, text=read.text or None,
                                  source_app=read.app or None, meta=meta)
        findings = self._pipeline.scan(read.text) if read.text else []
        decision = self._pipeline.decide(observation, findings)
        relevant = relevant_findings(findings, policy)
        detail: dict[str, DetailValue] = {}
        resolved: list[str] = []

        def release() -> bool:
            ok = self._release(job, detail)
            resolved.append("released" if ok else "failed")
            return ok

        def cancel() -> bool:
            ok = self._cancel(job, detail)
            resolved.append("cancelled" if ok else "failed")
            return ok

        if not relevant and not read.skipped and policy.print.exempt_clean:
            release()
            if decision.action in (Action.AUDIT, Action.NOTIFY) and not is_silent(decision):
                self._pipeline.handle(observation, Enforcement(), findings=findings,
                                      detail=detail)
            return
        if is_silent(decision) or decision.action in (Action.AUDIT, Action.NOTIFY):
            release()  # first: the event then says it printed
            self._pipeline.handle(observation, Enforcement(), findings=findings, detail=detail)
            return
        self._pipeline.handle(observation, Enforcement(allow=release, block=cancel),
                              findings=findings, detail=detail)
        if not resolved:
            log.warning("print job %d: decision %s left it unresolved; cancelling it", job.id,
                        decision.action)
            cancel()

    def _read(self, job: PrintJob, max_bytes: int) -> DocumentText:
        try:
            doc: PrintDocument | None = self._spooler.document(job)
        except (SpoolerError, PlatformUnavailable) as exc:
            return DocumentText(skipped=f"document not readable from the spooler: {exc}"[:300])
        if doc is None:
            return DocumentText(skipped="the spooler keeps no readable document for this job")
        try:
            return read_document(doc.path, max_bytes)
        finally:
            doc.path.unlink(missing_ok=True)  # a private copy: no customer data left behind

    def _release(self, job: PrintJob, detail: dict[str, DetailValue]) -> bool:
        try:
            self._spooler.release(job)
        except (SpoolerError, PlatformUnavailable) as exc:
            log.error("print job %d not released: %s", job.id, exc)
            detail["print_job"] = "release_failed"
            return False
        detail["print_job"] = "released"
        return True

    def _cancel(self, job: PrintJob, detail: dict[str, DetailValue]) -> bool:
        try:
            self._spooler.cancel(job)
        except (SpoolerError, PlatformUnavailable) as exc:
            log.error("print job %d not cancelled: %s", job.id, exc)
            detail["print_job"] = "cancel_failed"
            return False
        detail["print_job"] = "cancelled"
        return True


class _NoSpooler:
    """The spooler of a platform where none can run: every call says why."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def _no(self, *_args: object) -> None:
        raise PlatformUnavailable(self.reason)

    def queues(self) -> list[str]:
        raise PlatformUnavailable(self.reason)

    guard = unguard = hold = release = cancel = _no

    def jobs(self, queues: list[str]) -> list[PrintJob]:
        raise PlatformUnavailable(self.reason)

    def document(self, job: PrintJob) -> PrintDocument | None:
        raise PlatformUnavailable(self.reason)


def print_channel(spooler_factory: Callable[[], PrintSpooler]) -> Callable[[Pipeline], PrintHold]:
    """The machine service's channel factory: a `PrintHold` on the platform's spooler (one
    that says why it is unavailable when the platform has none, so the service still runs)."""
    def make(pipeline: Pipeline) -> PrintHold:
        try:
            spooler = spooler_factory()
        except PlatformUnavailable as exc:
            spooler = _NoSpooler(str(exc))
        return PrintHold(pipeline, spooler)
    return make
