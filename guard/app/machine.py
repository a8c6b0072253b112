"""The machine service's composition root: journal, shipper, policy download, local channel."""


from __future__ import annotations

import dataclasses
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from guard import __version__, identity, paths
from guard.app.status import ServiceState, ServiceStatus, _now_iso
from guard.delivery.enrolment import DeviceCredentials, DeviceKeyError, DeviceKeyStore
from guard.delivery.journal import JOURNAL_FILE, Journal, JournalError
from guard.ipc.agent_side import _answers
from guard.ipc.messages import LocalChannelUnavailable
from guard.ipc.server import LocalChannelServer
from guard.ipc.unix import default_socket_path
from guard.model import Action, Channel, Device, Event, Outcome
from guard.policy.fetch import CentralPolicyFetcher
from guard.policy.schema import Policy
from guard.policy.store import PolicyStore, Rejection

log = logging.getLogger(__name__)

ENV_SOCKET = "TELLER_GUARD_SOCKET"
ENV_ENROLL_TOKEN = "TELLER_GUARD_ENROLL_TOKEN"
STATUS_FILE = "service-status.json"
AGENT_SPOOL_DIR = "agent-spool"
EMBEDDED_DIR = "collector"
RUN_DIR = Path("/run/teller-guard")
LOCK_FILE = "service.lock"
STATUS_REFRESH_S = 60.0

SERVICE_STARTED = "SERVICE_STARTED"
SERVICE_STOPPED = "SERVICE_STOPPED"
POLICY_APPLIED = "POLICY_APPLIED"
POLICY_REJECTED = "POLICY_REJECTED"
class ServiceError(Exception):
    """The machine service cannot run as configured; the message says what to change."""


@dataclass(frozen=True, slots=True)
class ServiceSettings:
    """How the machine service is composed (the command line fills this in).

    `endpoint` None means: TELLER_GUARD_ENDPOINT, then the policy's ``agent.endpoint``, then the
    embedded local collector. `enroll_token` lets an unenrolled PC enrol itself at a configured
    endpoint on start. `allowed_uids` limits who may hand events over (None: every local user,
    each bound to its own login by the kernel's peer credentials).
    """

    data_dir: Path
    socket_path: Path | None = None
    endpoint: str | None = None
    enroll_token: str | None = None
    policy_file: str | None = None
    ca_bundle: str | None = None
    allowed_uids: frozenset[int] | None = None
    status_tick_s: float = 2.0
    setup_retry_s: float = 30.0
    final_flush_s: float = 2.0


def _write_public(path: Path, text: str) -> None:
    """Write a file atomically, readable by everyone (mode 0644): it holds no secret."""
    paths.write_atomic(path, text.encode("utf-8"), mode=0o644)


def _lock_data_dir(data_dir: Path) -> Any:
    """Hold an exclusive lock on the data directory for this process's lifetime (Unix), so a
    second service cannot journal and ship the same rows. Returns the open lock file."""
    if sys.platform == "win32":
        return None
    import fcntl

    path = data_dir / LOCK_FILE
    try:
        handle = open(path, "a+")  # held open (and locked) until stop()
    except OSError as exc:
        raise ServiceError(f"cannot create {path}: {exc}") from exc
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise ServiceError(f"another machine service already uses {data_dir}; stop it first "
                           f"(systemctl stop teller-guard)") from None
    return handle


def _check_endpoint(endpoint: str) -> str:
    endpoint = endpoint.strip().rstrip("/")
    if not endpoint.startswith(("https://", "http://")):
        raise ServiceError(f"the collector endpoint must be an https:// URL (http:// only for a "
                           f"collector on this PC), not {endpoint!r}")
    return endpoint


class _MachineJournal(Journal):
    """The service's journal: every event it keeps carries this machine's identity.

    A session agent runs as the teller and may know the PC by another id (its own data
    directory); the collector accepts only events of the signing device, so the service, which
    knows from the kernel that the peer is local, stamps its own device on what it journals.
    """

    def __init__(self, path: Path, *, machine: Device, **kwargs: Any) -> None:
        super().__init__(path, device=machine, **kwargs)
        self.machine = machine

    def record(self, event: Event) -> None:
        if event.device != self.machine:
            event = event.model_copy(update={"device": self.machine})
        super().record(event)


