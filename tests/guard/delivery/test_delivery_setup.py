"""`Delivery`, the one composition of journal, enrolment and shipper that the machine service and
single-process mode share: where events go, set-up retried against a real collector process that
comes up late, credentials re-read on re-enrolment, journal bounds and age from policy changes,
and the collector server imported only when the embedded collector is used."""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
from keyring.backends import fail

from guard.delivery.delivery import (
    CachedCredentials,
    Delivery,
    DeliveryError,
    DeliverySettings,
    endpoint_setting,
)
from guard.delivery.enrolment import DeviceCredentials, DeviceKeyStore
from guard.model import Channel, Device, Event
from guard.policy.store import PolicyStore
from tests.support.keyrings import active_keyring
from tests.support.servers import run_collector
from tests.support.xserver import wait_until

REPO = Path(__file__).resolve().parents[3]
DEVICE = Device(id="dev-delivery", hostname="teller-pc", branch="0101")
WAIT_S = 60.0  # a generous bound for "eventually"; nothing here asserts on speed


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("TELLER_GUARD_ENDPOINT", "TELLER_GUARD_POLICY", "TELLER_GUARD_SOCKET"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def file_keys() -> Iterator[None]:
    """Device keys in the 0600 file, whatever keyring an earlier test left active."""
    with active_keyring(fail.Keyring()):
        yield


def _store(tmp_path: Path, text: str = "") -> PolicyStore:
    policy = tmp_path / "policy.toml"
    policy.write_text(text, encoding="utf-8")
    store = PolicyStore(override_file=str(policy), cache_dir=tmp_path / "data")
    store.reload()
    return store


def _record(data: Path, **meta: str) -> None:
    data.mkdir(parents=True, exist_ok=True)
    (data / "enrollment.json").write_text(json.dumps({"device_id": "d1", **meta}))


def _delivery(tmp_path: Path, store: PolicyStore, **settings: Any) -> Delivery:
    return Delivery(DeliverySettings(data_dir=tmp_path / "data", **settings), device=DEVICE,
                    store=store, agent_version="test")


def test_endpoint_order_explicit_env_policy_token_enrolment_then_embedded(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "data"
    with_policy = _store(tmp_path, '[agent]\nendpoint = "https://policy.example"\n')
    chosen = []
    for explicit, env in (("https://explicit.example/", "https://env.example"),
                          (None, "https://env.example"), (None, None)):
        if env:
            monkeypatch.setenv("TELLER_GUARD_ENDPOINT", env)
        else:
            monkeypatch.delenv("TELLER_GUARD_ENDPOINT")
        d = _delivery(tmp_path, with_policy, endpoint=explicit)
        chosen.append(d.configured_endpoint)
        d.stop()
    assert chosen == ["https://explicit.example", "https://env.example", "https://policy.example"]

    plain = _store(tmp_path)  # no endpoint anywhere: the enrolment record decides
    cases = [
        ({"endpoint": "https://hq.example", "enrolled_by": "token"}, "https://hq.example"),
        ({"endpoint": "http://127.0.0.1:8470", "enrolled_by": "token"}, "http://127.0.0.1:8470"),
        ({"endpoint": "http://127.0.0.1:4711", "enrolled_by": "embedded"}, None),
        # written before records said who enrolled: loopback was the embedded collector's
        ({"endpoint": "http://127.0.0.1:4711"}, None),
        ({"endpoint": "https://hq.example"}, "https://hq.example"),
    ]
    for meta, expected in cases:
        _record(data, **meta)
        d = _delivery(tmp_path, plain)
        assert d.configured_endpoint == expected, meta
        d.stop()
    (data / "enrollment.json").write_text("{damaged")
    d = _delivery(tmp_path, plain)
    assert d.configured_endpoint is None  # the embedded collector enrols this PC again
    d.stop()


def test_a_bad_endpoint_is_refused_up_front_or_reported_while_journaling(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = _store(tmp_path)
    monkeypatch.setenv("TELLER_GUARD_ENDPOINT", "ftp://collector")
    with pytest.raises(DeliveryError, match="https://"):
        endpoint_setting(None, store.current())
    d = _delivery(tmp_path, store, tick_s=0.05)
    d.start()
    try:
        assert wait_until(lambda: "https://" in d.problem, WAIT_S)
        d.journal.record(Event(type="T", device=DEVICE, channel=Channel.SYSTEM))
        assert d.journal.pending_count() == 1 and d.shipper is None and d.embedded is None
        assert d.reachable() is False
    finally:
        d.stop()


def test_setup_is_retried_until_the_collector_answers(tmp_path: Path, file_keys: None) -> None:
    with run_collector(f"sqlite:///{tmp_path / 'c.db'}") as collector:
        collector.stop()  # IT's collector is down when the PC starts
        d = _delivery(tmp_path, _store(tmp_path), endpoint=collector.url,
                      enroll_token=collector.enroll_token, tick_s=0.05, setup_retry_s=0.2)
        d.start()
        try:
            early = Event(type="CLIPBOARD_COPY", device=DEVICE, channel=Channel.CLIPBOARD)
            d.journal.record(early)  # journaled from the first second
            assert wait_until(lambda: "cannot reach the collector" in d.problem, WAIT_S)
            assert d.reachable() is False and not d.enrolled and d.shipper is None
            collector.start()
            assert wait_until(lambda: (
                d.enrolled and d.journal.pending_count() == 0 and d.reachable()), WAIT_S)
            assert d.problem == "" and d.endpoint == collector.url and d.fetcher is not None
            resp = httpx.get(f"{collector.url}/api/v1/events", params={"type": "CLIPBOARD_COPY"},
                             headers={"Authorization": f"Bearer {collector.admin_token}"},
                             timeout=10)
            assert [e["id"] for e in resp.json()["events"]] == [str(early.id)]
        finally:
            d.stop()


def test_credentials_are_reread_when_the_enrolment_file_changes(tmp_path: Path,
                                                               file_keys: None) -> None:
    keys = DeviceKeyStore(tmp_path)
    loaded: list[DeviceCredentials] = []
    creds = CachedCredentials(keys, "https://shipping.example", loaded.append)
    assert creds() is None  # not enrolled yet
    first, second = os.urandom(32), os.urandom(32)
    keys.save(DeviceCredentials("https://enrolled.example", "dev-a", first))
    got = creds()
    assert got is not None and got.key == first and got.endpoint == "https://shipping.example"
    assert creds() is got and len(loaded) == 1  # cached: the key store is not read again
    keys.save(DeviceCredentials("https://enrolled.example", "dev-b", second))
    stamp = keys.enrollment_path.stat().st_mtime_ns
    os.utime(keys.enrollment_path, ns=(stamp + 1_000_000, stamp + 1_000_000))
    again = creds()
    assert again is not None and (again.key, again.device_id) == (second, "dev-b")
    assert [c.device_id for c in loaded] == ["dev-a", "dev-b"]
    keys.enrollment_path.unlink()
    assert creds() is None


def test_a_policy_change_applies_journal_bounds_and_age(tmp_path: Path) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text("[journal]\nmax_events = 5000\nmax_age_days = 90\n", encoding="utf-8")
    store = PolicyStore(override_file=str(policy), cache_dir=tmp_path / "data")
    store.reload()
    d = _delivery(tmp_path, store, endpoint="http://127.0.0.1:9", tick_s=0.05)
    try:
        assert (d.journal.max_rows, d.journal.max_age_days) == (5000, 90)
        old = Event(type="T", device=DEVICE, channel=Channel.SYSTEM,
                    time=datetime.now(UTC) - timedelta(days=45))
        pending = Event(type="T", device=DEVICE, channel=Channel.SYSTEM,
                        time=datetime.now(UTC) - timedelta(days=45))
        d.journal.record(old)
        d.journal.mark_shipped([r.seq for r in d.journal.next_batch(10, 1 << 20)])
        d.journal.record(pending)
        d.start()
        policy.write_text("[journal]\nmax_events = 1000\nmax_bytes = 2000000\n"
                          "max_age_days = 30\n", encoding="utf-8")
        store.reload()
        assert (d.journal.max_rows, d.journal.max_bytes, d.journal.max_age_days) == (
            1000, 2_000_000, 30)
        assert wait_until(lambda: str(old.id) not in {
            r.event_id for r in d.journal.records()}, WAIT_S)
        assert str(pending.id) in {r.event_id for r in d.journal.records()}
        assert d.journal.verify().ok
    finally:
        d.stop()


_IMPORTS = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from guard.app.session import Agent
    from guard.pipeline.prompt import ScriptedPrompter
    from guard.platforms._fake import FakePlatform
    from tests.support.fakes import FakeClipboard, FakeLocker, TableScanner

    agent = Agent.create(prompter=ScriptedPrompter(), clipboard=FakeClipboard(),
                         locker=FakeLocker(), data_dir=Path(sys.argv[1]),
                         platform=FakePlatform(), scanner=TableScanner())
    agent.start()
    deadline = time.monotonic() + 60
    while agent.delivery.shipper is None and time.monotonic() < deadline:
        time.sleep(0.05)
    loaded = sorted(m for m in sys.modules
                    if m.split(".")[0] in ("uvicorn", "starlette", "sqlalchemy")
                    or m.startswith("guard.collector"))
    print("shipping" if agent.delivery.shipper is not None else "not shipping")
    print(" ".join(loaded))
    agent.stop()
""")


@pytest.mark.parametrize("endpoint", ["http://127.0.0.1:9", None])
def test_the_tellers_process_imports_the_collector_only_for_the_embedded_one(
        tmp_path: Path, endpoint: str | None) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELLER_GUARD_")}
    env.update(PYTHONPATH=str(REPO), TELLER_GUARD_SOCKET=str(tmp_path / "no-service.sock"),
               PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring")
    if endpoint:
        env["TELLER_GUARD_ENDPOINT"] = endpoint
    run = subprocess.run([sys.executable, "-c", _IMPORTS, str(tmp_path / "data")], env=env,
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    state, _, loaded = run.stdout.partition("\n")
    assert state == "shipping", run.stderr
    if endpoint:
        assert loaded.strip() == ""  # not the collector, nor its web server or database
    else:
        assert "guard.collector.embedded" in loaded.split()


def test_plain_http_is_refused_except_to_this_pc(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 8 item 6: events, keys and the enrolment token never cross the network in clear."""
    store = _store(tmp_path)
    for url in ("http://collector.branch.example:8470", "http://10.1.2.3", "https://",
                "http://127.0.0.1.evil.example"):
        monkeypatch.setenv("TELLER_GUARD_ENDPOINT", url)
        with pytest.raises(DeliveryError, match="http:// only for a collector on this PC"):
            endpoint_setting(None, store.machine_policy())
    for url in ("http://127.0.0.1:8470", "http://localhost:1", "http://[::1]:8470",
                "https://collector.branch.example"):
        monkeypatch.setenv("TELLER_GUARD_ENDPOINT", url)
        assert endpoint_setting(None, store.machine_policy()) == url
    # The service refuses to start with it, saying why.
    sock = Path(tempfile.mkdtemp(prefix="tg-ep-")) / "s.sock"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("TELLER_GUARD_ENDPOINT", None)
    run = subprocess.run([sys.executable, "-m", "guard.cli", "service", "--data-dir",
                          str(tmp_path / "svc"), "--socket", str(sock), "--endpoint",
                          "http://10.1.2.3:8470"], capture_output=True, text=True, env=env,
                         timeout=120, check=False)
    assert run.returncode == 2, run.stderr
    assert "http:// only for a collector on this PC" in run.stderr


class _Recorder(http.server.BaseHTTPRequestHandler):
    """An attacker's collector: records every request (path and body)."""

    seen: ClassVar[list[tuple[str, bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.seen.append((self.path, body))
        self.send_response(500)
        self.end_headers()

    do_GET = do_POST

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_the_central_policy_cannot_move_the_endpoint_nor_get_the_enrolment_token(
        tmp_path: Path, file_keys: None) -> None:
    """Issue 8 item 6, as the attack went: the central layer (here its cache on disk, as the
    collector sent it) names another collector; the service with IT's enrolment token must not
    send the token there. Before the fix the token went to the attacker's server."""
    evil = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=evil.serve_forever, daemon=True).start()
    evil_url = f"http://127.0.0.1:{evil.server_address[1]}"
    data = tmp_path / "data"
    data.mkdir()
    (data / "policy-central.toml").write_text(f'[agent]\nendpoint = "{evil_url}"\n')
    store = _store(tmp_path)
    assert store.current().agent.endpoint == evil_url  # the central layer is in force …
    assert store.machine_policy().agent.endpoint == ""  # … but not in the machine's view
    token = "enrol-" + "x" * 32
    d = _delivery(tmp_path, store, enroll_token=token, tick_s=0.05)
    d.start()
    try:
        assert d.configured_endpoint is None
        # No endpoint of the machine's: the embedded collector's turn (none in this process).
        assert wait_until(lambda: "no collector endpoint" in d.problem, WAIT_S), d.problem
    finally:
        d.stop()
        evil.shutdown()
        evil.server_close()
    assert not any(token.encode() in body for _, body in _Recorder.seen)
    assert _Recorder.seen == []
