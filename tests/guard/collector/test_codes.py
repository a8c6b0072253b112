"""One-time approval codes at the collector: recorded when issued (their id, issuer and reason,
never the code), marked spent when the PC's APPROVAL_CODE_SPENT event arrives, a second use
flagged, listed for IT and compliance (API, dashboard page in headless Chromium). SQLite and the
real PostgreSQL, with the real collector process."""

from __future__ import annotations

import http.server
import json
import os
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from guard.collector.store import CODE_STATUSES, CodeQuery, CodesExhausted, Store
from guard.delivery import approval_code as ac
from guard.events import EventType, new_event
from guard.model import Event
from tests.support.servers import CollectorProcess, run_collector

from ._cdp import Chromium
from ._helpers import Terminal, admin_get

RAW_ID = "11010519491231002X"  # a valid resident ID a careless reason might carry


def _issue(c: CollectorProcess, device: str, channel: str = "usb", **extra: Any
           ) -> httpx.Response:
    return httpx.post(f"{c}/api/v1/approval-codes", timeout=30,
                      json={"device_id": device, "channel": channel, **extra},
                      headers={"Authorization": f"Bearer {c.admin_token}"})


def _spent(t: Terminal, code: str, channel: str, **kw: Any) -> Event:
    """The event the PC's delivery journals when it accepts `code` (guard.delivery.delivery)."""
    cid = ac.match(t.key, t.device.id, channel, code)
    assert cid is not None, "the code does not verify with the device key"
    return new_event(EventType.APPROVAL_CODE_SPENT, device=t.device, detail=cid.detail(), **kw)


def _codes(c: CollectorProcess, **params: Any) -> list[dict[str, Any]]:
    r = admin_get(c, c.admin_token, "/api/v1/approval-codes", **params)
    assert r.status_code == 200, r.text
    return list(r.json()["codes"])


def _database_text(db_url: str) -> str:
    """Every value of every table, as text (to prove the code is stored nowhere)."""
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            out = []
            for name in sa.inspect(conn).get_table_names():
                for row in conn.execute(sa.text(f"SELECT * FROM {name}")):
                    out.append(" ".join(str(v) for v in row))
            return "\n".join(out)
    finally:
        engine.dispose()


def test_a_code_is_recorded_then_spent_then_flagged_when_used_again(
        collector: CollectorProcess, db_url: str) -> None:
    t = Terminal(collector, collector.enroll_token, "dev-codes-1", hostname="TLR-DC-01",
                 branch="0101 东城支行")
    r = _issue(collector, t.device.id, minutes=30, issuer="it.chen", reason="主管外出，远程授权")
    assert r.status_code == 200, r.text
    body = r.json()
    code, number = body["code"], body["id"]
    assert body["recorded"] is True and body["issuer"] == "it.chen"
    listed = _codes(collector)
    assert [c["id"] for c in listed] == [number]
    first = listed[0]
    assert first["status"] == "valid" and first["uses"] == 0 and first["spent"] is None
    assert (first["device_id"], first["hostname"], first["branch"], first["channel"]) == (
        t.device.id, "TLR-DC-01", "0101 东城支行", "usb")
    assert (first["issuer"], first["reason"]) == ("it.chen", "主管外出，远程授权")
    # neither the code nor its MAC digits are stored or listed anywhere
    assert code not in _database_text(db_url) and code[4:] not in _database_text(db_url)
    assert code[4:] not in json.dumps(listed)

    spend = _spent(t, code, "usb")
    assert t.send([spend]).status_code == 200
    # the same event again, in another batch: a duplicate, not a use
    assert t.send([spend, t.event()]).json()["duplicates"] == [str(spend.id)]
    (after,) = _codes(collector)
    assert after["status"] == "spent" and after["uses"] == 1
    assert after["spent_event"] == str(spend.id) and after["spent"] is not None
    assert _codes(collector, status="spent")[0]["id"] == number
    assert _codes(collector, status="valid") == []
    overview = admin_get(collector, collector.admin_token, "/").text
    assert "一次性授权码被重复使用" not in overview

    # the same code reported used a second time (a restored journal, a copied key)
    again = _spent(t, code, "usb")
    assert t.send([again]).status_code == 200
    (reused,) = _codes(collector, status="reused")
    assert reused["id"] == number and reused["uses"] == 2
    assert reused["spent_event"] == str(spend.id)  # the first use stays the spend
    overview = admin_get(collector, collector.admin_token, "/").text
    assert "一次性授权码被重复使用" in overview and f"#{number}" in overview
    page = admin_get(collector, collector.admin_token, "/codes", status="reused").text
    assert f'data-code="{number}" data-status="reused"' in page and "重复使用 Reused" in page
    assert code[4:] not in page


