"""The service's end of the local channel on a real Unix socket: frames bounded as they are read,
per-user connection cap, idle timeout, version and type errors, and the listener's real state."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from guard.delivery.journal import Journal
from guard.ipc.messages import MAX_FRAME, FrameDecoder, FrameTooLarge, Message
from guard.ipc.server import LocalChannelServer
from tests.guard.ipc.conftest import WAIT_S, RawClient, event, eventually, frame_header

REPO = Path(__file__).resolve().parents[3]


def test_the_decoder_refuses_an_oversized_frame_from_its_header() -> None:
    decoder = FrameDecoder(limit=1024)
    assert decoder.feed(frame_header(3) + b"abc" + frame_header(2)) == [b"abc"]
    assert decoder.feed(b"xy") == [b"xy"]
    try:
        decoder.feed(frame_header(512 * 1024 * 1024) + b"\0" * 100)
    except FrameTooLarge as exc:
        assert exc.length == 512 * 1024 * 1024 and exc.fatal
    else:
        raise AssertionError("a 512 MiB frame was not refused")
    assert decoder.buffered == 0  # nothing of it kept
    assert decoder.high_water < 1024 + 200


def test_an_oversized_frame_is_refused_before_its_body_is_buffered(
        serve: Callable[..., LocalChannelServer], journal: Journal) -> None:
    server = serve()
    client = RawClient(server.path)
    assert client.hello().type == "hello"
    # Announce 512 MiB and start sending it: the server answers from the header and hangs up.
    client.send_raw(frame_header(512 * 1024 * 1024) + b"x" * 65536)
    reply = client.read()
    assert reply is not None and reply.type == "error"
    assert reply.body["code"] == "too_large" and "limit" in reply.body["message"]
    assert eventually("the server to close the connection", client.at_end)
    assert server.high_water <= MAX_FRAME + 65536 + 4  # at most one frame's worth, never 512 MiB
    client.close()
    # The listener is unharmed: the next agent is served.
    other = RawClient(server.path)
    other.hello()
    ack = other.ask(Message(type="event", body={"event": json.loads(event(1).to_json())}))
    assert ack.type == "ack"
    other.close()
    assert len(journal.records()) == 1


_SERVICE_SCRIPT = """
import os, sys, time
from pathlib import Path
from guard.delivery.journal import Journal
from guard.ipc.server import LocalChannelServer
from guard.model import Device
journal = Journal(Path(sys.argv[1]), device=Device(id="pc", hostname="pc"))
server = LocalChannelServer(journal, Path(sys.argv[2]))
server.start()
print("ready", flush=True)
sys.stdin.readline()
print("high_water", server.high_water, flush=True)
server.stop()
"""


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_a_512_mib_frame_does_not_grow_a_real_service_process(
        tmp_path: Path, short_dir: Path) -> None:
    sock = short_dir / "svc.sock"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", _SERVICE_SCRIPT, str(tmp_path / "j.db"),
                             str(sock)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            env=env, text=True)
    try:
        assert proc.stdout is not None and proc.stdin is not None
        assert proc.stdout.readline().strip() == "ready"
        before = _rss_kib(proc.pid)
        client = RawClient(sock)
        client.hello()
        client.send_raw(frame_header(512 * 1024 * 1024))
        sent = 0
        try:  # push up to 64 MiB of the body while the server is still reading
            chunk = b"y" * (1024 * 1024)
            while sent < 64 * 1024 * 1024:
                client.send_raw(chunk)
                sent += len(chunk)
        except OSError as exc:
            print("push ended:", exc)  # the server hung up: the point
        reply = client.read()
        assert reply is not None and reply.body.get("code") == "too_large"
        after = _rss_kib(proc.pid)
        client.close()
        proc.stdin.write("report\n")
        proc.stdin.flush()
        high = int(proc.stdout.readline().split()[1])
        assert proc.wait(WAIT_S) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    print(f"service RSS before {before} KiB, after a 512 MiB frame {after} KiB; "
          f"{sent // 1024} KiB of body pushed; decoder high water {high} bytes")
    assert after - before < 16 * 1024  # kilobytes: far below the 512 MiB announced
    assert high <= MAX_FRAME + 65536 + 4


def test_unknown_versions_and_types_get_an_error_reply_and_the_connection_goes_on(
        serve: Callable[..., LocalChannelServer]) -> None:
    server = serve()
    client = RawClient(server.path)
    future = client.ask(Message(type="hello", body={"versions": [7]}, v=7))
    assert future.type == "error" and future.body["code"] == "version"
    assert future.body["versions"] == [1] and future.reply_to is not None
    no_common = client.ask(Message(type="hello", body={"versions": [5, 6]}))
    assert no_common.body["code"] == "version" and "[1]" in no_common.body["message"]
    odd = client.ask(Message(type="make-coffee"))
    assert odd.type == "error" and odd.body["code"] == "unknown_type"
    before_hello = client.ask(Message(type="status_request"))
    assert before_hello.body["code"] == "no_hello"
    hello = client.hello(teller="someone-else")
    assert hello.type == "hello" and hello.body["version"] == 1
    status = client.ask(Message(type="status_request"))
    assert status.type == "status" and status.body["channel"]["state"] == "listening"
    client.close()


def test_each_user_may_hold_only_a_few_connections(
        serve: Callable[..., LocalChannelServer]) -> None:
    server = serve(max_per_uid=2)
    first, second = RawClient(server.path), RawClient(server.path)
    first.hello()
    second.hello()
    third = RawClient(server.path)
    refused = third.read()
    assert refused is not None and refused.body["code"] == "busy"
    assert "too many connections" in refused.body["message"]
    assert eventually("the third connection to end", third.at_end)
    assert server.rejected == 1
    first.close()
    eventually("the server to notice the closed connection", lambda: server.connections == 1)
    fourth = RawClient(server.path)
    assert fourth.hello().type == "hello"  # room again
    for c in (second, third, fourth):
        c.close()


def test_idle_connections_are_closed(serve: Callable[..., LocalChannelServer]) -> None:
    server = serve(idle_timeout_s=0.3)
    silent = RawClient(server.path)  # connects and says nothing
    talker = RawClient(server.path)
    talker.hello()
    assert eventually("the silent connection to be closed", silent.at_end)
    assert eventually("the quiet agent too", talker.at_end)
    assert eventually("no connection left", lambda: server.connections == 0)
    silent.close()
    talker.close()


def test_a_ping_keeps_a_connection_open(serve: Callable[..., LocalChannelServer]) -> None:
    server = serve(idle_timeout_s=1.0)
    client = RawClient(server.path)
    client.hello()
    for _ in range(8):  # 8 × 0.25 s: twice the idle timeout, in pings
        assert client.ask(Message(type="ping")).type == "pong"
        time.sleep(0.25)
    assert server.connections == 1
    client.close()


def test_state_reports_listening_and_stopped(journal: Journal, short_dir: Path) -> None:
    server = LocalChannelServer(journal, short_dir / "state.sock")
    assert server.state == "stopped"
    server.start()
    assert server.state == "listening"
    server.stop()
    assert server.state == "stopped"
    assert not (short_dir / "state.sock").exists()


_EMFILE_SCRIPT = """
import os, resource, socket, sys, time
from pathlib import Path
from guard.delivery.journal import Journal
from guard.ipc.server import LocalChannelServer
from guard.model import Device
journal = Journal(Path(sys.argv[1]), device=Device(id="pc", hostname="pc"))
server = LocalChannelServer(journal, Path(sys.argv[2]), max_per_uid=1000)
server.start()
open_now = len(os.listdir("/proc/self/fd"))
limit = open_now + 6
resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))
print("ready", limit, flush=True)
for line in sys.stdin:
    print("state", server.state, server.connections, flush=True)
