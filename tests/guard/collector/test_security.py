"""Every hostile or broken batch is refused with its status and leaves nothing in the database."""

from __future__ import annotations

import gzip
import json
import time

import httpx
import pytest

from tests.support.servers import CollectorProcess

from ._helpers import Terminal, admin_get, sign_in, stored_ids


def _setup(collector: CollectorProcess) -> Terminal:
    return Terminal(collector, collector.enroll_token, "dev-sec-1")


def _refused(collector: CollectorProcess, db_url: str, r: httpx.Response, status: int,
             words: str) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert words in r.json()["error"]
    assert stored_ids(db_url) == []


def test_forged_signature(collector: CollectorProcess, db_url: str) -> None:
    t = _setup(collector)
    body = t.body([t.event()])
    r = t.post(body, key=b"\x00" * 32)
    _refused(collector, db_url, r, 401, "bad signature")
    # a body changed after signing is forged too
    ts = int(time.time())
    good = t.post(body, ts=ts, extra={"X-TG-Signature": "0" * 64})
    _refused(collector, db_url, good, 401, "bad signature")


def test_stale_and_future_timestamps(collector: CollectorProcess, db_url: str) -> None:
    t = _setup(collector)
    body = t.body([t.event()])
    _refused(collector, db_url, t.post(body, ts=int(time.time()) - 301), 401, "window")
    _refused(collector, db_url, t.post(body, ts=int(time.time()) + 400), 401, "window")
    _refused(collector, db_url, t.post(body, extra={"X-TG-Timestamp": "yesterday"}), 401,
             "X-TG-Timestamp")


def test_replayed_batch_is_409_and_stored_once(collector: CollectorProcess, db_url: str) -> None:
    t = _setup(collector)
    events = [t.event() for _ in range(3)]
    body = t.body(events)
    ts = int(time.time())
    first = t.post(body, ts=ts)
    assert first.status_code == 200, first.text
    before = stored_ids(db_url)
    assert sorted(before) == sorted(str(e.id) for e in events)
    again = t.post(body, ts=ts)
    assert again.status_code == 409, again.text
    assert "replay" in again.json()["error"]
    assert stored_ids(db_url) == before


def test_unknown_device(collector: CollectorProcess, db_url: str) -> None:
    t = _setup(collector)
    stranger = t.event().model_copy(update={"device": t.device.model_copy(update={"id": "x9"})})
    r = t.post(t.body([stranger]), device="x9")
    _refused(collector, db_url, r, 401, "unknown device")
    r = t.post(t.body([t.event()]), extra={"X-TG-Device": ""})
    _refused(collector, db_url, r, 401, "X-TG-Device")


def test_old_key_stops_working_after_reenrolment(collector: CollectorProcess, db_url: str) -> None:
    t = _setup(collector)
    old_key = t.key
    t2 = Terminal(collector, collector.enroll_token, "dev-sec-1",
                  admin_token=collector.admin_token)  # the admin re-enrols it
    assert t2.key != old_key
    _refused(collector, db_url, t.post(t.body([t.event()]), key=old_key), 401, "bad signature")
    assert t2.send([t2.event()]).status_code == 200


def test_wrong_enrolment_token(collector: CollectorProcess, db_url: str) -> None:
    r = httpx.post(f"{collector}/api/v1/enroll", json={"token": "guess", "hostname": "h"})
    assert r.status_code == 403
    assert "token" in r.json()["error"]


def test_oversized_body(collector: CollectorProcess, db_url: str) -> None:
    t = _setup(collector)
    big = t.event(justification="x" * 900)
    n = 4 * 1024 * 1024 // len(big.to_json()) + 50
    body = t.body([big.model_copy(update={"id": __import__("uuid").uuid4()}) for _ in range(n)])
    assert len(body) > 4 * 1024 * 1024
    _refused(collector, db_url, t.post(body), 413, "limit")


def test_gzip_bomb_over_the_decompressed_limit(collector: CollectorProcess, db_url: str) -> None:
    t = _setup(collector)
    raw = b'{"events": [' + b" " * (5 * 1024 * 1024) + b"]}"
    bomb = gzip.compress(raw)
    assert len(bomb) < 64 * 1024
    _refused(collector, db_url, t.post(bomb, compress=True), 413, "decompressed")