def test_a_spend_of_a_code_never_recorded_here_is_listed_and_alerted(
        collector: CollectorProcess) -> None:
    t = Terminal(collector, collector.enroll_token, "dev-codes-2")
    # derived from the device key elsewhere (an older collector, or a copied key)
    code = ac.issue(t.key, t.device.id, "unlock", 15, counter=9)
    assert t.send([_spent(t, code, "unlock")]).status_code == 200
    (row,) = _codes(collector, device=t.device.id)
    assert row["status"] == "unrecorded" and row["issued"] is None and row["uses"] == 1
    assert "未登记的一次性授权码" in admin_get(collector, collector.admin_token, "/").text
    # a spend report without a valid code id is kept as an alert, the batch is still stored
    broken = new_event(EventType.APPROVAL_CODE_SPENT, device=t.device,
                       detail={"code_channel": "usb", "code_slot": "x"})
    assert t.send([broken]).status_code == 200
    assert str(broken.id) in admin_get(collector, collector.admin_token, "/").text
    assert len(_codes(collector, device=t.device.id)) == 1


def test_issuing_refuses_customer_data_unknown_devices_and_bad_filters(
        collector: CollectorProcess) -> None:
    t = Terminal(collector, collector.enroll_token, "dev-codes-3")
    r = _issue(collector, t.device.id, reason=f"客户 {RAW_ID} 要拷贝")
    assert r.status_code == 422 and "reason" in r.json()["error"]
    assert RAW_ID not in r.text
    assert _issue(collector, "dev-nobody").status_code == 404
    assert _issue(collector, t.device.id, channel="nope").status_code == 422
    assert _codes(collector) == []  # nothing refused was recorded
    for params in ({"status": "lost"}, {"channel": "idle"}, {"device": "a b"}, {"limit": "0"}):
        r = admin_get(collector, collector.admin_token, "/api/v1/approval-codes", **params)
        assert r.status_code == 400, params
    assert httpx.get(f"{collector}/api/v1/approval-codes").status_code == 401
    assert httpx.get(f"{collector}/codes").status_code == 401
    # without an issuer the admin token and the address stand for who asked
    r = _issue(collector, t.device.id)
    assert r.status_code == 200 and r.json()["issuer"].startswith("admin token from 127.0.0.1")


def test_the_store_gives_every_code_of_a_slot_its_own_counter_and_expires_them(
        db_url: str) -> None:
    store = Store(db_url, server_key=secrets.token_bytes(32))
    store.create_schema()
    try:
        key = store.enroll("dev-s", "h", "b")
        past = time.time() - 3 * 3600
        issued = [store.issue_code("dev-s", "print", 10, issuer="it", reason="r", now=past)
                  for _ in range(100)]
        assert {k for _c, k in issued} == {key}
        ids = {c.code_id for c, _k in issued}
        assert len(ids) == 100 and {i.counter for i in ids} == set(range(100))
        with pytest.raises(CodesExhausted, match="next five minutes"):
            store.issue_code("dev-s", "print", 10, issuer="it", reason="r", now=past)
        # another length or channel is another code space
        other, _ = store.issue_code("dev-s", "usb", 10, issuer="it", reason="r", now=past)
        fresh, _ = store.issue_code("dev-s", "print", 60, issuer="it", reason="r")
        now = time.time_ns() // 1000
        assert {c.seq for c in store.codes(CodeQuery(status="expired", limit=1000))} == {
            c.seq for c, _k in issued} | {other.seq}
        assert [c.seq for c in store.codes(CodeQuery(status="valid"))] == [fresh.seq]
        assert fresh.status(now) == "valid"
        assert fresh.status(fresh.valid_until_us) == "expired"
        # the window recorded is the one the PC accepts the code in
        code = ac.code_for(key, "dev-s", fresh.code_id)
        assert ac.match(key, "dev-s", "print", code) == fresh.code_id
        assert ac.match(key, "dev-s", "print", code,
                        now=fresh.valid_until_us / 1_000_000 - 1) == fresh.code_id
        assert ac.match(key, "dev-s", "print", code,
                        now=fresh.valid_until_us / 1_000_000) is None
        with pytest.raises(LookupError):
            store.issue_code("dev-none", "print", 10, issuer="it", reason="r")
        assert set(CODE_STATUSES) == {"valid", "spent", "reused", "expired", "unrecorded"}
    finally:
        store.close()


