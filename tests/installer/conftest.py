"""Fixtures of the installer tests: the packaging tools, installed on demand like
scripts/setup.sh does, and a skip with the reason only when they cannot be installed."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
INSTALLER = ROOT / "installer"

# The slow checks (a Wine prefix per test, a PyInstaller build: ~1.5 min together on 2 cores) run
# when this is set: the deployment job (installer/ci.sh, which .ci/run calls after the test
# command) and installer/check.sh set it; the test command runs the quick table and content checks.
ENV_FULL = "TELLER_GUARD_INSTALLER_TESTS"


def need_full(what: str) -> None:
    if os.environ.get(ENV_FULL) != "full":
        pytest.skip(f"{what} is slow: the deployment job runs it (`bash installer/ci.sh`, or "
                    f"`bash installer/check.sh`; both set {ENV_FULL}=full)")


# tool -> Debian package
PACKAGES = {"wixl": "wixl", "wixl-heat": "wixl", "msiinfo": "msitools", "msibuild": "msitools",
            "msidump": "msitools", "wine": "wine", "dpkg-deb": "dpkg"}


def need(*tools: str) -> None:
    """Install the Debian packages of missing `tools` (as root, with apt-get); skip the test
    with the reason when that is impossible."""
    missing = [t for t in tools if shutil.which(t) is None]
    if not missing:
        return
    packages = sorted({PACKAGES[t] for t in missing} | ({"wine64"} if "wine" in missing else set()))
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.skip(f"{', '.join(missing)} missing and cannot be installed here (not root or no "
                    f"apt-get): apt-get install {' '.join(packages)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    proc = subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends",
                           *packages], env=env, capture_output=True, text=True, timeout=900)
    still = [t for t in tools if shutil.which(t) is None]
    if still:
        pytest.skip(f"{', '.join(still)} could not be installed (apt-get install "
                    f"{' '.join(packages)}: {proc.stderr.strip()[-300:]})")
