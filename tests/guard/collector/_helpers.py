"""A minimal signing client and direct database checks for the collector tests."""

from __future__ import annotations

import base64
import gzip as gz
import json
import random
import time
from typing import Any

import httpx
import sqlalchemy as sa

from guard.delivery.protocol import sign, signed_headers
from guard.model import Action, Channel, Device, Event, FindingSummary, Outcome


class Terminal:
    """One enrolled teller PC speaking the protocol by hand (not through guard's shipper)."""

    def __init__(self, base_url: str, enroll_token: str, device_id: str,
                 hostname: str = "teller-pc-01", branch: str = "0101",
                 admin_token: str | None = None) -> None:
        self.base_url = base_url
        self.device = Device(id=device_id, hostname=hostname, branch=branch)
        # re-enrolling an enrolled id needs the admin token
        auth = {"Authorization": f"Bearer {admin_token}"} if admin_token else {}
        r = httpx.post(f"{base_url}/api/v1/enroll", json={
            "token": enroll_token, "hostname": hostname, "branch": branch, "device_id": device_id,
        }, headers=auth)
        assert r.status_code == 200, r.text
        assert r.json()["device_id"] == device_id
        self.key = base64.b64decode(r.json()["key"])
        assert len(self.key) == 32

    def event(self, **kw: Any) -> Event:
        kw.setdefault("type", "CLIPBOARD_COPY")
        kw.setdefault("channel", Channel.CLIPBOARD)
        return Event(device=self.device, **kw)

    def finding_event(self, **kw: Any) -> Event:
        fields: dict[str, Any] = {
            "action": Action.CONFIRM, "outcome": Outcome.ACKNOWLEDGED, "teller": "zhang.wei",
            "findings": [FindingSummary(type="CN_RESIDENT_ID", count=1,
                                        masked=["110***********1234"], hashes=["ab" * 16])],
        }
        return self.event(**{**fields, **kw})

    @staticmethod
    def body(events: list[Event], compress: bool = False) -> bytes:
        raw = json.dumps({"events": [json.loads(e.to_json()) for e in events]}).encode()
        return gz.compress(raw) if compress else raw

    def post(self, body: bytes, *, ts: int | None = None, key: bytes | None = None,
             device: str | None = None, compress: bool = False,
             extra: dict[str, str] | None = None, base_url: str | None = None,
             chain: str | None = None) -> httpx.Response:
        ts = int(time.time()) if ts is None else ts
        # with a chain head the signature covers timestamp "." chain "." body
        signed_ts = f"{ts}.{chain}" if chain is not None else str(ts)
        headers = signed_headers(device or self.device.id, key or self.key, body, ts)
        headers["X-TG-Signature"] = sign(key or self.key, signed_ts, body)
        if chain is not None:
            headers["X-TG-Chain"] = chain
        headers["Content-Type"] = "application/json"
        if compress:
            headers["Content-Encoding"] = "gzip"
        headers.update(extra or {})
        return httpx.post(f"{base_url or self.base_url}/api/v1/events", content=body,
                          headers=headers, timeout=30)

    def send(self, events: list[Event], **kw: Any) -> httpx.Response:
        compress = bool(kw.pop("compress", False))
        return self.post(self.body(events, compress), compress=compress, **kw)


def stored_ids(db_url: str) -> list[str]:
    """Event ids as the database holds them (read directly, not through the API)."""
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table("tg_events"):
                return []
            return [r[0] for r in conn.execute(sa.text("SELECT id FROM tg_events ORDER BY seq"))]
    finally:
        engine.dispose()


def policy_get(base_url: str, t: Terminal, *, key: bytes | None = None,
               headers: dict[str, str] | None = None) -> httpx.Response:
    """GET /api/v1/policy signed by terminal `t` (HMAC over timestamp "." path)."""
    path = "/api/v1/policy"
    h = signed_headers(t.device.id, key or t.key, path.encode(), int(time.time()))
    h.update(headers or {})
    return httpx.get(f"{base_url}{path}", headers=h, timeout=30)


def sign_in(client: httpx.Client, token: str) -> httpx.Response:
    """The dashboard's sign-in form, POSTed as a browser does."""
    return client.post("/login", data={"token": token})


