"""Attacks from issue 8 against the real collector process on loopback, each refused.

Every test here performs the attack as an outsider or a hostile enrolled device would and fails
on the collector before the fix (numbers are the issue's items).
"""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from guard.model import Channel, FindingSummary
from tests.support.servers import CollectorProcess, run_collector

from ._helpers import Terminal, admin_get, policy_get, sign_in, stored_ids

RAW_ID = "11010519491231002X"  # a valid resident ID (GB 11643 check character)
RAW_CARD = "6222021234567890128"


def _refused_422(r: httpx.Response, words: str) -> None:
    assert r.status_code == 422, r.text
    assert words in r.json()["error"]
    assert RAW_ID not in r.text and RAW_CARD not in r.text  # never echoed


# -- 2: raw customer data in any field --------------------------------------------------------

@pytest.mark.parametrize("change", [
    {"justification": f"客户身份证{RAW_ID}"},
    {"source_app": f"卡号{RAW_CARD}"},
    {"teller": RAW_ID},
    {"detail": {"file": f"/media/usb/{RAW_ID}.xlsx"}},
    {"detail": {"n": int(RAW_CARD)}},
    {"findings": [{"type": "CN_RESIDENT_ID", "count": 1, "masked": [RAW_ID],
                   "hashes": ["ab" * 16]}]},
    {"findings": [{"type": "BANK_CARD", "count": 1, "masked": ["622202*********0128"],
                   "hashes": [RAW_CARD]}]},
    {"findings": [{"type": "CN_MOBILE", "count": 1, "masked": ["13812345678"],
                   "hashes": ["ab" * 16]}]},
    {"findings": [{"type": "EMAIL", "count": 1, "masked": ["zhang.wei@example.com"],
                   "hashes": ["ab" * 16]}]},
])
def test_unmasked_identifiers_are_refused_and_counted(
    collector: CollectorProcess, db_url: str, change: dict[str, object]
) -> None:
    t = Terminal(collector, collector.enroll_token, "dev-leak")
    event = dict(json.loads(t.finding_event().to_json()), **change)
    r = t.post(json.dumps({"events": [event]}).encode())
    _refused_422(r, "events[0]")
    assert stored_ids(db_url) == []
    page = admin_get(collector, collector.admin_token, "/")
    assert 'class="refused">1<' in page.text  # the dashboard counts what it refused


def test_hostname_with_an_id_is_refused(collector: CollectorProcess) -> None:
    r = httpx.post(f"{collector}/api/v1/enroll", json={
        "token": collector.enroll_token, "device_id": "dev-host", "hostname": f"柜台{RAW_ID}"})
    _refused_422(r, "hostname")
    t = Terminal(collector, collector.enroll_token, "dev-host")
    t.device = t.device.model_copy(update={"hostname": f"柜台 {RAW_ID}"})
    _refused_422(t.send([t.event()]), "device.hostname")


def test_properly_masked_findings_are_accepted(collector: CollectorProcess) -> None:
    t = Terminal(collector, collector.enroll_token, "dev-masked")
    ev = t.finding_event(findings=[
        FindingSummary(type="CN_RESIDENT_ID", count=1, masked=["110***********002X"],
                       hashes=["a1" * 32]),
        FindingSummary(type="BANK_CARD", count=1, masked=["622202*********0128"],
                       hashes=["b2" * 32]),
        FindingSummary(type="CN_MOBILE", count=1, masked=["138****5678"], hashes=["c3" * 32]),
        FindingSummary(type="EMAIL", count=1, masked=["z***@example.com"], hashes=["d4" * 32]),
        FindingSummary(type="CN_PASSPORT", count=1, masked=["*****5678"], hashes=["e5" * 32]),
    ], teller="zhang.wei@bank.example", justification="客户本人要求打印开户资料")
    r = t.send([ev])
    assert r.status_code == 200, r.text


# -- 14: finding types, times, cookies, per-device ids ------------------------------------------

def test_unknown_finding_type_is_refused(collector: CollectorProcess) -> None:
    t = Terminal(collector, collector.enroll_token, "dev-type")
    ev = t.finding_event(findings=[FindingSummary(type="ANYTHING", count=1)])
    _refused_422(t.send([ev]), "unknown finding type")


@pytest.mark.parametrize("when", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59Z",
                                  "2019-12-31T23:59:59Z"])
