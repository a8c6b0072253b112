"""The one gateway between worker threads and the Qt thread: run or call a function on it.

Worker threads (the core's scanner, prompts, enforcement) never touch a widget directly; they hand
a callable to `MainThread.run_on_main` (fire and forget) or `MainThread.call_on_main` (wait for
the result, bounded by a timeout). Called on the Qt thread itself, both run the function at once,
so a Qt-thread caller can never deadlock waiting for itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, TypeVar

from PySide6.QtCore import QCoreApplication, QObject, Qt, QThread, Signal, Slot

T = TypeVar("T")

log = logging.getLogger(__name__)


class MainThreadTimeout(TimeoutError):
    """The Qt thread did not run the call in time (it is busy or the application is closing)."""


class MainThread(QObject):
    """Posts callables to the Qt thread. Create it on the Qt thread, after the QApplication."""

    _post = Signal(object)

    def __init__(self) -> None:
        app = QCoreApplication.instance()
        if app is None:
            raise RuntimeError("create the QApplication before the MainThread gateway")
        super().__init__()
        if QThread.currentThread() is not app.thread():
            raise RuntimeError("MainThread must be created on the Qt (GUI) thread")
        self._post.connect(self._run, Qt.ConnectionType.QueuedConnection)

    def on_main(self) -> bool:
        """True when the caller runs on the Qt thread."""
        return QThread.currentThread() is self.thread()

    def run_on_main(self, fn: Callable[[], Any]) -> None:
        """Run `fn()` on the Qt thread; returns at once (any thread). Errors are logged."""
        if self.on_main():
            self._run(fn)
        else:
            self._post.emit(fn)

    def call_on_main(self, fn: Callable[[], T], timeout: float = 5.0) -> T:
        """Run `fn()` on the Qt thread and return its result (any thread).

        Blocks the caller at most `timeout` seconds, then raises `MainThreadTimeout`; an exception
        raised by `fn` is re-raised in the caller.
        """
        if self.on_main():
            return fn()
        fut: Future[T] = Future()

        def job() -> None:
            if not fut.set_running_or_notify_cancel():
                return  # the caller gave up already
            try:
                fut.set_result(fn())
            except BaseException as exc:  # handed to the waiting caller, not lost
                fut.set_exception(exc)

        self._post.emit(job)
        try:
            return fut.result(timeout=timeout)
        except FutureTimeout:
            fut.cancel()
            raise MainThreadTimeout(
                f"the Qt thread did not answer within {timeout:.1f} s (busy or closing)"
            ) from None

    @Slot(object)
    def _run(self, fn: Callable[[], Any]) -> None:
        try:
            fn()
        except Exception:
            log.exception("a call posted to the Qt thread failed")