server.stop()
"""


def test_the_listener_survives_running_out_of_file_handles(
        tmp_path: Path, short_dir: Path) -> None:
    sock = short_dir / "emfile.sock"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", _EMFILE_SCRIPT, str(tmp_path / "j.db"),
                             str(sock)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, text=True)
    assert proc.stdout is not None and proc.stdin is not None

    def state() -> str:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write("?\n")
        proc.stdin.flush()
        return proc.stdout.readline().strip()

    clients: list[RawClient] = []
    try:
        assert proc.stdout.readline().startswith("ready")
        for _ in range(20):  # far more than the handles the child has left
            clients.append(RawClient(sock))  # the backlog takes them; accept() hits EMFILE
        degraded = eventually("the server to say it is degraded", lambda: (
            s if "degraded" in (s := state()) else None))
        assert "out of file handles" in degraded and "EMFILE" in degraded
        # The connections it did accept still work.
        served = clients[:3]
        for c in clients[3:]:
            c.close()
        del clients[3:]
        answers = []
        for c in served:
            try:
                answers.append(c.hello().type)
            except (AssertionError, OSError):
                answers.append("gone")
        assert "hello" in answers
        for c in served:
            c.close()
        clients.clear()
        # Handles free again: the listener takes new connections and says so.
        fresh = RawClient(sock)
        assert fresh.hello().type == "hello"
        ack = fresh.ask(Message(type="event", body={"event": json.loads(event(2).to_json())}))
        assert ack.type == "ack"
        assert eventually("the state to be listening again", lambda: (
            s if (s := state()).startswith("state listening") else None))
        fresh.close()
        proc.stdin.close()
        assert proc.wait(WAIT_S) == 0
        assert proc.stderr is not None
        log = proc.stderr.read()
        # Logged once when it starts and once when it ends, not once per retry.
        episodes = log.count("local channel degraded")
        assert 1 <= episodes == log.count("accepts connections again") <= 5, log
    finally:
        for c in clients:
            c.close()
        if proc.poll() is None:
            proc.kill()
