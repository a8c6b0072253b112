"""Which data directory the commands read: the one of the agent running in front of them.

`scripts/run.sh` starts the agent with its own data directory (`TELLER_GUARD_DATA_DIR`, for the
demo) and records it with the agent's process id in a per-user file; `teller-guard events status`
and `journal verify`, typed in another terminal, then read that agent's journal instead of the
machine's. The record counts only while that process is a live agent (a stale one, from an agent
that was killed, is ignored). `TELLER_GUARD_DATA_DIR` itself still wins.

    python -m guard.commands.agent_dir record DIR PID    (run.sh)
    python -m guard.commands.agent_dir forget PID        (run.sh, when its agent ends)
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from guard import paths
from guard.files import write_atomic

RECORD_FILE = "running-agent.json"
AGENT_PROGRAM = "teller-guard-agent"


@dataclass(frozen=True, slots=True)
class DataDir:
    """A data directory and why it was chosen (the commands print it)."""

    path: Path
    why: str


def record_file() -> Path:
    """The per-user file naming the running agent's data directory."""
    return Path(platformdirs.user_state_dir(paths.APP, appauthor=False)) / RECORD_FILE


def record(data_dir: Path, pid: int) -> Path:
    """Record that the agent `pid` keeps its data in `data_dir`; return the record's path."""
    where = record_file()
    where.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(where, json.dumps({"data_dir": str(data_dir.resolve()), "pid": pid}).encode())
    return where


def forget(pid: int) -> None:
    """Remove the record if it still names `pid` (a newer agent's record stays)."""
    where = record_file()
    recorded = _read(where)
    if recorded is not None and recorded[1] == pid:
        where.unlink(missing_ok=True)


def _read(where: Path) -> tuple[Path, int] | None:
    try:
        doc = json.loads(where.read_text(encoding="utf-8"))
        pid = doc["pid"]
        if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
            return None
        return Path(str(doc["data_dir"])), pid
    except (OSError, ValueError, KeyError, TypeError):
        return None  # missing or damaged: no agent recorded


def _is_agent(pid: int) -> bool:
    """True when `pid` is a live agent process. Only on Linux, where /proc names the program:
    a pid reused by another program after the agent died must not count."""
    if not sys.platform.startswith("linux"):
        return False  # os.kill(pid, 0) would end the process on Windows
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return AGENT_PROGRAM.encode() in cmdline


def running_agent() -> DataDir | None:
    """The recorded agent's data directory, when that agent is running and the directory exists."""
    recorded = _read(record_file())
    if recorded is None:
        return None
    data_dir, pid = recorded
    if not _is_agent(pid) or not data_dir.is_dir():
        return None
    return DataDir(data_dir, f"the data directory of the running agent (pid {pid}, "
                             f"recorded in {record_file()})")


def resolve() -> DataDir:
    """`TELLER_GUARD_DATA_DIR`, else the running agent's recorded directory, else the machine's."""
    if os.environ.get(paths.ENV_DATA_DIR):
        return DataDir(paths.data_dir(), f"{paths.ENV_DATA_DIR} is set")
    agent = running_agent()
    if agent is not None:
        return agent
    return DataDir(paths.data_dir(), "the machine's data directory")


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[0] == "record" and argv[2].isdigit():
        print(record(Path(argv[1]), int(argv[2])))
        return 0
    if len(argv) == 2 and argv[0] == "forget" and argv[1].isdigit():
        forget(int(argv[1]))
        return 0
    print("usage: python -m guard.commands.agent_dir record DIR PID | forget PID",
          file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
