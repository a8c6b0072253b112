"""The remote-control watch's process list: /proc on Linux gives what psutil gives, ends what it
is asked to, and keeps psutil out of the agent."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc")

from guard import platforms  # noqa: E402
from guard.platforms._psutil_programs import PsutilPrograms  # noqa: E402
from tests.support.interpreter import run_code  # noqa: E402


@pytest.fixture
def started(tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Real processes named as remote-control tools are named, but on no policy's list (the
    watcher's own tests, running beside these, would notice and end those): a short name, one
    longer than the kernel's 15-character comm, one whose program file was deleted, a script by
    its interpreter, one started under another first argument (bash's `exec -a`)."""
    todesk = tmp_path / "TgProbe"
    longer = tmp_path / "TgProbeClientRemoteAssist"
    deleted = tmp_path / "TgProbe_Service"
    for path in (todesk, longer, deleted):
        shutil.copy("/bin/sleep", path)
    procs = [subprocess.Popen([str(todesk), "60"]), subprocess.Popen([str(longer), "60"]),
             subprocess.Popen([str(deleted), "60"]),
             subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "obs"]),
             subprocess.Popen(["bash", "-c", 'exec -a "TgProbeDesk --service" sleep 60'])]
    deleted.unlink()
    yield procs
    for proc in procs:
        proc.kill()
        proc.wait()


def test_linux_lists_processes_from_proc() -> None:
    table = platforms.program_list()
    assert type(table).__name__ == "ProcPrograms" and table.unavailable() is None


def test_proc_gives_the_names_psutil_gives(started: list[subprocess.Popen[bytes]]) -> None:
    pytest.importorskip("psutil")
    psutil_list = {p.pid: p for p in PsutilPrograms().programs()}
    proc_list = {p.pid: p for p in platforms.program_list().programs()}
    psutil_after = {p.pid: p for p in PsutilPrograms().programs()}
    pids = [p.pid for p in started]
    assert [proc_list[pid].names for pid in pids] == [psutil_list[pid].names for pid in pids]
    names = [proc_list[pid].names for pid in pids]
    assert names[1][0] == "TgProbeClientRemoteAssist"  # lengthened past the kernel's 15
    assert names[2][1].endswith("/TgProbe_Service")  # without " (deleted)"
    assert names[4][0] == "sleep" and names[4][-1] == "TgProbeDesk --service"
    for pid in pids:  # the same start time: a reused pid would be told apart the same way
        assert proc_list[pid].started == pytest.approx(psutil_list[pid].started, abs=0.05)
    # the whole table: the same processes, bar those that started, ended or exec'd another
    # program in between (psutil's two reads around the /proc one disagree on those)
    common = proc_list.keys() & psutil_list.keys() & psutil_after.keys()
    assert len(common) >= 0.9 * len(psutil_list)
    steady = [pid for pid in common if psutil_list[pid].names == psutil_after[pid].names]
    assert len(steady) >= 0.9 * len(common)
    differ = [pid for pid in steady if proc_list[pid].names != psutil_list[pid].names]
    assert differ == []


def test_end_terminates_a_process_and_a_gone_one_counts_as_ended(
        started: list[subprocess.Popen[bytes]]) -> None:
    table = platforms.program_list()
    target = started[0]
    assert table.end(target.pid) is True
    assert target.wait(5) is not None  # ended (a zombie until its parent reaps it)
    assert table.end(target.pid) is True
    stubborn = subprocess.Popen([sys.executable, "-c",
                                 "import signal, time; signal.signal(signal.SIGTERM, "
                                 "signal.SIG_IGN); print('ready', flush=True); time.sleep(60)"],
                                stdout=subprocess.PIPE)
    try:
        assert stubborn.stdout is not None and stubborn.stdout.readline() == b"ready\n"
        assert table.end(stubborn.pid) is True  # killed after the wait
        assert stubborn.wait(5) == -9
    finally:
        if stubborn.poll() is None:
            stubborn.kill()
            stubborn.wait()


AGENT_LIST = """\
import json, sys
from ui.app import main  # noqa: F401  (the agent's own imports)
from guard.watchers.remote_control import running_programs

pids = [p.pid for p in running_programs()]
print(json.dumps({"self": int(sys.argv[1]) in pids, "psutil": "psutil" in sys.modules}))
"""


def test_the_agent_lists_processes_without_psutil() -> None:
    pytest.importorskip("PySide6")
    pytest.importorskip("psutil")  # installed here: without the /proc list it would be imported
    assert run_code(AGENT_LIST, str(os.getpid())) == {"self": True, "psutil": False}


@pytest.mark.parametrize(("raw", "args"), [
    (b"", []),
    (b"/opt/ToDesk/ToDesk\0--tray\0", ["/opt/ToDesk/ToDesk", "--tray"]),
    (b"AnyDesk --service\0", ["AnyDesk", "--service"]),  # rewrote its title into one string
    (b"obs --minimize", ["obs", "--minimize"]),  # rewrote it without the final NUL
])
def test_a_command_line_is_split_as_psutil_splits_it(raw: bytes, args: list[str]) -> None:
    from guard.platforms._linux.programs import _cmdline

    assert _cmdline(raw) == args