class MachineService:
    """The composed machine service. `start()` returns once the local channel listens; shipping
    set-up (embedded collector, enrolment) and policy polling run on a background thread and are
    retried while they fail, so events are journaled from the first second.

    `start()`, `stop()` and `reload_policy()` are called by the owner (the command's main thread);
    `status()` from any thread.
    """

    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        self.data_dir = Path(settings.data_dir)
        self.socket_path = Path(settings.socket_path) if settings.socket_path else None
        self.device: Device | None = None
        self.store: PolicyStore | None = None
        self.journal: _MachineJournal | None = None
        self.server: LocalChannelServer | None = None
        self._counted: LocalChannelServer | None = None  # the stopped server, for its counters
        self.shipper: Any = None
        self.embedded: Any = None
        self.fetcher: CentralPolicyFetcher | None = None
        self.endpoint: str | None = None
        self._configured_endpoint: str | None = None
        self._enrolled = False
        self._state: ServiceState = "stopped"
        self._started_at = ""
        self._problem = ""
        self._policy_fetch = ""
        self._reachable: bool | None = None
        self._shipper_seen = (0, 0)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._poll_now = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock_file: Any = None
        self._last_written: tuple[ServiceStatus, float] | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Open the journal, listen on the local channel, start the background work.

        Raises `ServiceError` when the service cannot run as configured (data directory,
        socket, endpoint); nothing is left running then.
        """
        if self._state != "stopped":
            return
        self._state = "starting"
        self._started_at = _now_iso()
        try:
            self._compose()
        except ServiceError:
            self._teardown()
            self._state = "stopped"
            raise
        self._record(SERVICE_STARTED, {"pid": os.getpid(), "socket": str(self.socket_path),
                                       "endpoint": self._configured_endpoint or "embedded"})
        self._stop.clear()
        self._thread = threading.Thread(target=self._background, name="teller-guard-service",
                                        daemon=True)
        self._thread.start()
        self._state = "running"
        self._write_status()
        log.info("service running: socket %s, data %s, collector %s", self.socket_path,
                 self.data_dir, self._configured_endpoint or "embedded (starting)")

    def _compose(self) -> None:
        data = self.data_dir
        try:
            data.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ServiceError(f"cannot use the data directory {data}: {exc}") from exc
        if not os.access(data, os.W_OK):
            raise ServiceError(f"the data directory {data} is not writable by this user")
        self._lock_file = _lock_data_dir(data)
        # One data directory for every part of this process (device id, install key, keys).
        os.environ[paths.ENV_DATA_DIR] = str(data)
        try:
            device = identity.device()
        except paths.ConfigError as exc:
            raise ServiceError(str(exc)) from exc
        store = PolicyStore(override_file=self.settings.policy_file, cache_dir=data)
        policy = store.reload()
        endpoint = (self.settings.endpoint or os.environ.get(paths.ENV_ENDPOINT)
                    or policy.agent.endpoint or None)
        self._configured_endpoint = _check_endpoint(endpoint) if endpoint else None
        try:
            journal = _MachineJournal(data / JOURNAL_FILE, machine=device,
                                      max_rows=policy.journal.max_events,
                                      max_bytes=policy.journal.max_bytes)
        except JournalError as exc:
            raise ServiceError(f"cannot open the journal in {data}: {exc}") from exc
        self.device, self.store, self.journal = device, store, journal
        store.on_rejected(self._on_rejected)  # replays refusals seen while loading
        store.on_change(self._on_policy_change)
        if self.socket_path is None:
            self.socket_path = default_socket_path()
        if _answers(self.socket_path):
            raise ServiceError(f"another machine service already answers on {self.socket_path}; "
                               f"stop it first (systemctl stop teller-guard)")
        try:
            server = LocalChannelServer(journal, self.socket_path,
                                        allowed_uids=self.settings.allowed_uids,
                                        hash_key=identity.hash_key(self.data_dir))
            server.start()
        except LocalChannelUnavailable as exc:
            raise ServiceError(f"{exc}") from exc
        except OSError as exc:
            raise ServiceError(f"cannot listen on {self.socket_path}: {exc} (is the directory "
                               f"there and writable, and the path short enough?)") from exc
        self.server = server

    def stop(self) -> None:
        """Stop taking events, let the shipper finish briefly, stop everything, close the journal.

        Blocks for at most about `final_flush_s` plus a few seconds.
        """
        if self._state in ("stopped", "stopping"):
            return
        self._state = "stopping"
        self._stop.set()
        self._poll_now.set()
        if self._thread is not None:
            self._thread.join(10.0)
            self._thread = None
        if self.server is not None:
            self.server.stop()  # agents spool from now on
            self._counted, self.server = self.server, None
        self._record(SERVICE_STOPPED, {"pid": os.getpid()})
        self._flush_briefly()
        last = self.status()  # the final counters, before the parts are taken down
        self._teardown()
        self._state = "stopped"
        self._write_status(dataclasses.replace(last, state="stopped", updated_at=_now_iso()))
        log.info("service stopped")

    def _flush_briefly(self) -> None:
        """Give a running shipper up to `final_flush_s` to send what is queued (it stays
        journaled either way)."""
        if self.shipper is None or self.journal is None:
            return
        deadline = time.monotonic() + self.settings.final_flush_s
        self.shipper.wake()
        while time.monotonic() < deadline:
            try:
                if self.journal.pending_count() == 0:
                    return
            except JournalError:
                return
            time.sleep(0.05)

    def _teardown(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None
        if self.shipper is not None:
            self.shipper.stop(timeout=5.0)
            self.shipper = None
        if self.embedded is not None:
            try:
                self.embedded.stop()
            except Exception as exc:  # the collector's own errors (ServeError) on the way out
                log.warning("embedded collector did not stop cleanly: %s", exc)
            self.embedded = None
        if self.journal is not None:
            self.journal.close()
        if self._lock_file is not None:
            self._lock_file.close()  # releases the lock
            self._lock_file = None

    def reload_policy(self) -> None:
        """Re-read the machine policy layers and ask the collector now (SIGHUP)."""
        if self.store is not None:
            self.store.reload()
        self._poll_now.set()

    # ------------------------------------------------------------------ background

    def _background(self) -> None:
        """Shipping set-up (retried until it works), then policy polls and status refreshes."""
        next_setup = 0.0
        next_poll = 0.0
        poll_asked = False
        while not self._stop.is_set():
            now = time.monotonic()
            poll_asked = poll_asked or self._poll_now.is_set()
            self._poll_now.clear()
            try:
                if self.shipper is None and now >= next_setup:
                    if not self._start_shipping():
                        next_setup = now + self.settings.setup_retry_s
                if self.fetcher is not None and self.store is not None and (
                        now >= next_poll or poll_asked):
                    poll_asked = False
                    self.store.reload()
                    self._policy_fetch = self.fetcher.fetch_once()
                    next_poll = now + self.store.current().agent.policy_poll_interval_s
                self._write_status()
            except Exception as exc:  # the service must keep journaling whatever fails here
                log.exception("service background work failed")
                self._problem = f"{type(exc).__name__}: {exc}"[:300]
            if not self._stop.is_set():
                self._poll_now.wait(self.settings.status_tick_s)

    def _start_shipping(self) -> bool:
        """Start the embedded collector if needed, enrol if needed, start shipper and fetcher.
        False (with the problem noted) when it must be tried again later."""
        from guard.collector.serve import ServeError
        from guard.delivery.shipper import Shipper, ShipperError, ShipperSettings, ssl_context

        assert self.journal is not None and self.store is not None and self.device is not None
        keys = DeviceKeyStore(self.data_dir)
        try:
            creds_source, endpoint = self._credentials(keys)
        except (DeviceKeyError, ServeError, ServiceError, OSError) as exc:
            self._note_problem(f"event shipping not started: {exc}")
            return False
        policy = self.store.current()
        try:
            verify = ssl_context(self.settings.ca_bundle)
            self.shipper = Shipper(
                self.journal, creds_source, device=self.device,
                settings=ShipperSettings(heartbeat_s=policy.agent.heartbeat_interval_s,
                                         ca_bundle=self.settings.ca_bundle),
                agent_version=__version__,
                policy_version=lambda: self.store.current().version if self.store else "",
                watcher_states=self._part_states,
            )
        except ShipperError as exc:
            self._note_problem(str(exc))
            return False
        self.shipper.start()
        self.endpoint = endpoint
        self.fetcher = CentralPolicyFetcher(self.store, endpoint, self.device.id, verify=verify,
                                            credentials=creds_source)
        if self._enrolled:
            self._problem = ""
        log.info("shipping events to %s%s", endpoint,
                 " (embedded local collector)" if self.embedded is not None else "")
        return True

    def _credentials(self, keys: DeviceKeyStore) -> tuple[
            DeviceCredentials | Callable[[], DeviceCredentials | None], str]:
        """Where to ship and with which key; enrols when it can."""
        from guard.delivery.enrolment import enroll

        assert self.device is not None
        device = self.device
        if self._configured_endpoint is None:
            from guard.collector.embedded import EmbeddedError, start_embedded

            if self.embedded is None:  # a retry after a failed enrolment keeps the first one
                try:
                    self.embedded = start_embedded(self.data_dir / EMBEDDED_DIR)
                except EmbeddedError as exc:
                    raise ServiceError(str(exc)) from exc
            endpoint = str(self.embedded.url)
            try:
                meta = keys.enrollment()
            except DeviceKeyError as exc:  # damaged: enrolling again at our own collector fixes it
                log.warning("%s; enrolling again at the embedded collector", exc)
                meta = None
            if meta is None or meta.get("endpoint", "").rstrip("/") != endpoint:
                enroll(endpoint, self.embedded.enroll_token, hostname=device.hostname,
                       branch=device.branch, device_id=device.id, store=keys)
            creds = keys.load()
            if creds is None:
                raise ServiceError(f"enrolment at the embedded collector left no key in "
                                   f"{self.data_dir}")
            self._adopt_identity(creds)
            return creds, endpoint
        endpoint = self._configured_endpoint
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
        self._enrolled = meta is not None
        if meta is None:
            self._note_problem(f"not enrolled at {endpoint}: run `teller-guard enroll "
                               f"{endpoint} TOKEN` (events are kept in the journal meanwhile)")
        return _CachedCredentials(keys, endpoint, self._adopt_identity), endpoint

    def _adopt_identity(self, creds: DeviceCredentials) -> None:
        """The collector knows this PC by `creds.device_id`: journal and sign as that device."""
        self._enrolled = True
        device = self.device
        if device is None or device.id == creds.device_id:
            return
        log.warning("the collector assigned device id %s (this PC used %s); events are "
                    "journaled under the assigned id from now on", creds.device_id, device.id)
        self.device = device.model_copy(update={"id": creds.device_id})
        if self.journal is not None:
            self.journal.machine = self.device
        if self.shipper is not None:
            self.shipper.device = self.device

    def _note_problem(self, message: str) -> None:
        if message != self._problem:
            log.warning("%s", message)
        self._problem = message[:300]
        if self.journal is not None:
            try:
                self.journal.note_error(message[:300])
            except JournalError as exc:
                log.error("cannot note the problem in the journal: %s", exc)

    # ------------------------------------------------------------------ events

    def _record(self, type_: str, detail: dict[str, str | int | float | bool | None],
                outcome: Outcome = Outcome.RECORDED) -> None:
        if self.journal is None or self.device is None:
            return
        version = self.store.current().version if self.store is not None else ""
        event = Event(type=type_, device=self.device, channel=Channel.SYSTEM,
                      action=Action.AUDIT, outcome=outcome, agent_version=__version__,
                      policy_version=version, detail=detail)
        try:
            self.journal.record(event)
        except JournalError as exc:
            log.error("%s not journaled: %s", type_, exc)

    def _on_rejected(self, rejection: Rejection) -> None:
        self._record(POLICY_REJECTED, {"source": rejection.source[:200],
                                       "reason": rejection.reason[:500]}, Outcome.FAILED)

    def _on_policy_change(self, policy: Policy) -> None:
        if self.journal is not None:
            self.journal.max_rows = policy.journal.max_events
            self.journal.max_bytes = policy.journal.max_bytes
        log.info("policy %s applied", policy.version)
        self._record(POLICY_APPLIED, {"version": policy.version})

    # ------------------------------------------------------------------ status

    def _part_states(self) -> dict[str, str]:
        """The service's parts for the heartbeat event."""
        return {
            "local_channel": "running" if self.server is not None else "stopped",
            "policy_fetch": self._policy_fetch or "pending",
        }

    def _reachability(self) -> bool | None:
        shipper = self.shipper
        if shipper is None:
            return self._reachable
        stats = shipper.stats
        seen = (int(stats.acked) + int(stats.duplicates), int(stats.failures))
        with self._lock:
            before, self._shipper_seen = self._shipper_seen, seen
            if seen[0] > before[0]:
                self._reachable = True
            elif seen[1] > before[1]:
                self._reachable = False
            if self._reachable is None and self.fetcher is not None:
                self._reachable = self.fetcher.reachable
            return self._reachable

    def status(self) -> ServiceStatus:
        """The service's status now (any thread; quick)."""
        queue = 0
        if self.journal is not None and self._state != "stopped":
            try:
                queue = self.journal.pending_count()
            except JournalError:
                queue = -1
        shipper = self.shipper
        server = self.server or self._counted
        store = self.store
        return ServiceStatus(
            state=self._state,
            pid=os.getpid(),
            version=__version__,
            started_at=self._started_at,
            updated_at=_now_iso(),
            data_dir=str(self.data_dir),
            socket=str(self.socket_path or ""),
            endpoint=self.endpoint or self._configured_endpoint or "",
            embedded=self.embedded is not None,
            enrolled=self._enrolled,
            device_id=self.device.id if self.device is not None else "",
            queue_depth=queue,
            agent_events=server.accepted if server is not None else 0,
            agent_refused=server.rejected if server is not None else 0,
            shipped=int(shipper.stats.acked) if shipper is not None else 0,
            ship_failures=int(shipper.stats.failures) if shipper is not None else 0,
            collector_reachable=self._reachability(),
            policy_version=store.current().version if store is not None else "",
            policy_etag=(store.central_etag or "") if store is not None else "",
            policy_fetch=self._policy_fetch,
            problem=self._problem,
        )

    def _write_status(self, status: ServiceStatus | None = None) -> None:
        """Publish the status in the data directory and next to the socket (for agents):
        when something changed, else once every STATUS_REFRESH_S to show the service lives."""
        status = status or self.status()
        same = dataclasses.replace(status, updated_at="")
        now = time.monotonic()
        if self._last_written is not None and self._last_written[0] == same and (
                now - self._last_written[1] < STATUS_REFRESH_S):
            return
        self._last_written = (same, now)
        text = status.to_json()
        places = [self.data_dir / STATUS_FILE]
        if self.socket_path is not None and self.socket_path.parent != self.data_dir:
            places.append(self.socket_path.parent / STATUS_FILE)
        for path in places:
            try:
                _write_public(path, text)
            except OSError as exc:
                log.debug("service status not written to %s: %s", path, exc)


class _CachedCredentials:
    """The device credentials, re-read only when the enrolment file changes.

    `teller-guard enroll` may run while the service does; reading the OS keyring for every
    batch would be slow, so the key is kept until enrollment.json is rewritten.
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


