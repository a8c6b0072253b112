"""Supervisor approval (四眼) of a print job the machine service holds, and the first-job gap,
with real parts: a private cupsd, the real machine service (root, a subprocess), a real
collector on loopback, an ordinary user printing with `lp`, and the real agent-side client
over the service's real socket answering for that user from a script.

The supervisor dialog itself is Qt (tests/ui); here the agent's `SupervisorPrompting` is
scripted: it types tries into the `check` the channel gives it, as the dialog does, and every
try is judged in the service.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from guard.credentials import hash_secret
from guard.pipeline.approval import ApprovalRequest, ApprovalResult, Check
from guard.pipeline.prompt import PromptAnswer, PromptRequest, ScriptedPrompter
from tests.guard.watchers.real_service import REPO, PrintingService, print_lab
from tests.guard.watchers.real_service import eventually as _eventually

RID = "11010519491231002X"
SUP_SECRET = "wang-0420-sup"
OWN_SECRET = "teller-own-secret"

APPROVAL_POLICY = """\
version = "approval-test"
[prompts]
timeout_s = 30
[print]
action = "block"
approval = "supervisor"
[idle]
backoff_after = 2
backoff_base_s = 30
backoff_max_s = 60
[[supervisors]]
id = "sup01"
name = "王主管"
credential_hash = "{sup_hash}"
[[supervisors]]
id = "{teller}"
name = "the teller posing as a supervisor"
credential_hash = "{own_hash}"
"""

CONFIRM_POLICY = """\
version = "approval-test"
[prompts]
timeout_s = 30
[print]
action = "confirm"
"""

Try = tuple[str, str, str]  # (method, supervisor id, secret), as typed in the dialog


class ScriptedSupervisor(ScriptedPrompter):
    """The agent's prompter with the supervisor dialog: each approval types the next scripted
    tries into `check` (as `ui.prompt.SupervisorDialog` does), stops at the first that
    approves and returns it with the typed reason, like the dialog."""

    def __init__(self, approvals: Sequence[Sequence[Try]] = (), reason: str = "") -> None:
        super().__init__()
        self.approvals = [list(tries) for tries in approvals]
        self.reason = reason
        self.requests: list[ApprovalRequest] = []
        self.verdicts: list[ApprovalResult] = []

    def approve(self, request: ApprovalRequest, check: Check) -> ApprovalResult | None:
        self.requests.append(request)
        tries = self.approvals.pop(0) if self.approvals else []
        for method, supervisor, secret in tries:
            verdict = check(method, supervisor, secret)
            self.verdicts.append(verdict)
            if verdict.ok:
                return ApprovalResult(True, verdict.method, verdict.supervisor,
                                      verdict.supervisor_name, reason=self.reason)
        return None


class ServiceUnderTest(PrintingService):
    """The real service for one private cupsd, collector and printing user; the agent side is
    started by the test (`start_agent`), so a test can print before it connects."""

    def start(self) -> None:
        self.start_service()
        self.wait_guarded()
        try:
            _eventually("the central policy applied",
                        lambda: self.status().get("policy_version") == "approval-test")
        except pytest.fail.Exception:
            pytest.fail(f"the service did not apply the policy: {self.status()}\n"
                        f"{self.service_log()}")

    def start_agent(self, prompter: ScriptedPrompter) -> Any:
        """The agent's side of the channel, for the printing user (root may name the teller)."""
        from guard.ipc.agent_side import agent_sink
        from guard.model import Device

        self.sink = agent_sink(self.root / "agent", socket_path=self.sock,
                               device=Device(id="a", hostname="pc"), teller=self.user,
                               prompter=prompter, flush_every_s=0.2)
        assert self.sink is not None, self.service_log()
        return self.sink

    def wait_events(self, type_: str, n: int) -> list[dict[str, Any]]:
        return _eventually(f"{n} {type_} event(s) at the collector",
                           lambda: (lambda es: es if len(es) >= n else None)(self.events(type_)))

    def issue_code(self, channel: str) -> str:
        device = self.status()["device_id"]
        env = {**os.environ, "TELLER_GUARD_ADMIN_TOKEN": self.collector.admin_token}
        out = subprocess.run([sys.executable, "-m", "guard.cli", "approval-code", "--collector",
                              str(self.collector), "--device", device, "--channel", channel,
                              "--minutes", "10"], cwd=REPO, env=env, capture_output=True,
                             text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        return out.stdout.strip()


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Callable[[str], ServiceUnderTest]]:
    with print_lab(tmp_path, ("Office",)) as lab:

        def make(policy: str) -> ServiceUnderTest:
            collector = lab.collector_serving(policy.format(
                sup_hash=hash_secret(SUP_SECRET), own_hash=hash_secret(OWN_SECRET),
                teller=lab.user))
            sut = ServiceUnderTest(lab, collector)
            lab.stack.callback(sut.stop)
            sut.start()
            return sut

        yield make


