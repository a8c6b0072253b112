"""A fresh Python interpreter for a test: what an agent-like process imports or does, as JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def fresh_env(**extra: str) -> dict[str, str]:
    """This process's environment for a child interpreter that imports this tree's packages, with
    Qt offscreen (no display needed to import the agent), plus `extra`."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), *sys.path[1:]]),
            "QT_QPA_PLATFORM": "offscreen", **extra}


def last_json(argv: list[str], *, env: dict[str, str] | None = None,
              timeout: float = 120) -> Any:
    """Run `argv` from the tree's root; the test fails with its stderr unless it exits 0. Returns
    its last line of output, parsed as JSON."""
    proc = subprocess.run(argv, env=fresh_env() if env is None else env, capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_code(code: str, *args: str, env: dict[str, str] | None = None,
             timeout: float = 120) -> Any:
    """`code` run by `python -c` with `args`; its last line of output as JSON (`last_json`)."""
    return last_json([sys.executable, "-c", code, *args], env=env, timeout=timeout)
