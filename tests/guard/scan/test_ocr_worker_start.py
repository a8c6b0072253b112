"""The OCR worker starts as its own interpreter: the agent's Qt never reaches it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]

# What the agent's gui-script wrapper does (`from ui.app import main`), then the first image.
AGENT_LIKE_MAIN = """\
import sys
from ui.app import main  # noqa: F401  (loads PySide6, like teller-guard-agent's wrapper)
assert "PySide6.QtCore" in sys.modules
from guard.scan.ocr_worker import OcrWorker
worker = OcrWorker(idle_s=30)
pid = worker.ping()["pid"]
with open(f"/proc/{pid}/maps") as fh:
    maps = fh.read()
print("child-qt" if ("PySide6" in maps or "libQt6" in maps) else "child-clean", pid)
worker.stop()
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/<pid>/maps")
def test_the_worker_started_from_the_agent_has_no_pyside6(tmp_path: Path) -> None:
    pytest.importorskip("PySide6")
    script = tmp_path / "teller-guard-agent"
    script.write_text(AGENT_LIKE_MAIN, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "QT_QPA_PLATFORM": "offscreen"}
    out = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True,
                         timeout=120, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    verdict, pid = out.stdout.split()
    assert verdict == "child-clean"
    assert int(pid) != 0


def test_a_worker_that_cannot_connect_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    from guard.scan import ocr_worker

    # An interpreter that exits at once stands in for a broken installation.
    monkeypatch.setattr(ocr_worker.sys, "executable", "/bin/false")
    worker = ocr_worker.OcrWorker()
    with pytest.raises(ocr_worker.OcrWorkerDiedError, match="did not start"):
        worker.ping()