def _pdf() -> bytes:
    from tests.support.cups import simple_pdf

    return simple_pdf([f"Zhang San ID {RID}"], pages=1)


def test_a_blocked_job_approved_by_a_supervisor_is_released_and_names_both(
        service: Callable[[str], ServiceUnderTest]) -> None:
    sut = service(APPROVAL_POLICY)
    agent = ScriptedSupervisor([[("supervisor", "sup01", SUP_SECRET)]], reason="客户本人要求打印")
    sut.start_agent(agent)
    job = sut.lp("-d", "Office", data=_pdf())
    _eventually("the PDF", lambda: sut.pdfs())
    _eventually("the job done", lambda: not sut.waiting(job))
    (request,) = agent.requests
    # The agent is shown who may approve (ids and names only) and what was stopped.
    assert request.supervisors == (("sup01", "王主管"), (sut.user, "the teller posing as a "
                                                                    "supervisor"))
    assert request.codes and request.prompt.detail["teller"] == sut.user
    assert request.prompt.findings[0].masked == ["110***********002X"]
    assert [v.ok for v in agent.verdicts] == [True]
    assert agent.asked == []  # block: nothing to confirm, only the supervisor's dialog
    (event,) = sut.wait_events("APPROVAL_SUPERVISOR", 1)
    assert event["teller"] == sut.user and event["detail"]["supervisor"] == "sup01"
    assert event["detail"]["supervisor_name"] == "王主管"
    assert event["detail"]["approved_channel"] == "print"
    assert event["detail"]["print_job"] == "released" and event["detail"]["job"] == job
    assert event["justification"] == "客户本人要求打印"
    assert sut.events("PRINT_JOB_HELD") == []  # the approval is the job's one event
    everything = json.dumps(sut.events("APPROVAL_SUPERVISOR"))
    assert RID not in everything and SUP_SECRET not in everything
    assert SUP_SECRET not in sut.service_log()


def test_self_approval_and_a_wrong_credential_back_off_in_the_service(
        service: Callable[[str], ServiceUnderTest]) -> None:
    sut = service(APPROVAL_POLICY)
    agent = ScriptedSupervisor([[("supervisor", sut.user, OWN_SECRET),
                                 ("supervisor", "sup01", "nope-7731"),
                                 ("supervisor", "sup01", SUP_SECRET)]])
    sut.start_agent(agent)
    job = sut.lp("-d", "Office", data=_pdf())
    _eventually("the job cancelled", lambda: not sut.waiting(job))
    own, wrong, right_but_waiting = agent.verdicts
    assert (own.ok, own.message_key) == (False, "self_approval")
    assert (wrong.ok, wrong.message_key) == (False, "wrong_credential")
    assert wrong.retry_after_s == pytest.approx(30.0, abs=1.0)  # the policy's back-off
    # the right credential during the back-off is not even checked: the wait is the service's
    assert (right_but_waiting.ok, right_but_waiting.message_key) == (False, "backoff")
    assert right_but_waiting.retry_after_s > 0
    assert sut.pdfs() == []
    failed = sut.wait_events("APPROVAL_FAILED", 2)
    assert [e["detail"]["why"] for e in failed] == ["self_approval", "wrong_credential"]
    assert all(e["teller"] == sut.user and e["detail"]["approved_channel"] == "print"
               for e in failed)
    assert [e["detail"]["failures"] for e in failed] == [1, 2]
    (held,) = sut.wait_events("PRINT_JOB_HELD", 1)
    assert held["outcome"] == "blocked" and held["detail"]["print_job"] == "cancelled"
    assert sut.events("APPROVAL_SUPERVISOR") == []
    assert all(s not in json.dumps(failed) for s in (OWN_SECRET, SUP_SECRET, "nope-7731"))


