"""Supervisor approval over the local channel, and an agent that is there from its start: the
real server and the real agent-side client over a real socket (raw clients where a test must
misbehave), the credential checked in the service only."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from guard.ipc.agent_side import ServiceSink
from guard.ipc.client import LocalChannelClient
from guard.ipc.messages import (
    Message,
    ProtocolError,
    approval_request_from_body,
    approval_request_to_body,
    approval_try_from_body,
    verdict_from_body,
)
from guard.ipc.remote_prompter import RemotePrompter
from guard.ipc.server import LocalChannelServer
from guard.model import Action, Channel, Device, FindingSummary
from guard.pipeline.approval import ApprovalRequest, ApprovalResult, Check
from guard.pipeline.prompt import PromptAnswer, PromptRequest, ScriptedPrompter
from tests.guard.ipc.conftest import WAIT_S, RawClient, eventually, login

DEVICE = Device(id="pc", hostname="pc")
SECRET = "wang-0420-sup"


def _prompt(timeout_s: float = 30.0) -> PromptRequest:
    return PromptRequest(action=Action.BLOCK, channel=Channel.PRINT, kind="job_held",
                         findings=(FindingSummary(type="CN_RESIDENT_ID", count=1,
                                                  masked=["110***********002X"]),),
                         timeout_s=timeout_s, detail={"teller": login(), "printer": "Office"})


def _approval(timeout_s: float = 30.0) -> ApprovalRequest:
    return ApprovalRequest(_prompt(timeout_s), (("sup01", "王主管"),), True)


class ServiceCheck:
    """The service's side of `check`: what it was asked, a right answer for SECRET."""

    def __init__(self) -> None:
        self.tries: list[tuple[str, str, str]] = []

    def __call__(self, method: str, supervisor: str, secret: str) -> ApprovalResult:
        self.tries.append((method, supervisor, secret))
        if method == "supervisor" and supervisor == "sup01" and secret == SECRET:
            return ApprovalResult(True, "supervisor", "sup01", "王主管")
        return ApprovalResult(False, method, supervisor, retry_after_s=5.0,
                              message_key="wrong_credential")


class ScriptedSupervisor(ScriptedPrompter):
    """An agent prompter with the supervisor dialog: types `tries` into `check`, returns the
    approving one with `reason` (as `ui.prompt.SupervisorDialog` does)."""

    def __init__(self, tries: list[tuple[str, str, str]], reason: str = "") -> None:
        super().__init__()
        self.tries = tries
        self.reason = reason
        self.requests: list[ApprovalRequest] = []
        self.verdicts: list[ApprovalResult] = []

    def approve(self, request: ApprovalRequest, check: Check) -> ApprovalResult | None:
        self.requests.append(request)
        for method, supervisor, secret in self.tries:
            verdict = check(method, supervisor, secret)
            self.verdicts.append(verdict)
            if verdict.ok:
                return ApprovalResult(True, verdict.method, verdict.supervisor,
                                      verdict.supervisor_name, reason=self.reason)
        return None


def _client(server: LocalChannelServer, tmp_path: Path, **kw: Any) -> LocalChannelClient:
    return LocalChannelClient(server.path, tmp_path / "spool", device=DEVICE, teller=login(),
                              **kw)


