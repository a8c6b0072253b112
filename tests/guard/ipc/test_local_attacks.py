"""Issue 8's local attacks, performed by two real teller accounts against a real root service.

The accounts are made with useradd and removed afterwards; each attack runs as a teller through
`runuser` (scripts/attack_local.py, which a reviewer can run by hand). Every check here failed on
the main branch before the fix: the service handed out its hash key, took service-only and
made-up event types, had no rate limit, and kept the hashes a teller put in its events.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[3]

pytestmark = pytest.mark.skipif(
    sys.platform != "linux" or os.geteuid() != 0 or not shutil.which("useradd")
    or not shutil.which("runuser"), reason="needs root on Linux to make teller accounts")


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("attack_local",
                                                  REPO / "scripts" / "attack_local.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["attack_local"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def results() -> Iterator[dict[str, Any]]:
    script = _script()
    with script.lab() as the_lab:
        found = {r.name: r for r in script.run_all(the_lab)}
        accounts = the_lab.tellers
    for r in found.values():
        print(("HELD  " if r.held else "BROKEN"), r.name, r.seen)
    yield found
    import pwd

    for name in accounts:  # the accounts are gone again
        with pytest.raises(KeyError):
            pwd.getpwnam(name)


@pytest.mark.parametrize("attack", [
    "ask for the hash key",  # item 1
    "forge hashes, hash values that do not match",  # item 1: the hashes are the service's
    "send another teller's events",  # kept from before
    "send service-only types and unknown types",  # item 14
    "flood the channel",  # item 8: the other teller's events still get in
    "the service's record of it",  # items 1 and 8: HASHES_COMPUTED, one LOCAL_EVENTS_THROTTLED
    "oversized frame",  # item 4 (kept)
    "idle connections",  # item 4 (kept)
])
def test_a_local_attack_is_refused(results: dict[str, Any], attack: str) -> None:
    result = results[attack]
    assert result.held, f"{attack}: {result.seen}"
