"""Fixtures for the core's tests: a pipeline on an in-memory sink with a scripted teller."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.support.core import Core


@pytest.fixture
def core() -> Core:
    return Core()


@pytest.fixture
def make_core() -> Callable[..., Core]:
    return Core