def _in_thread(call: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    out: list[Any] = []
    thread = threading.Thread(target=lambda: out.append(call()), daemon=True)
    thread.start()
    return thread, out


# -- the message bodies


def test_an_approval_request_crosses_whole_and_a_malformed_one_is_refused() -> None:
    request = _approval()
    assert approval_request_from_body(approval_request_to_body(request)) == request
    for bad in ({}, {"prompt": [], "supervisors": []},
                {"prompt": approval_request_to_body(request)["prompt"], "supervisors": [["x"]]},
                {"prompt": approval_request_to_body(request)["prompt"], "supervisors": [],
                 "codes": "yes"}):
        with pytest.raises(ProtocolError):
            approval_request_from_body(bad)


@pytest.mark.parametrize("body", [
    {},
    {"approval": "a", "method": "teller", "supervisor": "", "secret": "s"},  # not a method
    {"approval": "a", "method": "supervisor", "supervisor": "s", "secret": ""},  # no secret
    {"approval": "a", "method": "supervisor", "supervisor": "s", "secret": "x" * 257},
    {"approval": "a", "method": "code", "supervisor": 7, "secret": "123"},
    {"approval": "a" * 65, "method": "code", "supervisor": "", "secret": "123"},
])
def test_a_malformed_try_is_refused_without_naming_its_secret(body: dict[str, Any]) -> None:
    with pytest.raises(ProtocolError) as caught:
        approval_try_from_body(body)
    assert caught.value.code == "bad_message" and "x" * 20 not in str(caught.value)


def test_a_try_keeps_its_secret_out_of_its_repr() -> None:
    attempt = approval_try_from_body({"approval": "a", "method": "supervisor",
                                      "supervisor": "sup01", "secret": SECRET})
    assert attempt.secret == SECRET and SECRET not in repr(attempt)


@pytest.mark.parametrize("body", [{}, {"ok": "yes", "method": "code", "message_key": "ok"},
                                  {"ok": True, "method": "code", "message_key": "hacked"},
                                  {"ok": True, "method": "root", "message_key": "ok"}])
def test_an_unreadable_verdict_is_a_refusal(body: dict[str, Any]) -> None:
    assert verdict_from_body(body) == ApprovalResult(False, message_key="not_offered")


# -- over the socket


def test_the_service_checks_each_try_and_the_agent_relays_only_what_was_typed(
        serve: Callable[..., LocalChannelServer], tmp_path: Path) -> None:
    server = serve()
    agent = ScriptedSupervisor([("supervisor", "sup01", "nope-7731"),
                                ("supervisor", "sup01", SECRET)], reason="客户本人要求")
    client = _client(server, tmp_path, prompter=agent)
    client.keepalive()
    check = ServiceCheck()
    result = RemotePrompter(server).approve(_approval(), check)
    assert result == ApprovalResult(True, "supervisor", "sup01", "王主管", reason="客户本人要求")
    assert check.tries == [("supervisor", "sup01", "nope-7731"), ("supervisor", "sup01", SECRET)]
    assert agent.requests == [_approval()]
    wrong, right = agent.verdicts
    assert (wrong.ok, wrong.message_key, wrong.retry_after_s) == (False, "wrong_credential", 5.0)
    assert right.ok and right.supervisor == "sup01"
    client.close()


def test_an_agent_that_cannot_show_the_dialog_leaves_the_action_blocked(
        serve: Callable[..., LocalChannelServer], tmp_path: Path) -> None:
    server = serve()
    plain = ScriptedPrompter()  # prompts, but no supervisor dialog (an older agent)
    client = _client(server, tmp_path, prompter=plain)
    client.keepalive()
    check = ServiceCheck()
    assert RemotePrompter(server).approve(_approval(), check) is None
    assert check.tries == [] and plain.asked == [] and plain.notified == []
    client.close()
    # One that says it can but answers the dialog with an error: the safe choice, at once
    # (not at the end of a 300 s timeout).
    raw = RawClient(server.path)
    assert raw.hello(prompts=True, approvals=True).type == "hello"
    thread, out = _in_thread(lambda: server.approve(_approval(300.0), check, teller=login(),
                                                    timeout_s=300.0))
    approve = raw.read()
    assert approve is not None and approve.type == "approve"
    raw.send(Message(type="error", body={"code": "unexpected", "message": "no"},
                     reply_to=approve.id))
    thread.join(WAIT_S)
    assert not thread.is_alive() and out == [None] and check.tries == []
    raw.close()


def test_tries_for_another_connections_dialog_or_after_it_ended_are_refused_unchecked(
        serve: Callable[..., LocalChannelServer]) -> None:
    server = serve()
    shows, other = RawClient(server.path), RawClient(server.path)
    shows.hello(prompts=True, approvals=True)
    other.hello(prompts=True, approvals=True)
    check = ServiceCheck()
    thread, out = _in_thread(lambda: server.approve(_approval(), check, teller=login(),
                                                    timeout_s=WAIT_S))
    approve = _eventually_read(shows, other)
    viewer = shows if approve[0] is shows else other
    intruder = other if viewer is shows else shows
    dialog = approve[1]

    def attempt(client: RawClient, secret: str) -> Message:
        return client.ask(Message(type="approval_try", body={
            "approval": dialog.id, "method": "supervisor", "supervisor": "sup01",
            "secret": secret}))

    stolen = attempt(intruder, SECRET)
    assert stolen.type == "approval_verdict" and stolen.body["ok"] is False
    assert stolen.body["message_key"] == "not_offered" and check.tries == []
    assert SECRET not in str(stolen.body)
    good = attempt(viewer, SECRET)
    assert good.body["ok"] is True and check.tries == [("supervisor", "sup01", SECRET)]
    viewer.send(Message(type="answer", body={"proceed": True, "reason": "已核实"},
                        reply_to=dialog.id))
    thread.join(WAIT_S)
    assert out and out[0] == ApprovalResult(True, "supervisor", "sup01", "王主管",
                                            reason="已核实")
    late = attempt(viewer, SECRET)  # the dialog is over: not checked again
    assert late.body["ok"] is False and len(check.tries) == 1
    shows.close()
    other.close()


def _eventually_read(*clients: RawClient) -> tuple[RawClient, Message]:
    """The first client that gets an approve message (the server picks the most recently
    active session)."""
    for client in clients:
        client.sock.settimeout(0.2)
    found: list[tuple[RawClient, Message]] = []

    def poll() -> bool:
        for client in clients:
            try:
                msg = client.read()
            except TimeoutError:
                continue
            if msg is not None and msg.type == "approve":
                found.append((client, msg))
                return True
        return False

    eventually("an approve message", poll)
    for client in clients:
        client.sock.settimeout(WAIT_S)
    return found[0]


# -- the first-job gap (issue 11)


def test_an_agent_is_connected_when_its_sink_is_made_and_reconnects_promptly(
        journal: Any, short_dir: Path, tmp_path: Path) -> None:
    path = short_dir / "restart.sock"
    server = LocalChannelServer(journal, path)
    server.start()
    # a keepalive every minute: only connecting at start and on a drop can pass the test
    sink = ServiceSink(_client(server, tmp_path, prompter=ScriptedPrompter()),
                       flush_every_s=60.0)
    try:
        assert server.has_session(login())  # no waiting: the service can ask from the start
        server.stop()
        server = LocalChannelServer(journal, path)
        server.start()
        eventually("the agent back", lambda: server.has_session(login()), timeout=WAIT_S)
    finally:
        sink.close()
        server.stop()


def test_the_service_waits_briefly_for_a_logged_in_tellers_agent(
        serve: Callable[..., LocalChannelServer], tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="guard.ipc.remote_prompter")
    server = serve()
    waiting = RemotePrompter(server, session_live=lambda teller: True, agent_grace_s=WAIT_S)
    thread, out = _in_thread(lambda: waiting.ask(_prompt()))
    eventually("the prompt waiting for the agent",
               lambda: "has no agent connected yet" in caplog.text)
    teller = ScriptedPrompter([PromptAnswer(proceed=True, reason="ok")])
    client = _client(server, tmp_path, prompter=teller)
    client.keepalive()  # the agent connects only now
    thread.join(WAIT_S)
    assert out == [PromptAnswer(proceed=True, reason="ok")] and len(teller.asked) == 1
    client.close()
    eventually("the agent gone", lambda: not server.has_session(login()))
    # nobody logged in as this teller: the safe choice without the (here 300 s) wait
    absent = RemotePrompter(server, session_live=lambda teller: False, agent_grace_s=300.0)
    thread, out = _in_thread(lambda: absent.ask(_prompt()))
    thread.join(WAIT_S)
    assert not thread.is_alive() and out == [PromptAnswer(proceed=False, timed_out=True)]


def test_an_agent_saying_approved_without_a_try_the_service_approved_is_not_believed(
        serve: Callable[..., LocalChannelServer]) -> None:
    server = serve()
    raw = RawClient(server.path)
    raw.hello(prompts=True, approvals=True)
    check = ServiceCheck()
    thread, out = _in_thread(lambda: server.approve(_approval(), check, teller=login(),
                                                    timeout_s=WAIT_S))
    approve = raw.read()
    assert approve is not None and approve.type == "approve"
    assert "credential_hash" not in str(approve.body)  # ids and names only
    raw.send(Message(type="answer", body={"proceed": True, "reason": "trust me"},
                     reply_to=approve.id))
    thread.join(WAIT_S)
    assert not thread.is_alive() and out == [None] and check.tries == []
    raw.close()
