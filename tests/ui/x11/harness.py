"""The X11 test harness: a real X server (Xvfb), a tray host (trayer), the real agent process, and
the command-line X tools a teller's other applications stand in for (xclip, xdotool, xev).

Nothing here is mocked: the agent is `python -m ui.app` with its own data directory, talking to a
real collector; the clipboard is changed by other processes; keys and clicks are XTEST events.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from guard.credentials import hash_secret

ROOT = Path(__file__).resolve().parents[3]
TOOLS = ("Xvfb", "xclip", "xdotool", "trayer", "xev", "dbus-daemon")


class HarnessError(RuntimeError):
    """The X server, tray host or agent did not come up; the message carries its output."""


def missing_tools() -> list[str]:
    return [t for t in TOOLS if shutil.which(t) is None]


def wait_until(predicate: Callable[[], object], timeout: float = 15.0, interval: float = 0.05,
               what: str = "condition") -> object:
    """Poll `predicate` until it returns something truthy; raise `HarnessError` after `timeout`."""
    end = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= end:
            raise HarnessError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


@dataclass
class XServer:
    """A running Xvfb (1920x1080) with a tray host and a private D-Bus session bus."""

    display: str
    proc: subprocess.Popen[bytes]
    tray: subprocess.Popen[bytes] | None
    bus: str = "disabled:"  # the private session bus's address once it runs

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("QT_", "WAYLAND"))}
        env.update(DISPLAY=self.display, DBUS_SESSION_BUS_ADDRESS=self.bus,
                   QT_QPA_PLATFORM="xcb", NO_AT_BRIDGE="1", PYTHONUNBUFFERED="1")
        return env

    def run(self, *argv: str, input: bytes | None = None, timeout: float = 30.0,
            check: bool = True) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(list(argv), env=self.env, input=input, capture_output=True,
                              timeout=timeout, check=check)

    # --- X tools --------------------------------------------------------------------------------

    def xdotool(self, *args: str) -> str:
        return self.run("xdotool", *args).stdout.decode()

    def key(self, *keys: str) -> None:
        self.xdotool("key", "--clearmodifiers", *keys)

    def type(self, text: str) -> None:
        self.xdotool("type", "--delay", "20", text)

    def visible_windows(self, name: str) -> list[str]:
        result = self.run("xdotool", "search", "--onlyvisible", "--name", name, check=False)
        return result.stdout.decode().split()

    def clipboard_set(self, data: bytes, target: str | None = None) -> None:
        """Another application copies `data` (xclip keeps serving it in the background)."""
        argv = ["xclip", "-selection", "clipboard", "-quiet"]
        if target:
            argv += ["-t", target]
        before = self.clipboard_owner()
        # -quiet keeps xclip in the foreground: it serves the data until another owner replaces it.
        proc = subprocess.Popen(argv, env=self.env, stdin=subprocess.PIPE,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert proc.stdin is not None
        proc.stdin.write(data)
        proc.stdin.close()
        self._owners.append(proc)
        # xclip takes the selection once it has read its input: its window becomes the owner, or
        # it has already exited because the agent replaced its content (redaction).
        wait_until(lambda: proc.poll() is not None or self.clipboard_owner() != before,
                   timeout=60, interval=0.002, what="xclip to own the clipboard")

    def clipboard_owner(self) -> int:
        """The X window that owns the CLIPBOARD selection (0: none)."""
        from Xlib import display as xdisplay

        if self._xlib is None:
            self._xlib = xdisplay.Display(self.display)
        d = self._xlib
        owner = d.get_selection_owner(d.intern_atom("CLIPBOARD"))
        return int(owner.id) if owner else 0

    def clipboard_get(self, target: str | None = None) -> bytes:
        argv = ["xclip", "-selection", "clipboard", "-o"]
        if target:
            argv += ["-t", target]
        return self.run(*argv, check=False).stdout

    def reap_owners(self) -> None:
        for proc in self._owners:
            if proc.poll() is None:
                proc.terminate()
        for proc in self._owners:
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
        self._owners.clear()

    def screenshot(self, path: Path) -> Path:
        self.run("import", "-window", "root", str(path))
        return path

    def grab_status(self) -> tuple[int, int]:
        """Try to grab keyboard and pointer as another client would: X status codes
        (0 Success, 1 AlreadyGrabbed). Any grab obtained is released at once."""
        from Xlib import X
        from Xlib import display as xdisplay

        d = xdisplay.Display(self.display)
        try:
            root = d.screen().root
            kb = root.grab_keyboard(True, X.GrabModeAsync, X.GrabModeAsync, X.CurrentTime)
            if kb == X.GrabSuccess:
                d.ungrab_keyboard(X.CurrentTime)
            ptr = root.grab_pointer(True, X.ButtonPressMask, X.GrabModeAsync, X.GrabModeAsync,
                                    X.NONE, X.NONE, X.CurrentTime)
            if ptr == X.GrabSuccess:
                d.ungrab_pointer(X.CurrentTime)
            d.sync()
            return int(kb), int(ptr)
        finally:
            d.close()

    _owners: list[subprocess.Popen[bytes]] = field(default_factory=list)
    _xlib: Any = None


def start_tray(server: XServer, attempts: int = 3) -> subprocess.Popen[bytes]:
    """Start trayer on `server` and wait until its window is mapped (retried: it can lose a
    race with a display that has just come up)."""
    problem = ""
    for _ in range(attempts):
        log = tempfile.TemporaryFile()
        tray = subprocess.Popen(
            ["trayer", "--edge", "bottom", "--align", "right", "--widthtype", "pixel",
             "--width", "160", "--heighttype", "pixel", "--height", "32", "--SetDockType",
             "true", "--transparent", "false", "--tint", "0xdddddd"],
            env=server.env, stdout=subprocess.DEVNULL, stderr=log)

        def mapped(tray: subprocess.Popen[bytes] = tray) -> bool:
            return tray.poll() is not None or bool(server.run(
                "xdotool", "search", "--class", "trayer", check=False).stdout.strip())

        try:
            wait_until(mapped, timeout=15, what="trayer to map its window")
            if tray.poll() is None:
                log.close()
                return tray
            log.seek(0)
            problem = f"trayer exited with {tray.returncode}: {log.read()[-500:].decode()}"
        except HarnessError as exc:
            problem = str(exc)
            tray.kill()
            tray.wait(5)
        log.close()
    raise HarnessError(f"no tray host on {server.display}: {problem}")


def start_session_bus() -> tuple[subprocess.Popen[bytes], str]:
    """A private D-Bus session bus (the desktop session's bus, with no services on it)."""
    r, w = os.pipe()
    bus = subprocess.Popen(
        ["dbus-daemon", "--session", "--nofork", "--nopidfile", f"--print-address={w}"],
        pass_fds=(w,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(w)
    with os.fdopen(r, "rb") as pipe:
        address = pipe.readline().decode().strip()
    if not address:
        bus.kill()
        raise HarnessError("dbus-daemon exited before it announced its address")
    return bus, address


@contextmanager
def xserver(width: int = 1920, height: int = 1080, tray: bool = True) -> Iterator[XServer]:
    """Start Xvfb on a free display (it picks the number itself), a private D-Bus session bus
    and a tray host."""
    missing = missing_tools()
    if missing:
        raise HarnessError(f"missing X tools: {', '.join(missing)} (run scripts/setup.sh)")
    r, w = os.pipe()
    proc = subprocess.Popen(
        ["Xvfb", "-displayfd", str(w), "-screen", "0", f"{width}x{height}x24", "-nolisten", "tcp",
         "+extension", "RECORD"],
        pass_fds=(w,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(w)
    number = b""
    try:
        with os.fdopen(r, "rb") as pipe:
            while not number.endswith(b"\n"):
                chunk = pipe.read(1)
                if not chunk:
                    raise HarnessError("Xvfb exited before it announced its display")
                number += chunk
        bus, address = start_session_bus()
        server = XServer(display=f":{int(number)}", proc=proc, tray=None, bus=address)
        if tray:
            server.tray = start_tray(server)
        yield server
    finally:
        if "server" in locals():
            server.reap_owners()
            if server._xlib is not None:
                server._xlib.close()
            if server.tray is not None:
                server.tray.terminate()
                server.tray.wait(5)
        if "bus" in locals():
            bus.terminate()
            bus.wait(5)
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()


@dataclass(frozen=True)
class TraceEvent:
    """One event the agent recorded, as its trace line shows it."""

    time: float
    type: str
    outcome: str
    detail: dict[str, object]


class AgentProcess:
    """The real `python -m ui.app` on an X server, its trace lines collected as they come."""

    EVENT = re.compile(r"^event (\S+) (\S+) (\S+) (.*)$")

    def __init__(self, server: XServer, data_dir: Path, policy: Path | None, *,
                 lang: str = "zh_CN",
                 endpoint: str | None = None, extra_env: dict[str, str] | None = None) -> None:
        self.server = server
        self.data_dir = data_dir
        self.policy = policy
        self.env = {**server.env, "TELLER_GUARD_DATA_DIR": str(data_dir),
                    "TELLER_GUARD_LANG": lang, "TELLER_GUARD_TRACE": "1",
                    **(extra_env or {})}
        if endpoint:
            self.env["TELLER_GUARD_ENDPOINT"] = endpoint
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self.proc: subprocess.Popen[str] | None = None

    def argv(self) -> list[str]:
        policy = ["--policy", str(self.policy)] if self.policy is not None else []
        return [sys.executable, "-m", "ui.app", *policy]

    def start(self, ready_timeout: float = 60.0) -> AgentProcess:
        self.proc = subprocess.Popen(self.argv(), cwd=ROOT, env=self.env, text=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, bufsize=1)
        threading.Thread(target=self._read, name="agent-output", daemon=True).start()
        self.wait_line("teller-guard-agent: ready", ready_timeout)
        return self

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def output(self) -> str:
        with self._cond:
            return "\n".join(self.lines[-60:])

    def wait_line(self, text: str, timeout: float = 30.0, start: int = 0) -> int:
        """Index of the first output line (from `start`) containing `text`."""
        end = time.monotonic() + timeout
        with self._cond:
            while True:
                for i in range(start, len(self.lines)):
                    if text in self.lines[i]:
                        return i
                left = end - time.monotonic()
                if left <= 0 or (self.proc is not None and self.proc.poll() is not None):
                    raise HarnessError(f"agent did not print {text!r} in {timeout:.0f} s; "
                                       f"output:\n{self.output()}")
                self._cond.wait(min(left, 0.5))

    def wait_quiet(self, quiet_s: float = 1.0, timeout: float = 60.0) -> None:
        """Wait until the agent has recorded no event for `quiet_s` seconds."""
        def quiet() -> bool:
            events = self.events()
            return not events or time.monotonic() - events[-1].time >= quiet_s
        wait_until(quiet, timeout=timeout, interval=0.1, what="the agent to settle")

    def events(self, type_: str | None = None) -> list[TraceEvent]:
        out = []
        with self._cond:
            lines = list(self.lines)
        for line in lines:
            m = self.EVENT.match(line)
            if m and (type_ is None or m.group(2) == type_):
                out.append(TraceEvent(float(m.group(1)), m.group(2), m.group(3),
                                      json.loads(m.group(4))))
        return out

    def wait_event(self, type_: str, timeout: float = 30.0, after: int = 0,
                   where: Callable[[TraceEvent], bool] = lambda e: True) -> TraceEvent:
        """The first `type_` event beyond the first `after` ones of that type matching `where`."""
        def find() -> TraceEvent | None:
            matches = [e for e in self.events(type_)[after:] if where(e)]
            return matches[0] if matches else None
        try:
            found = wait_until(find, timeout=timeout, what=f"event {type_}")
        except HarnessError as exc:
            raise HarnessError(f"{exc}; agent output:\n{self.output()}") from None
        assert isinstance(found, TraceEvent)
        return found

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 15.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                raise HarnessError(f"agent ignored SIGTERM; output:\n{self.output()}") from None
        return self.proc.returncode


def write_policy(path: Path, body: str) -> Path:
    path.write_text(body, encoding="utf-8")
    return path


def provision_pin(data_dir: Path, pin: str) -> None:
    """Store the teller's PIN the way the agent's first-run dialog does (salted scrypt hash)."""
    from guard import identity
    from guard.credentials import PinStore

    data_dir.mkdir(parents=True, exist_ok=True)
    PinStore(identity.teller(), data_dir).set(hash_secret(pin))


def enroll(data_dir: Path, url: str, token: str) -> None:
    """Enrol the agent's data directory with a collector (`teller-guard enroll`)."""
    # the token goes through the environment: on the command line `enroll` refuses it
    env = {**os.environ, "TELLER_GUARD_DATA_DIR": str(data_dir), "TELLER_GUARD_ENROLL_TOKEN": token}
    result = subprocess.run([sys.executable, "-m", "guard.cli", "enroll", url], cwd=ROOT,
                            env=env, capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise HarnessError(f"enrolment failed: {result.stdout}{result.stderr}")


PIN = "135790"
IT_SECRET = "it-branch-0420"

POLICY = """\
version = "x11-e2e-1"
[agent]
it_credential_hash = "{it_hash}"
heartbeat_interval_s = 3600
[clipboard]
action = "redact"
auto_clear_s = 0
[idle]
warn_after_s = {warn}
lock_after_s = {lock}
unlock = "pin"
backoff_after = 1
backoff_base_s = 1
backoff_max_s = 2
"""


def policy_text(warn: float = 3000, lock: float = 3600) -> str:
    return POLICY.format(it_hash=hash_secret(IT_SECRET), warn=warn, lock=lock)


def start_agent(xs: XServer, collector: Any, data_dir: Path, policy: Path, *,
                pin: str | None = PIN, lang: str = "zh_CN",
                extra_env: dict[str, str] | None = None) -> AgentProcess:
    """The real agent on `xs`, enrolled with `collector` (a `tests.support.servers`
    CollectorProcess serving `policy` centrally)."""
    enroll(data_dir, collector.url, collector.enroll_token)
    if pin is not None:
        provision_pin(data_dir, pin)
    return AgentProcess(xs, data_dir, policy, lang=lang, endpoint=collector.url,
                        extra_env=extra_env).start()


LOCK_WINDOW = "Teller Guard lock"  # the overlay's window name


def unlock_with(xs: XServer, agent: AgentProcess, pin: str) -> TraceEvent:
    """Type `pin` + Enter at the overlay until the agent accepts it (waits out the back-off)."""
    for _ in range(6):
        failures = agent.events("IDLE_UNLOCK_FAILED")
        if failures:
            wait_s = float(str(failures[-1].detail.get("retry_after_s", 0)))
            time.sleep(max(0.0, failures[-1].time + wait_s + 0.4 - time.monotonic()))
        before = len(agent.events("IDLE_UNLOCK"))
        xs.type(pin)
        xs.key("Return")
        try:
            return agent.wait_event("IDLE_UNLOCK", after=before, timeout=4)
        except HarnessError:
            continue
    raise HarnessError(f"the PIN never unlocked; output:\n{agent.output()}")
