"""The idle lock: warns the teller with a countdown, then locks the screen when nobody is there.

A worker thread polls the platform's idle time once a second and asks the policy (`[idle]`
through `decide()`) what it means: a warning with a countdown toast (shown once per idle spell),
or a lock, for which the OS is asked to lock and the lock is verified. When there is no OS lock or
it did not take, the guard's own overlay (LockPort) covers the screens and only the teller's
credential removes it. Every warn, lock and unlock is an event, handed to the pipeline.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Literal

from guard.credentials import TellerCredentials, UnlockResult
from guard.events import EventType, IdleKind
from guard.model import Action, Channel, Observation, Outcome
from guard.pipeline.approval import CODE, SUPERVISOR, Approver
from guard.pipeline.pipeline import DetailValue, Enforcement, Pipeline
from guard.platforms import Platform, PlatformUnavailable
from guard.ports import LockPort

log = logging.getLogger(__name__)

LockMethod = Literal["os", "overlay"]

# Who may remove the overlay: the teller (PIN, or OS password where it works), a supervisor, IT,
# or a one-time recovery code from the collector (channel "unlock").
TELLER, IT = "teller", "it"
UNLOCK_CHANNEL = "unlock"
_UNLOCK_EVENTS = {
    TELLER: EventType.IDLE_UNLOCK,
    SUPERVISOR: EventType.IDLE_UNLOCK_SUPERVISOR,
    IT: EventType.IDLE_UNLOCK_IT,
    CODE: EventType.IDLE_UNLOCK_CODE,
}


class IdleLock:
    """Watches idle time and holds the lock state of one desktop session.

    `tick()` is one poll step (the worker calls it every `poll_s`; tests call it directly).
    `lock()` and `unlock()` may be called from any thread; the lock port is called from them.
    """

    name = "idle"

    def __init__(self, pipeline: Pipeline, platform: Platform, locker: LockPort,
                 credentials: TellerCredentials, *, poll_s: float = 1.0,
                 verify_s: float = 2.0,
                 on_change: Callable[[], None] | None = None,
                 approver: Approver | None = None,
                 it_check: Callable[[str], bool] | None = None,
                 it_offered: Callable[[], bool] = lambda: True,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._pipeline = pipeline
        self._platform = platform
        self._locker = locker
        self._credentials = credentials
        self._poll_s = poll_s
        self._verify_s = verify_s
        self._on_change = on_change
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._warned = False
        self._method: LockMethod | None = None
        self._locked_idle = 0.0
        self._unavailable: str | None = None
        self.last_idle: float | None = None
        self._approver = approver
        self._it_check = it_check
        self._it_offered = it_offered
        self._clock = clock
        # The idle clock starts when watching starts (and again at each unlock): a desktop that
        # was idle before the agent ran must not lock at once. A lock is due only once its
        # warning's countdown ran out.
        self._clock_start = clock()
        self._lock_due: float | None = None

    # -- lifecycle
    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        with self._lock:
            self._clock_start = self._clock()
            self._lock_due = None
        self._thread = threading.Thread(target=self._run, name="idle-lock", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    @property
    def state(self) -> str:
        with self._lock:
            if self._unavailable:
                return f"unavailable: {self._unavailable}"
        if self._thread is not None and not self._thread.is_alive():
            return "unavailable: idle watcher stopped"
        return "running"

    @property
    def locked(self) -> bool:
        with self._lock:
            return self._method is not None

    @property
    def method(self) -> LockMethod | None:
        with self._lock:
            return self._method

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # keep watching: a failed poll must not end the idle lock
                log.exception("idle poll failed")
            # Poll less often while the platform cannot tell idle time.
            self._stop.wait(self._poll_s if self._unavailable is None else 30.0)

    def unlock_methods(self) -> tuple[str, ...]:
        """The credentials the overlay accepts now, in the order it offers them: ``teller``
        (when a PIN is set or the OS password works for this teller), ``supervisor`` (policy
        names one), ``it`` (policy has an IT credential), ``code`` (a recovery code can be
        checked)."""
        methods: list[str] = []
        if self._credentials.has_pin() or self._credentials.os_check_usable():
            methods.append(TELLER)
        if self._approver is not None and self._approver.supervisors():
            methods.append(SUPERVISOR)
        if self._it_check is not None and self._it_offered():
            methods.append(IT)
        if self._approver is not None and self._approver.codes():
            methods.append(CODE)
        return tuple(methods)

    # -- one poll
    def tick(self) -> None:
        try:
            idle = self._platform.idle_seconds()
        except PlatformUnavailable as exc:
            with self._lock:
                first = self._unavailable is None
                self._unavailable = str(exc)[:200]
            if first:
                log.warning("idle time unavailable: %s", exc)
                self._changed()
            return
        now = self._clock()
        with self._lock:
            idle = max(0.0, min(idle, now - self._clock_start))
            was_unavailable = self._unavailable is not None
            self._unavailable = None
            self.last_idle = idle
            method = self._method
        if was_unavailable:
            self._changed()
        if method == "os":
            self._watch_os_lock(idle)
            return
        if method == "overlay":
            return
        poll = Observation(Channel.IDLE, IdleKind.IDLE, meta={"idle_s": idle})
        decision = self._pipeline.decide(poll)
        if decision.action is Action.LOCK:
            with self._lock:
                due = self._lock_due
            if due is not None and now >= due:
                self.lock("idle", idle_s=idle)
                return
            if due is None:
                # Never a lock without its warning: warn now, lock when the countdown ends.
                idle_policy = self._pipeline.policy().idle
                self._warn(idle, max(1.0, idle_policy.lock_after_s - idle_policy.warn_after_s),
                           now)
        elif decision.action is Action.NOTIFY:
            self._warn(idle, decision.timeout_s or 1.0, now)
        else:
            with self._lock:
                self._warned = False
                self._lock_due = None

    def _warn(self, idle: float, countdown: float, now: float) -> None:
        """The countdown warning, once per idle spell; the lock is due when it runs out."""
        with self._lock:
            warn, self._warned = not self._warned, True
            if warn:
                self._lock_due = now + countdown
        if warn:
            # The warning's countdown is what decide() makes of idle_s: the idle time the
            # countdown starts from (below the real one when the warning comes late).
            shown = min(idle, self._pipeline.policy().idle.lock_after_s - countdown)
            meta: dict[str, DetailValue] = {"idle_s": round(shown, 1),
                                            "lock_in_s": round(countdown, 1)}
            if shown < idle:
                meta["idle_real_s"] = round(idle, 1)
            self._pipeline.handle(Observation(Channel.IDLE, IdleKind.WARN, meta=meta))

    def _watch_os_lock(self, idle: float) -> None:
        """While the OS holds the lock: notice when the teller unlocked it."""
        state = self._platform.is_os_locked()
        with self._lock:
            went_down = idle < self._locked_idle
            self._locked_idle = idle
        if state is False or (state is None and went_down):
            self._mark_unlocked("os")

    # -- lock / unlock
    def lock(self, reason: str = "manual", *, idle_s: float | None = None) -> LockMethod:
        """Lock now: OS lock, verified; else (or when unverifiable) the overlay."""
        with self._lock:
            if self._method is not None:
                return self._method
        meta: dict[str, DetailValue] = {"reason": reason[:64]}
        if idle_s is not None:
            meta["idle_s"] = round(idle_s, 1)
        detail: dict[str, DetailValue] = {}  # how it locked: filled in by the enforcement
        taken: list[LockMethod] = []

        def enforce() -> bool:
            taken.append(self._lock_now(idle_s, detail))
            return True  # the overlay is the fallback: locking always takes effect

        self._pipeline.handle(Observation(Channel.IDLE, IdleKind.LOCK, meta=meta),
                              Enforcement(lock=enforce), detail=detail)
        if not taken:  # a lock request always locks (decide's idle.lock); never stay open
            log.error("idle lock: the pipeline did not lock; locking anyway")
            taken.append(self._lock_now(idle_s, detail))
        self._changed()
        return taken[0]

    def _lock_now(self, idle_s: float | None, detail: dict[str, DetailValue]) -> LockMethod:
        """OS lock, verified; else (or when unverifiable) the overlay. Returns how it locked."""
        method: LockMethod = "overlay"
        try:
            requested = self._platform.lock_os()
        except PlatformUnavailable as exc:
            requested = False
            detail["os_lock_error"] = str(exc)[:200]
        if requested and self._verify_os_lock():
            method = "os"
            detail["os_lock"] = "verified"
        else:
            detail["os_lock"] = "unverified" if requested else "unavailable"
        with self._lock:
            self._method = method
            self._warned = False
            self._lock_due = None
            self._locked_idle = idle_s or 0.0
        if method == "overlay":
            self._locker.show_lock()
        detail["method"] = method
        return method

    def _verify_os_lock(self) -> bool:
        end = time.monotonic() + self._verify_s
        while True:
            state = self._platform.is_os_locked()
            if state:
                return True
            if state is None or time.monotonic() >= end:
                return False
            time.sleep(0.1)

    def unlock(self, credential: str, by: str = TELLER, supervisor: str = "") -> UnlockResult:
        """Check the credential and remove the overlay when it is right (any thread; blocks for
        the check). `by` is who types it: ``teller``, ``supervisor`` (with the supervisor's
        id), ``it`` or ``code`` (a one-time recovery code for channel ``unlock``). All share
        one back-off; each kind of unlock is its own event type."""
        with self._lock:
            method = self._method
        if method != "overlay":
            return UnlockResult(False, 0.0, "not_locked")
        if by not in self.unlock_methods():
            return UnlockResult(False, 0.0, "not_offered" if by != TELLER else "no_pin")
        who = ""
        if by == TELLER:
            result = self._credentials.verify(credential)
        else:
            result, who = self._verify_other(by, credential, supervisor)
        if not result.ok:
            if result.message_key in ("wrong_credential", "self_approval",
                                      "unknown_supervisor", "code_refused"):
                meta: dict[str, DetailValue] = {
                    "by": by, "failures": self._credentials.backoff.failures,
                    "retry_after_s": round(result.retry_after_s, 1)}
                if by == SUPERVISOR:
                    meta["supervisor"] = supervisor[:64]
                self._pipeline.handle(Observation(Channel.IDLE, IdleKind.UNLOCK_FAILED,
                                                  meta=meta), outcome=Outcome.FAILED)
            return result
        self._locker.hide_lock()
        self._mark_unlocked("overlay", by=by, supervisor=who)
        return result

    def _verify_other(self, by: str, credential: str, supervisor: str
                      ) -> tuple[UnlockResult, str]:
        """A supervisor's credential, the IT credential or a recovery code, with the teller's
        back-off (the overlay's one)."""
        backoff = self._credentials.backoff
        wait = backoff.wait_left()
        if wait > 0:
            return UnlockResult(False, wait, "backoff"), ""
        if by == IT:
            ok = self._it_check is not None and self._it_check(credential)
            key = "ok" if ok else "wrong_credential"
            who = ""
        else:
            assert self._approver is not None  # unlock_methods offers these only with one
            if by == SUPERVISOR:
                checked = self._approver.check_once(SUPERVISOR, supervisor, credential)
            else:
                checked = self._approver.check_once(CODE, "", credential,
                                                    channel=UNLOCK_CHANNEL)
            ok, key, who = checked.ok, checked.message_key, checked.supervisor
        if ok:
            backoff.succeeded()
            return UnlockResult(True, 0.0, "ok"), who
        state = backoff.failed()
        return UnlockResult(False, state.retry_after_s, key), ""

    def _mark_unlocked(self, method: LockMethod, *, by: str = TELLER,
                       supervisor: str = "") -> None:
        with self._lock:
            if self._method is None:
                return
            self._method = None
            self._warned = False
            self._lock_due = None
            self._clock_start = self._clock()
        if by == TELLER:
            self._pipeline.handle(Observation(Channel.IDLE, IdleKind.UNLOCK,
                                              meta={"method": method}),
                                  outcome=Outcome.UNLOCKED)
        else:
            detail: dict[str, DetailValue] = {"method": method, "by": by}
            if supervisor:
                detail["supervisor"] = supervisor
            self._pipeline.record(_UNLOCK_EVENTS[by], Channel.IDLE, Action.LOCK,
                                  Outcome.UNLOCKED, decision="idle.unlock", detail=detail)
        self._changed()
