"""`events status` and `journal verify` read the data directory of the agent running here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from guard.commands import agent_dir
from guard.delivery.journal import JOURNAL_FILE, Journal


@pytest.fixture
def dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """(the agent's demo directory with a journal, the per-user state directory)."""
    demo = tmp_path / "demo"
    demo.mkdir()
    with Journal(demo / JOURNAL_FILE):
        pass
    state = tmp_path / "state"
    monkeypatch.setenv("XDG_STATE_HOME", str(state))
    monkeypatch.delenv("TELLER_GUARD_DATA_DIR", raising=False)
    return demo, state


@pytest.fixture
def fake_agent() -> Iterator[int]:
    """A live process whose command line names the agent program, as the real one's does."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)",
                             agent_dir.AGENT_PROGRAM])
    # until its exec, a child's /proc cmdline is still the parent's (pytest's): wait for it
    cmdline = Path(f"/proc/{proc.pid}/cmdline")
    deadline = time.monotonic() + 30
    while agent_dir.AGENT_PROGRAM.encode() not in cmdline.read_bytes():
        assert time.monotonic() < deadline, "the stand-in agent did not start"
        time.sleep(0.01)
    try:
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()


def _cli(*args: str, env_extra: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "TELLER_GUARD_DATA_DIR"} | env_extra
    return subprocess.run([sys.executable, "-m", "guard.cli", *args], capture_output=True,
                          text=True, env=env, timeout=60)


def test_commands_read_the_running_agents_directory(dirs: tuple[Path, Path],
                                                    fake_agent: int) -> None:
    demo, state = dirs
    rec = subprocess.run([sys.executable, "-m", "guard.commands.agent_dir", "record", str(demo),
                          str(fake_agent)], capture_output=True, text=True, check=True,
                         env=os.environ | {"XDG_STATE_HOME": str(state)})
    assert Path(rec.stdout.strip()) == state / "TellerGuard" / agent_dir.RECORD_FILE
    env = {"XDG_STATE_HOME": str(state)}
    st = _cli("events", "status", "--json", env_extra=env)
    assert st.returncode == 0, st.stderr
    doc = json.loads(st.stdout)
    assert doc["path"] == str(demo / JOURNAL_FILE)
    assert f"pid {fake_agent}" in doc["data_dir_why"]
    vf = _cli("journal", "verify", env_extra=env)
    assert vf.returncode == 0, vf.stderr
    assert str(demo / JOURNAL_FILE) in vf.stdout and "running agent" in vf.stdout
    # TELLER_GUARD_DATA_DIR still wins
    other = demo.parent / "other"
    vf = _cli("journal", "verify", env_extra=env | {"TELLER_GUARD_DATA_DIR": str(other)})
    assert vf.returncode == 2 and str(other / JOURNAL_FILE) in vf.stderr


def test_a_dead_agents_record_is_ignored(dirs: tuple[Path, Path]) -> None:
    demo, _state = dirs
    done = subprocess.Popen([sys.executable, "-c", "pass", agent_dir.AGENT_PROGRAM])
    done.wait()
    agent_dir.record(demo, done.pid)
    assert agent_dir.running_agent() is None
    assert "machine" in agent_dir.resolve().why


def test_a_pid_of_another_program_is_ignored(dirs: tuple[Path, Path]) -> None:
    demo, _state = dirs
    agent_dir.record(demo, os.getpid())  # pytest is alive, but it is not the agent
    assert agent_dir.running_agent() is None


def test_forget_keeps_a_newer_agents_record(dirs: tuple[Path, Path], fake_agent: int) -> None:
    demo, _state = dirs
    agent_dir.record(demo, fake_agent)
    agent_dir.forget(fake_agent + 1)  # an older run.sh ending
    assert agent_dir.running_agent() is not None
    agent_dir.forget(fake_agent)
    assert not agent_dir.record_file().exists()


def test_damaged_record_is_ignored(dirs: tuple[Path, Path]) -> None:
    agent_dir.record_file().parent.mkdir(parents=True, exist_ok=True)
    agent_dir.record_file().write_text("{not json")
    assert agent_dir.running_agent() is None
