"""The machine service as a real process: agents hand events over its socket, it ships them.

`teller-guard service` runs as a subprocess with its own data directory and socket; a session
agent's side is `guard.ipc.client.LocalChannelClient` (or `guard.ipc.agent_side.agent_sink`); the
collector is the real `teller-guard collector` process (or the service's embedded one). Readiness
comes from the service's own systemd notification (NOTIFY_SOCKET), not from sleeping.
"""

from __future__ import annotations

import hmac
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from guard import identity
from guard.app.enrol_token import TOKEN_FILE_NAME
from guard.app.session import Agent
from guard.delivery.journal import Journal
from guard.ipc.agent_side import agent_sink
from guard.ipc.client import LocalChannelClient
from guard.ipc.messages import LocalChannelRefused
from guard.ipc.server import LocalChannelServer
from guard.ipc.status import STATUS_FILE, ServiceStatus, format_status, read_status
from guard.model import Channel, Device, Event, FindingSummary, Observation
from guard.pipeline.prompt import ScriptedPrompter
from guard.platforms._fake import FakePlatform
from guard.scan.engine import UnhashedFinding
from tests.support.servers import run_collector
from tests.support.waiting import eventually

REPO = Path(__file__).resolve().parents[3]
WAIT_S = 60.0  # generous bound for "eventually"; nothing here asserts on speed

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="Unix socket local channel")


def _login() -> str:
    return pwd.getpwuid(os.getuid()).pw_name


def _eventually(what: str, check: Callable[[], Any], timeout: float = WAIT_S) -> Any:
    return eventually(what, check, timeout, interval=0.1)


class ServiceProcess:
    """`teller-guard service` as a child process that can be stopped and started again."""

    def __init__(self, data_dir: Path, sock: Path, extra: list[str], log_path: Path) -> None:
        self.data_dir = data_dir
        self.sock = sock
        self.argv = [sys.executable, "-m", "guard.cli", "service", "--data-dir", str(data_dir),
                     "--socket", str(sock), *extra]
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self._notify_dir = Path(tempfile.mkdtemp(prefix="tg-notify-"))
        self._notify_path = self._notify_dir / "notify"
        self._notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._notify.bind(str(self._notify_path))
        self.notifications: list[str] = []

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if k not in ("TELLER_GUARD_DATA_DIR", "TELLER_GUARD_ENDPOINT",
                            "TELLER_GUARD_POLICY", "TELLER_GUARD_SOCKET",
                            "TELLER_GUARD_ENROLL_TOKEN")}
        env["NOTIFY_SOCKET"] = str(self._notify_path)
        env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def _wait_for(self, message: str) -> None:
        deadline = time.monotonic() + WAIT_S
        self._notify.settimeout(0.2)
        while message not in self.notifications:
            try:
                self.notifications.extend(self._notify.recv(4096).decode().splitlines())
                continue
            except TimeoutError:
                pass
            if self.proc is not None and self.proc.poll() is not None:
                pytest.fail(f"service exited with {self.proc.returncode} before {message}:\n"
                            f"{self.log()}")
            if time.monotonic() > deadline:
                pytest.fail(f"service never said {message}:\n{self.log()}")

    def start(self) -> None:
        self.notifications.clear()
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.argv, env=self._env(), cwd=REPO,
                                         stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        self._wait_for("READY=1")

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        code = self.proc.wait(WAIT_S)
        self._wait_for("STOPPING=1")
        self.proc = None
        return code

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return "(no log)"

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._notify.close()
        shutil.rmtree(self._notify_dir, ignore_errors=True)


@pytest.fixture
def service_factory(tmp_path: Path) -> Iterator[Callable[..., ServiceProcess]]:
    made: list[ServiceProcess] = []

    def make(data_dir: Path, sock: Path, *extra: str) -> ServiceProcess:
        svc = ServiceProcess(data_dir, sock, list(extra), tmp_path / f"service{len(made)}.log")
        made.append(svc)
        return svc

    yield make
    for svc in made:
        svc.close()