def test_event_times_out_of_range_are_422(collector: CollectorProcess, db_url: str,
                                          when: str) -> None:
    t = Terminal(collector, collector.enroll_token, "dev-time")
    event = dict(json.loads(t.event().to_json()), time=when)
    _refused_422(t.post(json.dumps({"events": [event]}).encode()), "events[0].time")
    assert stored_ids(db_url) == []


def test_a_day_ahead_is_refused_but_a_little_skew_is_not(collector: CollectorProcess) -> None:
    t = Terminal(collector, collector.enroll_token, "dev-skew")
    now = datetime.now(UTC)
    assert t.send([t.event(time=now + timedelta(hours=2))]).status_code == 200
    _refused_422(t.send([t.event(time=now + timedelta(days=2))]), "time")


def test_dashboard_survives_far_times_east_of_utc(tmp_path: Path) -> None:
    with run_collector(f"sqlite:///{tmp_path / 'c.db'}", env={"TZ": "Asia/Kolkata"}) as c:
        t = Terminal(c, c.enroll_token, "dev-9999")
        event = dict(json.loads(t.finding_event(outcome="justified").to_json()),
                     time="9999-12-31T23:59:59Z")
        assert t.post(json.dumps({"events": [event]}).encode()).status_code == 422
        page = admin_get(c, c.admin_token, "/")
        assert page.status_code == 200, page.text


def test_forged_heartbeat_from_the_future_cannot_hide_a_pc(collector: CollectorProcess) -> None:
    t = Terminal(collector, collector.enroll_token, "dev-hide", hostname="pc-hidden")
    # within the accepted skew, a heartbeat dated ahead is still stored by receipt time
    beat = t.event(type="HEARTBEAT", channel=Channel.SYSTEM,
                   time=datetime.now(UTC) + timedelta(hours=20))
    assert t.send([beat]).status_code == 200
    dev = admin_get(collector, collector.admin_token, "/api/v1/devices").json()["devices"][0]
    received = datetime.fromisoformat(dev["last_heartbeat"])
    assert received <= datetime.now(UTC)  # the collector's clock, not the device's
    assert datetime.fromisoformat(dev["last_heartbeat_device"]) == beat.time


def test_silent_terminals_use_receipt_time(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'c.db'}"
    with run_collector(db, extra_args=["--heartbeat-window", "1"]) as c:
        t = Terminal(c, c.enroll_token, "dev-silent", hostname="pc-silent-one")
        beat = t.event(type="HEARTBEAT", channel=Channel.SYSTEM,
                       time=datetime.now(UTC) + timedelta(hours=23))
        assert t.send([beat]).status_code == 200
        deadline = time.monotonic() + 30
        while True:  # one second after its receipt the PC is silent, whatever the date it gave
            page = admin_get(c, c.admin_token, "/").text
            silent = page[page.index("<h2>失联终端"):page.index("<h2>最新确认与说明")]
            if "pc-silent-one" in silent or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert "pc-silent-one" in silent


# raw header bytes, read as Latin-1: b"\xb2\xb3" is "²³", which isdigit() takes, int() refuses
@pytest.mark.parametrize("cookie", [b"\xb2\xb3.abc", b"9999999999\xb9.x", b"\xb9", b"\xff\xfe",
                                    "١٢٣.x".encode()])
def test_odd_session_cookies_are_401_not_500(collector: CollectorProcess, cookie: bytes) -> None:
    r = httpx.get(f"{collector}/", headers=[(b"Cookie", b"tg_admin=" + cookie)])
    assert r.status_code == 401


def test_event_ids_are_per_device(collector: CollectorProcess, db_url: str) -> None:
    a = Terminal(collector, collector.enroll_token, "dev-a")
    b = Terminal(collector, collector.enroll_token, "dev-b")
    ev_b = b.event()
    # A learns (or guesses) B's next event id and sends it first under its own name
    squat = a.event().model_copy(update={"id": ev_b.id})
    assert a.send([squat]).status_code == 200
    r = b.send([ev_b])
    assert r.status_code == 200 and r.json()["duplicates"] == []
    got = admin_get(collector, collector.admin_token, "/api/v1/events", device="dev-b").json()
    assert [e["id"] for e in got["events"]] == [str(ev_b.id)]


def test_policy_needs_a_device_signature(collector: CollectorProcess) -> None:
    t = Terminal(collector, collector.enroll_token, "dev-pol")
    assert httpx.get(f"{collector}/api/v1/policy").status_code == 401
    forged = httpx.get(f"{collector}/api/v1/policy", headers={"X-TG-Device": "dev-pol"})
    assert forged.status_code == 401
    assert policy_get(collector, t, key=b"\0" * 32).status_code == 401
    assert policy_get(collector, t).status_code == 200