def test_a_one_time_code_approves_one_job_and_is_refused_the_second_time(
        service: Callable[[str], ServiceUnderTest]) -> None:
    sut = service(APPROVAL_POLICY)
    code = sut.issue_code("print")
    agent = ScriptedSupervisor([[("code", "", code)], [("code", "", code)]])
    sut.start_agent(agent)
    first = sut.lp("-d", "Office", data=_pdf())
    _eventually("the first PDF", lambda: sut.pdfs())
    second = sut.lp("-d", "Office", data=_pdf())
    _eventually("the second job cancelled", lambda: not sut.waiting(second))
    assert len(sut.pdfs()) == 1
    assert [(v.ok, v.method, v.message_key) for v in agent.verdicts] == [
        (True, "code", "ok"), (False, "code", "code_refused")]
    (approved,) = sut.wait_events("APPROVAL_CODE", 1)
    assert approved["teller"] == sut.user and approved["detail"]["job"] == first
    assert approved["detail"]["approval"] == "code"
    (refused,) = sut.wait_events("APPROVAL_FAILED", 1)
    assert refused["detail"]["why"] == "code_refused" and refused["teller"] == sut.user
    digits = code.replace("-", "")
    assert digits not in json.dumps(sut.events("APPROVAL_CODE") + sut.events("APPROVAL_FAILED"))
    assert digits not in sut.service_log()


def test_a_job_printed_before_the_agent_connects_is_asked_not_cancelled(
        service: Callable[[str], ServiceUnderTest]) -> None:
    """Issue 11's gap: the teller is logged in (a process of theirs runs) but their agent has
    not connected yet when the job comes; the service waits for it instead of cancelling."""
    sut = service(CONFIRM_POLICY)
    session = subprocess.Popen(["sleep", "300"], user=sut.user, stdin=subprocess.DEVNULL)
    try:
        job = sut.lp("-d", "Office", data=_pdf())
        # The service saw the job, found no agent and waits for one: start it now.
        _eventually("the service waiting for the agent",
                    lambda: "has no agent connected yet" in sut.service_log())
        agent = ScriptedPrompter([PromptAnswer(proceed=True)])
        sut.start_agent(agent)
        _eventually("the PDF", lambda: sut.pdfs())
    finally:
        session.kill()
        session.wait()
    (asked,) = agent.asked
    assert isinstance(asked, PromptRequest) and asked.detail["teller"] == sut.user
    (held,) = sut.wait_events("PRINT_JOB_HELD", 1)
    assert held["outcome"] == "acknowledged" and held["detail"]["job"] == job


# -- the parts, without CUPS


def test_each_teller_gets_their_own_approver_and_an_unnamed_one_none(tmp_path: Path) -> None:
    from guard.app.machine import ServiceApprovers
    from guard.platforms.base import NoPasswordCheck
    from guard.policy.store import PolicyStore

    policy = tmp_path / "policy.toml"
    policy.write_text(APPROVAL_POLICY.format(sup_hash=hash_secret(SUP_SECRET),
                                             own_hash=hash_secret(OWN_SECRET), teller="li"),
                      encoding="utf-8")
    store = PolicyStore(override_file=str(policy), cache_dir=tmp_path)
    store.reload()
    codes: list[tuple[str, str]] = []
    approvers = ServiceApprovers(store, code_verifier=lambda ch, c: bool(codes.append((ch, c))),
                                 password=lambda: NoPasswordCheck("not here"))
    li, wang = approvers("li"), approvers("wang")
    assert li is not None and wang is not None and approvers("li") is li and li is not wang
    assert approvers("") is None  # nobody to tell apart from the supervisor
    assert li.check("supervisor", "li", OWN_SECRET).message_key == "self_approval"
    assert li.check("supervisor", "sup01", "nope").retry_after_s > 0  # li's back-off ...
    assert li.check("supervisor", "sup01", SUP_SECRET).message_key == "backoff"
    assert wang.check("supervisor", "sup01", SUP_SECRET).ok  # ... is not wang's
    assert not wang.check("code", "", "0101-2345-6789", channel="print").ok
    assert codes == [("print", "0101-2345-6789")]  # codes go to the device key's holder


@pytest.mark.skipif(sys.platform != "linux", reason="/proc")
def test_the_linux_process_table_tells_who_has_processes() -> None:
    import pwd

    from guard.platforms._linux.machine import ProcTable

    table = ProcTable()
    assert table.user_has_processes(pwd.getpwuid(os.getuid()).pw_name) is True
    assert table.user_has_processes("no-such-login-tg") is False