def _event(i: int) -> Event:
    # The agent knows the PC by another id (its own data directory): the service must stamp
    # its own identity, or the collector would refuse the events (403).
    return Event(type="CLIPBOARD_COPY", device=Device(id="agent-side-id", hostname="teller-pc"),
                 teller=_login(), channel=Channel.CLIPBOARD, detail={"i": i})


def _stored(base: str, admin_token: str, **filters: str) -> list[dict[str, Any]]:
    """Every stored event matching `filters`, in the collector's order (all pages)."""
    out: list[dict[str, Any]] = []
    offset: int | None = 0
    while offset is not None:
        r = httpx.get(f"{base}/api/v1/events", params={**filters, "limit": "1000",
                                                       "offset": str(offset)},
                      headers={"Authorization": f"Bearer {admin_token}"}, timeout=10.0)
        assert r.status_code == 200, r.text
        body = r.json()
        out.extend(body["events"])
        offset = body["next_offset"]
    return out


def _wait_stored(base: str, admin_token: str, ids: set[str],
                 **filters: str) -> list[dict[str, Any]]:
    """The stored events once every id in `ids` is among them."""
    def check() -> list[dict[str, Any]] | None:
        got = _stored(base, admin_token, **filters)
        return got if ids <= {e["id"] for e in got} else None

    result: list[dict[str, Any]] = _eventually(f"{len(ids)} events at {base}", check)
    return result


def _verify_cli(data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "guard.cli", "journal", "verify", "--path",
         str(data_dir / "journal.db")], capture_output=True, text=True, cwd=REPO, timeout=60)


def test_agent_events_reach_the_collector_across_a_service_restart(
        tmp_path: Path, short_dir: Path, service_factory: Callable[..., ServiceProcess]) -> None:
    data = tmp_path / "machine"
    sock = short_dir / "agent.sock"
    central = tmp_path / "central.toml"
    central.write_text('version = "central-test-7"\n', encoding="utf-8")
    with run_collector(f"sqlite:///{tmp_path / 'collector.db'}",
                       extra_args=["--policy", str(central)]) as collector:
        token_file = tmp_path / "enroll-token"
        token_file.write_text(collector.enroll_token, encoding="utf-8")
        svc = service_factory(data, sock, "--endpoint", str(collector),
                              "--enroll-token-file", str(token_file))
        svc.start()
        status = read_status(data)
        assert status is not None and status.running and status.socket == str(sock)
        # The central policy arrives, and its ETag is cached in the data directory.
        status = _eventually("the central policy", lambda: (
            s if (s := read_status(data)) and s.policy_version == "central-test-7" else None))
        etag = (data / "policy-central.etag").read_text().strip()
        assert etag and etag == status.policy_etag
        assert status.endpoint == str(collector) and not status.embedded and status.enrolled

        client = LocalChannelClient(sock, tmp_path / "agent-spool",
                                    device=Device(id="agent-side-id", hostname="teller-pc"),
                                    teller=_login())
        first = [_event(i) for i in range(20)]
        assert all(client.send(e) for e in first)  # each journaled by the service

        assert svc.stop(signal.SIGTERM) == 0
        assert not sock.exists()
        stopped = read_status(data)
        assert stopped is not None and stopped.state == "stopped" and not stopped.running
        assert stopped.agent_events == 20

        later = [_event(i) for i in range(20, 30)]
        assert not any(client.send(e) for e in later)  # nobody listens: the agent spools
        assert len(client.spooled()) == 10

        svc.start()
        assert client.flush() and client.spooled() == []
        restarted = _eventually("the 304 policy poll after the restart", lambda: (
            s if (s := read_status(data)) and s.policy_fetch == "unchanged" else None))
        # The collector goes away: the service keeps journaling and ships once it is back.
        collector.stop()
        outage = [_event(i) for i in range(30, 35)]
        assert all(client.send(e) for e in outage)
        _eventually("the service to notice the outage", lambda: (
            s if (s := read_status(data)) and s.collector_reachable is False else None))
        collector.start()
        client.close()
        # IT changes the central policy; SIGHUP makes the service ask now, not in 10 minutes.
        central.write_text('version = "central-test-8"\n', encoding="utf-8")
        assert svc.proc is not None
        svc.proc.send_signal(signal.SIGHUP)
        _eventually("the new central policy after SIGHUP", lambda: (
            s if (s := read_status(data)) and s.policy_version == "central-test-8" else None))
        device_id = status.device_id
        ids = [str(e.id) for e in first + later + outage]
        stored = _wait_stored(str(collector), collector.admin_token, set(ids),
                              device=device_id)
        assert svc.stop(signal.SIGINT) == 0

    stored_ids = [e["id"] for e in stored]
    assert len(stored_ids) == len(set(stored_ids)), "an event was stored twice"
    mine = [e for e in stored if e["type"] == "CLIPBOARD_COPY"]
    assert sorted(e["id"] for e in mine) == sorted(ids)
    assert {e["device"]["id"] for e in mine} == {device_id} != {"agent-side-id"}
    assert {e["teller"] for e in mine} == {_login()}
    assert sum(e["type"] == "SERVICE_STARTED" for e in stored) == 2
    assert any(e["type"] == "SERVICE_STOPPED" for e in stored)
    # The policy was kept from the cache over the restart (the collector answered 304).
    assert restarted.policy_version == "central-test-7" and restarted.policy_etag == etag
    assert (data / "policy-central.etag").read_text().strip() != etag  # the new one is cached
    assert "SIGHUP" in svc.log_path.read_text()

    with Journal(data / "journal.db", read_only=True) as journal:
        journaled = [r.event_id for r in journal.records()]
    assert [i for i in journaled if i in set(ids)] == ids  # in the order the agent sent them
    cli = _verify_cli(data)
    assert cli.returncode == 0, cli.stdout + cli.stderr
    assert "journal OK" in cli.stdout
    assert "service stopped" in svc.log_path.read_text()


