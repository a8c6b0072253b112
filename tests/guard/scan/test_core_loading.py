"""Loading the compiled core: a core that does not fit this package leaves the Python path on."""

from __future__ import annotations

import logging
import types

import pytest

from guard.scan import _core
from guard.scan.engine import Scanner


class _StaleCore:
    """A core built from older sources: its constructor takes fewer tables than `make` passes."""

    def __init__(self, *args: object) -> None:
        if len(args) != 15:
            raise TypeError(f"Core.__new__() takes 15 positional arguments but {len(args)} "
                            "were given")


def test_a_stale_core_falls_back_to_the_python_path(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    stale = types.SimpleNamespace(Core=_StaleCore, __file__="/old/guard_core.so")
    monkeypatch.setattr(_core, "_module", stale)
    monkeypatch.setattr(_core, "_tried", True)
    with caplog.at_level(logging.WARNING, logger=_core.__name__):
        scanner = Scanner(key=b"k")
        again = Scanner(key=b"k")
    assert scanner._core is None and again._core is None
    assert not _core.available()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1  # said once, not per scanner
    assert "/old/guard_core.so" in warnings[0] and "scripts/setup.sh" in warnings[0]
    # and the scanner still protects: the Python path finds the card
    assert [f.type for f in scanner.scan_text("卡号 6222021234567890128")] == ["BANK_CARD"]
