"""Delivery: the journal, the shipper and the way to the collector, in one place for every owner.

The machine service and a session agent in single-process mode each compose one `Delivery`. It
owns the journal (open from the first second, so events are kept whatever fails later) and, on a
background thread, retries until it works: where events go (`endpoint_setting`: the explicit
setting, then TELLER_GUARD_ENDPOINT, then the machine policy's ``agent.endpoint`` — never the
central policy's, so the collector cannot move where the PC ships and sends its enrolment token;
plain http only to this PC; else the collector this
PC was enrolled at with IT's token; else the embedded local collector, imported only then),
enrolment (with the configured token at a configured endpoint, by itself at the embedded
collector), the device credentials (re-read when enrollment.json changes), the shipper, TLS with
the configured CA bundle, and the central policy fetcher. It polls the central policy, applies the
journal's bounds and age limit when the policy changes, prunes expired rows and tells whether the
collector is reachable.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

from guard import paths
from guard.delivery import approval_code
from guard.delivery.enrolment import (
    BY_EMBEDDED,
    BY_TOKEN,
    DeviceCredentials,
    DeviceKeyError,
    DeviceKeyStore,
    enroll,
)
from guard.delivery.journal import JOURNAL_FILE, Journal, JournalError
from guard.delivery.shipper import Shipper, ShipperError, ShipperSettings
from guard.delivery.tls import CaBundleError, ssl_context
from guard.events import EventType, new_event
from guard.model import Device, Event
from guard.policy.fetch import CentralPolicyFetcher
from guard.policy.schema import Policy
from guard.policy.store import PolicyStore

log = logging.getLogger(__name__)

EMBEDDED_DIR = "collector"
PRUNE_EVERY_S = 3600.0
_LOOPBACK = ("127.0.0.1", "localhost", "::1")
CODE_TRIES = 10
CODE_TRIES_WINDOW_S = 300.0


class DeliveryError(Exception):
    """Delivery cannot run as configured; the message says what to change."""


class LocalCollector(Protocol):
    """A collector this process runs for itself (the embedded one): where it listens, the token
    that enrols this PC there, and how to stop it."""

    @property
    def url(self) -> str: ...

    @property
    def enroll_token(self) -> str: ...

    @property
    def admin_token(self) -> str: ...

    def stop(self) -> None: ...


LocalCollectorFactory = Callable[[Path], LocalCollector]
"""Starts the local collector with its data in the given folder; raises `DeliveryError`."""


@dataclass(frozen=True, slots=True)
class DeliverySettings:
    """How one `Delivery` is set up.

    `endpoint` None means: TELLER_GUARD_ENDPOINT, then the policy's ``agent.endpoint``, then the
    collector this PC was enrolled at with IT's token, then the embedded local collector.
    `enroll_token` lets an unenrolled PC enrol itself at a configured endpoint. `tick_s` is how
    often the background thread looks at its work (and calls the owner's `on_tick`).
    """

    data_dir: Path
    endpoint: str | None = None
    enroll_token: str | None = None
    ca_bundle: str | None = None
    tick_s: float = 2.0
    setup_retry_s: float = 30.0


def check_endpoint(endpoint: str) -> str:
    """The collector URL without a trailing slash; `DeliveryError` when it is not https, or
    http to anything but this PC (loopback): events, keys and the enrolment token would cross
    the branch network in the clear."""
    endpoint = endpoint.strip().rstrip("/")
    url = urlparse(endpoint)
    if url.scheme == "https" and url.hostname:
        return endpoint
    if url.scheme == "http" and (url.hostname or "") in _LOOPBACK:
        return endpoint
    raise DeliveryError(f"the collector endpoint must be an https:// URL (http:// only for a "
                        f"collector on this PC: 127.0.0.1, ::1 or localhost), not {endpoint!r}")


def endpoint_setting(explicit: str | None, policy: Policy) -> str | None:
    """The configured collector: `explicit`, else TELLER_GUARD_ENDPOINT, else the policy's
    ``agent.endpoint``, checked; None when none is set. Raises `DeliveryError` for a bad URL.

    `policy` must be the machine layers' (`PolicyStore.machine_policy()`), never one with the
    central layer: the enrolment token goes to this endpoint."""
    endpoint = explicit or os.environ.get(paths.ENV_ENDPOINT) or policy.agent.endpoint or None
    return check_endpoint(endpoint) if endpoint else None


def enrolled_with_token(meta: dict[str, str]) -> bool:
    """True when an enrolment record was made with IT's token, not by the guard at its embedded
    collector. A record written before records said so counts as the embedded collector's when
    its address is on this PC (what single-process mode assumed then)."""
    by = meta.get("enrolled_by")
    if by:
        return by == BY_TOKEN
    url = urlparse(meta.get("endpoint", ""))
    return not (url.scheme == "http" and (url.hostname or "") in _LOOPBACK)


class DeliveryJournal(Journal):
    """The journal of a delivering process: every event it keeps carries this machine's identity.

    A session agent runs as the teller and may know the PC by another id (its own data
    directory), and the collector may assign an id at enrolment; the collector accepts only
    events of the signing device, so the journal stamps the device it delivers as.
    """

    def __init__(self, path: Path, *, machine: Device, **kwargs: Any) -> None:
        super().__init__(path, device=machine, **kwargs)
        self.machine = machine

    def record(self, event: Event) -> None:
        if event.device != self.machine:
            event = event.model_copy(update={"device": self.machine})
        super().record(event)


class CachedCredentials:
    """The device credentials, re-read only when the enrolment file changes.

    `teller-guard enroll` may run while the guard does; reading the OS keyring for every batch
    would be slow, so the key is kept until enrollment.json is rewritten.
    """

    def __init__(self, keys: DeviceKeyStore, endpoint: str,
                 on_loaded: Callable[[DeviceCredentials], None]) -> None:
        self._keys = keys
        self._endpoint = endpoint
        self._on_loaded = on_loaded
        self._stamp: int | None = None
        self._creds: DeviceCredentials | None = None
        self._lock = threading.Lock()

    def __call__(self) -> DeviceCredentials | None:
        try:
            stamp: int | None = self._keys.enrollment_path.stat().st_mtime_ns
        except OSError:
            stamp = None
        with self._lock:
            if stamp is None:
                self._stamp, self._creds = None, None
                return None
            if stamp == self._stamp:
                return self._creds
            try:
                loaded = self._keys.load()
            except DeviceKeyError as exc:
                log.error("device key unusable: %s", exc)
                return None
            self._stamp = stamp
            self._creds = None if loaded is None else dataclasses.replace(
                loaded, endpoint=self._endpoint)
            creds = self._creds
        if creds is not None:
            self._on_loaded(creds)
        return creds


class Delivery:
    """The journal, and everything that moves its events to the collector.

    The owner calls `start()`, `poll_policy_now()`, `flush()` and `stop()` from its own thread;
    `reachable()` and the attributes are read from any thread. The background thread calls
    `on_tick()` every `tick_s` (the service publishes its status there).
    """

    def __init__(self, settings: DeliverySettings, *, device: Device, store: PolicyStore,
                 agent_version: str = "",
                 part_states: Callable[[], dict[str, str]] | None = None,
                 on_tick: Callable[[], None] | None = None,
                 local_collector: LocalCollectorFactory | None = None) -> None:
        """Open the journal (raises `DeliveryError` when it cannot) and work out the endpoint.

        `local_collector` starts the embedded collector when no endpoint is configured (the
        composition root passes `guard.app.local_collector.start`, so only the processes that
        may run a collector import it); without one such a PC keeps its events journaled.

        A bad endpoint URL does not stop the journal: it is the `problem`, and shipping never
        starts (`endpoint_setting` lets an owner refuse it up front).
        """
        self.settings = settings
        self.data_dir = Path(settings.data_dir)
        self.device = device
        self.store = store
        self.agent_version = agent_version
        self._part_states = part_states or dict
        self._on_tick = on_tick
        self._local_collector = local_collector
        self.keys = DeviceKeyStore(self.data_dir)
        self.problem = ""
        self._endpoint_problem = ""
        policy = store.current()
        try:
            self.configured_endpoint = endpoint_setting(settings.endpoint,
                                                        store.machine_policy())
        except DeliveryError as exc:
            self.configured_endpoint, self._endpoint_problem = None, str(exc)
        if self.configured_endpoint is None and not self._endpoint_problem:
            self.configured_endpoint = self._token_enrolment_endpoint()
        try:
            self.journal = DeliveryJournal(self.data_dir / JOURNAL_FILE, machine=device,
                                           max_rows=policy.journal.max_events,
                                           max_bytes=policy.journal.max_bytes,
                                           max_age_days=policy.journal.max_age_days)
        except JournalError as exc:
            raise DeliveryError(f"cannot open the journal in {self.data_dir}: {exc}") from exc
        self.shipper: Shipper | None = None
        self.embedded: LocalCollector | None = None
        self.fetcher: CentralPolicyFetcher | None = None
        self.endpoint: str | None = None  # where the shipper sends, once it runs
        self.enrolled = False
        self.policy_fetch = ""  # the last central poll's answer
        self._reachable: bool | None = None
        self._shipper_seen = (0, 0)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._poll_now = threading.Event()
        self._prune_due = True
        self._thread: threading.Thread | None = None
        self._codes_lock = threading.Lock()
        self._code_failures: list[float] = []  # monotonic times of recent wrong codes
        store.on_change(self.apply_policy)

    def _token_enrolment_endpoint(self) -> str | None:
        """The collector IT enrolled this PC at with a token, when no endpoint is configured."""
        try:
            meta = self.keys.enrollment()
        except DeviceKeyError as exc:  # damaged: the embedded collector enrols this PC again
            log.warning("%s", exc)
            return None
        if meta is None or not enrolled_with_token(meta):
            return None
        try:
            return check_endpoint(meta["endpoint"])
        except DeliveryError as exc:
            log.warning("the enrolment record names no usable collector: %s", exc)
            return None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start the background thread (set-up, policy polls, pruning). Returns at once."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="teller-guard-delivery",
                                        daemon=True)
        self._thread.start()

    def poll_policy_now(self) -> None:
        """Re-read the policy and ask the collector at the next tick (SIGHUP)."""
        self._poll_now.set()

    def flush(self, timeout_s: float) -> None:
        """Give a running shipper up to `timeout_s` to send what is queued (it stays journaled
        either way)."""
        if self.shipper is None:
            return
        deadline = time.monotonic() + timeout_s
        self.shipper.wake()
        while time.monotonic() < deadline:
            try:
                if self.journal.pending_count() == 0:
                    return
            except JournalError:
                return
            time.sleep(0.05)

    def stop(self, shipper_timeout_s: float = 5.0, thread_timeout_s: float = 10.0) -> None:
        """Stop the background thread, the shipper and the embedded collector; close the journal.
        Blocks for up to `thread_timeout_s` (an in-flight poll or set-up) plus
        `shipper_timeout_s` (an in-flight batch)."""
        self._stop.set()
        self._poll_now.set()
        if self._thread is not None:
            self._thread.join(thread_timeout_s)
            self._thread = None
        if self.shipper is not None:
            self.shipper.stop(timeout=shipper_timeout_s)
            self.shipper = None
        if self.embedded is not None:
            try:
                self.embedded.stop()
            except Exception as exc:  # the collector's own errors (ServeError) on the way out
                log.warning("embedded collector did not stop cleanly: %s", exc)
            self.embedded = None
        self.journal.close()

    def apply_policy(self, policy: Policy) -> None:
        """New journal bounds and age limit from a changed policy (pruned at the next tick)."""
        self.journal.max_rows = policy.journal.max_events
        self.journal.max_bytes = policy.journal.max_bytes
        self.journal.max_age_days = policy.journal.max_age_days
        self._prune_due = True

    # ------------------------------------------------------------------ background

    def _run(self) -> None:
        """Shipping set-up (retried until it works), then policy polls, pruning and ticks."""
        next_setup = next_poll = next_prune = 0.0
        poll_asked = False
        while not self._stop.is_set():
            now = time.monotonic()
            poll_asked = poll_asked or self._poll_now.is_set()
            self._poll_now.clear()
            try:
                if self.shipper is None and now >= next_setup:
                    if self._set_up():
                        poll_asked = True  # ask the collector at once, not in 10 minutes
                    else:
                        next_setup = now + self.settings.setup_retry_s
                if now >= next_poll or poll_asked:
                    poll_asked = False
                    # Re-read the machine layers (IT may have changed them), ask the collector.
                    self.store.reload()
                    if self.fetcher is not None:
                        self.policy_fetch = self.fetcher.fetch_once()
                    next_poll = now + self.store.current().agent.policy_poll_interval_s
                if self._prune_due or now >= next_prune:
                    self._prune_due = False
                    next_prune = now + PRUNE_EVERY_S
                    self.journal.prune_expired()
                if self._on_tick is not None:
                    self._on_tick()
            except Exception as exc:  # delivery must keep journaling whatever fails here
                log.exception("delivery background work failed")
                self.problem = f"{type(exc).__name__}: {exc}"[:300]
            if not self._stop.is_set():
                self._poll_now.wait(self.settings.tick_s)

    def _set_up(self) -> bool:
        """Start the embedded collector if needed, enrol if needed, start shipper and fetcher.
        False (with the problem noted) when it must be tried again later."""
        if self._endpoint_problem:
            return self._failed(f"event shipping not started: {self._endpoint_problem}")
        try:
            creds, endpoint = self._credentials()
        except (DeviceKeyError, DeliveryError, OSError) as exc:
            return self._failed(f"event shipping not started: {exc}")
        policy = self.store.current()
        try:
            verify = ssl_context(self.settings.ca_bundle)
            shipper = Shipper(
                self.journal, creds, device=self.device,
                settings=ShipperSettings(heartbeat_s=policy.agent.heartbeat_interval_s,
                                         ca_bundle=self.settings.ca_bundle),
                agent_version=self.agent_version,
                policy_version=lambda: self.store.current().version,
                watcher_states=self._part_states,
            )
        except (CaBundleError, ShipperError) as exc:
            return self._failed(str(exc))
        if self._stop.is_set():  # stop() came while this set-up ran: start nothing more
            shipper.stop(timeout=0.0)
            return False
        shipper.start()
        with self._lock:
            self._reachable = None  # a failed set-up said False; the new shipper has not tried
            self.shipper = shipper
        self.endpoint = endpoint
        if self.embedded is None:
            # The embedded collector serves the packaged default: it is no central policy.
            self.fetcher = CentralPolicyFetcher(self.store, endpoint, self.device.id,
                                                verify=verify, credentials=creds)
        if self.enrolled:
            self.problem = ""
        log.info("shipping events to %s%s", endpoint,
                 " (embedded local collector)" if self.embedded is not None else "")
        return True

    def _failed(self, message: str) -> bool:
        with self._lock:
            self._reachable = False  # nothing can be delivered until the set-up works
        self._note_problem(message)  # after: whoever sees the problem sees it unreachable
        return False

    def _credentials(self) -> tuple[
            DeviceCredentials | Callable[[], DeviceCredentials | None], str]:
        """Where to ship and with which key; enrols when it can."""
        device = self.device
        keys = self.keys
        endpoint = self.configured_endpoint
        if endpoint is None:
            embedded = self._embedded()
            endpoint = str(embedded.url)
            try:
                meta = keys.enrollment()
            except DeviceKeyError as exc:  # damaged: enrolling again at our own collector fixes it
                log.warning("%s; enrolling again at the embedded collector", exc)
                meta = None
            if meta is None or meta.get("endpoint", "").rstrip("/") != endpoint:
                enroll(endpoint, embedded.enroll_token, hostname=device.hostname,
                       branch=device.branch, device_id=device.id, store=keys,
                       enrolled_by=BY_EMBEDDED, admin_token=embedded.admin_token)
            creds = keys.load()
            if creds is None:
                raise DeliveryError(f"enrolment at the embedded collector left no key in "
                                    f"{self.data_dir}")
            self._adopt_identity(creds)
            return creds, endpoint
        meta = keys.enrollment()
        token = self.settings.enroll_token
        if token and (meta is None or meta.get("endpoint", "").rstrip("/") != endpoint):
            result = enroll(endpoint, token, hostname=device.hostname, branch=device.branch,
                            device_id=device.id, store=keys, ca_bundle=self.settings.ca_bundle)
            log.info("enrolled at %s as device %s", endpoint, result.device_id)
            meta = keys.enrollment()
        elif meta is not None and meta.get("endpoint", "").rstrip("/") != endpoint:
            log.warning("this PC was enrolled at %s; shipping to %s with that key (enrol again "
                        "if the collector refuses it)", meta.get("endpoint"), endpoint)
        self.enrolled = meta is not None
        if meta is None:
            self._note_problem(f"not enrolled at {endpoint}: run `teller-guard enroll "
                               f"{endpoint} --token-file FILE` (events are kept in the journal "
                               f"meanwhile)")
        return CachedCredentials(keys, endpoint, self._adopt_identity), endpoint

    def _embedded(self) -> LocalCollector:
        """The embedded local collector, started on first use (a retry keeps the first one).
        The owner composes it (`local_collector`); without one, events stay journaled."""
        if self.embedded is not None:
            return self.embedded
        if self._local_collector is None:
            raise DeliveryError("no collector endpoint is configured and this process runs no "
                                "local collector: set TELLER_GUARD_ENDPOINT or agent.endpoint")
        self.embedded = self._local_collector(self.data_dir / EMBEDDED_DIR)
        return self.embedded

    def _adopt_identity(self, creds: DeviceCredentials) -> None:
        """The collector knows this PC by `creds.device_id`: journal and sign as that device."""
        self.enrolled = True
        device = self.device
        if device.id == creds.device_id:
            return
        log.warning("the collector assigned device id %s (this PC used %s); events are "
                    "journaled under the assigned id from now on", creds.device_id, device.id)
        self.device = device.model_copy(update={"id": creds.device_id})
        self.journal.machine = self.device
        if self.shipper is not None:
            self.shipper.device = self.device

    def _note_problem(self, message: str) -> None:
        if message != self.problem:
            log.warning("%s", message)
        self.problem = message[:300]
        try:
            self.journal.note_error(message[:300])
        except JournalError as exc:
            log.error("cannot note the problem in the journal: %s", exc)

    # ------------------------------------------------------------------ status

    def reachable(self) -> bool | None:
        """Whether events reach the collector: the latest shipping outcome, else the policy
        fetcher's, else None (not tried yet). Any thread."""
        shipper = self.shipper
        with self._lock:
            if shipper is None:
                return self._reachable
            stats = shipper.stats
            seen = (int(stats.acked) + int(stats.duplicates), int(stats.failures))
            before, self._shipper_seen = self._shipper_seen, seen
            if seen[0] > before[0]:
                self._reachable = True
            elif seen[1] > before[1]:
                self._reachable = False
            if self._reachable is None and self.fetcher is not None:
                self._reachable = self.fetcher.reachable
            return self._reachable

    @property
    def shipped(self) -> int:
        shipper = self.shipper
        return int(shipper.stats.acked) if shipper is not None else 0

    @property
    def ship_failures(self) -> int:
        shipper = self.shipper
        return int(shipper.stats.failures) if shipper is not None else 0

    # ------------------------------------------------------------------ one-time codes

    def verify_code(self, channel: str, code: str, now: float | None = None) -> bool:
        """True when `code` is a one-time code the collector issued for this device and
        `channel`, valid now and not used before; it is then recorded as used (journal meta).

        Verified offline with the device key (docs/PROTOCOL.md); only yes or no leaves this
        process, and an `APPROVAL_CODE_SPENT` event naming the code's id (never the code) for
        the collector. More than `CODE_TRIES` wrong codes in `CODE_TRIES_WINDOW_S` refuse every code
        until the window passes, whoever asks (the teller's process has its own back-off, this
        bound holds for a caller that skips it)."""
        with self._codes_lock:
            mono = time.monotonic()
            self._code_failures = [t for t in self._code_failures
                                   if mono - t < CODE_TRIES_WINDOW_S]
            if len(self._code_failures) >= CODE_TRIES:
                log.warning("one-time code refused: too many wrong codes, wait")
                return False
            try:
                creds = self.keys.load()
            except DeviceKeyError as exc:
                log.warning("one-time code cannot be checked: %s", exc)
                creds = None
            found = None if creds is None else approval_code.match(
                creds.key, creds.device_id, channel, code, now=now)
            if found is None:
                log.info("one-time code for %s refused: not valid for this device (%s) and "
                         "channel now", channel, "no device key" if creds is None
                         else creds.device_id)
                self._code_failures.append(mono)
                return False
            used_key = "approval-code-used:" + found.key()
            try:
                if self.journal.get_meta(used_key) is not None:
                    log.info("one-time code for %s refused: already used", channel)
                    self._code_failures.append(mono)
                    return False
                self.journal.set_meta(used_key, str(int(time.time())))
                # The collector learns which code was spent from here, where the key lives: the
                # teller's process cannot send this event (SERVICE_ONLY), nor forge a spend.
                self.journal.record(new_event(
                    EventType.APPROVAL_CODE_SPENT, device=self.device,
                    agent_version=self.agent_version, detail=found.detail()))
            except (JournalError, sqlite3.Error) as exc:  # unrecorded: refuse, never twice
                log.error("one-time code refused: its use cannot be recorded (%s)", exc)
                return False
            return True
