"""Bounds against guessing and flooding: the enrolment-token throttle and log-volume limiting.

`TokenThrottle` counts wrong enrolment tokens per client address: after `free` failures every
further attempt waits an exponential back-off (no token is checked meanwhile, and an attempt made
too early counts as a failure), and after `lockout_after` failures the address is locked out for
`lockout_s`. `RateLimitedLog` is a logging filter that lets through a bounded number of records per
logger and message per interval and then says once how many it held back, so a flood of bad
requests cannot fill the disk with log lines.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

MAX_ADDRESSES = 10_000


@dataclass
class _Failures:
    count: int = 0
    last: float = 0.0
    locked_until: float = 0.0


class TokenThrottle:
    """Per-address failure counter with back-off and lockout (one process; thread-safe)."""

    def __init__(self, free: int = 5, lockout_after: int = 10, lockout_s: float = 900.0,
                 backoff_cap_s: float = 300.0) -> None:
        self.free = free
        self.lockout_after = lockout_after
        self.lockout_s = lockout_s
        self.backoff_cap_s = backoff_cap_s
        self._lock = threading.Lock()
        self._by_addr: OrderedDict[str, _Failures] = OrderedDict()

    def wait_s(self, addr: str, now: float | None = None) -> float:
        """Seconds `addr` must still wait before its token is checked (0: check it now)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            f = self._by_addr.get(addr)
            if f is None:
                return 0.0
            if f.locked_until > now:
                return f.locked_until - now
            if f.locked_until and f.locked_until <= now:  # the lockout is over: start afresh
                del self._by_addr[addr]
                return 0.0
            if f.count < self.free:
                return 0.0
            delay = min(self.backoff_cap_s, 2.0 ** (f.count - self.free + 1))
            return max(0.0, f.last + delay - now)

    def fail(self, addr: str, now: float | None = None) -> tuple[int, bool]:
        """Count one failure; returns (failures so far, whether this locked the address)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            f = self._by_addr.pop(addr, None) or _Failures()
            self._by_addr[addr] = f  # most recent last
            while len(self._by_addr) > MAX_ADDRESSES:
                self._by_addr.popitem(last=False)
            f.count += 1
            f.last = now
            locked = f.count >= self.lockout_after and f.locked_until <= now
            if locked:
                f.locked_until = now + self.lockout_s
            return f.count, locked

    def succeed(self, addr: str) -> None:
        with self._lock:
            self._by_addr.pop(addr, None)


class RateLimitedLog(logging.Filter):
    """At most `burst` records per (logger, message template) per `interval_s`, then a summary."""

    def __init__(self, burst: int = 20, interval_s: float = 60.0) -> None:
        super().__init__()
        self.burst = burst
        self.interval_s = interval_s
        self._lock = threading.Lock()
        self._windows: dict[tuple[str, str], list[float]] = {}  # key -> [start, passed, held]

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, str(record.msg)[:200])
        now = time.monotonic()
        with self._lock:
            w = self._windows.get(key)
            if w is None or now - w[0] >= self.interval_s:
                held = int(w[2]) if w is not None else 0
                if len(self._windows) > 1000:
                    self._windows.clear()
                self._windows[key] = [now, 1.0, 0.0]
                if held:
                    record.msg = f"{record.msg} [{held} similar messages held back before this]"
                return True
            if w[1] < self.burst:
                w[1] += 1
                if w[1] == self.burst:
                    record.msg = (f"{record.msg} [further similar messages are held back for "
                                  f"{self.interval_s:.0f} s]")
                return True
            w[2] += 1
            return False


def limit_log_volume(burst: int = 20, interval_s: float = 60.0) -> RateLimitedLog:
    """Install one `RateLimitedLog` on the collector's and uvicorn's loggers; return it."""
    flt = RateLimitedLog(burst, interval_s)
    for name in ("guard.collector", "guard.collector.siem", "uvicorn", "uvicorn.error",
                 "uvicorn.access", "uvicorn.asgi"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RateLimitedLog) for f in logger.filters):
            logger.addFilter(flt)
    return flt
