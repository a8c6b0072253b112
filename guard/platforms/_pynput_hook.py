"""The global keyboard hook over pynput's listener (X11 RECORD, Windows low-level hook).

pynput is imported only in `start()`, so the core imports without it. Combos are matched by
`ComboMatcher` (exactly the held keys), not by pynput's HotKey (which fires PrintScreen inside
Alt+PrintScreen too).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from guard.platforms.base import ErrorHandler, HookCore, PlatformUnavailable

log = logging.getLogger(__name__)

READY_TIMEOUT_S = 3.0


def key_name(key: Any, named: dict[Any, str]) -> str | None:
    """The combo name of a canonical pynput key: ``ctrl``, ``print_screen``, ``a``.

    `named` maps virtual key codes to `Key` names: `canonical()` turns some named keys (Print
    on X11) into a bare KeyCode."""
    name = getattr(key, "name", None)  # a pynput Key member
    if isinstance(name, str):
        return name
    char = getattr(key, "char", None)
    if isinstance(char, str) and char:
        return char.lower()
    vk = getattr(key, "vk", None)
    if vk is None:
        return None
    return named.get(vk, f"vk{vk}")


def _stop_quietly(listener: Any) -> None:
    try:
        listener.stop()
    except Exception as exc:  # the X connection went first: the listener is ending anyway
        log.debug("key listener stop: %r", exc)


class PynputKeyboardHook(HookCore):
    """`KeyboardHook` over a `pynput.keyboard.Listener`; `fix` is appended to refusals."""

    def __init__(self, on_error: ErrorHandler | None = None, *, fix: str = "",
                 preflight: Callable[[], None] | None = None) -> None:
        super().__init__(on_error)
        self._listener: Any = None
        self._stopping = False
        self._fix = fix
        self._preflight = preflight

    def _refuse(self, what: str) -> PlatformUnavailable:
        return PlatformUnavailable(f"{what}; {self._fix}" if self._fix else what)

    def start(self) -> None:
        with self._lock:
            if self._listener is not None:
                return
        if self._preflight is not None:
            self._preflight()
        try:
            from pynput import keyboard
        except Exception as exc:  # pynput raises ImportError (or its own errors) without a display
            raise self._refuse(f"pynput cannot run here ({str(exc).splitlines()[0]})") from exc
        listener: Any = None
        named: dict[Any, str] = {}
        for member in keyboard.Key:
            named.setdefault(getattr(member.value, "vk", None), member.name)

        def canonical(key: Any) -> str | None:
            return key_name(listener.canonical(key), named) if key is not None else None

        def on_press(key: Any) -> None:
            name = canonical(key)
            if name is not None:
                self._matcher.press(name)

        def on_release(key: Any) -> None:
            name = canonical(key)
            if name is not None:
                self._matcher.release(name)

        died: list[BaseException] = []
        try:
            listener = keyboard.Listener(on_press=on_press, on_release=on_release)
            listener.daemon = True
            backend_run = listener.run

            def run() -> None:
                # pynput lets a backend error (a lost X connection) escape its thread: keep it
                # for the owner instead of letting it go to threading.excepthook.
                try:
                    backend_run()
                except Exception as exc:
                    died.append(exc)

            listener.run = run
            listener.start()
        except Exception as exc:  # the backend refuses at start (no RECORD, no hook)
            raise self._refuse(f"the key listener failed to start ({exc})") from exc
        # wait() never returns when the listener thread died at start: bound it.
        waiter = threading.Thread(target=listener.wait, name="keyboard-hook-wait", daemon=True)
        waiter.start()
        waiter.join(READY_TIMEOUT_S)
        if waiter.is_alive() or not listener.is_alive():
            raise self._refuse("the key listener did not start")
        with self._lock:
            self._listener = listener
            self._stopping = False
        threading.Thread(target=self._watch, args=(listener, died), name="keyboard-hook-watch",
                         daemon=True).start()

    def _watch(self, listener: Any, died: list[BaseException]) -> None:
        """Wait for the listener thread to end; an end nobody asked for goes to the owner."""
        threading.Thread.join(listener)
        with self._lock:
            stopping = self._stopping or self._listener is not listener
        error: BaseException | None = died[0] if died else None
        try:
            listener.join(0)  # pynput re-raises what a callback of its own died of
        except Exception as exc:
            error = error or exc
        if stopping and error is None:
            return
        reason = f"the key listener stopped ({error or 'no reason given'})"
        exc_out = self._refuse(reason)
        if error is not None:
            exc_out.__cause__ = error
        self._matcher.report(exc_out)

    def stop(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            self._stopping = True
        if listener is not None and listener.is_alive():
            # pynput's stop() on X11 returns only after the next input event: do not wait.
            threading.Thread(target=_stop_quietly, args=(listener,), name="keyboard-hook-stop",
                             daemon=True).start()

    @property
    def running(self) -> bool:
        listener = self._listener
        return listener is not None and listener.is_alive()
