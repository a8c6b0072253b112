"""The one path every risk travels: observation → scanner → policy.decide → prompt → enforcement →
event → sink.

Watchers hand an `Observation` and the `Enforcement` callbacks that can act on it (clear the
clipboard, cancel a print job …); the pipeline scans, decides, asks the teller, calls the
enforcement and records an `Event`. Events carry only masked values and keyed hashes; a
justification the teller typed is scanned too and stored masked. With a key-less scanner (a
teller's agent beside the machine service) the event's hashes are empty and the normalised values
go to a `HashingSink` beside the event, in memory only, for the key holder to hash.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from guard import __version__
from guard.events import NOT_SCANNED, EventType, event_type, new_event, parse_event_type
from guard.model import (
    Action,
    Channel,
    Decision,
    Device,
    Event,
    Finding,
    FindingSummary,
    Observation,
    Outcome,
    summarise,
)
from guard.pipeline.approval import (
    SUPERVISOR,
    ApprovalResult,
    Approver,
    SupervisorPrompting,
)
from guard.pipeline.prompt import PromptAnswer, Prompter, PromptRequest
from guard.policy.decide import decide, is_silent, relevant_findings
from guard.policy.schema import Policy
from guard.scan.engine import UnhashedFinding

log = logging.getLogger(__name__)

DetailValue = str | int | float | bool | None

# Texts longer than this are scanned in chunks that overlap by enough for any identifier and
# its context words.
SCAN_CHUNK = 64 * 1024
SCAN_OVERLAP = 512


class EventSink(Protocol):
    def record(self, event: Event) -> None:
        """Store one event durably (the journal) or in memory (tests). Any thread."""


@runtime_checkable
class HashingSink(Protocol):
    """A sink whose owner holds the hash key (the machine service, over the local channel)."""

    def record_unhashed(self, event: Event, hash_inputs: list[list[str]]) -> None:
        """Record `event`, whose finding summaries have no hashes yet: `hash_inputs[i][j]` is
        the normalised value of `event.findings[i].masked[j]`, to be hashed by the key holder.
        The values are used in memory and never written; an event that must wait is kept
        without them (and so without hashes)."""


_TOKEN = "\x00unhashed:"  # a placeholder hash, in memory only, so `summarise` dedups by value


def _placeholders(findings: Sequence[Finding]) -> tuple[list[Finding], dict[str, str]]:
    """Key-less findings with a placeholder per distinct value in place of the hash, and the
    values by placeholder; ({}: nothing to hash elsewhere) unless every finding is key-less."""
    if not findings or not all(isinstance(f, UnhashedFinding) and f.value for f in findings):
        return list(findings), {}
    tokens: dict[str, str] = {}
    out: list[Finding] = []
    for f in findings:
        assert isinstance(f, UnhashedFinding)
        token = tokens.setdefault(f.value, f"{_TOKEN}{len(tokens)}")
        out.append(Finding(f.type, f.start, f.end, f.score, f.masked, token, f.category, f.box))
    return out, {token: value for value, token in tokens.items()}


def _unplace(summaries: Sequence[FindingSummary], values: Mapping[str, str]
             ) -> tuple[list[FindingSummary], list[list[str]]]:
    """Summaries without the placeholders, and the values aligned with their masked forms."""
    out: list[FindingSummary] = []
    inputs: list[list[str]] = []
    for s in summaries:
        inputs.append([values[h] for h in s.hashes if h in values])
        out.append(s.model_copy(update={"hashes": [h for h in s.hashes if h not in values]}))
    return out, inputs


def summarise_findings(findings: Sequence[Finding]) -> list[FindingSummary]:
    """`model.summarise`, also for key-less findings (grouped by value, no hashes)."""
    placed, values = _placeholders(findings)
    return _unplace(summarise(placed), values)[0] if values else summarise(placed)


class TextScanner(Protocol):
    """What the pipeline needs of a scanner (guard.scan.engine.Scanner). A scanner may also
    read images (`ImageScanning`) and files (`FileScanning`); the pipeline asks it for what it
    has and records as not scanned what it lacks."""

    def scan_text(self, text: str) -> list[Finding]:
        """Find customer data in `text`."""


@runtime_checkable
class ImageScanning(Protocol):
    def scan_image(self, image: bytes) -> list[Finding]:
        """Find customer data in an encoded image (PNG/BMP bytes), through OCR."""


class FileScan(Protocol):
    """What scanning one file gave (guard.scan.engine.FileResult)."""

    @property
    def findings(self) -> list[Finding]: ...

    @property
    def error(self) -> str | None: ...


@runtime_checkable
class FileScanning(Protocol):
    def scan_file(self, path: str) -> FileScan:
        """Scan one file (text, xlsx, docx, pdf); a file it cannot read sets `error`."""


@dataclass(frozen=True, slots=True)
class ScanLimits:
    """Bounds a watcher's policy section sets on scanning copied files."""

    max_file_bytes: int = 8 * 1024 * 1024
    max_files: int = 20


