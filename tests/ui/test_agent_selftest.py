"""`teller-guard-agent --selftest`: the core's checks plus Qt's, no window, exit 1 on a failure."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from guard.commands.selftest import Status, attempt
from tests.support.xserver import x_env, xvfb
from ui import app, i18n, selftest


def run_agent(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ui.app", *args], env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.x11
def test_agent_selftest_passes_under_xvfb(tmp_path: Path) -> None:
    with xvfb() as display:
        env = x_env(display)
        env.pop("QT_QPA_PLATFORM", None)
        proc = run_agent(["--selftest", "--data-dir", str(tmp_path)], env)
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    assert out.startswith("teller-guard-agent selftest")
    assert "PASS  qt translations" in out and "zh_CN, en" in out
    assert "platform plugin xcb" in out
    assert "PASS    keyboard hook" in out
    assert app.READY_LINE not in out + proc.stderr  # no agent started


def test_agent_selftest_fails_on_a_broken_data_dir(tmp_path: Path) -> None:
    broken = tmp_path / "data"
    broken.write_text("x")
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "DBUS_SESSION_BUS_ADDRESS": "disabled:"}
    proc = run_agent(["--selftest", "--data-dir", str(broken)], env)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "FAIL  data directory" in proc.stdout
    assert "result: FAILED" in proc.stdout


def test_agent_selftest_without_a_display_fails_instead_of_aborting(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items()
           if k not in ("DISPLAY", "QT_QPA_PLATFORM", "WAYLAND_DISPLAY")}
    env["DBUS_SESSION_BUS_ADDRESS"] = "disabled:"
    proc = run_agent(["--selftest", "--data-dir", str(tmp_path)], env)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "FAIL  qt platform" in proc.stdout and "no display" in proc.stdout
    assert "FAIL    idle clock" in proc.stdout  # the desktop is required for the agent


def test_qt_loads_both_translations() -> None:
    result = attempt("qt translations", selftest.check_qt_translations)
    assert result.status is Status.PASS, result.detail


def test_a_translation_qt_cannot_load_fails(monkeypatch: pytest.MonkeyPatch,
                                            tmp_path: Path) -> None:
    bad = tmp_path / "bad.qm"
    bad.write_bytes(b"not a translation")
    monkeypatch.setattr(i18n, "qm_path", lambda language: str(bad))
    result = attempt("qt translations", selftest.check_qt_translations)
    assert result.status is Status.FAIL
    assert "cannot load" in result.detail
