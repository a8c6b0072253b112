"""The machine service's composition root: delivery, the local channel, and the service's pipeline.

One machine service runs per PC (root under systemd, SYSTEM under the Windows service manager). It
owns what a teller must not be able to switch off or edit: `Delivery` (journal, shipper, policy
download), the local channel's server that session agents hand their events to, and a pipeline
for the channels the service enforces itself (`channels`: each makes a watcher from the pipeline),
which asks the teller through the local channel (`RemotePrompter`) and takes the safe choice
when no session answers. Where policy lets a supervisor approve a blocked action of those
channels, the teller's agent shows the supervisor dialog and the service checks every credential
(`ServiceApprovers`): the supervisors' verifiers and the device key never reach a teller's
process.
"""


from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from guard import __version__, identity, paths, platforms
from guard.app import local_collector
from guard.credentials import Backoff, os_check_works_for, os_password_checker, verify_secret
from guard.delivery.delivery import Delivery, DeliveryError, DeliverySettings, endpoint_setting
from guard.delivery.journal import JournalError
from guard.events import EventType, new_event
from guard.files import write_atomic
from guard.ipc.agent_side import _answers
from guard.ipc.messages import LocalChannelUnavailable
from guard.ipc.remote_prompter import RemotePrompter
from guard.ipc.server import LocalChannelServer
from guard.ipc.status import STATUS_FILE, ServiceState, ServiceStatus
from guard.ipc.unix import default_socket_path
from guard.model import Outcome, utc_now_iso
from guard.pipeline.approval import IT, SUPERVISOR, ApprovalResult, Approver
from guard.pipeline.pipeline import Pipeline
from guard.platforms.base import DataDirBusy, HeldLock, PasswordCheck, PlatformUnavailable
from guard.policy.schema import Policy
from guard.policy.store import PolicyStore, Rejection
from guard.scan.engine import Scanner
from guard.watchers.base import Watcher

log = logging.getLogger(__name__)

ENV_ENROLL_TOKEN = "TELLER_GUARD_ENROLL_TOKEN"
STATUS_REFRESH_S = 60.0

ChannelFactory = Callable[[Pipeline], Watcher]
"""Makes one of the service's own channels (a watcher) from the service's pipeline."""


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
    write_atomic(path, text.encode("utf-8"), mode=0o644)


