"""Fixtures of the X11 end-to-end tests: Xvfb + trayer, a real collector serving the test policy,
and the real agent process (`python -m ui.app --policy ...`) with its own data directory."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from harness import (
    AgentProcess,
    XServer,
    missing_tools,
    policy_text,
    start_agent,
    write_policy,
    xserver,
)

from tests.support.servers import CollectorProcess, run_collector


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).resolve().parent
    for item in items:
        if Path(str(item.fspath)).resolve().parent == here:
            item.add_marker(pytest.mark.x11)


@pytest.fixture(scope="module")
def xs() -> Iterator[XServer]:
    missing = missing_tools()
    if missing:
        pytest.skip(f"X tools missing: {missing}")
    with xserver() as server:
        yield server


@pytest.fixture(scope="module")
def policy_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_policy(tmp_path_factory.mktemp("policy") / "policy.toml", policy_text())


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory,
              policy_file: Path) -> Iterator[CollectorProcess]:
    db = tmp_path_factory.mktemp("collector") / "collector.db"
    with run_collector(f"sqlite:///{db}", extra_args=["--policy", str(policy_file)]) as url:
        yield url


@pytest.fixture(scope="module")
def agent(xs: XServer, collector: CollectorProcess, policy_file: Path,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentProcess]:
    proc = start_agent(xs, collector, tmp_path_factory.mktemp("agent"), policy_file)
    yield proc
    assert proc.stop() == 0, proc.output()