def test_policy_fetcher_signs_and_reports_unauthorised(collector: CollectorProcess,
                                                       tmp_path: Path) -> None:
    from guard.delivery.enrolment import DeviceCredentials
    from guard.policy.fetch import CentralPolicyFetcher
    from guard.policy.store import PolicyStore

    t = Terminal(collector, collector.enroll_token, "dev-fetch")
    store = PolicyStore(override_file=None, cache_dir=tmp_path / "agent", use_machine=False)
    store.reload()
    assert CentralPolicyFetcher(store, collector.url, "dev-fetch").fetch_once() == "unauthorised"
    creds = DeviceCredentials(endpoint=collector.url, device_id="dev-fetch", key=t.key)
    fetcher = CentralPolicyFetcher(store, collector.url, "dev-fetch", credentials=creds)
    assert fetcher.fetch_once() == "updated"
    assert CentralPolicyFetcher(store, collector.url, credentials=lambda: creds
                                ).fetch_once() == "unchanged"


def test_security_headers_on_every_answer(collector: CollectorProcess) -> None:
    for r in (httpx.get(f"{collector}/api/v1/health"), httpx.get(f"{collector}/"),
              httpx.get(f"{collector}/nothing")):
        assert r.headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
        assert "strict-transport-security" not in r.headers  # plain http: no HSTS


def test_uvicorn_errors_are_json(collector: CollectorProcess) -> None:
    with socket.create_connection(("127.0.0.1", collector.port), timeout=10) as s:
        s.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        answer = b""
        while chunk := s.recv(4096):  # the collector closes after its answer
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b" 400 " in head.split(b"\r\n")[0]
    assert b"application/json" in head
    assert "error" in json.loads(body)


def test_tls_cert_without_key_is_a_clear_error(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "guard.cli", "collector", "--db", f"sqlite:///{tmp_path}/c.db",
         "--tls-cert", str(tmp_path / "cert.pem")],
        capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "TELLER_GUARD_ENROLL_TOKEN": "enrol-token-0123456789",
             "TELLER_GUARD_ADMIN_TOKEN": "admin-token-0123456789"},
    )
    assert done.returncode == 2
    assert "--tls-cert needs --tls-key" in done.stderr
    assert "Traceback" not in done.stderr


# -- 9: file modes and device keys at rest ------------------------------------------------------

def test_database_files_are_private_and_keys_encrypted(tmp_path: Path) -> None:
    db_file = tmp_path / "data" / "c.db"
    db = f"sqlite:///{db_file}"
    old = os.umask(0o022)
    try:
        with run_collector(db) as c:
            t = Terminal(c, c.enroll_token, "dev-key")
            assert t.send([t.event()]).status_code == 200
            for f in (db_file, Path(f"{db_file}-wal"), Path(f"{db_file}-shm")):
                assert stat.S_IMODE(f.stat().st_mode) == 0o600, f
            assert stat.S_IMODE(db_file.parent.stat().st_mode) == 0o700
            engine = sa.create_engine(db)
            with engine.connect() as conn:
                stored = conn.execute(sa.text("SELECT key FROM tg_devices")).scalar_one()
            engine.dispose()
            assert t.key not in bytes(stored)  # the stolen database alone holds no device key
    finally:
        os.umask(old)


