"""A real X server for core tests: Xvfb on a free display, 1920x1080, torn down afterwards."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator

import pytest


@contextlib.contextmanager
def xvfb(width: int = 1920, height: int = 1080) -> Iterator[str]:
    """Start Xvfb on a free display number and yield the DISPLAY string (``:N``)."""
    if shutil.which("Xvfb") is None:
        pytest.fail("Xvfb is missing: apt-get install xvfb (scripts/setup.sh installs it)")
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", f"{width}x{height}x24",
         "-nolisten", "tcp", "-noreset"],
        pass_fds=(write_fd,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    os.close(write_fd)
    try:
        with os.fdopen(read_fd, "rb") as pipe:
            number = pipe.readline().decode().strip()  # Xvfb writes it once it accepts clients
        if not number:
            raise RuntimeError("Xvfb did not report a display number")
        yield f":{number}"
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def x_env(display: str) -> dict[str, str]:
    """An environment for X clients on `display` (no stray D-Bus session)."""
    env = dict(os.environ)
    env["DISPLAY"] = display
    env["DBUS_SESSION_BUS_ADDRESS"] = "disabled:"
    return env


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.02) -> bool:  # type: ignore[no-untyped-def]
    """Poll `predicate` until true or `timeout` passes (a safety net, never a timing claim)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())
