"""The real machine service for the print and USB tests: `teller-guard service` as a process
(root, as CI runs), enrolled at a real collector on loopback that serves the test's policy, and
a session agent's side of the local channel answering for the teller from a script."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from guard.ipc.status import STATUS_FILE
from guard.pipeline.prompt import ScriptedPrompter
from tests.support.waiting import eventually as _eventually

REPO = Path(__file__).resolve().parents[3]
WAIT_S = 60.0


def eventually(what: str, check: Callable[[], Any], timeout: float = WAIT_S) -> Any:
    """`tests.support.waiting.eventually` with this harness's longer bound (a service start)."""
    return _eventually(what, check, timeout)


def cups_skip_reason() -> str | None:
    """Why the real CUPS + service tests cannot run here, or None."""
    from tests.support.cups import missing_tools

    if sys.platform != "linux":
        return "CUPS tests run on Linux"
    if os.geteuid() != 0:
        return "the machine service and useradd need root (CI runs as root)"
    try:
        import cups  # noqa: F401
    except ImportError:
        return "pycups is not installed (pip install pycups; apt-get install libcups2-dev)"
    missing = missing_tools()
    return f"not installed: {', '.join(missing)}" if missing else None


@dataclass(frozen=True)
class PrintLab:
    """A private cupsd under the `teller-guard` policy with PDF queues, an ordinary login, and a
    world-readable folder (the service and `lp` run as different users)."""

    stack: contextlib.ExitStack
    cups: Any
    user: str
    root: Path

    def collector_serving(self, policy: str) -> Any:
        """A real collector on loopback serving `policy` (the central layer wins over the
        machine file), stopped with the lab."""
        from tests.support.servers import run_collector

        (self.root / "policy.toml").write_text(policy, encoding="utf-8")
        return self.stack.enter_context(run_collector(
            f"sqlite:///{self.root}/collector.db",
            extra_args=["--policy", str(self.root / "policy.toml")]))


@contextlib.contextmanager
def print_lab(tmp_path: Path, queues: tuple[str, ...]) -> Iterator[PrintLab]:
    """A `PrintLab` with `queues`, or the test skipped with the reason it cannot run here."""
    reason = cups_skip_reason()
    if reason:
        pytest.skip(reason)
    from guard.platforms._linux.cups import CUPS_POLICY
    from tests.support.cups import private_cups, test_user

    root = Path(os.path.realpath(tmp_path))
    os.chmod(root, 0o755)
    with contextlib.ExitStack() as stack:
        cups = stack.enter_context(private_cups(CUPS_POLICY))
        user = stack.enter_context(test_user())
        for queue in queues:
            cups.add_pdf_queue(queue)
        yield PrintLab(stack, cups, user, root)


