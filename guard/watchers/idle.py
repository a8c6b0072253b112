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
from guard.events import IdleKind
from guard.model import Action, Channel, Observation, Outcome
from guard.pipeline.pipeline import DetailValue, Enforcement, Pipeline
from guard.platforms import Platform, PlatformUnavailable
from guard.ports import LockPort

log = logging.getLogger(__name__)

LockMethod = Literal["os", "overlay"]


class IdleLock:
    """Watches idle time and holds the lock state of one desktop session.

    `tick()` is one poll step (the worker calls it every `poll_s`; tests call it directly).
    `lock()` and `unlock()` may be called from any thread; the lock port is called from them.
    """

    name = "idle"

    def __init__(self, pipeline: Pipeline, platform: Platform, locker: LockPort,
                 credentials: TellerCredentials, *, poll_s: float = 1.0,
                 verify_s: float = 2.0,
                 on_change: Callable[[], None] | None = None) -> None:
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

    # -- lifecycle
    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
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
        with self._lock:
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
            self.lock("idle", idle_s=idle)
        elif decision.action is Action.NOTIFY:
            with self._lock:
                warn, self._warned = not self._warned, True
            if warn:
                countdown = decision.timeout_s or 1.0
                self._pipeline.handle(Observation(
                    Channel.IDLE, IdleKind.WARN,
                    meta={"idle_s": round(idle, 1), "lock_in_s": round(countdown, 1)}))
        else:
            with self._lock:
                self._warned = False

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

    def unlock(self, credential: str) -> UnlockResult:
        """Check the credential and remove the overlay when it is right (any thread)."""
        with self._lock:
            method = self._method
        if method != "overlay":
            return UnlockResult(False, 0.0, "not_locked")
        result = self._credentials.verify(credential)
        if not result.ok:
            if result.message_key == "wrong_credential":
                self._pipeline.handle(Observation(
                    Channel.IDLE, IdleKind.UNLOCK_FAILED,
                    meta={"failures": self._credentials.backoff.failures,
                          "retry_after_s": round(result.retry_after_s, 1)}),
                    outcome=Outcome.FAILED)
            return result
        self._locker.hide_lock()
        self._mark_unlocked("overlay")
        return result

    def _mark_unlocked(self, method: LockMethod) -> None:
        with self._lock:
            if self._method is None:
                return
            self._method = None
            self._warned = False
        self._pipeline.handle(Observation(Channel.IDLE, IdleKind.UNLOCK, meta={"method": method}),
                              outcome=Outcome.UNLOCKED)
        self._changed()
