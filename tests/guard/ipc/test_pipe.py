"""The named-pipe transport's logic against a fake Windows pipe API (the OS boundary that cannot
run here): the pipe's ACL, peer identity from the kernel, the whole channel over pipes."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from guard.delivery.journal import Journal
from guard.ipc.client import LocalChannelClient
from guard.ipc.messages import PIPE_NAME, LocalChannelRefused, LocalChannelUnavailable
from guard.ipc.pipe import (
    CLIENT_ACCESS,
    ERROR_ACCESS_DENIED,
    ERROR_BROKEN_PIPE,
    ERROR_PIPE_BUSY,
    PIPE_SDDL,
    ClientIdentity,
    PipeServer,
    connect_pipe,
    peer_from_identity,
)
from guard.ipc.server import LocalChannelServer
from guard.model import Channel, Device, Event
from guard.pipeline.prompt import PromptAnswer, ScriptedPrompter
from tests.guard.ipc.conftest import eventually

FILE_WRITE_DATA, FILE_APPEND_DATA_OR_CREATE_PIPE_INSTANCE = 0x2, 0x4
ALICE = ClientIdentity(pid=4100, sid="S-1-5-21-1-2-3-1001", login="alice")
BOB = ClientIdentity(pid=4200, sid="S-1-5-21-1-2-3-1002", login="bob")
SYSTEM = ClientIdentity(pid=4, sid="S-1-5-18", login="SYSTEM")
DEVICE = Device(id="pc", hostname="pc")


def _winerr(code: int) -> OSError:
    exc = OSError(f"winerror {code}")
    exc.winerror = code  # type: ignore[attr-defined]
    return exc


class _End:
    def __init__(self) -> None:
        self.inbox: queue.Queue[bytes] = queue.Queue()


class FakePipeApi:
    """Named pipes in memory: instances wait for clients, bytes cross in queues, cancel wakes a
    blocked read, and the kernel's client identity is whatever the test says dialled."""

    def __init__(self, max_instances: int = 4) -> None:
        self.max_instances = max_instances
        self._lock = threading.Lock()
        self._next = 100
        self.exists_names: set[str] = set()
        self.instances: dict[int, dict[str, object]] = {}
        self.waiting: queue.Queue[int] = queue.Queue()  # server handles waiting in connect
        self.created: list[tuple[str, bool]] = []
        self.squatted = False
        self.fail_creates = 0
        self.clients: dict[int, dict[str, object]] = {}
        self.dialling = ALICE  # whom the kernel reports for the next client

    def _handle(self) -> int:
        with self._lock:
            self._next += 1
            return self._next

    # the server's side
    def create_instance(self, name: str, *, first: bool, instances: int) -> int:
        if first and self.squatted:
            raise _winerr(ERROR_ACCESS_DENIED)
        if self.fail_creates:
            self.fail_creates -= 1
            raise _winerr(ERROR_PIPE_BUSY)
        h = self._handle()
        self.created.append((name, first))
        self.instances[h] = {"mine": _End(), "peer": None, "identity": None,
                             "ready": threading.Event(), "cancel": threading.Event()}
        self.exists_names.add(name)
        return h

    def connect(self, handle: int) -> None:
        inst = self.instances[handle]
        self.waiting.put(handle)
        ready, cancel = inst["ready"], inst["cancel"]
        assert isinstance(ready, threading.Event) and isinstance(cancel, threading.Event)
        while not ready.wait(0.05):
            if cancel.is_set():
                raise _winerr(995)

    def read(self, handle: int, size: int) -> bytes:
        inst = self.instances.get(handle) or self.clients[handle]
        end = inst["mine"]
        cancel = inst["cancel"]
        assert isinstance(end, _End) and isinstance(cancel, threading.Event)
        while True:
            if cancel.is_set():
                return b""
            try:
                data = end.inbox.get(timeout=0.05)
            except queue.Empty:
                continue
            if not data:
                return b""
            if len(data) > size:
                end.inbox.queue.appendleft(data[size:])  # the rest for the next read
                data = data[:size]
            return data

    def write(self, handle: int, data: bytes) -> None:
        inst = self.instances.get(handle) or self.clients[handle]
        peer = inst["peer"]
        if peer is None or inst["cancel"].is_set():  # type: ignore[attr-defined]
            raise _winerr(ERROR_BROKEN_PIPE)
        assert isinstance(peer, _End)
        peer.inbox.put(bytes(data))

    def cancel(self, handle: int) -> None:
        inst = self.instances.get(handle) or self.clients.get(handle)
        if inst is not None:
            inst["cancel"].set()  # type: ignore[attr-defined]
            peer = inst["peer"]
            if isinstance(peer, _End):
                peer.inbox.put(b"")  # the other end sees the pipe break

    def disconnect(self, handle: int) -> None:
        self.cancel(handle)

    def close(self, handle: int) -> None:
        self.instances.pop(handle, None)

    def client_identity(self, handle: int) -> ClientIdentity:
        ident = self.instances[handle]["identity"]
        assert isinstance(ident, ClientIdentity)
        return ident

    # the agent's side
    def open_client(self, name: str, timeout_s: float) -> int:
        if name not in self.exists_names:
            raise _winerr(2)
        try:
            server_handle = self.waiting.get(timeout=timeout_s)
        except queue.Empty:
            raise _winerr(ERROR_PIPE_BUSY) from None
        inst = self.instances[server_handle]
        mine = _End()
        h = self._handle()
        self.clients[h] = {"mine": mine, "peer": inst["mine"], "cancel": threading.Event()}
        inst["peer"] = mine
        inst["identity"] = self.dialling
        inst["ready"].set()  # type: ignore[attr-defined]
        return h

    def exists(self, name: str, timeout_s: float) -> bool:
        return name in self.exists_names