class MemorySink:
    """An in-memory sink for tests and demos."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.events: list[Event] = []

    def record(self, event: Event) -> None:
        with self._lock:
            self.events.append(event)

    def of_type(self, type_: EventType | str) -> list[Event]:
        with self._lock:
            return [e for e in self.events if e.type == type_]


@dataclass(frozen=True, slots=True)
class Enforcement:
    """What a watcher can do about its observation; a missing callback means "cannot".

    `redact(findings)` replaces the content by its masked form, `block()` removes or cancels it
    (also the cancel path after a confirm/justify), `allow()` lets it proceed after the teller
    agreed, `lock()` locks the screen. Each returns True when it took effect.
    """

    redact: Callable[[tuple[Finding, ...]], bool] | None = None
    block: Callable[[], bool] | None = None
    allow: Callable[[], bool] | None = None
    lock: Callable[[], bool] | None = None


@dataclass(frozen=True, slots=True)
class Handled:
    """The result of one trip through the pipeline (event is None when nothing was recorded)."""

    decision: Decision
    findings: tuple[Finding, ...]
    outcome: Outcome
    event: Event | None = None
    answer: PromptAnswer | None = None
    scanned: bool = True  # False: the content went unscanned (bounds, or no scanner for it)


def mask_text(text: str, findings: Sequence[Finding]) -> str:
    """`text` with every finding's span replaced by its masked form (overlaps: first wins)."""
    out: list[str] = []
    pos = 0
    for f in sorted(findings, key=lambda f: (f.start, -f.end)):
        if f.box is not None or f.start < pos or f.end > len(text) or f.start >= f.end:
            continue
        out.append(text[pos:f.start])
        out.append(f.masked)
        pos = f.end
    out.append(text[pos:])
    return "".join(out)


def _clean_detail(meta: Mapping[str, Any]) -> dict[str, DetailValue]:
    out: dict[str, DetailValue] = {}
    for k, v in meta.items():
        if isinstance(v, str | int | float | bool) or v is None:
            out[str(k)[:64]] = v[:500] if isinstance(v, str) else v
    return out