@pytest.mark.parametrize("body", [b"{not json", b"", b'{"events": [NaN]}', b"\xff\xfe\x00"])
def test_malformed_json(collector: CollectorProcess, db_url: str, body: bytes) -> None:
    t = _setup(collector)
    _refused(collector, db_url, t.post(body), 400, "malformed JSON")


def test_bad_gzip(collector: CollectorProcess, db_url: str) -> None:
    t = _setup(collector)
    good = gzip.compress(t.body([t.event()]))
    _refused(collector, db_url, t.post(b"not gzip at all", compress=True), 400, "gzip")
    _refused(collector, db_url, t.post(good[:-8], compress=True), 400, "gzip")


def test_wrong_schema_version(collector: CollectorProcess, db_url: str) -> None:
    t = _setup(collector)
    good = json.loads(t.event().to_json())
    bad = dict(good, schema=2)
    body = json.dumps({"events": [json.loads(t.event().to_json()), bad]}).encode()
    _refused(collector, db_url, t.post(body), 422, "events[1].schema")


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"channel": "telepathy"}, "events[0].channel"),
        ({"time": "2026-01-01T00:00:00"}, "timezone"),
        ({"unexpected": 1}, "events[0].unexpected"),
        ({"teller": "a\u0000b"}, "NUL"),
        ({"id": "not-a-uuid"}, "events[0].id"),
    ],
)
def test_bad_fields_are_422_without_echoing_values(
    collector: CollectorProcess, db_url: str, change: dict[str, object], words: str
) -> None:
    t = _setup(collector)
    event = dict(json.loads(t.event().to_json()), **change)
    r = t.post(json.dumps({"events": [event]}).encode())
    _refused(collector, db_url, r, 422, words)
    assert "telepathy" not in r.text  # the offending value is never echoed back


def test_batch_shape(collector: CollectorProcess, db_url: str) -> None:
    t = _setup(collector)
    _refused(collector, db_url, t.post(b"[]"), 422, "batch must be")
    _refused(collector, db_url, t.post(b'{"events": {}}'), 422, "must be a list")


def test_event_of_another_device_is_403(collector: CollectorProcess, db_url: str) -> None:
    t = _setup(collector)
    Terminal(collector, collector.enroll_token, "dev-sec-2")
    other = t.event().model_copy(update={"device": t.device.model_copy(update={"id": "dev-sec-2"})})
    _refused(collector, db_url, t.send([t.event(), other]), 403, "signing device")


def test_query_and_dashboard_need_the_admin_token(collector: CollectorProcess) -> None:
    r = httpx.get(f"{collector}/api/v1/events")
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    assert admin_get(collector, "wrong", "/api/v1/events").status_code == 401
    assert admin_get(collector, collector.admin_token, "/api/v1/events").status_code == 200
    assert httpx.get(f"{collector}/").status_code == 401
    with httpx.Client(base_url=collector) as c:
        assert sign_in(c, "wrong").status_code == 401
        login = sign_in(c, collector.admin_token)
        assert login.status_code == 303
        assert "token" not in login.headers["location"]
        assert "HttpOnly" in login.headers["set-cookie"]
        page = c.get("/")
        assert page.status_code == 200
        assert "柜面隐私卫士" in page.text


def test_dashboard_session_cookie_cannot_be_forged_or_reused_when_expired(
    collector: CollectorProcess,
) -> None:
    with httpx.Client(base_url=collector) as c:
        sign_in(c, collector.admin_token)
        real = c.cookies["tg_admin"]
    expires, _, mac = real.partition(".")
    assert int(expires) > time.time()
    for forged in (f"{int(expires) + 86400}.{mac}",  # longer life, old MAC
                   f"{int(time.time()) - 10}.{mac}",  # expired
                   "9999999999." + "0" * 64, "", "garbage"):
        r = httpx.get(f"{collector}/", cookies={"tg_admin": forged})
        assert r.status_code == 401, forged
    assert httpx.get(f"{collector}/", cookies={"tg_admin": real}).status_code == 200