def test_without_an_endpoint_the_embedded_collector_gets_the_events(
        tmp_path: Path, short_dir: Path, service_factory: Callable[..., ServiceProcess]) -> None:
    data = tmp_path / "machine"
    sock = short_dir / "agent.sock"
    svc = service_factory(data, sock)
    svc.start()
    status = _eventually("the embedded collector", lambda: (
        s if (s := read_status(data)) and s.embedded and s.enrolled else None))
    assert status.endpoint.startswith("http://127.0.0.1:")
    # A second service on the same data directory or socket refuses to start.
    for other_data, other_sock in ((data, short_dir / "other.sock"),
                                   (tmp_path / "other", sock)):
        second = _run_cli("--data-dir", str(other_data), "--socket", str(other_sock))
        assert second.returncode == 2, second.stderr
        assert "already" in second.stderr
    assert sock.exists()

    sink = agent_sink(tmp_path / "agent", socket_path=sock,
                      device=Device(id="agent-side-id", hostname="teller-pc"), teller=_login())
    assert sink is not None and sink.socket_path == sock
    # The agent's side has no way to ask for the machine's install key (issue 8 item 1).
    assert not hasattr(sink, "hash_key") and not hasattr(sink.client, "hash_key")
    published = sink.service_status()  # what the agent learns from the service's own status
    assert published is not None and published.running and published.embedded
    lines = format_status(published)
    assert any("embedded local collector" in line for line in lines)
    events = [_event(i) for i in range(5)]
    for e in events:
        sink.record(e)
    assert sink.delivered == 5 and sink.pending_count() == 0
    sink.close()

    tokens = json.loads((data / "collector" / "embedded-collector.json").read_text())
    ids = {str(e.id) for e in events}
    stored = _wait_stored(status.endpoint, tokens["admin_token"], ids, type="CLIPBOARD_COPY")
    assert len(stored) == 5
    assert {e["device"]["id"] for e in stored} == {status.device_id}
    assert svc.stop() == 0
    # The embedded collector stopped with the service.
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{status.endpoint}/api/v1/health", timeout=2.0)


