"""Fixtures of the X11 end-to-end tests: Xvfb + trayer, a real collector serving the test policy,
and the real agent process (`python -m ui.app --policy ...`) with its own data directory."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
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


UNTOUCHED_X_IDLE_S = 96.0
"""How long the untouched X server has been idle when the agent starts on it (the first-run case
of a PC nobody touched for a minute and a half before the teller's agent came up)."""

_untouched: dict[str, object] = {}


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start, as the run begins, the X server the 96-s-idle test starts its agent on: by the time
    that test comes, the rest of the run has let it age, so it rarely has to wait."""
    wanted = any(item.get_closest_marker("untouched_x") for item in session.items)
    if wanted and not missing_tools():
        stack = ExitStack()
        _untouched.update(stack=stack, server=stack.enter_context(xserver(tray=False)),
                          started=time.monotonic())


def pytest_sessionfinish(session: pytest.Session) -> None:
    stack = _untouched.pop("stack", None)
    if isinstance(stack, ExitStack):
        stack.close()


@pytest.fixture
def untouched_xserver() -> XServer:
    """An X server that has had no input for at least UNTOUCHED_X_IDLE_S (waits out the rest)."""
    server = _untouched.get("server")
    if not isinstance(server, XServer):
        pytest.skip(f"X tools missing: {missing_tools()}")
    from guard.platforms._linux.session import LinuxPlatform

    platform = LinuxPlatform(display=server.display)
    try:
        idle = platform.idle_seconds()
        if idle < UNTOUCHED_X_IDLE_S:
            time.sleep(UNTOUCHED_X_IDLE_S - idle + 0.5)
        assert platform.idle_seconds() >= UNTOUCHED_X_IDLE_S
    finally:
        platform.close()
    return server


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
