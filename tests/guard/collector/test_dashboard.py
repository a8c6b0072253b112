"""The dashboard shows real activity: trend, branches and channels, responses, silent terminals."""

from __future__ import annotations

import re

import httpx

from guard.model import Channel, Outcome
from tests.support.servers import CollectorProcess

from ._helpers import BRANCHES, Terminal, seed_demo


def _page(c: CollectorProcess) -> str:
    r = httpx.get(f"{c}/", headers={"Authorization": f"Bearer {c.admin_token}"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in r.headers["content-security-policy"]
    return r.text


def test_dashboard_with_real_data(collector: CollectorProcess) -> None:
    seed_demo(collector, collector.enroll_token, silent=("TLR-BJ-02", "TLR-NS-01"))
    html = _page(collector)
    for label in ("事件趋势", "Events over time", "按网点与渠道", "By branch and channel",
                  "最新确认与说明", "Latest acknowledgements and justifications", "失联终端"):
        assert label in html
    for branch in BRANCHES:
        assert branch in html
    silent = html[html.index("<h2>失联终端"):html.index("<h2>最新确认与说明")]
    assert "TLR-BJ-02" in silent and "TLR-NS-01" in silent
    assert "TLR-DC-01" not in silent
    assert "客户本人要求打印开户资料" in html or "业务办理需要" in html
    # no external assets: nothing is fetched from anywhere
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    assert "<script" not in html


def test_dashboard_escapes_event_text(collector: CollectorProcess) -> None:
    t = Terminal(collector, collector.enroll_token, "dev-xss", hostname="<b>pc</b>",
                 branch="0101")
    ev = t.finding_event(justification="<script>alert(1)</script>", outcome=Outcome.JUSTIFIED,
                         channel=Channel.PRINT)
    assert t.send([ev]).status_code == 200
    html = _page(collector)
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<b>pc</b>" not in html


def test_empty_dashboard_renders(collector: CollectorProcess) -> None:
    html = _page(collector)
    assert "暂无事件" in html
    assert "全部终端按时上报" in html
