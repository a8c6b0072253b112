"""Tests of the shipper and device key against the real collector on loopback (no mocks).

Covers acknowledged delivery, quarantine of refused events (4xx) without blocking the queue,
retries with backoff on 401 and while the collector is down, heartbeats, the background thread's
clean stop, TLS with a CA bundle, an HTTP proxy from the environment, key storage in a keyring or
the 0600 file fallback, and the `enroll`, `events status` commands.
"""

from __future__ import annotations

import gzip
import hashlib
import hmac
import http.client
import http.server
import importlib.metadata
import json
import logging
import os
import random
import socketserver
import ssl
import stat
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import httpx
import keyring
import pytest
import sqlalchemy as sa

from guard.collector.store import events as stored_table
from guard.delivery import protocol
from guard.delivery.enrolment import (
    STORE_FILE,
    STORE_KEYRING,
    DeviceCredentials,
    DeviceKeyError,
    DeviceKeyStore,
    enroll,
    keyring_user,
)
from guard.delivery.journal import Journal
from guard.delivery.shipper import (
    Shipper,
    ShipperSettings,
    backoff_delay,
)
from guard.events import EventType
from guard.model import Channel, Device, Event
from tests.support.keyrings import MemoryKeyring, PlaintextKeyring, active_keyring
from tests.support.servers import CollectorProcess, free_port, run_collector

REPO = Path(__file__).resolve().parents[3]
FAST = ShipperSettings(max_events=50, backoff_base_s=0.02, backoff_max_s=0.2, idle_poll_s=0.05,
                       timeout_s=5.0, heartbeat_s=3600)


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CollectorProcess]:
    db = tmp_path_factory.mktemp("collector") / "collector.db"
    with run_collector(f"sqlite:///{db}", extra_args=["--max-body", "200000"]) as proc:
        yield proc


@pytest.fixture
def memory_keyring() -> Iterator[MemoryKeyring]:
    with active_keyring(MemoryKeyring()) as backend:
        yield backend


class Terminal:
    """An enrolled PC: data directory, journal, credentials, device."""

    def __init__(self, tmp_path: Path, collector: CollectorProcess, **journal_kw: Any) -> None:
        self.data_dir = tmp_path / "pc"
        self.store = DeviceKeyStore(self.data_dir)
        result = enroll(str(collector), collector.enroll_token, hostname="teller-pc",
                        branch="0101", store=self.store)
        self.device = Device(id=result.device_id, hostname="teller-pc", branch="0101")
        creds = self.store.load()
        assert creds is not None
        self.creds = creds
        self.journal = Journal(self.data_dir / "journal.db", device=self.device,
                               **journal_kw)

    def event(self, i: int) -> Event:
        return Event(type="CLIPBOARD_COPY", device=self.device, channel=Channel.CLIPBOARD,
                     detail={"i": i})

    def shipper(self, **kw: Any) -> Shipper:
        kw.setdefault("settings", FAST)
        return Shipper(self.journal, self.store.load, device=self.device, agent_version="test",
                       **kw)


def _stored(collector_db: str, device_id: str) -> list[dict[str, Any]]:
    engine = sa.create_engine(collector_db)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.select(stored_table.c.body)
                                .where(stored_table.c.device_id == device_id)
                                .order_by(stored_table.c.time_us)).all()
    finally:
        engine.dispose()
    return [json.loads(r[0]) for r in rows]


def _db_of(collector: CollectorProcess) -> str:
    argv = collector._argv
    return argv[argv.index("--db") + 1]


# ----------------------------------------------------------------------------- pure parts


def test_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    key, body = os.urandom(32), b'{"events":[]}'
    expected = hmac.new(key, b"1700000000." + body, hashlib.sha256).hexdigest()
    assert protocol.sign(key, 1700000000, body) == expected
    assert protocol.verify(key, "1700000000", body, expected.upper())
    assert not protocol.verify(key, "1700000001", body, expected)


