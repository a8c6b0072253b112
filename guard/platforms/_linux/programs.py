"""The process list of the remote-control watch read from /proc, as psutil reads it on Linux.

Names come as psutil gives them (its name, executable and first argument), so a policy's list
means the same on both: the name is the kernel's ``comm`` (15 characters at most), lengthened to
the first argument's base name when that starts with it; the executable is the /proc link
without the kernel's " (deleted)" mark.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

from guard.platforms.base import Program

if sys.platform == "win32":  # also tells `mypy --platform win32` that the rest is not for it
    raise ImportError("guard.platforms._linux.programs needs Linux (/proc)")

PROC = Path("/proc")
COMM_LEN = 15  # the kernel cuts a process's comm to this many characters
END_WAIT_S = 3.0


def _text(data: bytes) -> str:
    return data.decode(sys.getfilesystemencoding(), "surrogateescape")


def _cmdline(data: bytes) -> list[str]:
    """Arguments as psutil splits them: on NULs, or on spaces for a process that rewrote its
    command line into one string."""
    text = _text(data)
    if not text:
        return []
    sep = "\0" if text.endswith("\0") else " "
    text = text.removesuffix(sep)
    args = text.split(sep)
    if sep == "\0" and len(args) == 1 and " " in text:
        args = text.split(" ")
    return args


def _after_name(stat: bytes) -> bytes:
    """The fields of a /proc/<pid>/stat line after the name in parentheses (which may hold
    spaces and parentheses itself), from the state on."""
    return stat[stat.rfind(b")") + 2:]


def _exe(link: Path) -> str:
    try:
        target = os.readlink(link).split("\0")[0]
    except OSError:  # a kernel thread, another user's process, or gone
        return ""
    if target.endswith(" (deleted)") and not os.path.exists(target):
        target = target.removesuffix(" (deleted)")
    return target


class ProcPrograms:
    """`ProgramList` from /proc (no library)."""

    def __init__(self, proc: Path = PROC) -> None:
        self._proc = proc
        self._boot: float | None = None
        self._ticks = os.sysconf("SC_CLK_TCK")

    def unavailable(self) -> str | None:
        if not (self._proc / "self" / "stat").exists():
            return f"{self._proc} is not mounted: no process list"
        return None

    def _boot_time(self) -> float:
        if self._boot is None:
            self._boot = 0.0
            for line in (self._proc / "stat").read_text().splitlines():
                if line.startswith("btime "):
                    self._boot = float(line.split()[1])
        return self._boot

    def program(self, pid: int) -> Program | None:
        """Process `pid`, or None when it has gone."""
        base = self._proc / str(pid)
        try:
            stat = (base / "stat").read_bytes()
            cmd = _cmdline((base / "cmdline").read_bytes())
        except OSError:  # gone, or unreadable while it exists (hidepid): psutil skips it too
            return None
        name = _text(stat[stat.find(b"(") + 1:stat.rfind(b")")])
        if len(name) >= COMM_LEN and cmd:
            longer = os.path.basename(cmd[0])
            if longer.startswith(name):
                name = longer
        fields = _after_name(stat).split()
        started = int(fields[19]) / self._ticks + self._boot_time()  # field 22: starttime
        names = [name, _exe(base / "exe")]
        if cmd:
            names.append(cmd[0])
        return Program(pid, started, tuple(n for n in names if n))

    def programs(self) -> list[Program]:
        out = []
        for entry in os.scandir(self._proc):
            if entry.name.isdigit():
                program = self.program(int(entry.name))
                if program is not None:
                    out.append(program)
        return out

    def _ended(self, pid: int) -> bool:
        try:
            stat = (self._proc / str(pid) / "stat").read_bytes()
        except OSError:
            return True
        return _after_name(stat)[:1] in (b"Z", b"X")  # a zombie has ended

    def end(self, pid: int) -> bool:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return True  # gone already counts as ended
        except PermissionError:
            return False  # another user's: not ours to end
        deadline = time.monotonic() + END_WAIT_S
        while time.monotonic() < deadline:
            if self._ended(pid):
                return True
            time.sleep(0.05)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return True