class _NoClipboard:
    def set_text(self, text: str, *, replaces: str | None = None) -> None: ...
    def clear(self) -> None: ...
    def current(self) -> None:
        return None


class _NoLock:
    def show_lock(self) -> None: ...
    def hide_lock(self) -> None: ...


def test_an_agents_findings_are_hashed_by_the_service_with_a_key_the_agent_never_holds(
        tmp_path: Path, short_dir: Path, service_factory: Callable[..., ServiceProcess],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 8 item 1: beside the service the agent's scanner is key-less; the service hashes
    the values handed over with the event, and counts what it hashed in HASHES_COMPUTED."""
    data = tmp_path / "machine"
    sock = short_dir / "agent.sock"
    svc = service_factory(data, sock)
    svc.start()
    monkeypatch.setenv("TELLER_GUARD_SOCKET", str(sock))
    monkeypatch.delenv("TELLER_GUARD_HASH_KEY", raising=False)
    teller_dir = tmp_path / "teller"
    agent = Agent.create(prompter=ScriptedPrompter(), clipboard=_NoClipboard(), locker=_NoLock(),
                         data_dir=teller_dir, platform=FakePlatform())
    card, other = "6222021234567890128", "6217001234567890122"
    try:
        assert agent.service_sink is not None and agent.journal is None
        (finding,) = agent.pipeline.scan(f"卡号 {card}")
        assert isinstance(finding, UnhashedFinding) and finding.hash == ""
        assert not (teller_dir / "install.key").exists()  # the agent made no key of its own
        handled = agent.pipeline.handle(Observation(
            Channel.CLIPBOARD, "copy", text=f"卡号 {card} 卡号 {card} 卡号 {other}"))
        assert handled.event is not None
        (summary,) = handled.event.findings
        assert summary.count == 3 and len(summary.masked) == 2 and summary.hashes == []
    finally:
        agent.service_sink.close()
    assert not (teller_dir / "install.key").exists()
    assert svc.stop() == 0
    machine_key = identity.hash_key(data)
    journal = Journal(data / "journal.db")
    try:
        bodies = [json.loads(r.body) for r in journal.records()]
    finally:
        journal.close()
    (copy,) = [b for b in bodies if b["type"] == "CLIPBOARD_COPY"]
    assert copy["findings"][0]["hashes"] == [
        hmac.new(machine_key, v.encode(), "sha256").hexdigest() for v in (card, other)]
    (usage,) = [b for b in bodies if b["type"] == "HASHES_COMPUTED"]
    assert usage["detail"]["values"] == 2 and usage["detail"]["events"] == 1
    assert usage["detail"]["uid"] == os.getuid()
    written = b"".join(p.read_bytes() for p in data.rglob("*") if p.is_file())
    assert card.encode() not in written and other.encode() not in written  # never written


def test_a_service_without_a_key_journals_handed_over_values_without_hashes(
        tmp_path: Path, short_dir: Path) -> None:
    journal = Journal(tmp_path / "journal.db")
    server = LocalChannelServer(journal, short_dir / "nokey.sock")
    server.start()
    client = LocalChannelClient(short_dir / "nokey.sock", tmp_path / "spool",
                                device=Device(id="d", hostname="h"), teller=_login())
    event = _event(0).model_copy(update={"findings": [FindingSummary(
        type="CN_MOBILE", count=1, masked=["138****5678"])]})
    try:
        assert client.send(event, [["13812345678"]])
        assert client.send(_event(1))  # the connection still carries events afterwards
    finally:
        client.close()
        server.stop()
    bodies = [json.loads(r.body) for r in journal.records()]
    journal.close()
    assert [b["findings"][0]["hashes"] for b in bodies if b["findings"]] == [[]]


def test_agent_sink_falls_back_when_no_service_answers(tmp_path: Path, short_dir: Path) -> None:
    device = Device(id="pc", hostname="pc")
    assert agent_sink(tmp_path, socket_path=short_dir / "none.sock", device=device,
                      teller="t") is None
    # A socket file left behind by a dead service refuses connections.
    stale = short_dir / "stale.sock"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(stale))
    s.close()
    assert stale.exists()
    assert agent_sink(tmp_path, socket_path=stale, device=device, teller="t") is None
    plain = short_dir / "plain.sock"
    plain.write_text("not a socket")
    assert agent_sink(tmp_path, socket_path=plain, device=device, teller="t") is None
    # Looked up by data directory: nothing there either.
    assert agent_sink(short_dir, device=device, teller="t") is None


def test_only_allowed_users_may_hand_events_over(
        tmp_path: Path, short_dir: Path, service_factory: Callable[..., ServiceProcess]) -> None:
    data = tmp_path / "machine"
    sock = short_dir / "agent.sock"
    others = str(os.getuid() + 4242)  # any uid but this test's own
    svc = service_factory(data, sock, "--allow-uid", others, "--endpoint", "http://127.0.0.1:9")
    svc.start()
    client = LocalChannelClient(sock, tmp_path / "spool", device=Device(id="a", hostname="h"),
                                teller=_login())
    with pytest.raises(LocalChannelRefused, match="may not"):
        client.send(_event(1))
    client.close()
    refused = _eventually("the refusal and the missing enrolment in the status", lambda: (
        s if (s := read_status(data)) and s.agent_refused == 1 and s.problem else None))
    assert refused.agent_events == 0
    assert "not enrolled" in refused.problem and "teller-guard enroll" in refused.problem
    assert svc.stop() == 0
    with Journal(data / "journal.db", read_only=True) as journal:
        types = [Event.from_json(r.body).type for r in journal.records()]
    assert "CLIPBOARD_COPY" not in types
    assert types[0] == "SERVICE_STARTED" and types[-1] == "SERVICE_STOPPED"


def _run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELLER_GUARD_")}
    return subprocess.run([sys.executable, "-m", "guard.cli", "service", *args],
                          capture_output=True, text=True, cwd=REPO, timeout=60, env=env)


def test_a_service_that_cannot_start_says_why_and_exits_2(tmp_path: Path) -> None:
    bad_endpoint = _run_cli("--data-dir", str(tmp_path / "d1"), "--socket",
                            str(tmp_path / "s1.sock"), "--endpoint", "ftp://collector")
    assert bad_endpoint.returncode == 2
    assert "https://" in bad_endpoint.stderr
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    bad_socket = _run_cli("--data-dir", str(tmp_path / "d2"), "--socket",
                          str(blocker / "agent.sock"))
    assert bad_socket.returncode == 2
    assert "cannot listen on" in bad_socket.stderr
    data_file = tmp_path / "data-is-a-file"
    data_file.write_text("")
    bad_data = _run_cli("--data-dir", str(data_file), "--socket", str(tmp_path / "s3.sock"))
    assert bad_data.returncode == 2
    assert "data directory" in bad_data.stderr


def test_status_file_round_trips_and_knows_a_dead_process(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    status = ServiceStatus(state="running", pid=dead.pid, version="0", started_at="",
                           updated_at="", data_dir=str(tmp_path), socket="s", queue_depth=3)
    (tmp_path / STATUS_FILE).write_text(status.to_json())
    back = read_status(tmp_path)
    assert back == status
    assert not back.running  # says running, but the process is gone
    assert "ended without stopping" in format_status(back)[0]
    assert "not running" in format_status(None)[0]
    alive = ServiceStatus(state="running", pid=os.getpid(), version="0", started_at="",
                          updated_at="", data_dir=str(tmp_path), socket="s")
    assert alive.running
    (tmp_path / STATUS_FILE).write_text("{broken")
    assert read_status(tmp_path) is None


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_unit_runs_the_service_as_root_and_always_restarts(tmp_path: Path) -> None:
    unit = (REPO / "installer" / "teller-guard.service").read_text(encoding="utf-8")
    settings = dict(line.split("=", 1) for line in unit.splitlines()
                    if "=" in line and not line.startswith("#"))
    assert settings["User"] == "root"
    assert settings["Restart"] == "always"
    assert settings["Type"] == "notify"  # READY=1 comes from `teller-guard service` itself
    assert settings["ExecStart"].endswith(" service")
    assert settings["RuntimeDirectory"] == "teller-guard"  # /run/teller-guard/agent.sock
    # systemd's own checker, with ExecStart pointing at this checkout's entry point.
    entry = Path(sys.executable).parent / "teller-guard"
    local = tmp_path / "teller-guard.service"
    local.write_text(unit.replace(settings["ExecStart"], f"{entry} service"), encoding="utf-8")
    r = subprocess.run(["systemd-analyze", "verify", str(local)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Unknown key" not in r.stderr


def test_the_service_refuses_an_enrolment_token_on_its_command_line(tmp_path: Path) -> None:
    """Every user sees a process's arguments (ps): the token comes from a file or the
    environment only."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELLER_GUARD_")}
    run = subprocess.run([sys.executable, "-m", "guard.cli", "service", "--data-dir",
                          str(tmp_path / "data"), "--enroll-token", "fleet-token-0123456789"],
                         capture_output=True, text=True, cwd=REPO, timeout=60, env=env)
    assert run.returncode == 2
    assert "--enroll-token-file" in run.stderr and "fleet-token-0123456789" not in run.stderr


