"""The embedded collector serves the real API from inside the agent's process."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import httpx

from guard.collector.embedded import TOKENS_FILE, start_embedded

from ._helpers import Terminal, admin_get, sign_in


def test_embedded_collector_end_to_end_and_restart(tmp_path: Path) -> None:
    emb = start_embedded(tmp_path)
    try:
        assert emb.url.startswith("http://127.0.0.1:")
        t = Terminal(emb.url, emb.enroll_token, "dev-embedded")
        events = [t.finding_event() for _ in range(3)]
        assert t.send(events).status_code == 200
        page = admin_get(emb.url, emb.admin_token, "/api/v1/events").json()
        assert [e["id"] for e in page["events"]] == [str(e.id) for e in events]
        assert "token" not in emb.dashboard_url  # the admin token never goes into a URL
        with httpx.Client(base_url=emb.url, follow_redirects=True) as c:
            assert sign_in(c, emb.admin_token).status_code == 200  # the 303, with its cookie
            assert c.get(emb.dashboard_url).status_code == 200
    finally:
        emb.stop()
    mode = stat.S_IMODE(os.stat(tmp_path / TOKENS_FILE).st_mode)
    assert mode == 0o600
    assert json.loads((tmp_path / TOKENS_FILE).read_text())["admin_token"] == emb.admin_token

    again = start_embedded(tmp_path)
    try:
        assert again.admin_token == emb.admin_token
        assert again.enroll_token == emb.enroll_token
        # the device key and the events survived the restart
        assert t.send([t.event()], base_url=again.url).status_code == 200
        page = admin_get(again.url, again.admin_token, "/api/v1/events").json()
        assert len(page["events"]) == 4
    finally:
        again.stop()
    try:
        httpx.get(f"{again.url}/api/v1/health", timeout=2)
        stopped = False
    except httpx.ConnectError:
        stopped = True
    assert stopped


def test_two_embedded_collectors_get_their_own_ports(tmp_path: Path) -> None:
    a = start_embedded(tmp_path / "a")
    b = start_embedded(tmp_path / "b")
    try:
        assert a.url != b.url
        assert a.admin_token != b.admin_token
        for e in (a, b):
            assert httpx.get(f"{e.url}/api/v1/health").json()["status"] == "ok"
    finally:
        a.stop()
        b.stop()
