"""Test-wide settings (no test may reach the OS keyring of the machine it runs on; each worker
has its own embedded-collector port) and the fixtures every package's tests share."""

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

# The default keyring of this test process and every process it starts is keyring's fail
# backend (the headless case). Without this, keyring's backend discovery may pick an in-memory
# test backend defined by some test module (they are KeyringBackend subclasses too), or a
# developer's real Secret Service, and secrets would leak from one test into another.
# Tests that need a working keyring set one explicitly with keyring.set_keyring() and restore it.
os.environ["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"

# The run's workers (pytest-xdist) start embedded collectors at any moment; each worker's first
# starts go to a port of its own (below the ephemeral range), so a test that stops one and starts
# it again finds its port free, and a start script's printed address is the one it serves on.
_worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
os.environ["TELLER_GUARD_EMBEDDED_PORT"] = str(18471 + (int(_worker) if _worker.isdigit() else 0))


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A short path for sockets (Unix socket paths are limited to 107 bytes; pytest's tmp_path
    can be longer)."""
    path = Path(tempfile.mkdtemp(prefix="tg-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
