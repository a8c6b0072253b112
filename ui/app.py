"""`teller-guard-agent`: the desktop agent's main — one per desktop session, wires the core to Qt.

This is the one place where the core `Agent` meets the UI (the tray, the prompts, the clipboard,
the lock overlay and the lock hotkey). A second start in the same session says so, makes the
running agent show a note, and exits with status 0. SIGTERM and SIGINT (logout, service manager)
end the agent cleanly; the tray's quit needs the IT credential.
"""

from __future__ import annotations

import argparse
import dataclasses
import faulthandler
import getpass
import json
import logging
import os
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QLockFile, QObject, QSocketNotifier, Signal
from PySide6.QtNetwork import QLocalServer, QLocalSocket
from PySide6.QtWidgets import QApplication, QSystemTrayIcon

from guard import platforms
from guard.app.session import Agent, AgentStatus
from guard.model import Action, Channel, Event
from guard.pipeline.prompt import PromptRequest
from guard.platforms import PlatformUnavailable
from guard.scan.images import cap_malloc_arenas
from ui import i18n
from ui.hotkeys import LockHotkey
from ui.lock import LockOverlay, PinSetupDialog
from ui.mainthread import MainThread
from ui.prompt import QtPrompter
from ui.qtclipboard import ClipboardFeed, QtClipboard
from ui.tray import Tray
from ui.watermark import WatermarkOverlay

log = logging.getLogger("ui.app")

ENV_TRACE = "TELLER_GUARD_TRACE"  # print a line per event and status change (tests, benchmarks)
READY_LINE = "teller-guard-agent: ready"
ALREADY_RUNNING = "teller-guard-agent: already running in this session"


def desktop_session() -> platforms.Session:
    """The one platform session of this agent: the core and the UI parts share it."""
    try:
        return platforms.current_session()
    except PlatformUnavailable as exc:
        log.warning("no platform backend: %s", exc)
        return platforms.unavailable_session(str(exc))


def session_key(session: platforms.DesktopName | None = None) -> str:
    """A name unique to this user's desktop session (user + X display or Windows session)."""
    user = getpass.getuser()
    desktop = (session if session is not None else desktop_session()).desktop_name()
    raw = f"teller-guard-agent-{user}-{desktop}"
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in raw)


class SingleInstance(QObject):
    """One agent per session: a lock file decides, a local socket lets a second start say hello."""

    second_start = Signal()

    def __init__(self, key: str) -> None:
        super().__init__()
        self.key = key
        self._lock = QLockFile(os.path.join(tempfile.gettempdir(), f"{key}.lock"))
        self._lock.setStaleLockTime(0)  # stale only when its process is gone
        self._server: QLocalServer | None = None

    def acquire(self) -> bool:
        """True when this process is the session's agent; then it listens for second starts."""
        if not self._lock.tryLock(0):
            return False
        QLocalServer.removeServer(self.key)  # a socket left by a crashed agent
        server = QLocalServer(self)
        server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        if server.listen(self.key):
            server.newConnection.connect(self._hello)
            self._server = server
        else:
            log.warning("cannot listen on %s: %s", self.key, server.errorString())
        return True

    def _hello(self) -> None:
        assert self._server is not None
        while (conn := self._server.nextPendingConnection()) is not None:
            conn.disconnectFromServer()
            conn.deleteLater()
        self.second_start.emit()

    def tell_running_agent(self) -> bool:
        """From a second start: poke the running agent so it shows that it is there."""
        sock = QLocalSocket()
        sock.connectToServer(self.key)
        ok = sock.waitForConnected(1000)
        sock.disconnectFromServer()
        return ok

    def release(self) -> None:
        if self._server is not None:
            self._server.close()
        self._lock.unlock()