def test_the_installer_s_token_file_is_deleted_once_the_service_is_enrolled(
        tmp_path: Path, short_dir: Path, service_factory: Callable[..., ServiceProcess]) -> None:
    """The .deb leaves IT's token in <data dir>/enrol-token (0600); the service enrols with it
    and deletes it, as the Windows service deletes the MSI's registry value."""
    data = tmp_path / "machine"
    data.mkdir()
    token_file = data / TOKEN_FILE_NAME
    with run_collector(f"sqlite:///{tmp_path / 'collector.db'}") as collector:
        token_file.write_text(f"{collector.enroll_token}\n", encoding="utf-8")
        token_file.chmod(0o600)
        svc = service_factory(data, short_dir / "agent.sock", "--endpoint", str(collector))
        svc.start()
        _eventually("the token file to go", lambda: not token_file.exists())
        status = read_status(data)
        assert status is not None and status.enrolled and not status.embedded
        assert status.endpoint == str(collector)
        assert svc.stop() == 0
        assert collector.enroll_token not in svc.log()
        # enrolled for good: a restart without the token still ships as this device
        svc.start()
        again = _eventually("enrolled after the restart", lambda: (
            s if (s := read_status(data)) and s.running and s.enrolled else None))
        assert again.device_id == status.device_id and not token_file.exists()
        assert svc.stop() == 0


def test_the_token_file_stays_while_the_collector_cannot_be_reached(
        tmp_path: Path, short_dir: Path, service_factory: Callable[..., ServiceProcess]) -> None:
    from tests.support.servers import free_port

    data = tmp_path / "machine"
    data.mkdir()
    token_file = data / TOKEN_FILE_NAME
    token_file.write_text("tok-for-a-later-start\n", encoding="utf-8")
    token_file.chmod(0o600)
    svc = service_factory(data, short_dir / "agent.sock",
                          "--endpoint", f"http://127.0.0.1:{free_port()}")
    svc.start()
    _eventually("the failed enrolment", lambda: (
        s if (s := read_status(data)) and s.problem else None))
    assert svc.stop() == 0
    assert token_file.read_text(encoding="utf-8") == "tok-for-a-later-start\n"
    assert "tok-for-a-later-start" not in svc.log()