class RealService:
    """`teller-guard service` with its own data directory and socket under `root`, shipping to
    `collector`, and `sink`: the agent side of `teller` (a `ScriptedPrompter` answers)."""

    def __init__(self, root: Path, collector: Any, teller: str, *,
                 env: Mapping[str, str] | None = None,
                 prompter: ScriptedPrompter | None = None) -> None:
        self.root, self.collector, self.teller = root, collector, teller
        self.env = dict(env if env is not None else os.environ)
        self.data = root / "data"
        self.sock = root / "s.sock"
        self.prompter = prompter or ScriptedPrompter()
        self.proc: subprocess.Popen[bytes] | None = None
        self.sink: Any = None

    def start(self) -> None:
        """The service, then the agent side connected to it."""
        self.start_service()
        self.connect_agent()

    def start_service(self) -> None:
        """The service process, once its socket is there (no agent yet)."""
        # this tree first; what the caller put on the path after it (a compiled core elsewhere)
        path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
        env = {**self.env, "PYTHONPATH": path, "PYTHONUNBUFFERED": "1",
               "TELLER_GUARD_PLATFORM": "linux"}
        for k in ("TELLER_GUARD_ENDPOINT", "TELLER_GUARD_POLICY", "TELLER_GUARD_SOCKET"):
            env.pop(k, None)
        self.log = open(self.root / "service.log", "ab")
        token_file = self.root / "enroll-token"
        token_file.write_text(self.collector.enroll_token, encoding="utf-8")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "guard.cli", "service", "--data-dir", str(self.data),
             "--socket", str(self.sock),
             "--endpoint", str(self.collector), "--enroll-token-file", str(token_file)],
            env=env, cwd=REPO, stdout=self.log, stderr=self.log, stdin=subprocess.DEVNULL)
        eventually("the service's socket", lambda: self.sock.exists() or self._died())

    def connect_agent(self) -> None:
        """This test's agent side of the local channel, listening for the service's prompts."""
        from guard.ipc.agent_side import agent_sink
        from guard.model import Device

        self.sink = eventually("the agent side", lambda: agent_sink(
            self.root / "agent", socket_path=self.sock, device=Device(id="a", hostname="pc"),
            teller=self.teller, prompter=self.prompter, flush_every_s=0.2))
        # agent_sink returns connected (issue 11): the service can ask this teller from now on
        assert self.sink.client.connected()

    def _died(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            pytest.fail(f"service exited {self.proc.returncode}:\n{self.service_log()}")
        return False

    def status(self) -> dict[str, Any]:
        """The service's status file (device id, policy version ...), or {} before it exists."""
        try:
            loaded = json.loads((self.data / STATUS_FILE).read_text("utf-8"))
        except (OSError, ValueError):
            return {}
        return loaded if isinstance(loaded, dict) else {}

    def service_log(self) -> str:
        return (self.root / "service.log").read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.sink is not None:
            self.sink.close()
            self.sink = None
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(30)
            self.proc = None
            self.log.close()

    def events(self, type_: str) -> list[dict[str, Any]]:
        """The events of `type_` the real collector stored, oldest first."""
        r = httpx.get(f"{self.collector}/api/v1/events",
                      params={"type": type_, "limit": "1000"},
                      headers={"Authorization": f"Bearer {self.collector.admin_token}"},
                      timeout=10.0)
        assert r.status_code == 200, r.text
        return sorted(r.json()["events"], key=lambda e: e["time"])


class PrintingService(RealService):
    """The real service guarding a `PrintLab`'s cupsd, and the printing login's side of it:
    `lp` as that login, its cups-pdf output, the spooler's waiting jobs."""

    def __init__(self, lab: PrintLab, collector: Any) -> None:
        super().__init__(lab.root, collector, lab.user, env=lab.cups.env)
        self.cups, self.user = lab.cups, lab.user
        self.home = Path(os.path.expanduser(f"~{lab.user}"))
        self.printed = 0

    def wait_guarded(self, queue: str = "Office") -> None:
        """Until the service has put `queue` behind its hold (its release queue exists)."""
        eventually("the queue guarded", lambda: f"{queue}_tg_release" in self.cups.run(
            ["lpstat", "-p"]).stdout)

    def lp(self, *args: str, data: bytes = b"") -> int:
        """Print `data` as the login; each job gets its own title, since cups-pdf names its
        output file after the title."""
        self.printed += 1
        title = [] if "-t" in args else ["-t", f"job{self.printed}"]
        out = self.cups.run(["lp", *title, *args, "-"], user=self.user, input=data).stdout
        return int(out.split("-", 1)[1].split()[0].rstrip(")"))

    def pdfs(self) -> list[str]:
        out = self.home / "PDF"
        return sorted(os.listdir(out)) if out.exists() else []

    def waiting(self, job: int) -> bool:
        """True while `job` is in the spooler, not printed and not cancelled."""
        out = self.cups.run(["lpstat", "-o"]).stdout
        return any(line.split() and line.split()[0].endswith(f"-{job}")
                   for line in out.splitlines())