class SignalWaker(QObject):
    """Turns SIGTERM/SIGINT into a call on the Qt thread without polling (signal.set_wakeup_fd)."""

    def __init__(self, on_signal: Callable[[], None]) -> None:
        super().__init__()
        self._r, self._w = socket.socketpair()
        self._r.setblocking(False)
        self._w.setblocking(False)
        signal.set_wakeup_fd(self._w.fileno())
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: None)  # the wakeup fd does the work
        self._notifier = QSocketNotifier(self._r.fileno(), QSocketNotifier.Type.Read, self)
        self._notifier.activated.connect(self._drain)
        self._on_signal = on_signal

    def _drain(self) -> None:
        try:
            self._r.recv(64)
        except BlockingIOError:
            return
        self._on_signal()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="teller-guard-agent",
        description="Teller Guard desktop agent: tray, clipboard guard, prompts and idle lock.")
    parser.add_argument("--policy", metavar="FILE",
                        help="use this policy file instead of the layered policy (tests, demos)")
    parser.add_argument("--data-dir", metavar="DIR", type=Path,
                        help="data directory (default: TELLER_GUARD_DATA_DIR or the machine's)")
    parser.add_argument("--no-hotkey", action="store_true",
                        help="do not listen for the lock-now hotkey (Ctrl+Alt+L)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    parser.add_argument("--selftest", action="store_true",
                        help="check every part of this installation, print a pass/fail report "
                             "and exit (0: nothing failed); starts no agent and opens no window")
    return parser.parse_args(argv)


class AgentApp:
    """The running agent: the core Agent plus every Qt part wired to it."""

    def __init__(self, app: QApplication, args: argparse.Namespace,
                 session: platforms.Session | None = None) -> None:
        self.app = app
        self.session = session if session is not None else desktop_session()
        self.main = MainThread()
        self.prompter = QtPrompter(self.main)
        self.clipboard = QtClipboard(self.main)
        self.overlay = LockOverlay(self.main)
        self.watermark = WatermarkOverlay(self.main)
        self.agent = Agent.create(prompter=self.prompter, clipboard=self.clipboard,
                                  locker=self.overlay, policy_file=args.policy,
                                  data_dir=args.data_dir, platform=self.session,
                                  watermark=self.watermark)
        self.overlay.set_unlocker(self.agent.unlock, self.agent.unlock_methods,
                                  self.agent.supervisors)
        self.tray = Tray(self.agent.verify_it_credential)
        self.tray.lock_requested.connect(lambda: self.lock_now("menu"))
        self.tray.quit_confirmed.connect(self.app.quit)
        self.feed = ClipboardFeed(self.agent.on_clipboard_changed,
                                  owner_app=self.session.clipboard_owner_app)
        self.trace = bool(os.environ.get(ENV_TRACE))
        self._trace_lock = threading.Lock()
        self.hotkey: LockHotkey | None = None
        self.pin_dialog: PinSetupDialog | None = None
        self.use_hotkey = not args.no_hotkey

    def lock_now(self, reason: str) -> None:
        self.agent.lock_now(reason)  # returns at once: the lock happens on a worker thread

    def say(self, line: str) -> None:
        # One write per line under a lock: events and statuses come from several threads.
        with self._trace_lock:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()

    def _on_status(self, status: AgentStatus) -> None:
        if self.trace:
            self.say(f"status {time.monotonic():.6f} state={status.state} "
                     f"locked={status.locked} queue={status.queue_depth} "
                     f"last={status.last_event}")
        shown = self._with_ui_parts(status)
        self.main.run_on_main(lambda: self.tray.set_status(shown))

    def _with_ui_parts(self, status: AgentStatus) -> AgentStatus:
        """The core's status plus what only the UI knows: whether the lock hotkey listens."""
        if self.hotkey is None:
            return status
        if self.hotkey.unavailable is None:
            return dataclasses.replace(status, watchers={**status.watchers, "hotkey": "running"})
        return dataclasses.replace(
            status, state="degraded" if status.state == "protected" else status.state,
            watchers={**status.watchers, "hotkey": f"unavailable: {self.hotkey.unavailable}"})

    def _on_event(self, event: Event) -> None:
        detail = json.dumps(event.detail, ensure_ascii=False, sort_keys=True)
        self.say(f"event {time.monotonic():.6f} {event.type} {event.outcome.value} {detail}")

    def start(self) -> None:
        if self.trace:
            self.agent.pipeline.on_event(self._on_event)
        if self.use_hotkey:
            hotkey: LockHotkey | None = None

            def hook_failed(exc: BaseException) -> None:
                if hotkey is not None:
                    hotkey.hook_failed(exc)
                    self._on_status(self.agent.status())

            # The session's one keyboard hook, shared with the capture hotkeys.
            self.agent.keyboard.on_error(hook_failed)
            hotkey = LockHotkey(lambda: self.agent.lock_now("hotkey"), self.agent.keyboard)
            self.hotkey = hotkey
            hotkey.start()
        self.agent.subscribe(self._on_status)
        # The first-run PIN dialog comes before any idle lock can: the idle lock (and its
        # clock) starts once the teller saved a PIN or chose "Later".
        first_run = self.agent.needs_pin_setup()
        self.agent.start(idle=not first_run)
        self.tray.set_status(self._with_ui_parts(self.agent.status()))
        tray_ok = QSystemTrayIcon.isSystemTrayAvailable()
        if not tray_ok:
            log.warning("this desktop has no system tray: the agent protects without its icon")
        self.tray.show()
        if self.trace:
            self.say(f"tray available={tray_ok}")
        if first_run:
            self.pin_dialog = PinSetupDialog(self.agent.set_pin)
            self.pin_dialog.finished.connect(lambda _result: self.agent.start_idle())
            self.pin_dialog.open()

    def say_running(self) -> None:
        self.prompter.notify(PromptRequest(action=Action.NOTIFY, channel=Channel.SYSTEM,
                                           kind="already_running"))

    def stop(self) -> None:
        if self.hotkey is not None:
            self.hotkey.stop()
        self.prompter.close_all()
        self.agent.stop()


