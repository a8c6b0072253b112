"""Waiting for something that happens on another thread or in another process, in tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest


def eventually(what: str, check: Callable[[], Any], timeout: float = 30.0,
               interval: float = 0.05) -> Any:
    """Poll `check()` until it returns something truthy and return that; fail the test naming
    `what` after `timeout` seconds (a bound that keeps a broken test from hanging, never a
    timing claim)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(interval)
