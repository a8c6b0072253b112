"""Idle lock under a real X server: idle time comes from the X server (MIT-SCREEN-SAVER), waiting
produces the warning toast, xdotool input resets it, and waiting on to `lock_after_s` locks."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import (
    LOCK_WINDOW,
    PIN,
    AgentProcess,
    XServer,
    policy_text,
    start_agent,
    unlock_with,
    wait_until,
    write_policy,
)

from tests.support.servers import CollectorProcess

WARN_S, LOCK_S = 5, 10  # the policy's minimums


@pytest.fixture(scope="module")
def policy_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_policy(tmp_path_factory.mktemp("idle-policy") / "policy.toml",
                        policy_text(warn=WARN_S, lock=LOCK_S))


@pytest.fixture
def idle_agent(xs: XServer, collector: CollectorProcess, policy_file: Path,
               tmp_path: Path) -> Iterator[AgentProcess]:
    agent = start_agent(xs, collector, tmp_path / "agent", policy_file)
    yield agent
    assert agent.stop() == 0, agent.output()


def test_idle_warns_input_resets_then_locks(xs: XServer, idle_agent: AgentProcess) -> None:
    agent = idle_agent
    xs.xdotool("mousemove", "500", "500")
    first = agent.wait_event("IDLE_WARN", timeout=LOCK_S + 20)
    assert float(str(first.detail["idle_s"])) >= WARN_S
    wait_until(lambda: xs.visible_windows("Teller Guard notice"), timeout=10,
               what="the countdown toast")

    # Input resets the idle time: the next warning needs a new idle period, no lock in between.
    xs.xdotool("mousemove", "600", "600")
    second = agent.wait_event("IDLE_WARN", after=1, timeout=LOCK_S + 20)
    assert second.time - first.time >= WARN_S - 1
    assert not [e for e in agent.events("IDLE_LOCK") if e.time < second.time]

    # Nobody comes back: the lock follows.
    lock = agent.wait_event("IDLE_LOCK", timeout=LOCK_S + 20)
    assert lock.detail["reason"] == "idle" and lock.detail["method"] == "overlay"
    assert float(str(lock.detail["idle_s"])) >= LOCK_S
    wait_until(lambda: xs.visible_windows(LOCK_WINDOW), timeout=10, what="the overlay")
    unlock_with(xs, agent, PIN)
    wait_until(lambda: not xs.visible_windows(LOCK_WINDOW), timeout=10, what="overlay gone")