def admin_get(base_url: str, token: str, path: str, **params: Any) -> httpx.Response:
    return httpx.get(f"{base_url}{path}", params=params,
                     headers={"Authorization": f"Bearer {token}"}, timeout=30)


BRANCHES = {
    "0101 东城支行": ["TLR-DC-01", "TLR-DC-02", "TLR-DC-03"],
    "0205 西湖支行": ["TLR-XH-01", "TLR-XH-02"],
    "0310 滨江支行": ["TLR-BJ-01", "TLR-BJ-02"],
    "0412 南山支行": ["TLR-NS-01"],
}
FINDINGS = {
    "CN_RESIDENT_ID": ["110***********123X", "330***********0021", "440***********5516"],
    "BANK_CARD": ["622848******1234", "621700******9087", "625905******4410"],
    "CN_MOBILE": ["138****5678", "159****0132", "186****7745"],
    "EMAIL": ["z***@example.com"],
}
SCENARIOS: list[tuple[Channel, Action, Outcome, list[str], str]] = [
    (Channel.CLIPBOARD, Action.NOTIFY, Outcome.NOTIFIED, ["CN_RESIDENT_ID"], ""),
    (Channel.CLIPBOARD, Action.REDACT, Outcome.REDACTED, ["BANK_CARD", "CN_MOBILE"], ""),
    (Channel.SCREEN, Action.CONFIRM, Outcome.ACKNOWLEDGED, ["CN_RESIDENT_ID", "BANK_CARD"], ""),
    (Channel.PRINT, Action.JUSTIFY, Outcome.JUSTIFIED, ["CN_RESIDENT_ID"],
     "客户本人要求打印开户资料"),
    (Channel.USB, Action.JUSTIFY, Outcome.JUSTIFIED, ["BANK_CARD"], "内部审核：导出对账单交稽核部"),
    (Channel.PRINT, Action.CONFIRM, Outcome.CANCELLED, ["CN_MOBILE"], ""),
    (Channel.IDLE, Action.LOCK, Outcome.LOCKED, [], ""),
    (Channel.CLIPBOARD, Action.JUSTIFY, Outcome.JUSTIFIED, ["EMAIL", "CN_MOBILE"],
     "业务办理需要：核对客户联系方式"),
]


def seed_demo(base_url: str, enroll_token: str, *, now: float | None = None,
              silent: tuple[str, ...] = ("TLR-BJ-02", "TLR-NS-01")) -> dict[str, Terminal]:
    """Fill a collector with a day of plausible branch activity through the real protocol.

    Every terminal sends a heartbeat now except the `silent` ones (none received).
    """
    from datetime import UTC, datetime, timedelta

    now = time.time() if now is None else now
    start = datetime.fromtimestamp(now, UTC)
    rng = random.Random(20261124)
    # local business hours (UTC+8, 09:00-17:00) are busy, the night is quiet
    weights = [8 if 1 <= (start - timedelta(hours=h)).hour <= 9 else 1 for h in range(24)]
    terminals: dict[str, Terminal] = {}
    for branch, hosts in BRANCHES.items():
        for host in hosts:
            t = Terminal(base_url, enroll_token, f"dev-{host.lower()}", hostname=host,
                         branch=branch)
            terminals[host] = t
            batch: list[Event] = []
            for _ in range(rng.randint(12, 30)):
                ch, act, out, types, why = rng.choice(SCENARIOS)
                hours_ago = rng.choices(range(24), weights)[0] + rng.random()
                findings = [
                    FindingSummary(type=ft, count=rng.randint(1, 2),
                                   masked=[rng.choice(FINDINGS[ft])],
                                   hashes=[f"{rng.getrandbits(128):032x}"])
                    for ft in types
                ]
                batch.append(t.event(
                    type=f"{ch.upper()}_{act.upper()}", channel=ch, action=act, outcome=out,
                    findings=findings, justification=why, teller=f"teller{rng.randint(1, 6):02d}",
                    source_app="核心业务系统" if ch is not Channel.USB else "explorer.exe",
                    time=start - timedelta(hours=hours_ago),
                ))
            # the silent-terminals alarm goes by receipt time, so a silent one sends no heartbeat
            if host not in silent:
                batch.append(t.event(type="HEARTBEAT", channel=Channel.SYSTEM,
                                     time=start - timedelta(seconds=30)))
            r = t.send(batch)
            assert r.status_code == 200, r.text
    return terminals
