"""Delivery under faults, end to end with real processes: no event lost, none stored twice.

A shipping process (journal + shipper) records events and is SIGKILLed at random moments, while
the real collector is killed, stopped and restarted; at the end every event the process reported
as recorded is in the collector's store exactly once, in journal order, and `journal verify`
passes. Once with the default SQLite store, once with two collector processes sharing a real
PostgreSQL. The driver is `scripts/soak_delivery.py`, which runs the same with more cycles.
"""

from __future__ import annotations

import importlib.util
import os
import random
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from guard.delivery.journal import Journal
from guard.events import EventType
from guard.ipc.client import LocalChannelClient
from guard.ipc.messages import LocalChannelUnavailable
from guard.ipc.server import LocalChannelServer
from guard.ipc.unix import Peer
from guard.model import Channel, Device, Event
from tests.support.servers import create_database, run_collector, start_postgres

REPO = Path(__file__).resolve().parents[3]
CYCLES = 50


def _soak() -> ModuleType:
    spec = importlib.util.spec_from_file_location("soak_delivery",
                                                  REPO / "scripts" / "soak_delivery.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["soak_delivery"] = module
    spec.loader.exec_module(module)
    return module


soak = _soak()


@pytest.fixture(autouse=True)
def one_key_store_for_all_processes(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The enrolling test process and the shipping processes it spawns must see the same key
    store: pin both to the headless file fallback, whatever keyring an earlier test left active."""
    import keyring
    from keyring.backends import fail

    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    before = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    try:
        yield
    finally:
        keyring.set_keyring(before)


@pytest.fixture(scope="module")
def pg_server() -> Iterator[str]:
    with start_postgres() as url:
        yield url


def _verify_cli(data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "guard.cli", "journal", "verify", "--path",
         str(data_dir / "journal.db")],
        capture_output=True, text=True, cwd=REPO, timeout=60)


def test_every_event_arrives_once_in_order_despite_kills_sqlite(tmp_path: Path) -> None:
    rng = random.Random(20261124)
    db_url = f"sqlite:///{tmp_path / 'collector.db'}"
    term = soak.Terminal("pc1", tmp_path / "pc1")
    with run_collector(db_url) as collector:
        soak.enroll_terminal(term, str(collector), collector.enroll_token)
        report = soak.run_cycles([term], [collector], cycles=CYCLES, rng=rng)
        if not collector.running:
            collector.start()
        soak.drain(term, str(collector))
    assert report.shipper_kills == CYCLES
    assert report.collector_kills + report.collector_stops > 0, "the collector was never faulted"
    assert len(term.reported) > CYCLES * 10
    assert soak.check_terminal(term, db_url) == []
    stored = soak.stored_events(db_url, term.device_id)
    assert {i for i, _ in stored} >= set(term.reported)
    cli = _verify_cli(term.data_dir)
    assert cli.returncode == 0, cli.stdout + cli.stderr
    assert "journal OK" in cli.stdout


@pytest.mark.postgres
def test_every_event_arrives_once_in_order_two_collectors_on_postgres(
        tmp_path: Path, pg_server: str) -> None:
    rng = random.Random(4242)
    db_url = create_database(pg_server, "delivery")
    terms = [soak.Terminal(f"pc{i}", tmp_path / f"pc{i}") for i in (1, 2)]
    with run_collector(db_url) as a, run_collector(db_url) as b:
        for term in terms:
            soak.enroll_terminal(term, str(a), a.enroll_token)
        report = soak.run_cycles(terms, [a, b], cycles=CYCLES, rng=rng)
        for c in (a, b):
            if not c.running:
                c.start()
        soak.drain(terms[0], str(a))
        soak.drain(terms[1], str(b))
    assert report.shipper_kills == 2 * CYCLES
    assert report.collector_kills + report.collector_stops > 0
    for term in terms:
        assert len(term.reported) > CYCLES * 5
        assert soak.check_terminal(term, db_url) == []
        assert _verify_cli(term.data_dir).returncode == 0


def test_check_terminal_notices_a_lost_event(tmp_path: Path) -> None:
    """The checker itself can fail: a reported id missing from the store is named."""
    db_url = f"sqlite:///{tmp_path / 'collector.db'}"
    term = soak.Terminal("pc1", tmp_path / "pc1")
    with run_collector(db_url) as collector:
        soak.enroll_terminal(term, str(collector), collector.enroll_token)
        soak.run_cycles([term], [collector], cycles=1, rng=random.Random(1))
        soak.drain(term, str(collector))
    assert soak.check_terminal(term, db_url) == []
    term.reported.append("00000000-0000-4000-8000-000000000000")
    problems = soak.check_terminal(term, db_url)
    assert any("never reached the store" in p for p in problems)


# ----------------------------------------------------------------------------- local channel
# Session agent -> machine service over a Unix socket, checked with SO_PEERCRED.


def _teller_event(device: Device, teller: str, i: int) -> Event:
    return Event(type="CLIPBOARD_COPY", device=device, teller=teller,
                 channel=Channel.CLIPBOARD, detail={"i": i})


@pytest.fixture
def channel_dir() -> Iterator[Path]:
    # Not under pytest's tmp (mode 0700): another user must reach the socket.
    path = Path(tempfile.mkdtemp(prefix="tg-channel-"))
    os.chmod(path, 0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def test_agent_events_reach_the_service_journal_in_order(tmp_path: Path,
                                                         channel_dir: Path) -> None:
    device = Device(id="pc-1", hostname="pc-1")
    journal = Journal(tmp_path / "journal.db", device=device)
    peers: list[Peer] = []
    server = LocalChannelServer(journal, channel_dir / "agent.sock",
                                on_event=lambda e, p: peers.append(p))
    server.start()
    try:
        client = LocalChannelClient(channel_dir / "agent.sock", tmp_path / "spool",
                                    device=device, teller="root")
        events = [_teller_event(device, "root", i) for i in range(20)]
        assert all(client.send(e) for e in events)
        client.close()
    finally:
        server.stop()
    assert [r.event_id for r in journal.records()] == [str(e.id) for e in events]
    assert {p.uid for p in peers} == {tmp_path.stat().st_uid}  # this test process's own uid
    assert peers[0].pid > 0
    assert not (channel_dir / "agent.sock").exists()


def test_agent_spools_while_the_service_is_away_and_sends_in_order_later(
        tmp_path: Path, channel_dir: Path) -> None:
    device = Device(id="pc-1", hostname="pc-1")
    journal = Journal(tmp_path / "journal.db", device=device)
    sock = channel_dir / "agent.sock"
    client = LocalChannelClient(sock, tmp_path / "spool", device=device, teller="root")
    away = [_teller_event(device, "root", i) for i in range(5)]
    assert not any(client.send(e) for e in away)  # nobody listening: spooled
    assert len(client.spooled()) == 5
    server = LocalChannelServer(journal, sock)
    server.start()
    try:
        later = _teller_event(device, "root", 99)
        assert client.send(later)  # the spool goes first, then this one
        assert client.spooled() == []
        # The service restarts: the client reconnects by itself.
        server.stop()
        server = LocalChannelServer(journal, sock)
        server.start()
        again = _teller_event(device, "root", 100)
        client.send(again)
        assert client.flush()
    finally:
        server.stop()
        client.close()
    assert [r.event_id for r in journal.records()] == [str(e.id) for e in
                                                       [*away, later, again]]


def test_spool_is_bounded_and_says_how_many_it_dropped(tmp_path: Path) -> None:
    device = Device(id="pc-1", hostname="pc-1")
    client = LocalChannelClient(tmp_path / "nobody-listens.sock", tmp_path / "spool",
                                device=device, teller="root", max_spool=10)
    events = [_teller_event(device, "root", i) for i in range(25)]
    for e in events:
        client.send(e)
    files = client.spooled()
    assert len(files) <= 11
    bodies = [Event.from_json(f.read_text()) for f in files]
    assert bodies[-1].id == events[-1].id
    dropped = [b for b in bodies if b.type == EventType.AGENT_SPOOL_DROPPED]  # the agent's own type
    assert dropped and dropped[0] == bodies[0]  # the notice stands where the dropped ones were


_PEER_SCRIPT = """
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
for line in sys.stdin.read().splitlines():
    s.sendall(line.encode() + b"\\n")
    print(s.makefile("rb").readline().decode().strip(), flush=True)
"""


def _as_nobody(sock: Path, lines: list[str]) -> list[str]:
    r = subprocess.run(["/usr/bin/python3", "-c", _PEER_SCRIPT, str(sock)],
                       input="\n".join(lines), capture_output=True, text=True, timeout=30,
                       user=65534, group=65534, extra_groups=[], cwd="/")
    return r.stdout.splitlines()


@pytest.mark.skipif(getattr(os, "geteuid", lambda: -1)() != 0,
                    reason="needs root to run a client as another user")
def test_service_checks_the_peer_user_from_the_kernel(tmp_path: Path,
                                                      channel_dir: Path) -> None:
    device = Device(id="pc-1", hostname="pc-1")
    journal = Journal(tmp_path / "journal.db", device=device)
    sock = channel_dir / "agent.sock"
    own = _teller_event(device, "nobody", 1)
    forged = _teller_event(device, "root", 2)  # nobody pretends to be another teller
    server = LocalChannelServer(journal, sock)
    server.start()
    try:
        answers = _as_nobody(sock, [own.to_json(), forged.to_json(), "{not json"])
    finally:
        server.stop()
    assert answers[0] == f"ok {own.id}"
    assert answers[1].startswith("error") and "teller" in answers[1]
    assert answers[2].startswith("error") and "valid event" in answers[2]
    assert [r.event_id for r in journal.records()] == [str(own.id)]

    # A service that only takes events from root refuses the whole connection.
    strict = LocalChannelServer(journal, sock, allowed_uids={0})
    strict.start()
    try:
        answers = _as_nobody(sock, [own.to_json()])
    finally:
        strict.stop()
    assert answers and answers[0].startswith("error") and "may not" in answers[0]
    assert strict.rejected == 1
    assert len(journal.records()) == 1


def test_windows_side_says_it_is_not_built_yet(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    device = Device(id="pc-1", hostname="pc-1")
    journal = Journal(tmp_path / "journal.db", device=device)
    monkeypatch.setattr(sys, "platform", "win32")
    with pytest.raises(LocalChannelUnavailable, match="named-pipe"):
        LocalChannelServer(journal, tmp_path / "agent.sock")
    with pytest.raises(LocalChannelUnavailable, match="single-process mode"):
        LocalChannelClient(tmp_path / "agent.sock", tmp_path / "spool", device=device)