def main(argv: list[str] | None = None) -> int:
    """Run the agent until logout (SIGTERM) or an IT-approved quit."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.selftest:  # before anything starts: no agent, no lock file, no window
        from ui import selftest

        return selftest.run(args.data_dir)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not args.verbose:  # one line per shipped batch is noise in the agent's log
        logging.getLogger("httpx").setLevel(logging.WARNING)
    if args.data_dir is not None:
        os.environ["TELLER_GUARD_DATA_DIR"] = str(args.data_dir)
    # `kill -USR1 <pid>` prints every thread's stack to stderr: how to diagnose a hang (POSIX
    # only: Windows has neither SIGUSR1 nor faulthandler.register).
    usr1, register = getattr(signal, "SIGUSR1", None), getattr(faulthandler, "register", None)
    if usr1 is not None and register is not None:
        register(usr1, all_threads=True)
    cap_malloc_arenas()  # before Qt's and the watchers' threads: each would get an arena
    app = QApplication(["teller-guard-agent"])
    app.setApplicationName("Teller Guard")
    app.setQuitOnLastWindowClosed(False)
    session = desktop_session()
    instance = SingleInstance(session_key(session))
    if not instance.acquire():
        told = instance.tell_running_agent()
        print(ALREADY_RUNNING + ("" if told else " (it did not answer)"), file=sys.stderr,
              flush=True)
        return 0
    try:
        i18n.install_translator(app)
        agent_app = AgentApp(app, args, session)
        instance.second_start.connect(agent_app.say_running)
        # exit(), not quit(): Qt 6's quit() asks every window to close first, and the lock
        # overlay refuses, so a locked agent would ignore logout and shutdown.
        waker = SignalWaker(lambda: app.exit(0))
        agent_app.start()
        agent_app.say(READY_LINE)
        rc = app.exec()
        agent_app.stop()
        del waker
        return rc
    finally:
        instance.release()


if __name__ == "__main__":
    sys.exit(main())