class Pipeline:
    """Runs observations through scanner, policy, prompter, enforcement and sink.

    `policy` is a callable returning the policy in force (PolicyStore.current). `handle` may be
    called from several worker threads at once; it blocks while the teller is asked.

    The machine service's pipeline serves several tellers: `teller` is empty, each observation
    names its teller in ``meta["teller"]`` (the print job's owner), `approver_for(teller)` gives
    that teller's approver (their own back-off, no self-approval), and `holds` says that its
    watchers keep the action held while a supervisor is asked (a cancelled print job cannot be
    released afterwards, so `block()` runs only once approval was refused).
    """

    def __init__(self, *, scanner: TextScanner | None, policy: Callable[[], Policy],
                 prompter: Prompter, sink: EventSink, device: Device, teller: str = "",
                 agent_version: str = __version__, approver: Approver | None = None,
                 approver_for: Callable[[str], Approver | None] | None = None,
                 holds: bool = False) -> None:
        self.scanner = scanner
        # Supervisor approval (四眼) of blocked actions, where policy allows it and the prompter
        # can show the supervisor dialog.
        self.approver = approver
        self.approver_for = approver_for
        self.holds = holds
        self._policy = policy
        self.prompter = prompter
        self.sink = sink
        self.device = device
        self.teller = teller
        self.agent_version = agent_version
        self._listeners: list[Callable[[Event], None]] = []
        self.sink_error: str | None = None

    def on_event(self, callback: Callable[[Event], None]) -> None:
        """Call `callback(event)` after every recorded event (from the recording thread)."""
        self._listeners.append(callback)

    def policy(self) -> Policy:
        return self._policy()

    # -- scanning
    def scan(self, text: str) -> list[Finding]:
        """Scan `text`; long texts go in overlapping chunks so no single call holds the
        interpreter for long (the UI thread stays responsive) and nothing at a seam is missed."""
        if self.scanner is None or not text:
            return []
        if len(text) <= SCAN_CHUNK:
            return list(self.scanner.scan_text(text))
        found: dict[tuple[str, int, int], Finding] = {}
        step = SCAN_CHUNK - SCAN_OVERLAP
        for offset in range(0, len(text), step):
            for f in self.scanner.scan_text(text[offset:offset + SCAN_CHUNK]):
                moved = dataclasses.replace(f, start=f.start + offset, end=f.end + offset)
                found.setdefault((moved.type, moved.start, moved.end), moved)
            if offset + SCAN_CHUNK >= len(text):
                break
            time.sleep(0)  # let the UI thread run between chunks
        return sorted(found.values(), key=lambda f: (f.start, f.end))

    def can_scan_images(self) -> bool:
        return isinstance(self.scanner, ImageScanning)

    def can_scan_files(self) -> bool:
        return isinstance(self.scanner, FileScanning)

    def _scan_files(self, paths: Sequence[str], limits: ScanLimits
                    ) -> tuple[list[Finding], dict[str, Any]]:
        """Each file (up to `max_files`, each within `max_file_bytes`) through the scanner's
        file reader; the rest is counted as skipped and said so in the event."""
        scanner = self.scanner if isinstance(self.scanner, FileScanning) else None
        findings: list[Finding] = []
        scanned = skipped = 0
        for path in paths:
            if scanner is None or scanned >= limits.max_files:
                skipped += 1
                continue
            try:
                size = os.stat(path).st_size
            except OSError:
                skipped += 1
                continue
            if size > limits.max_file_bytes or not os.path.isfile(path):
                skipped += 1
                continue
            result = scanner.scan_file(path)
            scanned += 1
            if result.error:
                skipped += 1
                continue
            findings.extend(result.findings)
        meta: dict[str, Any] = {"files": len(paths), "files_scanned": scanned}
        if skipped:
            meta["files_skipped"] = skipped
            meta["skipped"] = (f"{skipped} of {len(paths)} files not scanned (unreadable, over "
                               f"{limits.max_file_bytes // (1024 * 1024)} MB or over "
                               f"{limits.max_files} files)")
        return findings, meta

    def _scan_content(self, observation: Observation, limits: ScanLimits
                      ) -> tuple[list[Finding], dict[str, Any], str]:
        """Findings in the observation's content, meta to add, and why it went unscanned ("" when
        it was scanned). The pipeline, not the watcher, knows which content its scanner reads."""
        if observation.image is not None:
            if not isinstance(self.scanner, ImageScanning):
                return [], {}, "image not scanned: no image scanner loaded"
            return list(self.scanner.scan_image(observation.image)), {}, ""
        if observation.paths:
            findings, meta = self._scan_files(observation.paths, limits)
            return findings, meta, ""
        return self.scan(observation.text or ""), {}, ""

    def _masked_reason(self, reason: str) -> str:
        """A justification as stored: customer data the teller typed into it is masked."""
        reason = reason.strip()[:1000]
        if not reason:
            return ""
        try:
            return mask_text(reason, self.scan(reason))[:1000]
        except Exception as exc:  # a scanner failure must not put a raw reason in the event
            log.warning("justification not scanned (%s); stored as its length only",
                        exc.__class__.__name__)
            return f"<{len(reason)} characters, not stored>"

    # -- the pipeline
    def decide(self, observation: Observation, findings: Sequence[Finding] = ()) -> Decision:
        """What the policy in force decides for `observation` (pure; nothing is recorded)."""
        return decide(observation, findings, self.policy())

    def handle(self, observation: Observation, enforcement: Enforcement | None = None, *,
               findings: Sequence[Finding] | None = None,
               detail: Mapping[str, DetailValue] | None = None,
               limits: ScanLimits | None = None, outcome: Outcome | None = None) -> Handled:
        """Scan (unless `findings` are given), decide, prompt, enforce, record. Worker thread.

        `outcome` given: the observation reports what already happened (an auto-clear, an
        unlock, a failure); it is decided and recorded with that outcome, the teller told when
        the decision is NOTIFY, and nothing is enforced. `detail` is read after enforcement ran,
        so an enforcement callback may add what it learned (how the screen was locked)."""
        if outcome is not None:
            return self._report(observation, outcome, detail)
        enforcement = enforcement or Enforcement()
        extra: dict[str, DetailValue] = {}
        if findings is None:
            try:
                findings, scan_meta, unscanned = self._scan_content(observation,
                                                                    limits or ScanLimits())
            except Exception as exc:  # the event must still say that something was not scanned
                log.warning("scanner failed on %s/%s: %s", observation.channel, observation.kind,
                            exc.__class__.__name__)
                findings, scan_meta, unscanned = [], {}, ""
                extra["scan_error"] = exc.__class__.__name__
            if unscanned:
                meta = {**observation.meta, "skipped": unscanned}
                skipped = dataclasses.replace(observation, kind=NOT_SCANNED, image=None,
                                              text=None, paths=(), meta=meta)
                handled = self._report(skipped, Outcome.SKIPPED, detail)
                return dataclasses.replace(handled, scanned=False)
            if scan_meta:
                observation = dataclasses.replace(observation,
                                                  meta={**observation.meta, **scan_meta})
        policy = self.policy()
        decision = decide(observation, findings, policy)
        relevant = relevant_findings(findings, policy)
        # Nothing found is not recorded, unless part of the content went unscanned: then the
        # event says what was skipped, since the unscanned part may hold customer data.
        if is_silent(decision) and not extra and "skipped" not in observation.meta:
            return Handled(decision, relevant, Outcome.SKIPPED)
        approved: list[ApprovalResult] = []
        outcome, answer, justification = self._act(observation, decision, relevant, enforcement,
                                                   extra, approved)
        merged: dict[str, DetailValue] = {**_clean_detail(observation.meta), **(detail or {}),
                                          **extra, "rule": decision.rule}
        if approved:
            # One event with both identities: the teller (event.teller) and the supervisor.
            result = approved[0]
            merged.update(approved_channel=observation.channel.value,
                          approved_kind=observation.kind, approval=result.method,
                          supervisor=result.supervisor, supervisor_name=result.supervisor_name)
            reason = self._masked_reason(result.reason) if result.reason else justification
            event = self.record(
                EventType.APPROVAL_SUPERVISOR if result.method == SUPERVISOR
                else EventType.APPROVAL_CODE, Channel.SYSTEM, decision.action, Outcome.ALLOWED,
                findings=relevant, decision=decision.rule,
                source_app=observation.source_app or "", justification=reason, detail=merged,
                teller=self._teller_of(observation))
            return Handled(decision, relevant, Outcome.ALLOWED, event, answer)
        event = self.record(
            event_type(observation.channel, observation.kind), observation.channel,
            decision.action, outcome, findings=relevant, decision=decision.rule,
            source_app=observation.source_app or "", justification=justification,
            detail=merged,
        )
        return Handled(decision, relevant, outcome, event, answer)

    def _report(self, observation: Observation, outcome: Outcome,
                detail: Mapping[str, DetailValue] | None) -> Handled:
        decision = decide(observation, (), self.policy())
        merged: dict[str, DetailValue] = {**_clean_detail(observation.meta), **(detail or {}),
                                          "rule": decision.rule}
        event = self.record(
            event_type(observation.channel, observation.kind), observation.channel,
            decision.action, outcome, decision=decision.rule,
            source_app=observation.source_app or "", detail=merged,
        )
        # Recorded first: what the teller is told is already in the journal.
        if decision.action is Action.NOTIFY:
            self.prompter.notify(self._request(observation, decision, Action.NOTIFY, (),
                                               report=True))
        return Handled(decision, (), outcome, event)

    def _request(self, observation: Observation, decision: Decision, action: Action,
                 findings: tuple[Finding, ...], kind: str | None = None, *,
                 report: bool = False) -> PromptRequest:
        # A report tells the teller what the guard did, so it names no source application.
        detail = ({"source_app": observation.source_app}
                  if observation.source_app and not report else {})
        # "teller" names whose session the machine service asks (the print job's owner).
        for key in ("printer", "document", "pages", "volume", "file", "skipped", "teller"):
            value = observation.meta.get(key)
            if isinstance(value, int) and not isinstance(value, bool):
                value = str(value)
            if isinstance(value, str) and value:
                detail[key] = value
        if action is Action.NOTIFY and decision.timeout_s is not None:
            # A countdown warning: the request names what happens when it runs out.
            action = Action.LOCK
        return PromptRequest(
            action=action, channel=observation.channel, kind=kind or observation.kind,
            findings=tuple(summarise_findings(findings)),
            timeout_s=decision.timeout_s or self.policy().prompts.timeout_s,
            min_reason_len=decision.min_reason_len, reasons=decision.reasons, detail=detail,
        )

    def _act(self, observation: Observation, decision: Decision,
             findings: tuple[Finding, ...], enforcement: Enforcement,
             extra: dict[str, DetailValue], approved: list[ApprovalResult]
             ) -> tuple[Outcome, PromptAnswer | None, str]:
        action = decision.action
        if action is Action.AUDIT:
            return Outcome.RECORDED, None, ""
        if action is Action.NOTIFY:
            self.prompter.notify(self._request(observation, decision, Action.NOTIFY, findings))
            return Outcome.NOTIFIED, None, ""
        if action in (Action.CONFIRM, Action.JUSTIFY):
            answer = self.prompter.ask(self._request(observation, decision, action, findings))
            reason = answer.reason.strip()
            if answer.proceed and action is Action.JUSTIFY and (
                    len(reason) < decision.min_reason_len):
                extra["refused"] = "reason_too_short"
                answer = PromptAnswer(proceed=False, reason=answer.reason)
            if answer.proceed:
                if enforcement.allow is not None:
                    enforcement.allow()
                outcome = Outcome.JUSTIFIED if action is Action.JUSTIFY else Outcome.ACKNOWLEDGED
                return outcome, answer, self._masked_reason(answer.reason)
            # Held (the service's channels): approval first, the block only once refused.
            if action is Action.JUSTIFY and self.holds and self._approve(
                    observation, decision, findings, enforcement, approved):
                return Outcome.ALLOWED, answer, ""
            if enforcement.block is not None and not enforcement.block():
                extra["enforcement"] = "block_failed"
            if action is Action.JUSTIFY and not self.holds and self._approve(
                    observation, decision, findings, enforcement, approved):
                return Outcome.ALLOWED, answer, ""
            outcome = Outcome.TIMED_OUT if answer.timed_out else Outcome.CANCELLED
            return outcome, answer, ""
        if action is Action.REDACT:
            if enforcement.redact is not None:
                if enforcement.redact(findings):
                    self.prompter.notify(self._request(observation, decision, Action.NOTIFY,
                                                       findings, kind="redacted"))
                    return Outcome.REDACTED, None, ""
                extra["enforcement"] = "redact_failed"
            # Cannot redact: the safe fallback is to remove the content.
            action = Action.BLOCK
        if action is Action.BLOCK:
            if self.holds and enforcement.block is not None and self._approve(
                    observation, decision, findings, enforcement, approved):
                return Outcome.ALLOWED, None, ""
            if enforcement.block is not None and enforcement.block():
                if not self.holds and self._approve(observation, decision, findings,
                                                    enforcement, approved):
                    return Outcome.ALLOWED, None, ""
                self.prompter.notify(self._request(observation, decision, Action.NOTIFY,
                                                   findings, kind="blocked"))
                return Outcome.BLOCKED, None, ""
            extra.setdefault("enforcement", "block_failed")
            return Outcome.FAILED, None, ""
        if action is Action.LOCK:
            if enforcement.lock is not None and enforcement.lock():
                return Outcome.LOCKED, None, ""
            extra["enforcement"] = "lock_failed"
            return Outcome.FAILED, None, ""
        return Outcome.RECORDED, None, ""

    # -- supervisor approval (四眼)
    def _approve(self, observation: Observation, decision: Decision,
                 findings: tuple[Finding, ...], enforcement: Enforcement,
                 approved: list[ApprovalResult]) -> bool:
        """After a block (or a refused justify) that policy lets a supervisor override: show
        "ask your supervisor" and, once approved, let the action proceed (`enforcement.allow`).
        Every wrong try is its own APPROVAL_FAILED event; the approval is the handle's one event.
        """
        teller = self._teller_of(observation)
        approver = self.approver_for(teller) if self.approver_for is not None else self.approver
        prompter = self.prompter
        if approver is None or not isinstance(prompter, SupervisorPrompting):
            return False
        if not self.policy().approval_for(observation.channel, decision.rule):
            return False
        if not approver.offered():
            return False
        channel = observation.channel.value

        def check(method: str, supervisor_id: str, secret: str) -> ApprovalResult:
            result = approver.check(method, supervisor_id, secret, channel=channel)
            if not result.ok and result.message_key != "backoff":
                self.record(EventType.APPROVAL_FAILED, Channel.SYSTEM, decision.action,
                            Outcome.FAILED, decision=decision.rule, teller=teller, detail={
                                "approved_channel": channel, "approved_kind": observation.kind,
                                "approval": method, "supervisor": result.supervisor[:64],
                                "why": result.message_key, "failures": approver.backoff.failures,
                                "retry_after_s": round(result.retry_after_s, 1)})
            return result

        request = approver.request(self._request(observation, decision, Action.BLOCK, findings))
        try:
            result = prompter.approve(request, check)
        except Exception:  # a broken dialog keeps the block: the safe choice
            log.exception("the supervisor dialog failed; the action stays blocked")
            return False
        if result is None or not result.ok:
            return False
        if enforcement.allow is not None and not enforcement.allow():
            log.warning("approved %s/%s but the watcher could not let it proceed",
                        observation.channel, observation.kind)
        approved.append(result)
        return True

    def _teller_of(self, observation: Observation) -> str:
        """Whose action this is: the session's teller, or (in the machine service) the teller
        the observation names."""
        named = observation.meta.get("teller")
        return self.teller or (named[:128] if isinstance(named, str) else "")

    # -- events
    def record(self, type_: EventType | str, channel: Channel, action: Action = Action.AUDIT,
               outcome: Outcome = Outcome.RECORDED, *, findings: Sequence[Finding] = (),
               decision: str = "", source_app: str = "", justification: str = "",
               detail: Mapping[str, DetailValue] | None = None,
               teller: str | None = None) -> Event:
        """Build an event (device, teller, policy version, findings summary) with
        `guard.events.new_event` and hand it to the sink. A failing sink is logged and
        remembered (`sink_error`), never raised to a watcher. Watchers go through `handle`; this
        is for the composition root's own events (started, policy applied …). `teller` names
        another teller than the pipeline's (the machine service records for several).

        Key-less findings (`UnhashedFinding`) give summaries without hashes; their values go to
        a `HashingSink` beside the event (any other sink gets the event without hashes)."""
        try:
            policy_version = self.policy().version
        except Exception:  # the policy store is never empty, but an event must not be lost
            policy_version = ""
        placed, values = _placeholders(findings)
        event = new_event(
            parse_event_type(type_), device=self.device, channel=channel, action=action,
            outcome=outcome, findings=placed, decision=decision,
            teller=self.teller if teller is None else teller,
            source_app=source_app, justification=justification,
            agent_version=self.agent_version, policy_version=policy_version, detail=detail,
        )
        inputs: list[list[str]] = []
        if values:
            summaries, inputs = _unplace(event.findings, values)
            event = event.model_copy(update={"findings": summaries})
        try:
            if inputs and isinstance(self.sink, HashingSink):
                self.sink.record_unhashed(event, inputs)
            else:
                self.sink.record(event)
            self.sink_error = None
        except Exception as exc:  # the journal failing must not stop protection
            self.sink_error = f"{exc.__class__.__name__}: {exc}"[:300]
            log.error("event %s not recorded: %s", event.type, self.sink_error)
        for cb in list(self._listeners):
            try:
                cb(event)
            except Exception:
                log.exception("event listener failed")
        return event