class ServiceApprovers:
    """The machine service's supervisor approvals: one `Approver` per teller, made when first
    needed, so each teller has their own back-off and cannot approve their own action.

    Everything is checked here: the supervisors' scrypt verifiers and OS groups from the
    policy in force, one-time codes with the device key (`code_verifier`, the delivery), and a
    credential that is the teller's own OS password never approves. (The teller's PIN lives in
    their own profile, out of the service's reach; it is not compared.) `password` is made when
    first needed: the OS password check of this platform. Called from worker threads."""

    def __init__(self, store: PolicyStore, *, code_verifier: Callable[[str, str], bool] | None,
                 password: Callable[[], PasswordCheck] = os_password_checker) -> None:
        self._store = store
        self._code_verifier = code_verifier
        self._make_password = password
        self._password: PasswordCheck | None = None
        self._approvers: dict[str, Approver] = {}
        self._it_backoffs: dict[str, Backoff] = {}
        self._lock = threading.Lock()

    def verify(self, teller: str, method: str, supervisor_id: str, secret: str
               ) -> ApprovalResult:
        """A credential typed in `teller`'s own agent, whose verifier that agent never gets
        (`guard.policy.withhold`): a supervisor's (`method` ``supervisor``: the same check and
        back-off as the approvals of the service's own channels, no self-approval) or the IT
        credential (``it``, with a back-off of its own per teller). The local channel's
        ``verify_credential`` message; blocks (scrypt, PAM)."""
        if method == SUPERVISOR:
            approver = self(teller)
            if approver is None:
                return ApprovalResult(False, SUPERVISOR, supervisor_id[:64],
                                      message_key="not_offered")
            return approver.check(SUPERVISOR, supervisor_id, secret)
        if method != IT or not teller:
            return ApprovalResult(False, method, message_key="not_offered")
        encoded = self._store.current().agent.it_credential_hash
        if not encoded:
            return ApprovalResult(False, IT, message_key="not_offered")
        with self._lock:
            backoff = self._it_backoffs.get(teller)
            if backoff is None:
                idle = self._store.current().idle
                backoff = self._it_backoffs[teller] = Backoff(
                    idle.backoff_after, idle.backoff_base_s, idle.backoff_max_s)
        wait = backoff.wait_left()
        if wait > 0:
            return ApprovalResult(False, IT, retry_after_s=wait, message_key="backoff")
        if verify_secret(secret, encoded):
            backoff.succeeded()
            return ApprovalResult(True, IT)
        state = backoff.failed()
        log.warning("IT credential refused for %s's agent (%d wrong in a row)", teller,
                    backoff.failures)
        return ApprovalResult(False, IT, retry_after_s=state.retry_after_s,
                              message_key="wrong_credential")

    def __call__(self, teller: str) -> Approver | None:
        """The approver for `teller`'s actions; None when the action names no teller (nobody
        to tell apart from the supervisor: no approval)."""
        if not teller:
            return None
        with self._lock:
            if self._password is None:
                self._password = self._make_password()
            password = self._password
            approver = self._approvers.get(teller)
            if approver is None:
                idle = self._store.current().idle

                def own_password(secret: str) -> bool:
                    return os_check_works_for(password, teller)[0] and password.check(teller,
                                                                                      secret)

                approver = self._approvers[teller] = Approver(
                    policy=self._store.current, teller=teller, password=password,
                    backoff=Backoff(idle.backoff_after, idle.backoff_base_s, idle.backoff_max_s),
                    teller_matches=own_password, code_verifier=self._code_verifier)
            return approver


def _login_session_probe() -> Callable[[str], bool | None] | None:
    """Whether a teller is logged in (has processes), from the machine platform; None when the
    platform cannot load."""
    try:
        return platforms.current_machine().processes.user_has_processes
    except PlatformUnavailable as exc:
        log.warning("cannot tell who is logged in (%s); a teller's agent is waited for briefly",
                    exc)
        return None


def _lock_data_dir(data_dir: Path) -> HeldLock | None:
    """Hold an exclusive lock on the data directory for this process's lifetime, so a second
    service cannot journal and ship the same rows."""
    try:
        lock = platforms.current_machine().data_lock
    except PlatformUnavailable as exc:
        log.warning("data directory not locked: %s", exc)
        return None
    try:
        return lock.hold(data_dir)
    except DataDirBusy:
        raise ServiceError(f"another machine service already uses {data_dir}; stop it first "
                           f"(systemctl stop teller-guard)") from None
    except OSError as exc:
        raise ServiceError(f"cannot lock the data directory {data_dir}: {exc}") from exc