class _Recorder(http.server.BaseHTTPRequestHandler):
    """A collector stand-in that keeps each request and acknowledges every event."""

    seen: ClassVar[list[tuple[dict[str, str], bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        _Recorder.seen.append((dict(self.headers.items()), body))
        ids = [e["id"] for e in json.loads(gzip.decompress(body))["events"]]
        answer = json.dumps({"acked": ids, "duplicates": []}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_the_shipper_signs_batches_as_the_collector_verifies_them(tmp_path: Path) -> None:
    """What goes on the wire verifies with the collector's own `protocol.verify`."""
    server = socketserver.TCPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    key = os.urandom(32)
    device = Device(id="dev-sig", hostname="h")
    creds = DeviceCredentials(f"http://127.0.0.1:{server.server_address[1]}", "dev-sig", key)
    journal = Journal(tmp_path / "j.db", device=device)
    journal.record(Event(type="T", device=device, channel=Channel.SYSTEM))
    _Recorder.seen = []
    shipper = Shipper(journal, creds, device=device, settings=FAST)
    try:
        assert shipper.drain(10) and journal.pending_count() == 0
    finally:
        shipper.stop()
        server.shutdown()
        server.server_close()
    ((headers, body),) = _Recorder.seen
    assert headers[protocol.HEADER_DEVICE] == "dev-sig"
    # The batch carries the journal's chain head of its last event, signed with it
    # (docs/PROTOCOL.md: the signature is over timestamp "." chain "." body).
    [record] = journal.records()
    chain = headers[protocol.HEADER_CHAIN]
    assert chain == f"{record.seq}:{record.hash}" and len(record.hash) == 64
    stamp = headers[protocol.HEADER_TIMESTAMP]
    by_hand = hmac.new(key, f"{stamp}.{chain}.".encode() + body, hashlib.sha256).hexdigest()
    assert headers[protocol.HEADER_SIGNATURE] == by_hand
    assert protocol.verify(key, f"{stamp}.{chain}", body, headers[protocol.HEADER_SIGNATURE])
    # Without the chain, with another key, or with another chain head it does not verify.
    assert not protocol.verify(key, stamp, body, headers[protocol.HEADER_SIGNATURE])
    assert not protocol.verify(os.urandom(32), f"{stamp}.{chain}", body,
                               headers[protocol.HEADER_SIGNATURE])
    assert not protocol.verify_batch(key, stamp, body, headers[protocol.HEADER_SIGNATURE],
                                     f"{record.seq + 1}:{record.hash}")


@pytest.mark.parametrize(("failures", "low", "high"), [
    (1, 0.5, 1.0), (2, 1.0, 2.0), (3, 2.0, 4.0), (4, 4.0, 8.0), (10, 30.0, 60.0), (50, 30.0, 60.0),
])
def test_backoff_grows_exponentially_with_jitter_and_a_cap(failures: int, low: float,
                                                           high: float) -> None:
    rng = random.Random(7)
    delays = [backoff_delay(failures, 1.0, 60.0, rng) for _ in range(200)]
    assert all(low <= d <= high for d in delays)
    assert len({round(d, 6) for d in delays}) > 100  # jittered, not lockstep


# ----------------------------------------------------------------------------- delivery


def test_batches_are_signed_acknowledged_and_marked_shipped(tmp_path: Path,
                                                             collector: CollectorProcess) -> None:
    t = Terminal(tmp_path, collector)
    events = [t.event(i) for i in range(120)]
    for e in events:
        t.journal.record(e)
    shipper = t.shipper()
    assert shipper.drain(30)
    assert shipper.stats.batches >= 3  # 120 events in batches of at most 50
    assert t.journal.pending_count() == 0
    stored = _stored(_db_of(collector), t.device.id)
    assert [s["id"] for s in stored] == [str(e.id) for e in events]
    status = t.journal.status()
    assert status.shipped == 120 and status.last_ack is not None
    shipper.stop()


def test_a_refused_event_is_quarantined_and_the_queue_moves_on(
        tmp_path: Path, collector: CollectorProcess) -> None:
    t = Terminal(tmp_path, collector)
    good_before = [t.event(i) for i in range(10)]
    good_after = [t.event(100 + i) for i in range(10)]
    for e in good_before:
        t.journal.record(e)
    # An event the collector refuses with 422 (schema version 2 is unknown to it).
    bad = json.loads(t.event(50).to_json())
    bad["schema"] = 2
    t.journal.record_raw(bad["id"], json.dumps(bad))
    # And one signed by this device but claiming another device: 403.
    other = Event(type="CLIPBOARD_COPY", device=Device(id="someone-else", hostname="x"),
                  channel=Channel.CLIPBOARD)
    t.journal.record(other)
    for e in good_after:
        t.journal.record(e)
    shipper = t.shipper()
    assert shipper.drain(60)
    quarantined = t.journal.quarantined()
    assert {r.event_id for r, _ in quarantined} == {bad["id"], str(other.id)}
    reasons = sorted(reason[:3] for _, reason in quarantined)
    assert reasons == ["403", "422"]
    stored = _stored(_db_of(collector), t.device.id)
    stored_ids = [s["id"] for s in stored]
    # Every good event arrived (none was quarantined with the bad ones), in order.
    good_ids = [str(e.id) for e in good_before + good_after]
    assert [i for i in stored_ids if i in set(good_ids)] == good_ids
    notices = [s for s in stored if s["type"] == EventType.BATCH_QUARANTINED]
    assert len(notices) == 2
    assert {n["detail"]["status"] for n in notices} == {403, 422}
    assert t.journal.status().last_error is not None


def test_an_oversized_event_is_quarantined(tmp_path: Path, collector: CollectorProcess) -> None:
    t = Terminal(tmp_path, collector)
    big = json.loads(t.event(0).to_json())
    big["justification"] = "".join(random.Random(1).choice("abcdefgh") for _ in range(400_000))
    t.journal.record_raw(big["id"], json.dumps(big))
    t.journal.record(t.event(1))
    shipper = t.shipper()
    assert shipper.drain(30)
    [(record, reason)] = t.journal.quarantined()
    assert record.event_id == big["id"] and reason.startswith("413")
    assert t.journal.pending_count() == 0


def test_a_lost_acknowledgement_is_resent_and_counted_once(
        tmp_path: Path, collector: CollectorProcess) -> None:
    """The collector stored a batch but the shipper died before marking it: resend is harmless.

    A restarted shipper may even sign the identical batch in the same second (409 replay); it
    retries with a fresh timestamp and the collector answers with duplicates.
    """
    t = Terminal(tmp_path, collector)
    events = [t.event(i) for i in range(7)]
    for e in events:
        t.journal.record(e)
    first = t.shipper()
    assert first.ship_once().acked == 7
    # As if killed between the collector's answer and mark_shipped():
    import sqlite3

    sqlite3.connect(tmp_path / "pc" / "journal.db", isolation_level=None).execute(
        "UPDATE events SET state = 0")
    assert t.journal.pending_count() == 7
    second = t.shipper()  # a new process: it does not know the last timestamp used
    assert second.drain(15)
    assert second.stats.duplicates == 7
    assert t.journal.pending_count() == 0
    stored = [s["id"] for s in _stored(_db_of(collector), t.device.id)]
    assert stored == [str(e.id) for e in events]


def test_wrong_key_is_retried_not_quarantined(tmp_path: Path, collector: CollectorProcess) -> None:
    t = Terminal(tmp_path, collector)
    t.journal.record(t.event(0))
    wrong = DeviceCredentials(endpoint=t.creds.endpoint, device_id=t.creds.device_id,
                              key=os.urandom(32))
    shipper = Shipper(t.journal, wrong, device=t.device, settings=FAST)
    result = shipper.ship_once()
    assert result.status == 401 and result.retry
    assert t.journal.pending_count() == 1 and not t.journal.quarantined()
    assert "401" in (t.journal.status().last_error or "")
    # With the right key the same event goes through.
    assert t.shipper().drain(10)
    assert t.journal.pending_count() == 0


def test_collector_down_backs_off_then_delivers_when_it_returns(
        tmp_path: Path, request: pytest.FixtureRequest) -> None:
    db = f"sqlite:///{tmp_path / 'c.db'}"
    with run_collector(db) as coll:
        t = Terminal(tmp_path, coll)
        coll.stop()
        shipper = t.shipper()
        request.addfinalizer(shipper.stop)
        shipper.start()
        events = [t.event(i) for i in range(30)]
        for e in events:
            t.journal.record(e)
        deadline = time.monotonic() + 20
        while len(shipper.stats.delays) < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        delays = list(shipper.stats.delays)
        assert len(delays) >= 5
        # Exponential with equal jitter: each step's delay lies in [step/2, step].
        for n, d in enumerate(delays[:4], start=1):
            step = min(FAST.backoff_max_s, FAST.backoff_base_s * 2 ** (n - 1))
            assert step / 2 <= d <= step
        assert "unreachable" in (t.journal.status().last_error or "")
        assert t.journal.pending_count() == 31  # the 30 events and the start-up heartbeat
        coll.start()
        deadline = time.monotonic() + 30
        while t.journal.pending_count() and time.monotonic() < deadline:
            time.sleep(0.05)
        shipper.stop()
        assert not shipper.running
        assert t.journal.pending_count() == 0
        stored = _stored(db, t.device.id)
        hb = EventType.HEARTBEAT
        assert [s["id"] for s in stored if s["type"] != hb] == [str(e.id) for e in events]
        assert [s["type"] for s in stored].count(hb) == 1  # sent once, when it started


def test_heartbeat_carries_queue_depth_policy_and_watchers(
        tmp_path: Path, collector: CollectorProcess) -> None:
    t = Terminal(tmp_path, collector)
    for i in range(3):
        t.journal.record(t.event(i))
    shipper = t.shipper(policy_version=lambda: "policy-7",
                        watcher_states=lambda: {"clipboard": "running", "print": "unavailable"})
    shipper.record_heartbeat()
    assert shipper.drain(10)
    [hb] = [s for s in _stored(_db_of(collector), t.device.id) if s["type"] == EventType.HEARTBEAT]
    assert hb["detail"]["queue_depth"] == 3
    assert hb["detail"]["policy_version"] == "policy-7"
    assert hb["detail"]["watcher.clipboard"] == "running"
    assert hb["detail"]["watcher.print"] == "unavailable"
    assert hb["channel"] == "system"


def test_background_thread_heartbeats_on_schedule_and_stops_cleanly(
        tmp_path: Path, collector: CollectorProcess) -> None:
    t = Terminal(tmp_path, collector)
    settings = ShipperSettings(heartbeat_s=0.2, idle_poll_s=0.05, backoff_base_s=0.02)
    shipper = t.shipper(settings=settings)
    before = set(threading.enumerate())
    shipper.start()
    deadline = time.monotonic() + 20
    while shipper.stats.heartbeats < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    shipper.stop()
    assert not shipper.running
    assert shipper.stats.heartbeats >= 2
    assert not [th for th in threading.enumerate() if th not in before]


def test_not_enrolled_is_an_error_that_says_how_to_fix_it(tmp_path: Path) -> None:
    device = Device(id="never-enrolled", hostname="h")
    journal = Journal(tmp_path / "j.sqlite3", device=device)
    journal.record(Event(type="T", device=device, channel=Channel.SYSTEM))
    shipper = Shipper(journal, DeviceKeyStore(tmp_path).load, device=device, settings=FAST)
    result = shipper.ship_once()
    assert result.retry and "teller-guard enroll" in result.error
    assert journal.pending_count() == 1


# ----------------------------------------------------------------------------- TLS and proxy


def _make_ca_and_cert(root: Path) -> tuple[Path, Path, Path]:
    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=root)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
        "-days", "2", "-subj", "/CN=Test Bank Root CA", "-addext",
        "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
        "-subj", "/CN=127.0.0.1")
    (root / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf")
    return root / "ca.pem", root / "server.pem", root / "server.key"


@pytest.fixture
def tls_collector(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    ca, cert, key = _make_ca_and_cert(tmp_path)
    port = free_port()
    env = {**os.environ, "TELLER_GUARD_ENROLL_TOKEN": "tls-enroll-token-0123",
           "TELLER_GUARD_ADMIN_TOKEN": "tls-admin-token-01234"}
    log = open(tmp_path / "collector.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "guard.cli", "collector", "--db",
         f"sqlite:///{tmp_path / 'tls.db'}", "--listen", f"127.0.0.1:{port}",
         "--tls-cert", str(cert), "--tls-key", str(key)],
        stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO)
    url = f"https://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                ctx = ssl.create_default_context(cafile=str(ca))
                if httpx.get(url + "/api/v1/health", verify=ctx, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((tmp_path / "collector.log").read_text()[-2000:])
            time.sleep(0.1)
        yield url, ca
    finally:
        proc.terminate()
        proc.wait(15)
        log.close()


def test_tls_verifies_against_a_configured_ca_bundle(tmp_path: Path,
                                                    tls_collector: tuple[str, Path]) -> None:
    url, ca = tls_collector
    store = DeviceKeyStore(tmp_path / "pc")
    # Without the bank's CA the OS trust store does not know this certificate: refused.
    with pytest.raises(DeviceKeyError, match=r"CERTIFICATE_VERIFY_FAILED|certificate verify"):
        enroll(url, "tls-enroll-token-0123", hostname="h", store=store)
    result = enroll(url, "tls-enroll-token-0123", hostname="h", store=store, ca_bundle=str(ca))
    device = Device(id=result.device_id, hostname="h")
    journal = Journal(tmp_path / "j.sqlite3", device=device)
    journal.record(Event(type="T", device=device, channel=Channel.SYSTEM))
    untrusted = Shipper(journal, store.load, device=device, settings=FAST)
    failed = untrusted.ship_once()
    assert failed.retry and "CERTIFICATE_VERIFY_FAILED" in failed.error
    untrusted.stop()
    trusted = Shipper(journal, store.load, device=device,
                      settings=ShipperSettings(ca_bundle=str(ca), backoff_base_s=0.02))
    assert trusted.drain(10) and journal.pending_count() == 0
    trusted.stop()


class _ForwardProxy(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    seen: list[str]


class _ProxyHandler(http.server.BaseHTTPRequestHandler):
    """A plain HTTP forward proxy: takes absolute-URI requests and relays them."""

    server: _ForwardProxy

    def _relay(self) -> None:
        target = urllib.parse.urlsplit(self.path)
        self.server.seen.append(f"{self.command} {target.path}")
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        conn = http.client.HTTPConnection(target.hostname or "", target.port or 80, timeout=10)
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() not in ("proxy-connection", "connection", "keep-alive")}
        conn.request(self.command, target.path + (f"?{target.query}" if target.query else ""),
                     body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        conn.close()

    do_GET = _relay
    do_POST = _relay

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_http_proxy_from_the_environment_is_used(
        tmp_path: Path, collector: CollectorProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    t = Terminal(tmp_path, collector)
    proxy = _ForwardProxy(("127.0.0.1", 0), _ProxyHandler)
    proxy.seen = []
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        for var in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
            monkeypatch.delenv(var, raising=False)
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.server_address[1]}")
        t.journal.record(t.event(0))
        shipper = t.shipper()  # the client reads the environment when it is built
        assert shipper.drain(10)
        shipper.stop()
    finally:
        proxy.shutdown()
        proxy.server_close()
    assert "POST /api/v1/events" in proxy.seen
    assert t.journal.pending_count() == 0


# ----------------------------------------------------------------------------- key storage


def test_key_goes_to_the_os_keyring_when_there_is_one(
        tmp_path: Path, collector: CollectorProcess, memory_keyring: MemoryKeyring) -> None:
    store = DeviceKeyStore(tmp_path / "pc")
    result = enroll(str(collector), collector.enroll_token, hostname="h", store=store)
    assert result.key_store == STORE_KEYRING
    assert ("TellerGuard", keyring_user(result.device_id)) in memory_keyring.secrets
    assert not store.key_path.exists()
    saved = json.loads(store.enrollment_path.read_text())
    assert "key" not in saved and saved["key_store"] == STORE_KEYRING
    creds = store.load()
    assert creds is not None and len(creds.key) == 32 and creds.device_id == result.device_id
    assert "key=" not in repr(creds)


def test_headless_fallback_is_a_0600_file_with_a_clear_log_line(
        tmp_path: Path, collector: CollectorProcess, caplog: pytest.LogCaptureFixture) -> None:
    from keyring.backends import fail

    before = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    try:
        store = DeviceKeyStore(tmp_path / "pc")
        with caplog.at_level(logging.WARNING, logger="guard.delivery.enrolment"):
            result = enroll(str(collector), collector.enroll_token, hostname="h", store=store)
        creds = store.load()
    finally:
        keyring.set_keyring(before)
    assert result.key_store == STORE_FILE
    assert stat.S_IMODE(store.key_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.enrollment_path.stat().st_mode) == 0o600
    assert any("no usable OS keyring" in r.getMessage() and "0600" in r.getMessage()
               for r in caplog.records)
    assert creds is not None and len(creds.key) == 32


def test_the_plaintext_keyrings_alt_package_is_not_installed() -> None:
    with pytest.raises(importlib.metadata.PackageNotFoundError):
        importlib.metadata.distribution("keyrings.alt")  # it would store keys in plain text


def test_a_keyrings_alt_backend_is_refused_even_if_active(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    before = keyring.get_keyring()
    backend = PlaintextKeyring()
    keyring.set_keyring(backend)
    try:
        store = DeviceKeyStore(tmp_path)
        with caplog.at_level(logging.ERROR, logger="guard.delivery.enrolment"):
            where = store.save(DeviceCredentials("http://127.0.0.1:1", "dev-x", os.urandom(32)))
    finally:
        keyring.set_keyring(before)
    assert where == STORE_FILE and backend.secrets == {}
    assert any("refusing the plaintext keyring" in r.getMessage() for r in caplog.records)


def test_wrong_enrolment_token_says_so(tmp_path: Path, collector: CollectorProcess) -> None:
    with pytest.raises(DeviceKeyError, match=r"403.*enrolment token"):
        enroll(str(collector), "not-the-token", hostname="h", store=DeviceKeyStore(tmp_path))
    assert not (tmp_path / "enrollment.json").exists()


def test_missing_key_is_an_actionable_error(tmp_path: Path, collector: CollectorProcess) -> None:
    from keyring.backends import fail

    before = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    try:
        store = DeviceKeyStore(tmp_path)
        enroll(str(collector), collector.enroll_token, hostname="h", store=store)
    finally:
        keyring.set_keyring(before)
    store.key_path.unlink()
    with pytest.raises(DeviceKeyError, match="enrol again"):
        store.load()


# ----------------------------------------------------------------------------- commands


def _cli(data_dir: Path, *args: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TELLER_GUARD_DATA_DIR": str(data_dir)}
    if token is not None:  # the enrolment token comes from the environment, never argv
        env["TELLER_GUARD_ENROLL_TOKEN"] = token
    return subprocess.run([sys.executable, "-m", "guard.cli", *args], capture_output=True,
                          text=True, env=env, cwd=REPO, timeout=60)


def test_enroll_and_events_status_commands(tmp_path: Path, collector: CollectorProcess) -> None:
    data = tmp_path / "data"
    bad = _cli(data, "enroll", str(collector), token="wrong-token")
    assert bad.returncode == 1 and "403" in bad.stderr
    ok = _cli(data, "enroll", str(collector), "--branch", "0202", token=collector.enroll_token)
    assert ok.returncode == 0, ok.stderr
    assert "enrolled at" in ok.stdout
    store = DeviceKeyStore(data)
    creds = store.load()
    assert creds is not None
    assert creds.key.hex() not in ok.stdout + ok.stderr
    # The device id is the one this PC already uses in its events.
    device_id = json.loads((data / "device.json").read_text())["id"]
    assert creds.device_id == device_id

    device = Device(id=device_id, hostname="h", branch="0202")
    journal = Journal(data / "journal.db", device=device)
    for _ in range(4):
        journal.record(Event(type="T", device=device, channel=Channel.SYSTEM))
    before = _cli(data, "events", "status")
    assert before.returncode == 0
    assert "queue depth:  4" in before.stdout and "last ack:     never" in before.stdout
    shipper = Shipper(journal, store.load, device=device, settings=FAST)
    assert shipper.drain(10)
    after = json.loads(_cli(data, "events", "status", "--json").stdout)
    assert after["pending"] == 0 and after["shipped"] == 4 and after["last_ack"]
    assert after["enrolment"]["device_id"] == device_id
    verify = _cli(data, "journal", "verify")
    assert verify.returncode == 0 and "4 rows verified" in verify.stdout


def test_journal_verify_command_names_the_broken_row(tmp_path: Path) -> None:
    device = Device(id="d", hostname="h")
    journal = Journal(tmp_path / "journal.db", device=device)
    for _ in range(6):
        journal.record(Event(type="T", device=device, channel=Channel.SYSTEM))
    journal.close()
    import sqlite3

    sqlite3.connect(tmp_path / "journal.db", isolation_level=None).execute(
        "DELETE FROM events WHERE seq = 3")
    r = _cli(tmp_path, "journal", "verify")
    assert r.returncode == 1
    assert "BROKEN at row 3" in r.stdout and "missing" in r.stdout
