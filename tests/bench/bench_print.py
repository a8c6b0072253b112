"""Benchmark: time from `lp` to the prompt at the teller's session agent (target ≤ 1 s).

A private cupsd, the real machine service (root), a session agent side answering from a
script; an ordinary user made for the run prints a PDF with customer data N times; each time
is measured from just before `lp` starts to the moment the agent's prompter is asked. Needs
root, cups, printer-driver-cups-pdf and pycups. Run:

    python tests/bench/bench_print.py [N]
"""

from __future__ import annotations

import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from guard.ipc.agent_side import agent_sink  # noqa: E402
from guard.model import Device  # noqa: E402
from guard.pipeline.prompt import PromptAnswer, PromptRequest, ScriptedPrompter  # noqa: E402
from guard.platforms._linux.cups import CUPS_POLICY  # noqa: E402
from tests.support.cups import private_cups, simple_pdf, test_user  # noqa: E402

RID = "11010519491231002X"


class Stopwatch(ScriptedPrompter):
    def __init__(self) -> None:
        super().__init__(default=PromptAnswer(proceed=False))
        self.asked_at: list[float] = []
        self.event = threading.Event()

    def ask(self, request: PromptRequest) -> PromptAnswer:
        self.asked_at.append(time.perf_counter())
        self.event.set()
        return super().ask(request)


def main() -> int:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    if os.geteuid() != 0:
        print("bench_print: needs root (the machine service and useradd)", file=sys.stderr)
        return 2
    root = Path(tempfile.mkdtemp(prefix="tgbench-", dir="/tmp"))
    os.chmod(root, 0o755)
    (root / "policy.toml").write_text('[print]\naction = "confirm"\n', encoding="utf-8")
    with contextlib.ExitStack() as stack:
        cups = stack.enter_context(private_cups(CUPS_POLICY))
        user = stack.enter_context(test_user("tgbench"))
        cups.add_pdf_queue("Office")
        env = {**cups.env, "PYTHONPATH": str(REPO), "TELLER_GUARD_PLATFORM": "linux"}
        sock = root / "s.sock"
        log = stack.enter_context(open(root / "service.log", "wb"))
        proc = subprocess.Popen(
            [sys.executable, "-m", "guard.cli", "service", "--data-dir", str(root / "data"),
             "--socket", str(sock), "--policy", str(root / "policy.toml"),
             "--endpoint", "http://127.0.0.1:9"],
            env=env, cwd=REPO, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        stack.callback(proc.wait, 30)
        stack.callback(proc.terminate)
        prompter = Stopwatch()
        deadline = time.monotonic() + 60
        sink = None
        while sink is None:
            if time.monotonic() > deadline or proc.poll() is not None:
                print("bench_print: the service did not start; see", root / "service.log")
                return 1
            sink = agent_sink(root / "agent", socket_path=sock, teller=user,
                              device=Device(id="bench", hostname="pc"), prompter=prompter,
                              flush_every_s=0.2)
            time.sleep(0.1)
        stack.callback(sink.close)
        while "Office_tg_release" not in cups.run(["lpstat", "-p"]).stdout:
            time.sleep(0.1)
        pdf = simple_pdf([f"Zhang San ID {RID}"] * 20, pages=2)
        times = []
        for i in range(runs):
            prompter.event.clear()
            start = time.perf_counter()
            cups.run(["lp", "-d", "Office", "-t", f"bench{i}", "-"], user=user, input=pdf)
            if not prompter.event.wait(30):
                print(f"run {i}: no prompt within 30 s")
                return 1
            times.append(prompter.asked_at[-1] - start)
            time.sleep(0.3)  # the cancel reaches the spooler before the next job
    ms = sorted(t * 1000 for t in times)
    print(f"lp -> prompt over {runs} jobs: median {statistics.median(ms):.0f} ms, "
          f"min {ms[0]:.0f} ms, max {ms[-1]:.0f} ms (target <= 1000 ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
