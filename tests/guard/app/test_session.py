"""The single-process Agent: the real scanner, journal, shipper and embedded collector end to end;
status, lock/unlock, PIN setup, the IT credential and a rejected policy."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from guard.app.session import Agent, AgentStatus
from guard.credentials import hash_secret
from guard.model import Outcome
from guard.pipeline.pipeline import MemorySink
from guard.pipeline.prompt import ScriptedPrompter
from guard.platforms._fake import FakePlatform
from tests.support.fakes import FakeClipboard, FakeLocker, TableScanner
from tests.support.xserver import wait_until

CARD = "6222021234560121"  # Luhn-valid, a known Chinese BIN
RID = "11010519491231002X"
TEXT = f"客户卡号 {CARD}，身份证 {RID}。"


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "data"
    monkeypatch.setenv("TELLER_GUARD_DATA_DIR", str(d))
    monkeypatch.delenv("TELLER_GUARD_ENDPOINT", raising=False)
    monkeypatch.delenv("TELLER_GUARD_POLICY", raising=False)
    return d


def write_policy(tmp_path: Path, text: str) -> str:
    path = tmp_path / "policy.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_single_process_end_to_end(tmp_path: Path, data_dir: Path) -> None:
    """Copy → real scanner → redaction → journal → shipper → embedded collector."""
    port, locker = FakeClipboard(), FakeLocker()
    agent = Agent.create(prompter=ScriptedPrompter(), clipboard=port, locker=locker,
                         policy_file=write_policy(tmp_path, '[clipboard]\naction = "redact"\n'),
                         data_dir=data_dir, platform=FakePlatform(owner="notepad"))
    port.listener = agent.on_clipboard_changed
    agent.start()
    try:
        agent.on_clipboard_changed(port.copy(TEXT))
        assert wait_until(lambda: port.sets != [])
        assert port.sets == ["客户卡号 622202******0121，身份证 110***********002X。"]
        delivery = agent.delivery
        assert delivery is not None
        assert wait_until(lambda: delivery.embedded is not None and delivery.shipper is not None,
                          30)
        assert wait_until(lambda: agent.status().queue_depth == 0
                          and agent.status().collector_reachable is True, 60)
        status = agent.status()
        assert status.state == "protected", status
        assert status.watchers == {"clipboard": "running", "idle": "running",
                                   "remote_control": "running", "screenshot_files": "running",
                                   "sweep": "running"}
        assert status.last_event.startswith(("CLIPBOARD_COPY", "HEARTBEAT", "POLICY"))
        resp = httpx.get(f"{delivery.embedded.url}/api/v1/events",
                         headers={"Authorization": f"Bearer {delivery.embedded.admin_token}"},
                         params={"type": "CLIPBOARD_COPY"}, timeout=10)
        assert resp.status_code == 200
        (event,) = resp.json()["events"]
        assert event["outcome"] == "redacted" and event["source_app"] == "notepad"
        assert {f["type"] for f in event["findings"]} == {"BANK_CARD", "CN_RESIDENT_ID"}
        assert CARD not in json.dumps(resp.json()) and RID not in json.dumps(resp.json())
    finally:
        agent.stop()
    assert not agent.started


@pytest.fixture
def light_agent(tmp_path: Path, data_dir: Path) -> Iterator[tuple[Agent, MemorySink, FakeLocker]]:
    secret = hash_secret("it-secret-2026")
    policy = write_policy(tmp_path, f'version = "t-1"\n[idle]\nunlock = "pin"\n'
                                    f'[agent]\nit_credential_hash = "{secret}"\n')
    sink, locker = MemorySink(), FakeLocker()
    agent = Agent.create(prompter=ScriptedPrompter(), clipboard=FakeClipboard(), locker=locker,
                         policy_file=policy, data_dir=data_dir, sink=sink,
                         platform=FakePlatform(lock_works=False), scanner=TableScanner())
    agent.start()
    yield agent, sink, locker
    agent.stop()


def test_status_lock_pin_and_unlock(light_agent) -> None:  # type: ignore[no-untyped-def]
    agent, sink, locker = light_agent
    seen: list[AgentStatus] = []
    agent.subscribe(seen.append)
    status = agent.status()
    assert (status.state, status.policy_version, status.locked) == ("protected", "t-1", False)
    assert status.collector_reachable is None  # nothing shipped with an in-memory sink
    assert agent.needs_pin_setup()
    agent.set_pin("864209")
    assert not agent.needs_pin_setup()
    agent.lock_now("hotkey")
    assert wait_until(lambda: locker.visible)
    assert wait_until(lambda: any(s.locked for s in seen))
    assert agent.unlock("000000").message_key == "wrong_credential" and locker.visible
    result = agent.unlock("864209")
    assert result.ok and not locker.visible and not agent.status().locked
    types = [e.type for e in sink.events]
    assert types[:2] == ["AGENT_STARTED", "PIN_SET"]
    assert types[-3:] == ["IDLE_LOCK", "IDLE_UNLOCK_FAILED", "IDLE_UNLOCK"]
    assert sink.events[-3].detail["reason"] == "hotkey"


def test_it_credential_for_quitting(light_agent) -> None:  # type: ignore[no-untyped-def]
    agent, sink, _ = light_agent
    assert not agent.verify_it_credential("guess")
    assert agent.verify_it_credential("it-secret-2026")
    checks = [e.outcome for e in sink.events if e.type == "IT_CREDENTIAL_CHECK"]
    assert checks == [Outcome.FAILED, Outcome.ALLOWED]
    assert all("it-secret" not in e.to_json() for e in sink.events)


def test_no_it_credential_means_nobody_quits(tmp_path: Path, data_dir: Path) -> None:
    agent = Agent.create(prompter=ScriptedPrompter(), clipboard=FakeClipboard(),
                         locker=FakeLocker(), policy_file=write_policy(tmp_path, ""),
                         data_dir=data_dir, sink=MemorySink(), platform=FakePlatform(),
                         scanner=TableScanner())
    assert not agent.verify_it_credential("")
    assert not agent.verify_it_credential("anything")


def test_rejected_policy_is_an_event_and_an_alert(tmp_path: Path, data_dir: Path) -> None:
    policy = write_policy(tmp_path, '[clipboard]\naction = "shout"\n')
    sink = MemorySink()
    agent = Agent.create(prompter=ScriptedPrompter(), clipboard=FakeClipboard(),
                         locker=FakeLocker(), policy_file=policy, data_dir=data_dir, sink=sink,
                         platform=FakePlatform(), scanner=TableScanner())
    agent.start()
    try:
        check_rejection(agent, sink, policy, tmp_path)
    finally:
        agent.stop()


def check_rejection(agent: Agent, sink: MemorySink, policy: str, tmp_path: Path) -> None:
    (rejected,) = [e for e in sink.events if e.type == "POLICY_REJECTED"]
    assert rejected.detail["source"] == policy
    assert str(rejected.detail["reason"]).startswith("clipboard.action: Input should be")
    assert agent.status().state == "alert"
    assert agent.store.current().clipboard.action == "notify"  # the default stays in force
    write_policy(tmp_path, '[clipboard]\naction = "redact"\n')
    agent.store.reload()
    assert agent.store.current().clipboard.action == "redact"
    assert agent.status().state == "protected"
    assert "POLICY_APPLIED" in [e.type for e in sink.events]


def test_missing_desktop_makes_the_agent_degraded(tmp_path: Path, data_dir: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELLER_GUARD_PLATFORM", "linux")
    monkeypatch.delenv("DISPLAY", raising=False)
    agent = Agent.create(prompter=ScriptedPrompter(), clipboard=FakeClipboard(),
                         locker=FakeLocker(), policy_file=write_policy(tmp_path, ""),
                         data_dir=data_dir, sink=MemorySink(), scanner=TableScanner())
    agent.start()
    try:
        assert wait_until(lambda: agent.status().watchers["idle"].startswith("unavailable"))
        status = agent.status()
        assert status.state == "degraded"
        assert status.watchers["idle"] == ("unavailable: DISPLAY is not set: the agent needs an "
                                           "X11 session")
    finally:
        agent.stop()


def test_central_endpoint_policy_and_shipping(tmp_path: Path, data_dir: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """A configured collector: its policy becomes the central layer, events are shipped to it."""
    import socket

    from guard.collector.app import Settings, create_app
    from guard.collector.serve import BackgroundServer, config
    from guard.delivery.enrolment import DeviceKeyStore, enroll
    from guard.identity import device

    central = tmp_path / "central.toml"
    central.write_text('version = "hq-7"\n[clipboard]\naction = "block"\n', encoding="utf-8")
    app = create_app(Settings(db_url=f"sqlite:///{tmp_path / 'c.db'}", enroll_token="enrol",
                              admin_token="admin", policy_file=central))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = BackgroundServer(config(app, "127.0.0.1", sock.getsockname()[1],
                                     log_level="warning"), sock)
    server.start()
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        pc = device()
        enroll(url, "enrol", hostname=pc.hostname, branch=pc.branch, device_id=pc.id,
               store=DeviceKeyStore(data_dir))
        monkeypatch.setenv("TELLER_GUARD_ENDPOINT", url)
        port = FakeClipboard()
        agent = Agent.create(prompter=ScriptedPrompter(), clipboard=port, locker=FakeLocker(),
                             policy_file=write_policy(tmp_path, 'version = "file"\n'),
                             data_dir=data_dir, platform=FakePlatform())
        agent.start()
        try:
            assert wait_until(lambda: agent.status().policy_version == "hq-7", 30)
            assert agent.delivery is not None
            assert agent.delivery.embedded is None and agent.delivery.fetcher is not None
            agent.on_clipboard_changed(port.copy(TEXT))
            assert wait_until(lambda: port.clears == 1)
            assert wait_until(lambda: agent.status().queue_depth == 0
                              and agent.status().collector_reachable is True, 60)
            resp = httpx.get(f"{url}/api/v1/events", params={"type": "CLIPBOARD_COPY"},
                             headers={"Authorization": "Bearer admin"}, timeout=10)
            (event,) = resp.json()["events"]
            assert event["outcome"] == "blocked" and event["policy_version"] == "hq-7"
        finally:
            agent.stop()
    finally:
        server.stop()
