"""The agent's end over a real socket: prompts from the service answered by the agent's
prompter, the safe choice when nobody answers, and a full journal that keeps the spool."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from guard.delivery.journal import Journal, JournalError
from guard.ipc.agent_side import ServiceSink
from guard.ipc.client import LocalChannelClient
from guard.ipc.messages import LocalChannelUnavailable, Message
from guard.ipc.remote_prompter import RemotePrompter
from guard.ipc.server import LocalChannelServer
from guard.model import Action, Channel, Device, Event, FindingSummary
from guard.pipeline.prompt import PromptAnswer, PromptRequest, ScriptedPrompter
from tests.guard.ipc.conftest import RawClient, event, eventually, login

DEVICE = Device(id="pc", hostname="pc")


def _request(teller: str = "", timeout_s: float = 5.0) -> PromptRequest:
    detail = {"printer": "柜台打印机"}
    if teller:
        detail["teller"] = teller
    return PromptRequest(action=Action.CONFIRM, channel=Channel.PRINT, kind="job_held",
                         findings=(FindingSummary(type="BANK_CARD", count=1,
                                                  masked=["622202******0128"]),),
                         timeout_s=timeout_s, detail=detail)


def _client(server: LocalChannelServer, tmp_path: Path, **kw: object) -> LocalChannelClient:
    return LocalChannelClient(server.path, tmp_path / "spool", device=DEVICE, teller=login(),
                              **kw)  # type: ignore[arg-type]


def test_the_service_asks_the_teller_and_gets_the_answer(
        serve: Callable[..., LocalChannelServer], tmp_path: Path) -> None:
    server = serve()
    teller = ScriptedPrompter([PromptAnswer(proceed=True, reason="客户要求打印")])
    client = _client(server, tmp_path, prompter=teller)
    client.keepalive()  # connects: the agent is there to be asked
    eventually("the session to register", lambda: server.sessions())
    prompter = RemotePrompter(server)
    answer = prompter.ask(_request(teller=login()))
    assert answer == PromptAnswer(proceed=True, reason="客户要求打印")
    (asked,) = teller.asked
    assert asked == _request(teller=login())  # the whole request crossed, findings included
    prompter.notify(_request())  # no teller named: the active session
    eventually("the notification", lambda: teller.notified)
    assert client.send(event(1))  # the same connection still carries events
    client.close()


def test_nobody_answering_takes_the_safe_choice(
        serve: Callable[..., LocalChannelServer], tmp_path: Path) -> None:
    server = serve()
    prompter = RemotePrompter(server, grace_s=0.0)
    safe = PromptAnswer(proceed=False, timed_out=True)
    assert prompter.ask(_request()) == safe  # no session at all

    release = threading.Event()

    class SlowTeller(ScriptedPrompter):
        def ask(self, request: PromptRequest) -> PromptAnswer:
            super().ask(request)
            release.wait(30)
            return PromptAnswer(proceed=True)

    slow = SlowTeller()
    client = _client(server, tmp_path, prompter=slow)
    client.keepalive()
    eventually("the session", lambda: server.sessions())
    assert prompter.ask(_request(timeout_s=0.3)) == safe  # the teller took too long
    assert prompter.ask(_request(teller="another-teller")) == safe  # not this teller's session
    release.set()

    # The connection drops while a prompt is open: the safe choice, at once.
    raw = RawClient(server.path)
    raw.hello(prompts=True)
    result: list[PromptAnswer] = []
    asking = threading.Thread(target=lambda: result.append(prompter.ask(_request(
        timeout_s=30.0))))
    client.close()  # only the raw session is left to ask
    eventually("the agent's session to go", lambda: len(server.sessions()) == 1)
    asking.start()
    prompt = raw.read()
    assert prompt is not None and prompt.type == "prompt"
    raw.close()
    asking.join(30)
    assert result == [safe]


def test_an_answer_the_agent_cannot_read_is_refused_with_a_reply(
        serve: Callable[..., LocalChannelServer], tmp_path: Path) -> None:
    server = serve()
    raw = RawClient(server.path)
    raw.hello(prompts=True)
    wrong = raw.ask(Message(type="event", body={"event": {"type": "X"}}))
    assert wrong.type == "refused" and wrong.body["retry"] is False
    assert "not a valid event" in wrong.body["reason"]
    raw.close()


class _FullDisk(Journal):
    """The journal's own failure path, as SQLite reports a full disk."""

    full = True

    def record(self, event: Event) -> None:
        if self.full:
            raise JournalError("database or disk is full")
        super().record(event)


def test_a_service_that_cannot_journal_leaves_the_events_in_the_agent_spool(
        tmp_path: Path, serve: Callable[..., LocalChannelServer]) -> None:
    journal = _FullDisk(tmp_path / "full.db", device=DEVICE)
    server = serve(journal=journal)
    client = _client(server, tmp_path)
    events = [event(i) for i in range(3)]
    assert not client.send(events[0])  # "cannot journal right now": kept, not dropped
    assert not client.send(events[1])
    assert len(client.spooled()) == 2
    sink = ServiceSink(client, flush_every_s=0.05)
    try:
        assert not sink.flush()  # retried: still full, still kept
        assert len(client.spooled()) == 2 and not (client.spool_dir / "refused").exists()
        journal.full = False  # space again
        sink.record(events[2])
        assert client.spooled() == []
    finally:
        sink.close()
        journal.close()
    with Journal(tmp_path / "full.db", read_only=True) as j:
        assert [r.event_id for r in j.records()] == [str(e.id) for e in events]  # in order


def test_the_agent_asks_the_service_for_its_status(
        serve: Callable[..., LocalChannelServer], tmp_path: Path) -> None:
    server = serve(status_provider=lambda: {
        "state": "running", "pid": 1, "version": "t", "started_at": "", "updated_at": "",
        "data_dir": "/d", "socket": "/s", "queue_depth": 4})
    sink = ServiceSink(_client(server, tmp_path))
    try:
        status = sink.service_status()
        assert status is not None and status.queue_depth == 4 and status.state == "running"
        assert sink.channel_state() == "listening"
    finally:
        sink.close()


def test_a_service_that_speaks_another_version_is_said_so(tmp_path: Path,
                                                          short_dir: Path) -> None:
    import socket

    from guard.ipc.messages import encode, error_message

    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(short_dir / "old.sock"))
    listener.listen(1)

    def old_service() -> None:
        conn, _ = listener.accept()
        conn.recv(65536)
        conn.sendall(encode(error_message("version", "protocol version 1 is not supported; "
                                          "this end speaks [2]")))
        conn.close()

    t = threading.Thread(target=old_service)
    t.start()
    client = LocalChannelClient(short_dir / "old.sock", tmp_path / "spool", device=DEVICE,
                                teller=login())
    with pytest.raises(LocalChannelUnavailable, match="another protocol version"):
        client._connected()
    t.join(10)
    listener.close()
