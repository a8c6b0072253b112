"""The teller's process: composes the session's watchers, the pipeline, the prompts and delivery.

`ui/app.py` creates one `Agent` per desktop session with its Qt implementations of the
prompter and the ports, calls `start()`, forwards every clipboard change and reads `status()`.
Events go to the machine service over the local channel when it answers; otherwise the agent runs
its own delivery (single-process mode, `guard.app.single_process`). Nothing here imports Qt.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from guard import identity, paths, platforms
from guard.app import lean, single_process  # noqa: F401  (lean first: no httpx CLI)
from guard.app.image_scanner import ImageCapableScanner
from guard.app.keyboard import SharedKeyboardHook
from guard.app.status import AgentState, AgentStatus, overall
from guard.credentials import (
    Backoff,
    PinStore,
    TellerCredentials,
    UnlockResult,
    os_password_checker,
    verify_secret,
)
from guard.delivery.delivery import Delivery, DeliveryError
from guard.enforce.quarantine import Quarantine
from guard.enforce.watermark import WatermarkController
from guard.events import EventType
from guard.ipc.agent_side import ServiceSink, agent_sink
from guard.model import Action, Channel, Event, Outcome
from guard.pipeline.approval import IT, Approver
from guard.pipeline.pipeline import EventSink, MemorySink, Pipeline, TextScanner
from guard.pipeline.prompt import Prompter
from guard.platforms import Platform, PlatformUnavailable
from guard.policy.schema import Policy
from guard.policy.store import PolicyStore, Rejection
from guard.ports import ClipboardContent, ClipboardPort, LockPort, WatermarkPort
from guard.scan.engine import Scanner
from guard.watchers.base import Watcher
from guard.watchers.clipboard import ClipboardWatcher
from guard.watchers.files import ScreenshotFolderWatcher
from guard.watchers.idle import IdleLock
from guard.watchers.remote_control import RemoteControlWatcher
from guard.watchers.screen import ScreenCaptureWatcher
from guard.watchers.sweep import SweepWatcher

__all__ = ["Agent", "AgentState", "AgentStatus", "UnlockResult"]

log = logging.getLogger(__name__)

STATUS_TICK_S = 5.0


def _load_scanner(policy: Policy, key: bytes | None) -> tuple[TextScanner | None, str]:
    """The detection core's scanner, or None and the reason it cannot be loaded. `key` None:
    the key-less scanner of an agent beside the machine service (the service hashes).

    It keeps every finding the lowest policy threshold could want; `decide` applies the
    per-type thresholds, so the policy stays the one place they are set."""
    try:
        scanner = Scanner(key=key, min_confidence=min(policy.thresholds.values(), default=0.5))
    except Exception as exc:  # a detector table that fails to load: protect what is left
        return None, f"scanner unavailable ({exc.__class__.__name__}: {exc})"[:200]
    return scanner, ""


def _shared_keyboard(platform: Platform) -> SharedKeyboardHook:
    """The session's one keyboard hook, over the platform's (none on a test's fake platform)."""
    make = getattr(platform, "keyboard_hook", None)
    if make is None:
        return SharedKeyboardHook(
            lambda on_error: platforms.unavailable_session(
                "this platform has no keyboard hook").keyboard_hook(on_error))
    return SharedKeyboardHook(lambda on_error: make(on_error=on_error))


def _session_platform() -> Platform:
    try:
        return platforms.current_session()
    except PlatformUnavailable as exc:
        return platforms.unavailable_session(str(exc))


class Agent:
    """The session agent's core: one per desktop session, driven by the UI.

    `watchers` are the session's channels (the clipboard guard and the idle lock today); the
    agent starts, stops and reports them without knowing which they are. Thread model:
    `on_clipboard_changed` is called on the Qt thread and returns at once; scanning, prompting and
    enforcement happen on worker threads which call the prompter and the ports (the UI marshals
    them to the Qt thread). Subscribers are called from any thread.
    """

    def __init__(self, *, pipeline: Pipeline, store: PolicyStore, clipboard: ClipboardWatcher,
                 idle: IdleLock, credentials: TellerCredentials, platform: Platform,
                 data_dir: Path, watchers: Sequence[Watcher] = (),
                 delivery: Delivery | None = None, scanner_problem: str = "",
                 service_sink: ServiceSink | None = None) -> None:
        self.pipeline = pipeline
        self.store = store
        self.clipboard = clipboard
        self.idle = idle
        self.watchers: tuple[Watcher, ...] = tuple(watchers) or (clipboard, idle)
        self.credentials = credentials
        self.platform = platform
        self.data_dir = data_dir
        self.delivery = delivery  # single-process mode: this process journals and ships
        self.journal = delivery.journal if delivery is not None else None
        self.service_sink = service_sink  # events go to the machine service when it runs
        # What cannot run at all, by watcher name (the scanner missing disables scanning).
        self._problems = {clipboard.name: scanner_problem} if scanner_problem else {}
        self._scanner_problem = scanner_problem
        self._lock = threading.Lock()
        self._subscribers: list[Callable[[AgentStatus], None]] = []
        self._last_status: AgentStatus | None = None
        self._last_event = ""
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.started = False
        # the session's one keyboard hook (capture hotkeys here, the UI's lock hotkey)
        self.keyboard = _shared_keyboard(platform)
        self.image_scanner: ImageCapableScanner | None = None
        self._it_check: Callable[[str], bool] = self._it_check_here

    # -- composition
    @classmethod
    def create(
        cls,
        *,
        prompter: Prompter,
        clipboard: ClipboardPort,
        locker: LockPort,
        policy_file: str | None = None,
        data_dir: Path | None = None,
        sink: EventSink | None = None,
        platform: Platform | None = None,
        scanner: TextScanner | None = None,
        watermark: WatermarkPort | None = None,
    ) -> Agent:
        """Compose the teller's agent.

        Scanner, policy store (packaged < machine < central; `policy_file` or the env
        TELLER_GUARD_POLICY takes the machine layer's place for tests and demos), the machine
        service's sink when it answers (it may then ask this teller through `prompter`), else
        single-process delivery (journal + shipper to TELLER_GUARD_ENDPOINT, the policy's
        `agent.endpoint` or the collector this PC was enrolled at, else the embedded local
        collector under `data_dir`), the session's watchers (clipboard guard, idle lock) and the
        central policy poller. Nothing runs until `start()`.

        `sink`, `platform` and `scanner` replace the journal, the desktop backend and the real
        scanner (tests, benchmarks); with a `sink` nothing is shipped. The device identity is kept
        in `data_dir` too, and in single-process mode this teller's own hash key (with the
        machine service the agent has none: its scanner is key-less and the service hashes).

        What the prompter is asked (`PromptRequest.kind` per channel): ``copy`` (notify, or
        confirm/justify when policy says so), ``redacted``, ``blocked``, ``cleared`` (auto-clear),
        ``skipped`` (detail ``skipped``: what was not scanned and why), ``idle_warn`` (action
        LOCK, `timeout_s` = seconds until the lock).
        """
        if data_dir is not None:
            data_dir = Path(data_dir)
            data_dir.mkdir(parents=True, exist_ok=True)
        else:
            data_dir = paths.data_dir()
        store = PolicyStore(override_file=policy_file, cache_dir=data_dir)
        policy = store.reload()
        device = identity.device(data_dir)
        teller = identity.teller()

        agent: Agent
        delivery: Delivery | None = None
        service_sink: ServiceSink | None = None
        if sink is None:
            # The machine service owns the journal and shipper when it runs (DESIGN: Processes).
            service_sink = agent_sink(data_dir, device=device, teller=teller, prompter=prompter)
            sink = service_sink
        if sink is None:
            try:
                delivery = single_process.open_delivery(
                    data_dir, device=device, store=store, tick_s=STATUS_TICK_S,
                    part_states=lambda: agent.status().watchers)
                sink = delivery.journal
            except DeliveryError as exc:  # no journal: keep protecting, events stay in memory
                log.error("journal unavailable (%s); events kept in memory only", exc)
                sink = MemorySink()
        problem = ""
        if scanner is None:
            # Beside the machine service this process holds no hash key at all (issue 8): the
            # scanner finds and masks, the service hashes the values handed to it in memory.
            # Alone, the agent keeps its own key, 0600 in the teller's own data directory.
            key = None if service_sink is not None else identity.hash_key(data_dir)
            scanner, problem = _load_scanner(policy, key)
            if isinstance(scanner, Scanner):  # images (captures, screenshot files) via OCR
                scanner = ImageCapableScanner(scanner)
        pipeline = Pipeline(scanner=scanner, policy=store.current, prompter=prompter, sink=sink,
                            device=device, teller=teller)
        if platform is None:
            platform = _session_platform()
        creds = TellerCredentials(
            teller=teller,
            pins=PinStore(teller, data_dir),
            os_checker=os_password_checker(),
            backoff=Backoff(policy.idle.backoff_after, policy.idle.backoff_base_s,
                            policy.idle.backoff_max_s),
            mode=lambda: store.current().idle.unlock,
        )
        # One-time codes are checked where the device key lives: the machine service, or this
        # process's own delivery (single-process mode). Without either, none are offered.
        code_verifier = (service_sink.verify_code if service_sink is not None
                         else delivery.verify_code if delivery is not None else None)
        if service_sink is not None:
            # Beside the service this process holds no credential verifier: every layer is
            # read without them and the service checks supervisors and the IT credential.
            store.withhold_verifiers()
        remote = service_sink.verify_credential if service_sink is not None else None

        def approver(backoff: Backoff) -> Approver:
            return Approver(policy=store.current, teller=teller, password=creds.os_checker,
                            backoff=backoff, teller_matches=creds.matches,
                            code_verifier=code_verifier, remote=remote)

        idle_policy = policy.idle
        pipeline.approver = approver(Backoff(idle_policy.backoff_after,
                                             idle_policy.backoff_base_s,
                                             idle_policy.backoff_max_s))

        def it_check(secret: str) -> bool:
            if service_sink is not None:
                return service_sink.verify_credential(IT, "", secret).ok
            encoded = store.current().agent.it_credential_hash
            return bool(encoded) and verify_secret(secret, encoded)

        watcher = ClipboardWatcher(pipeline, clipboard, platform=platform)
        idle = IdleLock(pipeline, platform, locker, creds,
                        on_change=lambda: agent._publish(),
                        approver=approver(creds.backoff), it_check=it_check,
                        it_offered=lambda: bool(store.current().agent.it_credential_hash))
        keyboard = _shared_keyboard(platform)
        images = scanner if isinstance(scanner, ImageCapableScanner) else None
        # In the teller's own directory: encrypted to IT's key from policy (issue 10).
        quarantine = Quarantine(data_dir / "quarantine",
                                public_key=lambda: store.current().agent.quarantine_key)
        watchers: list[Watcher] = [watcher, idle, RemoteControlWatcher(pipeline)]
        # A platform without a keyboard hook (a test's fake) has no desktop to capture; a
        # scanner without OCR (a test's table scanner) cannot read screenshots.
        if hasattr(platform, "keyboard_hook"):
            screen = ScreenCaptureWatcher(pipeline, keyboard, images)
            keyboard.on_error(screen.hook_failed)
            watchers.append(screen)
        if images is not None:
            watchers += [ScreenshotFolderWatcher(pipeline, images, quarantine=quarantine),
                         SweepWatcher(pipeline, images, data_dir, quarantine=quarantine)]
        if watermark is not None:
            watchers.append(WatermarkController(pipeline, watermark, device=device.id))
        agent = cls(pipeline=pipeline, store=store, clipboard=watcher, idle=idle,
                    watchers=watchers, credentials=creds, platform=platform,
                    data_dir=data_dir, delivery=delivery, scanner_problem=problem,
                    service_sink=service_sink)
        agent.keyboard = keyboard
        agent.image_scanner = images
        agent._it_check = it_check
        pipeline.on_event(agent._on_event)
        store.on_rejected(agent._on_rejected)  # replays the early rejections as events
        store.on_change(agent._on_policy_change)
        return agent

    # -- lifecycle
    def start(self, *, idle: bool = True) -> None:
        """Start the watchers, the shipper and the policy poller. Returns at once.

        `idle` False holds the idle lock back until `start_idle()` (the first-run PIN dialog
        comes before any idle lock can)."""
        if self.started:
            return
        self.started = True
        self._stop.clear()
        for watcher in self.watchers:
            if watcher is self.idle and not idle:
                continue
            watcher.start()
        if self.delivery is not None:
            self.delivery.start()
        self._spawn(self._background, "agent-background")
        self.pipeline.record(EventType.AGENT_STARTED, Channel.SYSTEM,
                             Action.AUDIT, Outcome.RECORDED,
                             detail={"platform": self.platform.name,
                                     "scanner": self._scanner_problem or "loaded"})
        self._publish()

    def start_idle(self) -> None:
        """Start the idle lock held back by `start(idle=False)`; its clock starts now."""
        if self.started:
            self.idle.start()

    def stop(self) -> None:
        """Stop everything and flush the journal; blocks ≤ ~2 s (more if a prompt is open)."""
        if not self.started:
            return
        self.pipeline.record(EventType.AGENT_STOPPED, Channel.SYSTEM,
                             Action.AUDIT, Outcome.RECORDED)
        self._stop.set()
        for watcher in self.watchers:
            watcher.stop()
        for t in self._threads:
            t.join(2.0)
        self._threads.clear()
        if self.delivery is not None:
            self.delivery.stop(shipper_timeout_s=2.0, thread_timeout_s=2.0)
        if self.service_sink is not None:
            self.service_sink.close()
        if self.image_scanner is not None:
            self.image_scanner.stop()
        self.started = False

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        t = threading.Thread(target=target, name=name, daemon=True)
        self._threads.append(t)
        t.start()

    def _background(self) -> None:
        """The periodic status refresh and the policy poll: `Delivery` polls the collector in
        single-process mode; with the machine service, the agent re-reads the machine layers
        and takes the central layer the service downloaded (only the service can sign for it)."""
        next_poll = 0.0
        elapsed = 0.0
        while not self._stop.is_set():
            try:
                if self.delivery is None and elapsed >= next_poll:
                    self.store.reload()  # IT may have changed the machine layers
                    self._follow_the_service()
                    next_poll = elapsed + self.store.current().agent.policy_poll_interval_s
                self._publish()
            except Exception:  # the poller must outlive any one failure
                log.exception("policy poll or status refresh failed")
            self._stop.wait(STATUS_TICK_S)
            elapsed += STATUS_TICK_S

    def _follow_the_service(self) -> None:
        """Apply the central policy layer the machine service applies, when it changed."""
        if self.service_sink is None:
            return
        layer = self.service_sink.central_policy()
        if layer is None:
            return
        text, etag = layer
        if etag and etag == self.store.central_etag:
            return
        self.store.apply_central(text, etag or None)

    # -- events and policy
    def _on_event(self, event: Event) -> None:
        with self._lock:
            self._last_event = f"{event.type} {event.outcome.value}"
        self._publish()

    def _on_rejected(self, rejection: Rejection) -> None:
        self.pipeline.record(EventType.POLICY_REJECTED, Channel.SYSTEM,
                             Action.AUDIT, Outcome.FAILED,
                             detail={"source": rejection.source[:200],
                                     "reason": rejection.reason[:500]})

    def _on_policy_change(self, policy: Policy) -> None:
        if self.service_sink is not None:
            return  # the service records POLICY_APPLIED (only it may: guard.events.SERVICE_ONLY)
        self.pipeline.record(EventType.POLICY_APPLIED, Channel.SYSTEM,
                             Action.AUDIT, Outcome.RECORDED,
                             detail={"version": policy.version})

    # -- the UI's calls
    def on_clipboard_changed(self, content: ClipboardContent) -> None:
        """Hand over what the clipboard now holds (Qt thread; returns fast).

        Scanning happens on a worker thread; rapid changes are coalesced (only the latest pending
        content is scanned) and changes the guard made itself are ignored.
        """
        self.clipboard.on_change(content)

    def lock_now(self, reason: str = "manual") -> None:
        """Lock the screen now (menu item / hotkey): OS lock, verified, else the overlay.
        Returns at once; the lock happens on a worker thread."""
        threading.Thread(target=self.idle.lock, args=(reason,), name="lock-now",
                         daemon=True).start()

    def unlock(self, credential: str, by: str = "teller", supervisor: str = "") -> UnlockResult:
        """Check a credential at the overlay and, when it is right, hide the overlay and record
        the unlock: the teller's (OS password where it works, else the PIN), a supervisor's
        (`supervisor` is the id), the IT credential (`by` ``it``) or a one-time recovery code
        (``code``). Blocks ≤ ~1 s (scrypt / PAM) or a local-channel round trip."""
        return self.idle.unlock(credential, by, supervisor)

    def unlock_methods(self) -> tuple[str, ...]:
        """What the overlay accepts now (``teller``, ``supervisor``, ``it``, ``code``)."""
        return self.idle.unlock_methods()

    def supervisors(self) -> tuple[tuple[str, str], ...]:
        """The supervisors who may approve or unlock here: (id, display name)."""
        approver = self.pipeline.approver
        return tuple((s.id, s.label) for s in approver.supervisors()) if approver else ()

    def needs_pin_setup(self) -> bool:
        """True when no teller PIN is stored yet and the OS password cannot be checked."""
        return self.credentials.needs_pin_setup()

    def set_pin(self, pin: str) -> None:
        """Store the teller's first-run PIN (salted scrypt hash). Raises `ValueError` (with a
        message key as its text: ``pin_too_short`` / ``pin_not_digits``) when it is unacceptable."""
        self.credentials.set_pin(pin)
        self.pipeline.record(EventType.PIN_SET, Channel.SYSTEM,
                             Action.AUDIT, Outcome.RECORDED,
                             detail={"store": self.credentials.pins.backend})

    def _it_check_here(self, secret: str) -> bool:
        encoded = self.store.current().agent.it_credential_hash
        return bool(encoded) and verify_secret(secret, encoded)

    def verify_it_credential(self, secret: str) -> bool:
        """True when `secret` is the IT credential (needed to quit): checked by the machine
        service when it runs (this process holds no verifier then; an older service that
        cannot check it refuses), else against the hash in policy. Blocks (scrypt, or a
        local-channel round trip)."""
        ok = self._it_check(secret)
        self.pipeline.record(EventType.IT_CREDENTIAL_CHECK, Channel.SYSTEM, Action.AUDIT,
                             Outcome.ALLOWED if ok else Outcome.FAILED)
        return ok

    def status(self) -> AgentStatus:
        """The current status (any thread; returns at once)."""
        watchers = {w.name: w.state for w in self.watchers}
        for name, problem in self._problems.items():
            watchers[name] = f"unavailable: {problem}"
        queue = 0
        if self.service_sink is not None:
            service = self.service_sink.service_status()
            if service is not None and not service.running:
                service = None
            queue = self.service_sink.pending_count() + (service.queue_depth if service else 0)
            reachable = service.collector_reachable if service else False
        else:
            if self.journal is not None:
                try:
                    queue = int(self.journal.pending_count())
                except Exception:  # a journal in trouble shows as alert through sink_error
                    queue = 0
            reachable = self.delivery.reachable() if self.delivery is not None else None
        with self._lock:
            alert = bool(self.store.active_rejections()) or self.pipeline.sink_error is not None
            last_event = self._last_event
        return AgentStatus(state=overall(watchers, alert=alert, reachable=reachable),
                           watchers=watchers, last_event=last_event, queue_depth=queue,
                           policy_version=self.store.current().version,
                           collector_reachable=reachable, locked=self.idle.locked)

    def subscribe(self, callback: Callable[[AgentStatus], None]) -> None:
        """Call `callback(status)` whenever the status changes (from any thread)."""
        with self._lock:
            self._subscribers.append(callback)

    def _publish(self) -> None:
        status = self.status()
        with self._lock:
            if status == self._last_status:
                return
            self._last_status = status
            subscribers = list(self._subscribers)
        for cb in subscribers:
            try:
                cb(status)
            except Exception:
                log.exception("status subscriber failed")
