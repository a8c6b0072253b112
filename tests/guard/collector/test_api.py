"""The collector's endpoints behave as docs/PROTOCOL.md says, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from teller_guard_resources import resource

from guard.model import Channel, Event
from tests.support.servers import CollectorProcess, run_collector

from ._helpers import Terminal, admin_get, policy_get, stored_ids


def _query(c: CollectorProcess, **params: object) -> list[dict[str, object]]:
    r = admin_get(c, c.admin_token, "/api/v1/events", **params)
    assert r.status_code == 200, r.text
    events: list[dict[str, object]] = r.json()["events"]
    return events


def test_accepted_batch_is_stored_exactly_as_sent(collector: CollectorProcess, db_url: str) -> None:
    t = Terminal(collector, collector.enroll_token, "dev-api-1")
    events = [t.finding_event(justification="客户本人要求 \"打印\" = ok\n第二行") for _ in range(5)]
    r = t.send(events, compress=True)
    assert r.status_code == 200, r.text
    assert r.json() == {"acked": [str(e.id) for e in events], "duplicates": []}
    got = [Event.model_validate(e) for e in _query(collector, device="dev-api-1")]
    assert sorted(got, key=lambda e: str(e.id)) == sorted(events, key=lambda e: str(e.id))
    assert sorted(stored_ids(db_url)) == sorted(str(e.id) for e in events)


def test_duplicates_are_acknowledged_not_stored_twice(collector: CollectorProcess,
                                                      db_url: str) -> None:
    t = Terminal(collector, collector.enroll_token, "dev-api-2")
    first = [t.event() for _ in range(3)]
    assert t.send(first).status_code == 200
    fresh = t.event()
    r = t.send([first[1], fresh, first[1], first[2]])
    assert r.status_code == 200, r.text
    assert r.json()["acked"] == [str(first[1].id), str(fresh.id), str(first[2].id)]
    assert r.json()["duplicates"] == [str(first[1].id), str(first[2].id)]
    assert sorted(stored_ids(db_url)) == sorted(str(e.id) for e in [*first, fresh])
    assert t.send([]).json() == {"acked": [], "duplicates": []}


def test_query_filters(collector: CollectorProcess) -> None:
    a = Terminal(collector, collector.enroll_token, "dev-q-a", hostname="pc-a", branch="0101")
    b = Terminal(collector, collector.enroll_token, "dev-q-b", hostname="pc-b", branch="0202")
    base = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    ev_a = [a.event(time=base + timedelta(minutes=i), teller="li.na") for i in range(6)]
    ev_b = [b.finding_event(time=base + timedelta(minutes=i), channel=Channel.PRINT,
                            type="PRINT_CONFIRM")
            for i in range(4)]
    assert a.send(ev_a).status_code == 200
    assert b.send(ev_b).status_code == 200

    assert len(_query(collector, branch="0101")) == 6
    assert len(_query(collector, device="dev-q-b")) == 4
    assert len(_query(collector, teller="li.na")) == 6
    assert len(_query(collector, channel="print")) == 4
    assert len(_query(collector, finding_type="CN_RESIDENT_ID")) == 4
    assert _query(collector, finding_type="CN_RESIDENT") == []  # whole types only
    assert len(_query(collector, outcome="acknowledged")) == 4
    assert len(_query(collector, type="CLIPBOARD_COPY")) == 6
    window = _query(collector, since=(base + timedelta(minutes=2)).isoformat(),
                    until=(base + timedelta(minutes=4)).isoformat())
    assert len(window) == 4  # minutes 2 and 3 of both devices (until is exclusive)

    # paging in time order, then newest first
    page1 = admin_get(collector, collector.admin_token, "/api/v1/events", limit=4).json()
    assert page1["next_offset"] == 4
    page2 = admin_get(collector, collector.admin_token, "/api/v1/events", limit=4,
                      offset=4).json()
    rest = admin_get(collector, collector.admin_token, "/api/v1/events", limit=4,
                     offset=8).json()
    assert rest["next_offset"] is None
    ordered = [e["time"] for e in page1["events"] + page2["events"] + rest["events"]]
    assert ordered == sorted(ordered) and len(ordered) == 10
    newest = _query(collector, order="desc", limit=1)
    assert newest[0]["time"] == ordered[-1]


def test_bad_query_filters_are_400(collector: CollectorProcess) -> None:
    for params in ({"limit": 0}, {"limit": 1001}, {"limit": "ten"}, {"offset": -1},
                   {"since": "yesterday"}, {"since": "2026-01-01T00:00:00"},
                   {"channel": "fax"}, {"order": "random"}, {"branch": "x" * 300}):
        r = admin_get(collector, collector.admin_token, "/api/v1/events", **params)
        assert r.status_code == 400, params
        assert r.json()["error"]


def test_heartbeat_updates_the_device(collector: CollectorProcess) -> None:
    t = Terminal(collector, collector.enroll_token, "dev-hb", hostname="pc-hb", branch="0303")
    devices = admin_get(collector, collector.admin_token, "/api/v1/devices").json()["devices"]
    assert devices == [{"id": "dev-hb", "hostname": "pc-hb", "branch": "0303",
                        "enrolled": devices[0]["enrolled"], "last_seen": None,
                        "last_heartbeat": None, "last_heartbeat_device": None}]
    beat = t.event(type="HEARTBEAT", channel=Channel.SYSTEM)
    before = datetime.now(UTC)
    assert t.send([beat]).status_code == 200
    dev = admin_get(collector, collector.admin_token, "/api/v1/devices").json()["devices"][0]
    # the device's time is kept; the silent-terminals alarm uses the receipt time
    assert datetime.fromisoformat(dev["last_heartbeat_device"]) == beat.time
    received = datetime.fromisoformat(dev["last_heartbeat"])
    assert before - timedelta(seconds=1) <= received <= datetime.now(UTC)
    assert dev["last_seen"] is not None


def test_policy_etag_and_304_with_the_packaged_policy(collector: CollectorProcess) -> None:
    t = Terminal(collector, collector.enroll_token, "dev-x")
    r = policy_get(collector, t)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/toml")
    assert r.content == resource("policy.toml").read_bytes()
    etag = r.headers["etag"]
    again = policy_get(collector, t, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.headers["etag"] == etag
    assert again.content == b""
    weak = policy_get(collector, t, headers={"If-None-Match": f'"x", W/{etag}'})
    assert weak.status_code == 304
    other = policy_get(collector, t, headers={"If-None-Match": '"other"'})
    assert other.status_code == 200


def test_policy_file_is_served_and_reloaded(tmp_path: Path) -> None:
    policy = tmp_path / "central.toml"
    policy.write_text('version = "central-1"\n', encoding="utf-8")
    with run_collector(f"sqlite:///{tmp_path / 'c.db'}",
                       extra_args=["--policy", str(policy)]) as c:
        t = Terminal(c, c.enroll_token, "dev-policy")
        r1 = policy_get(c, t)
        assert r1.text == 'version = "central-1"\n'
        time.sleep(0.01)
        policy.write_text('version = "central-2"\n[clipboard]\naction = "justify"\n',
                          encoding="utf-8")
        r2 = policy_get(c, t, headers={"If-None-Match": r1.headers["etag"]})
        assert r2.status_code == 200
        assert "central-2" in r2.text
        assert r2.headers["etag"] != r1.headers["etag"]


def test_missing_policy_file_is_refused_at_start(tmp_path: Path) -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "guard.cli", "collector", "--db", f"sqlite:///{tmp_path}/c.db",
         "--policy", str(tmp_path / "nope.toml")],
        capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "TELLER_GUARD_ENROLL_TOKEN": "e" * 4 + "-strong-enough-1",
             "TELLER_GUARD_ADMIN_TOKEN": "a" * 4 + "-strong-enough-2"},
    )
    assert done.returncode == 2
    assert "no such file" in done.stderr


def test_unknown_paths_and_methods_get_json_errors(collector: CollectorProcess) -> None:
    r = httpx.get(f"{collector}/nothing-here")
    assert r.status_code == 404
    assert r.json() == {"error": "Not Found"}
    r = httpx.delete(f"{collector}/api/v1/events")
    assert r.status_code == 405
    assert "error" in r.json()
    r = httpx.post(f"{collector}/api/v1/enroll", content=b"{")
    assert r.status_code == 400
    r = httpx.post(f"{collector}/api/v1/enroll", json={"token": collector.enroll_token,
                                                       "device_id": "bad id with spaces"})
    assert r.status_code == 422


def test_enrolment_without_device_id_gets_a_new_one(collector: CollectorProcess) -> None:
    r = httpx.post(f"{collector}/api/v1/enroll", json={"token": collector.enroll_token,
                                                       "hostname": "pc-new"})
    assert r.status_code == 200
    assert len(r.json()["device_id"]) == 36


def test_events_survive_a_killed_collector(collector: CollectorProcess, db_url: str) -> None:
    t = Terminal(collector, collector.enroll_token, "dev-kill")
    events = [t.event() for _ in range(50)]
    assert t.send(events).status_code == 200
    collector.kill()
    collector.start()
    assert len(_query(collector, device="dev-kill", limit=1000)) == 50
    # the device key survived too
    assert t.send([t.event()]).status_code == 200
    assert len(stored_ids(db_url)) == 51


def test_openapi_is_served(collector: CollectorProcess) -> None:
    spec = httpx.get(f"{collector}/openapi.json").json()
    assert spec["openapi"].startswith("3.1")
    assert "Event" in spec["components"]["schemas"]
    assert json.dumps(spec)  # plain JSON all the way down