def test_the_cli_says_the_code_was_recorded(collector: CollectorProcess,
                                            tmp_path: Path) -> None:
    t = Terminal(collector, collector.enroll_token, "dev-codes-cli")
    token = tmp_path / "admin.token"
    token.write_text(collector.admin_token, encoding="utf-8")
    out = subprocess.run(
        [sys.executable, "-m", "guard.cli", "approval-code", "--collector", collector,
         "--device", t.device.id, "--channel", "print", "--minutes", "15", "--token-file",
         str(token), "--reason", "打印对账单，主管在外", "--issuer", "it.wang"],
        capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    grouped = out.stdout.strip()
    assert len(grouped) == 14 and grouped.count("-") == 2
    (row,) = _codes(collector, device=t.device.id)
    assert f"recorded at the collector as code #{row['id']}" in out.stderr
    assert (row["issuer"], row["reason"], row["channel"]) == ("it.wang", "打印对账单，主管在外",
                                                              "print")
    assert ac.match(t.key, t.device.id, "print", grouped) is not None


class _OldCollector(http.server.BaseHTTPRequestHandler):
    """A collector from before codes were recorded: it answers without `recorded`."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", "0")))
        body = json.dumps({"code": "060712345678", "grouped": "0607-1234-5678",
                           "device_id": "dev-old", "channel": "usb",
                           "valid_minutes": 30}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def old_collector() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _OldCollector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_the_cli_says_clearly_when_the_collector_did_not_record_the_code(
        old_collector: str) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "guard.cli", "approval-code", "--collector", old_collector,
         "--device", "dev-old", "--channel", "usb"],
        capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "TELLER_GUARD_ADMIN_TOKEN": "t" * 24})
    assert out.returncode == 0 and out.stdout.strip() == "0607-1234-5678"
    assert "NOT recorded" in out.stderr and "write down" in out.stderr


@pytest.mark.timeout(300)
def test_codes_page_in_chromium(tmp_path: Path) -> None:
    with run_collector(f"sqlite:///{tmp_path}/c.db") as c:
        a = Terminal(c, c.enroll_token, "dev-dc-01", hostname="TLR-DC-01", branch="0101 东城支行")
        b = Terminal(c, c.enroll_token, "dev-xh-01", hostname="TLR-XH-01", branch="0205 西湖支行")
        issued: list[tuple[Terminal, str, str]] = []
        for i in range(55):
            t, channel = (a, b)[i % 2], ("usb", "unlock", "print")[i % 3]
            r = _issue(c, t.device.id, channel, reason=f"远程授权 第{i}次", issuer="it.chen")
            assert r.status_code == 200, r.text
            issued.append((t, channel, r.json()["code"]))
        t, channel, code = issued[0]
        assert t.send([_spent(t, code, channel)]).status_code == 200
        assert t.send([_spent(t, code, channel)]).status_code == 200  # reused
        t, channel, code = issued[1]
        assert t.send([_spent(t, code, channel)]).status_code == 200
        with Chromium(tmp_path / "profile") as page:
            page.goto(f"{c}/codes")
            assert "请输入管理令牌" in page.js("document.body.innerText")
            page.js_then_load(f"document.querySelector('input[name=token]').value = "
                              f"{c.admin_token!r}; document.querySelector('form').submit()")
            page.goto(f"{c}/codes")
            count = "document.querySelectorAll('tr[data-code]').length"
            assert page.js(count) == 50
            statuses = "[...document.querySelectorAll('tr[data-code]')].map(r => r.dataset.status)"
            page.js_then_load("document.querySelector('a[rel=next]').click()")
            assert page.js(count) == 5 and "第 2 页" in page.js("document.body.innerText")
            assert sorted(page.js(statuses)) == ["reused", "spent", "valid", "valid", "valid"]
            # the filter form as IT fills it
            page.js_then_load("document.querySelector('select[name=status]').value = 'reused';"
                              "document.querySelector('form.filters').requestSubmit()")
            assert "status=reused" in page.js("location.search")
            assert page.js(statuses) == ["reused"]
            text = page.js("document.body.innerText")
            assert "重复使用 Reused" in text and "远程授权 第0次" in text and "it.chen" in text
            page.js_then_load("document.querySelector('select[name=status]').value = '';"
                              "document.querySelector('select[name=channel]').value = 'unlock';"
                              "document.querySelector('form.filters').requestSubmit()")
            assert page.js(count) == 18
            cells = page.js("[...document.querySelectorAll('tr[data-code] td:nth-child(5)')]"
                            ".map(td => td.innerText)")
            assert set(cells) == {"解锁 Unlock"}
            everything = page.js("document.documentElement.outerHTML")
            assert not any(code[4:] in everything for _t, _ch, code in issued)
            shot = tmp_path / "codes.png"
            page.goto(f"{c}/codes")
            page.screenshot(shot)
            assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