def test_plaintext_keys_of_an_old_database_are_migrated(tmp_path: Path) -> None:
    db_file = tmp_path / "old.db"
    db = f"sqlite:///{db_file}"
    engine = sa.create_engine(db)
    key = os.urandom(32)
    with engine.begin() as conn:  # the shape an older collector left behind
        conn.execute(sa.text(
            "CREATE TABLE tg_devices (id VARCHAR(128) PRIMARY KEY, hostname VARCHAR(255) NOT "
            "NULL, branch VARCHAR(128) NOT NULL, key BLOB NOT NULL, enrolled_us BIGINT NOT NULL,"
            " last_seen_us BIGINT, last_heartbeat_us BIGINT)"))
        conn.execute(sa.text(
            "CREATE TABLE tg_events (seq INTEGER PRIMARY KEY, id VARCHAR(36) NOT NULL, "
            "device_id VARCHAR(128) NOT NULL, hostname VARCHAR(255) NOT NULL, branch "
            "VARCHAR(128) NOT NULL, teller VARCHAR(128) NOT NULL, type VARCHAR(64) NOT NULL, "
            "channel VARCHAR(16) NOT NULL, action VARCHAR(16) NOT NULL, outcome VARCHAR(16) NOT "
            "NULL, time_us BIGINT NOT NULL, hour BIGINT NOT NULL, received_us BIGINT NOT NULL, "
            "finding_types VARCHAR(2100) NOT NULL, body TEXT NOT NULL, UNIQUE (id))"))
        conn.execute(sa.text("CREATE INDEX ix_tg_events_device_id ON tg_events (device_id)"))
        conn.execute(sa.text("INSERT INTO tg_devices VALUES ('dev-old', 'pc', '0101', :k, 1, "
                             "NULL, NULL)"), {"k": key})
    engine.dispose()
    with run_collector(db) as c:
        t = Terminal.__new__(Terminal)
        t.base_url = c.url
        from guard.model import Device

        t.device = Device(id="dev-old", hostname="pc", branch="0101")
        t.key = key
        assert t.send([t.event()]).status_code == 200  # the old key still signs
    engine = sa.create_engine(db)
    with engine.connect() as conn:
        stored = bytes(conn.execute(sa.text("SELECT key FROM tg_devices")).scalar_one())
    engine.dispose()
    assert key not in stored


def test_embedded_collector_files_are_private(tmp_path: Path) -> None:
    from guard.collector.embedded import DB_FILE, KEY_FILE, TOKENS_FILE, start_embedded

    old = os.umask(0o000)
    try:
        emb = start_embedded(tmp_path / "emb")
        try:
            Terminal(emb.url, emb.enroll_token, "dev-emb")
        finally:
            emb.stop()
    finally:
        os.umask(old)
    for name in (TOKENS_FILE, DB_FILE, KEY_FILE):
        assert stat.S_IMODE((tmp_path / "emb" / name).stat().st_mode) == 0o600, name
    assert stat.S_IMODE((tmp_path / "emb").stat().st_mode) == 0o700


# -- 10: enrolment ------------------------------------------------------------------------------

def test_reenrolment_needs_the_admin(collector: CollectorProcess) -> None:
    real = Terminal(collector, collector.enroll_token, "dev-victim")
    r = httpx.post(f"{collector}/api/v1/enroll", json={
        "token": collector.enroll_token, "device_id": "dev-victim", "hostname": "evil"})
    assert r.status_code == 409
    assert "admin" in r.json()["error"]
    assert real.send([real.event()]).status_code == 200  # the real PC keeps its key


def test_wrong_tokens_are_throttled_and_logged(collector: CollectorProcess) -> None:
    statuses = []
    for i in range(14):
        r = httpx.post(f"{collector}/api/v1/enroll", json={"token": f"guess-{i}"})
        statuses.append(r.status_code)
    assert statuses[:5] == [403] * 5
    assert set(statuses[5:]) == {429}
    # locked out: even the right token waits now
    r = httpx.post(f"{collector}/api/v1/enroll", json={"token": collector.enroll_token})
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 60
    log = collector.log_path.read_text()
    assert "wrong enrolment token from 127.0.0.1" in log
    assert "enrolment locked for 127.0.0.1" in log


def _collector_cli(tmp_path: Path, *args: str, env: dict[str, str] | None = None
                   ) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("TELLER_GUARD_")}
    return subprocess.run(
        [sys.executable, "-m", "guard.cli", "collector", "--db", f"sqlite:///{tmp_path}/c.db",
         "--listen", "127.0.0.1:1", *args],
        capture_output=True, text=True, timeout=60, check=False, env={**base, **(env or {})})


def test_weak_and_argv_tokens_are_refused_at_start(tmp_path: Path) -> None:
    weak = _collector_cli(tmp_path, env={"TELLER_GUARD_ENROLL_TOKEN": "x",
                                         "TELLER_GUARD_ADMIN_TOKEN": "admin-token-0123456789"})
    assert weak.returncode == 2 and "too weak" in weak.stderr
    argv = _collector_cli(tmp_path, "--enroll-token", "enrol-token-0123456789")
    assert argv.returncode == 2
    assert "--enroll-token-file" in argv.stderr and "TELLER_GUARD_ENROLL_TOKEN" in argv.stderr
    (tmp_path / "admin.tok").write_text("short\n")
    short = _collector_cli(tmp_path, "--admin-token-file", str(tmp_path / "admin.tok"))
    assert short.returncode == 2 and "too weak" in short.stderr