class MachineService:
    """The composed machine service. `start()` returns once the local channel listens; shipping
    set-up (embedded collector, enrolment) and policy polling run on `Delivery`'s background
    thread and are retried while they fail, so events are journaled from the first second.

    `start()`, `stop()` and `reload_policy()` are called by the owner (the command's main thread);
    `status()` from any thread.
    """

    def __init__(self, settings: ServiceSettings, *,
                 channels: Sequence[ChannelFactory] = ()) -> None:
        self.settings = settings
        self._channels = tuple(channels)
        self.pipeline: Pipeline | None = None
        self.approvers: ServiceApprovers | None = None
        self.watchers: tuple[Watcher, ...] = ()
        self.data_dir = Path(settings.data_dir)
        self.socket_path = Path(settings.socket_path) if settings.socket_path else None
        self.store: PolicyStore | None = None
        self.delivery: Delivery | None = None
        self.server: LocalChannelServer | None = None
        self._counted: LocalChannelServer | None = None  # the stopped server, for its counters
        self._state: ServiceState = "stopped"
        self._started_at = ""
        self._lock_file: HeldLock | None = None
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
        self._started_at = utc_now_iso("seconds")
        try:
            self._compose()
        except ServiceError:
            self._teardown()
            self._state = "stopped"
            raise
        assert self.delivery is not None
        configured = self.delivery.configured_endpoint
        self._record(EventType.SERVICE_STARTED,
                     {"pid": os.getpid(), "socket": str(self.socket_path),
                      "endpoint": configured or "embedded"})
        self.delivery.start()
        for watcher in self.watchers:
            watcher.start()
        self._state = "running"
        self._write_status()
        log.info("service running: socket %s, data %s, collector %s", self.socket_path,
                 self.data_dir, configured or "embedded (starting)")

    def _compose(self) -> None:
        data = self.data_dir
        try:
            data.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ServiceError(f"cannot use the data directory {data}: {exc}") from exc
        if not os.access(data, os.W_OK):
            raise ServiceError(f"the data directory {data} is not writable by this user")
        self._lock_file = _lock_data_dir(data)
        try:
            device = identity.device(data)
        except paths.ConfigError as exc:
            raise ServiceError(str(exc)) from exc
        store = PolicyStore(override_file=self.settings.policy_file, cache_dir=data)
        policy = store.reload()
        try:
            # Refused before anything is opened; from the machine layers only (issue 8 item 6).
            endpoint_setting(self.settings.endpoint, store.machine_policy())
            delivery = Delivery(
                DeliverySettings(data_dir=data, endpoint=self.settings.endpoint,
                                 enroll_token=self.settings.enroll_token,
                                 ca_bundle=self.settings.ca_bundle,
                                 tick_s=self.settings.status_tick_s,
                                 setup_retry_s=self.settings.setup_retry_s),
                device=device, store=store, agent_version=__version__,
                part_states=self._part_states, on_tick=self._write_status,
                local_collector=local_collector.start)
        except DeliveryError as exc:
            raise ServiceError(str(exc)) from exc
        self.store, self.delivery = store, delivery
        store.on_rejected(self._on_rejected)  # replays refusals seen while loading
        store.on_change(self._on_policy_change)
        if self.socket_path is None:
            self.socket_path = default_socket_path()
        if _answers(self.socket_path):
            raise ServiceError(f"another machine service already answers on {self.socket_path}; "
                               f"stop it first (systemctl stop teller-guard)")
        approvers = ServiceApprovers(store, code_verifier=delivery.verify_code)
        try:
            # The install key stays in this process: the server hashes the values tellers'
            # agents hand over beside their events and never sends the key (issue 8). So do
            # the credential verifiers: agents get the policy without them and ask here.
            server = LocalChannelServer(delivery.journal, self.socket_path,
                                        allowed_uids=self.settings.allowed_uids,
                                        hash_key=identity.hash_key(self.data_dir), device=device,
                                        status_provider=lambda: dataclasses.asdict(self.status()),
                                        policy_provider=store.central_layer_for_agents,
                                        code_verifier=delivery.verify_code,
                                        credential_checker=approvers.verify)
            server.start()
        except LocalChannelUnavailable as exc:
            raise ServiceError(f"{exc}") from exc
        except OSError as exc:
            raise ServiceError(f"cannot listen on {self.socket_path}: {exc} (is the directory "
                               f"there and writable, and the path short enough?)") from exc
        self.server = server
        key = identity.hash_key(data)
        scanner = Scanner(key=key, min_confidence=min(policy.thresholds.values(), default=0.5))
        # The service's channels hold what they guard (a print job stays held) while the teller
        # and a supervisor are asked; a teller whose agent is still starting is waited for.
        probe = _login_session_probe()
        prompter = RemotePrompter(server, session_live=probe or (lambda _teller: None))
        self.approvers = approvers
        self.pipeline = Pipeline(scanner=scanner, policy=store.current, prompter=prompter,
                                 sink=delivery.journal, device=device,
                                 approver_for=self.approvers, holds=True)
        self.watchers = tuple(make(self.pipeline) for make in self._channels)

    def stop(self) -> None:
        """Stop taking events, let the shipper finish briefly, stop everything, close the journal.

        Blocks for at most about `final_flush_s` plus a few seconds.
        """
        if self._state in ("stopped", "stopping"):
            return
        self._state = "stopping"
        for watcher in self.watchers:
            watcher.stop()
        if self.server is not None:
            self.server.stop()  # agents spool from now on
            self._counted, self.server = self.server, None
        self._record(EventType.SERVICE_STOPPED, {"pid": os.getpid()})
        if self.delivery is not None:
            self.delivery.flush(self.settings.final_flush_s)
        last = self.status()  # the final counters, before the parts are taken down
        self._teardown()
        self._state = "stopped"
        self._write_status(dataclasses.replace(last, state="stopped",
                                               updated_at=utc_now_iso("seconds")))
        log.info("service stopped")

    def _teardown(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None
        if self.delivery is not None:
            self.delivery.stop(shipper_timeout_s=5.0)
        if self._lock_file is not None:
            self._lock_file.release()
            self._lock_file = None

    def reload_policy(self) -> None:
        """Re-read the machine policy layers and ask the collector now (SIGHUP)."""
        if self.store is not None:
            self.store.reload()
        if self.delivery is not None:
            self.delivery.poll_policy_now()

    # ------------------------------------------------------------------ events

    def _record(self, type_: EventType, detail: dict[str, str | int | float | bool | None],
                outcome: Outcome = Outcome.RECORDED) -> None:
        if self.delivery is None:
            return
        version = self.store.current().version if self.store is not None else ""
        event = new_event(type_, device=self.delivery.device, outcome=outcome,
                          agent_version=__version__, policy_version=version, detail=detail)
        try:
            self.delivery.journal.record(event)
        except JournalError as exc:
            log.error("%s not journaled: %s", type_, exc)

    def _on_rejected(self, rejection: Rejection) -> None:
        self._record(EventType.POLICY_REJECTED, {"source": rejection.source[:200],
                                       "reason": rejection.reason[:500]}, Outcome.FAILED)

    def _on_policy_change(self, policy: Policy) -> None:
        log.info("policy %s applied", policy.version)
        self._record(EventType.POLICY_APPLIED, {"version": policy.version})

    # ------------------------------------------------------------------ status

    def _part_states(self) -> dict[str, str]:
        """The service's parts for the heartbeat event."""
        fetch = self.delivery.policy_fetch if self.delivery is not None else ""
        return {
            "local_channel": self.server.state if self.server is not None else "stopped",
            **{w.name: w.state for w in self.watchers},
            "policy_fetch": fetch or "pending",
        }

    def status(self) -> ServiceStatus:
        """The service's status now (any thread; quick)."""
        delivery = self.delivery
        queue = 0
        if delivery is not None and self._state != "stopped":
            try:
                queue = delivery.journal.pending_count()
            except JournalError:
                queue = -1
        server = self.server or self._counted
        store = self.store
        return ServiceStatus(
            state=self._state,
            pid=os.getpid(),
            version=__version__,
            started_at=self._started_at,
            updated_at=utc_now_iso("seconds"),
            data_dir=str(self.data_dir),
            socket=str(self.socket_path or ""),
            endpoint=(delivery.endpoint or delivery.configured_endpoint or "") if delivery else "",
            embedded=delivery is not None and delivery.embedded is not None,
            enrolled=delivery is not None and delivery.enrolled,
            device_id=delivery.device.id if delivery is not None else "",
            queue_depth=queue,
            agent_events=server.accepted if server is not None else 0,
            agent_refused=server.rejected if server is not None else 0,
            shipped=delivery.shipped if delivery is not None else 0,
            ship_failures=delivery.ship_failures if delivery is not None else 0,
            collector_reachable=delivery.reachable() if delivery is not None else None,
            policy_version=store.current().version if store is not None else "",
            policy_etag=(store.central_etag or "") if store is not None else "",
            policy_fetch=delivery.policy_fetch if delivery is not None else "",
            problem=delivery.problem if delivery is not None else "",
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
