"""The frozen build's entry scripts, run from source: `--ocr-worker` makes either program the OCR
worker child (a frozen build has no `python -m`), before the agent's Qt is imported."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from guard.scan import ocr_worker
from guard.scan.ocr_worker import FROZEN_FLAG, OcrWorker, worker_command
from tests.installer.conftest import INSTALLER


def test_the_worker_command_is_python_m_from_source_and_the_executable_when_frozen(
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert worker_command() == [sys.executable, "-m", "guard.scan.ocr_worker"]
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    assert worker_command() == [sys.executable, FROZEN_FLAG]


@pytest.mark.parametrize("entry", ["entry_cli.py", "entry_agent.py"])
def test_an_entry_script_with_the_flag_serves_as_the_worker(
        entry: str, monkeypatch: pytest.MonkeyPatch) -> None:
    script = INSTALLER / entry
    monkeypatch.setattr(ocr_worker, "worker_command",
                        lambda: [sys.executable, str(script), FROZEN_FLAG])
    monkeypatch.delenv("DISPLAY", raising=False)  # the agent's entry would need one for Qt
    with OcrWorker(idle_s=30, timeout_s=120) as worker:
        pong = worker.ping()
        cmdline = Path(f"/proc/{pong['pid']}/cmdline").read_bytes().split(b"\0")
        assert cmdline[1:3] == [str(script).encode(), FROZEN_FLAG.encode()]
        maps = Path(f"/proc/{pong['pid']}/maps").read_text()
    assert "libQt6" not in maps  # the agent's entry dispatched before importing ui.app