def test_enroll_command_takes_the_token_from_a_file(collector: CollectorProcess,
                                                     tmp_path: Path) -> None:
    env = {**os.environ, "TELLER_GUARD_DATA_DIR": str(tmp_path / "pc"),
           "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
    env.pop("TELLER_GUARD_ENROLL_TOKEN", None)

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "guard.cli", "enroll", collector.url, *args],
                              capture_output=True, text=True, timeout=60, check=False, env=env)

    on_argv = cli(collector.enroll_token)
    assert on_argv.returncode == 2 and "--token-file" in on_argv.stderr
    tok = tmp_path / "enrol.tok"
    tok.write_text(collector.enroll_token + "\n")
    ok = cli("--token-file", str(tok))
    assert ok.returncode == 0, ok.stderr


# -- 11: sign-in --------------------------------------------------------------------------------

def test_sign_in_is_a_post_and_the_url_token_does_nothing(collector: CollectorProcess) -> None:
    r = httpx.get(f"{collector}/", params={"token": collector.admin_token})
    assert r.status_code == 401 and "set-cookie" not in r.headers
    assert 'method="post"' in r.text and 'action="/login"' in r.text
    assert "token=" not in r.text.split("<form")[0]
    with httpx.Client(base_url=collector) as c:
        login = sign_in(c, collector.admin_token)
        assert login.status_code == 303
        cookie = login.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
        assert c.get("/").status_code == 200
    cross = httpx.post(f"{collector}/login", data={"token": collector.admin_token},
                       headers={"Origin": "https://evil.example"})
    assert cross.status_code == 403


# -- 12: slow clients and log volume --------------------------------------------------------------

def test_slow_connections_do_not_starve_health(tmp_path: Path) -> None:
    with run_collector(f"sqlite:///{tmp_path / 'c.db'}", nofile=256) as c:
        slow: list[socket.socket] = []
        try:
            for _ in range(300):  # more than the process has file handles
                s = socket.create_connection(("127.0.0.1", c.port), timeout=10)
                s.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                slow.append(s)
            r = httpx.get(f"{c}/api/v1/health", timeout=20)
            assert r.status_code == 200
        finally:
            for s in slow:
                s.close()
        for _ in range(400):  # garbage requests: each one a warning, were the log unbounded
            with socket.create_connection(("127.0.0.1", c.port), timeout=10) as s:
                s.sendall(b"\x16\x03\x01garbage\r\n\r\n")
                s.recv(1024)
        lines = c.log_path.read_text().count("Invalid HTTP request")
        assert 0 < lines <= 25


# -- 13: journal chain head -----------------------------------------------------------------------

def test_chain_head_rewind_gap_and_wipe_are_raised(collector: CollectorProcess) -> None:
    t = Terminal(collector, collector.enroll_token, "dev-chain")
    h = "ab" * 32
    assert t.send([t.event(), t.event()], chain=f"2:{h}").status_code == 200
    assert t.send([t.event()], chain=f"3:{'cd' * 32}").status_code == 200
    assert t.send([t.event()], chain=f"9:{'ef' * 32}").status_code == 200  # 4..8 never came
    assert t.send([t.event()], chain=f"9:{'00' * 32}").status_code == 200  # same place, new hash
    assert t.send([t.event()], chain=f"1:{'11' * 32}").status_code == 200  # restarted
    # a header that is not signed with the batch is refused
    body = t.body([t.event()])
    r = t.post(body, extra={"X-TG-Chain": f"12:{h}"})
    assert r.status_code == 401
    page = admin_get(collector, collector.admin_token, "/").text
    assert "日志缺失 Journal gap" in page and "5 journal rows between 3 and 9" in page
    assert "日志被回退或改写 Journal rewound" in page
    assert "日志被清空 Journal wiped" in page
    # old agents send no header: still accepted
    assert t.send([t.event()]).status_code == 200


def test_over_tls_hsts_and_a_secure_cookie(tmp_path: Path) -> None:
    import ssl

    from tests.support.servers import _make_tls_files

    ca, cert, key = _make_tls_files(tmp_path)
    with run_collector(f"sqlite:///{tmp_path / 'c.db'}", https_ca=ca,
                       extra_args=["--tls-cert", str(cert), "--tls-key", str(key)]) as c:
        ctx = ssl.create_default_context(cafile=str(ca))
        with httpx.Client(base_url=c.url, verify=ctx) as client:
            r = client.get("/api/v1/health")
            assert r.headers["strict-transport-security"].startswith("max-age=")
            login = sign_in(client, c.admin_token)
            assert login.status_code == 303
            assert "Secure" in login.headers["set-cookie"]