@pytest.fixture
def fake() -> FakePipeApi:
    return FakePipeApi()


@pytest.fixture
def pipe_server(fake: FakePipeApi, tmp_path: Path) -> Iterator[LocalChannelServer]:
    journal = Journal(tmp_path / "journal.db", device=DEVICE)
    server = LocalChannelServer(journal, Path(PIPE_NAME), max_per_uid=2,
                                transport=lambda s: PipeServer(s, PIPE_NAME, api=fake,
                                                               instances=4, retry_s=0.01))
    server.start()
    try:
        yield server
    finally:
        server.stop()
        journal.close()


def _client(fake: FakePipeApi, tmp_path: Path, who: ClientIdentity, **kw: object
            ) -> LocalChannelClient:
    def dial() -> object:
        fake.dialling = who
        return connect_pipe(PIPE_NAME, 5.0, api=fake)

    return LocalChannelClient(Path(PIPE_NAME), tmp_path / f"spool-{who.login}", device=DEVICE,
                              teller=who.login, connector=dial, **kw)  # type: ignore[arg-type]


def _event(teller: str) -> Event:
    return Event(type="CLIPBOARD_COPY", device=DEVICE, teller=teller, channel=Channel.CLIPBOARD)


def test_the_pipe_acl_lets_tellers_talk_but_not_create_instances() -> None:
    aces = PIPE_SDDL.removeprefix("D:P").strip("()").split(")(")
    by_sid = {ace.split(";")[-1]: ace for ace in aces}
    assert by_sid["SY"].startswith("A;;GA") and by_sid["BA"].startswith("A;;GA")
    assert by_sid["NU"].startswith("D;;GA")  # network logons denied
    for users in ("AU", "IU"):
        rights = int(by_sid[users].split(";")[2], 16)
        assert rights & FILE_WRITE_DATA
        assert not rights & FILE_APPEND_DATA_OR_CREATE_PIPE_INSTANCE
        assert "GW" not in by_sid[users] and "GA" not in by_sid[users]
    assert CLIENT_ACCESS & ~int(by_sid["AU"].split(";")[2], 16) == 0  # asks only for granted


def test_peer_identity_binds_ordinary_users_to_their_login() -> None:
    alice = peer_from_identity(ALICE)
    assert (alice.login, alice.sid, alice.pid, alice.privileged) == ("alice", ALICE.sid, 4100,
                                                                     False)
    assert peer_from_identity(SYSTEM).privileged
    assert alice.account != peer_from_identity(BOB).account  # per-user limits tell them apart


def test_events_and_prompts_cross_the_pipe_and_tellers_are_checked(
        fake: FakePipeApi, pipe_server: LocalChannelServer, tmp_path: Path) -> None:
    assert fake.created[0] == (PIPE_NAME, True)  # the first instance claims the name
    teller = ScriptedPrompter([PromptAnswer(proceed=True)])
    alice = _client(fake, tmp_path, ALICE, prompter=teller)
    assert alice.send(_event("alice"))
    with pytest.raises(LocalChannelRefused, match="not the sending user"):
        alice.send(_event("bob"))  # alice poses as bob: the kernel says otherwise
    from guard.ipc.remote_prompter import RemotePrompter
    from tests.guard.ipc.test_agent_side import _request

    answer = RemotePrompter(pipe_server).ask(_request(teller="alice"))
    assert answer == PromptAnswer(proceed=True)
    assert [r.event_id for r in pipe_server.journal.records()] and pipe_server.accepted == 1
    alice.close()


def test_per_user_cap_counts_by_sid(fake: FakePipeApi, pipe_server: LocalChannelServer,
                                    tmp_path: Path) -> None:
    a1, a2 = _client(fake, tmp_path, ALICE), _client(fake, tmp_path, ALICE)
    assert a1.send(_event("alice")) and a2.send(_event("alice"))
    bob = _client(fake, tmp_path, BOB)
    assert bob.send(_event("bob"))  # another SID: its own allowance
    a3 = _client(fake, tmp_path, ALICE)
    assert not a3.send(_event("alice"))  # refused as busy: spooled, not lost
    assert len(a3.spooled()) == 1
    for c in (a1, a2, bob, a3):
        c.close()


def test_a_squatted_pipe_name_stops_the_start(fake: FakePipeApi, tmp_path: Path) -> None:
    fake.squatted = True
    journal = Journal(tmp_path / "j.db", device=DEVICE)
    server = LocalChannelServer(journal, Path(PIPE_NAME),
                                transport=lambda s: PipeServer(s, PIPE_NAME, api=fake))
    with pytest.raises(LocalChannelUnavailable, match="already owns"):
        server.start()
    assert server.state == "stopped"
    journal.close()


def test_failing_instance_creation_degrades_then_recovers(
        fake: FakePipeApi, pipe_server: LocalChannelServer, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    alice = _client(fake, tmp_path, ALICE)
    fake.fail_creates = 3
    assert alice.send(_event("alice"))  # the instance it used is re-created after it
    alice.close()
    eventually("the state to say degraded or recover", lambda: fake.fail_creates == 0)
    eventually("listening again", lambda: pipe_server.state == "listening")
    assert "degraded: cannot create a pipe instance (error 231" in caplog.text
    assert caplog.text.count("local channel degraded") == 1  # once, not per retry
    bob = _client(fake, tmp_path, BOB)
    assert bob.send(_event("bob"))
    bob.close()
