"""Keeps the teller's agent process lean: library parts it never runs are not loaded into it.

Imported by `guard.app.session` before anything that imports httpx (the agent's start-up), so
its effect is in place in every process that composes an agent. Measured with
tests/bench/bench_agent_capture.py (real agent under Xvfb): httpx's command line alone was
7 MB of the agent's idle RSS.
"""

from __future__ import annotations

import sys
from typing import Final

HTTPX_CLI: Final = "httpx._main"
"""httpx's own command-line client: `import httpx` loads it when click, rich and pygments are
installed (httpx/__init__.py tries `from ._main import main`), and with it those three
libraries. The agent only ships events; `httpx.main` then says the CLI cannot run."""

SKIPPED: Final = (HTTPX_CLI,)


def skip_unused_modules() -> None:
    """Mark the modules in `SKIPPED` as absent (a None entry in `sys.modules` makes their import
    raise ImportError, which httpx expects and handles). A no-op for one already imported."""
    for name in SKIPPED:
        if name.split(".")[0] not in sys.modules and name not in sys.modules:
            sys.modules[name] = None  # type: ignore[assignment]  # None: "not importable"


skip_unused_modules()
