"""The shipper: a background thread that moves journaled events to the collector in signed batches.

It knows nothing about detection: it takes opaque JSON records from the journal's outbox, sends them
in batches (up to N events or M bytes, gzip), signs each batch with the device key
(`guard.delivery.protocol`, docs/PROTOCOL.md) together with the journal's chain head of the
batch's last event (``X-TG-Chain``), and marks rows shipped only after a 200 answer that
acknowledges them. Network errors, 401, 408, 429 and 5xx are retried with exponential backoff and
jitter; any other 4xx is narrowed down by halving the batch until the one refused event is found,
which is quarantined with a ``BATCH_QUARANTINED`` event so the queue moves on. A ``HEARTBEAT``
event is journaled every few minutes with the queue depth, policy version and watcher states.

TLS is verified as `guard.delivery.tls` says (OS trust store or a configured CA bundle); HTTP
proxies come from the environment (``HTTPS_PROXY``, ``HTTP_PROXY``, ``NO_PROXY``).
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from guard.delivery.enrolment import DeviceCredentials
from guard.delivery.journal import Journal, JournalError, JournalRecord
from guard.delivery.protocol import chain_value, signed_headers
from guard.delivery.tls import CaBundleError, ssl_context
from guard.events import EventType, new_event
from guard.model import Device, Event, Outcome, utc_now_iso

log = logging.getLogger(__name__)

EVENTS_PATH = "/api/v1/events"
RETRY_STATUSES = frozenset({401, 408, 429})


class ShipperError(Exception):
    """The shipper cannot be set up as configured; the message says what to fix."""


@dataclass(frozen=True, slots=True)
class ShipperSettings:
    """How the shipper batches, retries and reaches the collector."""

    max_events: int = 500
    max_bytes: int = 1024 * 1024
    gzip: bool = True
    heartbeat_s: float = 300.0
    backoff_base_s: float = 1.0
    backoff_max_s: float = 300.0
    timeout_s: float = 15.0
    idle_poll_s: float = 5.0
    linger_s: float = 0.05
    ca_bundle: str | None = None


@dataclass(frozen=True, slots=True)
class SendResult:
    """What one batch attempt did."""

    sent: int
    acked: int = 0
    quarantined: int = 0
    status: int | None = None
    error: str = ""
    full: bool = False  # the batch was as large as allowed: more are likely waiting

    @property
    def retry(self) -> bool:
        return bool(self.error) and self.quarantined == 0 and self.acked == 0


@dataclass
class ShipperStats:
    """Counters for status output and benchmarks (read from other threads; values only grow)."""

    batches: int = 0
    acked: int = 0
    duplicates: int = 0
    quarantined: int = 0
    failures: int = 0
    heartbeats: int = 0
    delays: list[float] = field(default_factory=list)


def backoff_delay(failures: int, base_s: float, max_s: float,
                  rng: random.Random | None = None) -> float:
    """Delay before retry number `failures` (1, 2, ...): exponential, capped, with jitter.

    "Equal jitter": half the exponential step is fixed, half random, so delays grow and many
    devices coming back after an outage do not retry in lockstep.
    """
    if failures <= 0:
        return 0.0
    step = min(max_s, base_s * (2.0 ** min(failures - 1, 30)))
    r = (rng or random).random()
    return step / 2.0 + step / 2.0 * r


class Shipper:
    """Moves the journal's outbox to the collector on a background thread.

    `start()` and `stop()` are called by the owner (service or single-process agent); `wake()` may
    be called from any thread after new events were journaled. Errors never escape the thread:
    they are logged, noted in the journal for `events status`, and retried.
    """

    def __init__(
        self,
        journal: Journal,
        credentials: DeviceCredentials | Callable[[], DeviceCredentials | None],
        *,
        device: Device,
        settings: ShipperSettings | None = None,
        agent_version: str = "",
        policy_version: Callable[[], str] | None = None,
        watcher_states: Callable[[], dict[str, str]] | None = None,
        client: httpx.Client | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.journal = journal
        self._credentials = credentials
        self.device = device
        self.settings = settings or ShipperSettings()
        self.agent_version = agent_version
        self._policy_version = policy_version or (lambda: "")
        self._watcher_states = watcher_states or dict
        self._rng = rng or random.Random()
        self._own_client = client is None
        if client is None:
            try:
                verify = ssl_context(self.settings.ca_bundle)
            except CaBundleError as exc:
                raise ShipperError(str(exc)) from exc
            client = httpx.Client(
                verify=verify,
                trust_env=True,
                timeout=self.settings.timeout_s,
                headers={"User-Agent": f"teller-guard/{agent_version or 'dev'}"},
            )
        self._client = client
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_ts = 0
        self._last_digest = b""
        self._narrow_to: int | None = None  # batch size while hunting a refused event
        self._own_notices: set[str] = set()
        self._failures = 0
        self._last_heartbeat = 0.0
        self.stats = ShipperStats()
        journal.add_listener(self.wake)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._last_heartbeat = -float("inf")  # a first heartbeat at once: this PC is up
        self._thread = threading.Thread(target=self._run, name="teller-guard-shipper",
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread and wait for it (an in-flight request may take up to the timeout)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.error("shipper: thread did not stop within %.1f s", timeout)
            self._thread = None
        if self._own_client:
            self._client.close()

    def wake(self) -> None:
        """New events are waiting: ship soon (any thread, never blocks)."""
        self._wake.set()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                self._maybe_heartbeat()
                result = self.ship_once()
            except (JournalError, ShipperError, OSError, ValueError) as exc:
                result = self._failed(0, None, f"shipper error: {exc}")
            except Exception as exc:  # the thread must outlive any bug; the queue stays on disk
                log.exception("shipper: unexpected error")
                result = self._failed(0, None, f"unexpected shipper error: {type(exc).__name__}")
            if result.retry:
                self._failures += 1
                delay = backoff_delay(self._failures, self.settings.backoff_base_s,
                                      self.settings.backoff_max_s, self._rng)
                self.stats.delays.append(delay)
                del self.stats.delays[:-100]
                self._stop.wait(delay)  # new events do not cut a backoff short; stop() does
                continue
            self._failures = 0
            if result.full:
                continue  # a full batch: more may be waiting, no pause
            if result.sent:
                # A partial batch: let new events gather briefly so a burst ships in few batches.
                self._stop.wait(self.settings.linger_s)
                continue
            self._wake.wait(self.settings.idle_poll_s)

    def _maybe_heartbeat(self) -> None:
        now = time.monotonic()
        if now - self._last_heartbeat < self.settings.heartbeat_s:
            return
        self._last_heartbeat = now
        self.record_heartbeat()

    def record_heartbeat(self) -> None:
        """Journal a HEARTBEAT event (queue depth, policy version, watcher states)."""
        detail: dict[str, str | int | float | bool | None] = {
            "queue_depth": self.journal.pending_count(),
            "policy_version": self._policy_version(),
        }
        for name, state in sorted(self._watcher_states().items())[:40]:
            detail[f"watcher.{name}"[:64]] = str(state)[:64]
        self.journal.record(self._event(EventType.HEARTBEAT, detail))
        self.stats.heartbeats += 1

    def _event(self, type_: EventType, detail: dict[str, str | int | float | bool | None],
               outcome: Outcome = Outcome.RECORDED) -> Event:
        return new_event(type_, device=self.device, outcome=outcome,
                         agent_version=self.agent_version,
                         policy_version=self._policy_version(), detail=detail)

    # ------------------------------------------------------------------ one batch

    def drain(self, timeout: float = 60.0) -> bool:
        """Ship from the calling thread until the queue is empty (True) or `timeout` passes."""
        deadline = time.monotonic() + timeout
        failures = 0
        while time.monotonic() < deadline:
            result = self.ship_once()
            if result.sent == 0:
                return True
            if result.retry:
                failures += 1
                time.sleep(min(backoff_delay(failures, self.settings.backoff_base_s,
                                             self.settings.backoff_max_s, self._rng),
                               max(0.0, deadline - time.monotonic())))
            else:
                failures = 0
        return self.journal.pending_count() == 0

    def ship_once(self) -> SendResult:
        """Send the oldest pending batch once and act on the answer."""
        creds = self._creds()
        if creds is None:
            return self._failed(0, None, "not enrolled: run `teller-guard enroll URL "
                                         "--token-file FILE`")
        limit = self._narrow_to or self.settings.max_events
        batch = self.journal.next_batch(limit, self.settings.max_bytes)
        if not batch:
            self._narrow_to = None
            return SendResult(0)
        body = ('{"events":[' + ",".join(r.body for r in batch) + "]}").encode("utf-8")
        headers = {"Content-Type": "application/json"}
        if self.settings.gzip:
            body = gzip.compress(body, compresslevel=5, mtime=0)
            headers["Content-Encoding"] = "gzip"
        # The journal's chain head travels signed with the batch, so the collector notices a
        # journal that was rewound, cut or wiped (docs/PROTOCOL.md, X-TG-Chain).
        last = batch[-1]
        chain = chain_value(last.seq, last.hash) if last.hash else None
        headers.update(signed_headers(creds.device_id, creds.key, body, self._timestamp(body),
                                      chain))
        url = creds.endpoint.rstrip("/") + EVENTS_PATH
        self.stats.batches += 1
        try:
            resp = self._client.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return self._failed(len(batch), None, f"collector unreachable: {_describe(exc)}")
        if resp.status_code == 200:
            result = self._acked(batch, resp)
            full = (len(batch) >= limit
                    or sum(len(r.body) for r in batch) >= self.settings.max_bytes // 2)
            return dataclasses.replace(result, full=full) if full else result
        reason = _error_text(resp)
        status = resp.status_code
        if status in RETRY_STATUSES or status >= 500 or status == 409:
            # 409: this exact signed batch was seen before (our own retry within one second);
            # a fresh timestamp makes a new signature and duplicate ids are acknowledged.
            return self._failed(len(batch), status, f"collector answered {status}: {reason}")
        if 400 <= status < 500:
            return self._refused(batch, status, reason)
        return self._failed(len(batch), status, f"unexpected answer {status}: {reason}")

    def _creds(self) -> DeviceCredentials | None:
        if isinstance(self._credentials, DeviceCredentials):
            return self._credentials
        return self._credentials()

    def _timestamp(self, body: bytes) -> int:
        """Unix seconds for signing; the same body is never signed twice in one second.

        The collector refuses a repeated (timestamp, body) pair as a replay, so a quick retry of
        the same batch waits for the next second and gets a fresh signature.
        """
        digest = hashlib.blake2b(body, digest_size=16).digest()
        ts = int(time.time())
        if ts <= self._last_ts and digest == self._last_digest:
            time.sleep(max(0.0, self._last_ts + 1 - time.time()))
            ts = max(int(time.time()), self._last_ts + 1)
        self._last_ts, self._last_digest = ts, digest
        return ts

    def _acked(self, batch: list[JournalRecord], resp: httpx.Response) -> SendResult:
        try:
            answer = resp.json()
            acked = {str(i) for i in answer.get("acked", [])}
            duplicates = answer.get("duplicates", [])
        except (ValueError, AttributeError) as exc:
            return self._failed(len(batch), 200, f"unreadable acknowledgement: {exc}")
        seqs = [r.seq for r in batch if r.event_id in acked]
        self.journal.mark_shipped(seqs, utc_now_iso())
        self.stats.acked += len(seqs)
        self.stats.duplicates += len(duplicates) if isinstance(duplicates, list) else 0
        if len(seqs) < len(batch):
            return self._failed(len(batch), 200,
                                f"collector acknowledged {len(seqs)} of {len(batch)} events")
        return SendResult(len(batch), acked=len(seqs), status=200)

    def _refused(self, batch: list[JournalRecord], status: int, reason: str) -> SendResult:
        if len(batch) > 1:
            # Find the refused event(s) by halving, so good events are not quarantined with it.
            self._narrow_to = max(1, len(batch) // 2)
            log.warning("shipper: collector refused a batch of %d (%d: %s); narrowing to %d",
                        len(batch), status, reason, self._narrow_to)
            return SendResult(len(batch), status=status, error="")
        self._narrow_to = None
        record = batch[0]
        why = f"{status}: {reason}"[:300]
        self.journal.quarantine([record.seq], why)
        self.stats.quarantined += 1
        log.error("shipper: collector refused event row %d for good (%s); quarantined",
                  record.seq, why)
        if record.event_id not in self._own_notices:
            notice = self._event(EventType.BATCH_QUARANTINED, {
                "count": 1, "status": status, "reason": why[:200],
                "first_seq": record.seq, "last_seq": record.seq, "event_id": record.event_id,
            }, outcome=Outcome.FAILED)
            self._own_notices.add(str(notice.id))
            self.journal.record(notice)
        self.journal.note_error(f"quarantined 1 event: {why}")
        return SendResult(1, quarantined=1, status=status)

    def _failed(self, sent: int, status: int | None, message: str) -> SendResult:
        self.stats.failures += 1
        log.warning("shipper: %s", message)
        try:
            self.journal.note_error(message)
        except JournalError as exc:
            log.error("shipper: cannot note the error in the journal: %s", exc)
        return SendResult(sent, status=status, error=message)


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:300]


def _error_text(resp: httpx.Response) -> str:
    try:
        data: Any = resp.json()
        if isinstance(data, dict) and "error" in data:
            return str(data["error"])[:300]
    except (ValueError, json.JSONDecodeError):
        pass
    return resp.text[:200]
