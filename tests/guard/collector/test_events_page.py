"""The dashboard's events page for compliance staff: newest first, filters, paging, one event's
detail and the CSV export, all of it masked and signed-in only. Over plain HTTP and in headless
Chromium (a real browser signing in with the form, following links, submitting the filters and
downloading the export)."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from guard.model import Action, Channel, Event, FindingSummary, Outcome
from tests.support.servers import CollectorProcess, run_collector

from ._cdp import Chromium
from ._helpers import Terminal

TZ = ZoneInfo("Asia/Shanghai")
N = 120
CARD = "622202******0128"
RAW_CARD = "6222020200120120128"  # what a terminal must never send; never on any page


def _events(a: Terminal, b: Terminal, base: datetime) -> list[tuple[Terminal, Event]]:
    out = []
    for i in range(N):
        t = (a, b)[i % 2]
        when = base + timedelta(minutes=10 * i)
        common = {"time": when, "teller": ("zhang.wei", "li.na")[i % 2]}
        if i % 3 == 0:
            ev = t.event(type="PRINT_JOB_HELD", channel=Channel.PRINT, action=Action.JUSTIFY,
                         outcome=Outcome.JUSTIFIED, justification="客户本人要求打印",
                         **common)
        elif i % 3 == 1:
            ev = t.event(type="CLIPBOARD_COPY", channel=Channel.CLIPBOARD, action=Action.REDACT,
                         outcome=Outcome.REDACTED, findings=[FindingSummary(
                             type="BANK_CARD", count=1, masked=[CARD], hashes=["cd" * 16])],
                         **common)
        else:
            ev = t.event(type="USB_FILE_WRITTEN", channel=Channel.USB, action=Action.BLOCK,
                         outcome=Outcome.BLOCKED, **common)
        out.append((t, ev))
    return out


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[CollectorProcess,
                                                                       list[Event]]]:
    tmp = tmp_path_factory.mktemp("events-page")
    with run_collector(f"sqlite:///{tmp}/c.db", env={"TZ": "Asia/Shanghai"}) as c:
        a = Terminal(c, c.enroll_token, "dev-dc-01", hostname="TLR-DC-01", branch="0101 东城支行")
        b = Terminal(c, c.enroll_token, "dev-xh-01", hostname="TLR-XH-01", branch="0205 西湖支行")
        base = (datetime.now(UTC) - timedelta(days=2)).replace(second=0, microsecond=0)
        pairs = _events(a, b, base)
        for t in (a, b):
            assert t.send([e for tt, e in pairs if tt is t]).status_code == 200
        formula = a.event(type="PRINT_JOB_HELD", channel=Channel.PRINT, action=Action.JUSTIFY,
                          outcome=Outcome.JUSTIFIED, teller="wang.fang",
                          time=base - timedelta(hours=1), justification="=HYPERLINK(\"x\")")
        assert a.send([formula]).status_code == 200
        yield c, [e for _t, e in pairs] + [formula]


def _get(c: CollectorProcess, path: str, **params: str) -> httpx.Response:
    return httpx.get(f"{c}{path}", params=params, timeout=30,
                     headers={"Authorization": f"Bearer {c.admin_token}"})


def _rows(html: str) -> list[str]:
    return re.findall(r'<tr data-seq="(\d+)">', html)


def _local(t: datetime) -> str:
    return t.astimezone(TZ).strftime("%Y-%m-%dT%H:%M")


def test_signed_in_only(seeded: tuple[CollectorProcess, list[Event]]) -> None:
    c, _ = seeded
    for path in ("/events", "/events/1", "/events.csv"):
        r = httpx.get(f"{c}{path}", timeout=30)
        assert r.status_code == 401, path
        assert "TLR-DC-01" not in r.text
    r = httpx.get(f"{c}/events", headers={"Authorization": "Bearer wrong"}, timeout=30)
    assert r.status_code == 401 and "请输入管理令牌" in r.text


def test_newest_first_and_paging(seeded: tuple[CollectorProcess, list[Event]]) -> None:
    c, events = seeded
    pages = [_get(c, "/events", page=str(n)) for n in (1, 2, 3)]
    assert all(p.status_code == 200 for p in pages)
    assert "default-src 'none'" in pages[0].headers["content-security-policy"]
    seqs = [_rows(p.text) for p in pages]
    assert [len(s) for s in seqs] == [50, 50, N + 1 - 100]
    flat = [s for page in seqs for s in page]
    assert len(set(flat)) == N + 1  # every event once over the pages
    assert 'rel="next"' in pages[0].text and 'rel="prev"' not in pages[0].text
    assert 'rel="next"' not in pages[2].text and 'rel="prev"' in pages[2].text
    # newest first: the page's first row is the latest event, the last page ends with the oldest
    newest = max(events, key=lambda e: e.time)
    first_row = pages[0].text.split('<tr data-seq=')[1]
    assert newest.time.astimezone(TZ).strftime("%m-%d %H:%M") in first_row
    assert "wang.fang" in pages[2].text.split('<tr data-seq=')[-1]  # the oldest one


@pytest.mark.parametrize(("params", "expected"), [
    ({"branch": "0205 西湖支行"}, N // 2),
    ({"device": "dev-dc-01"}, N // 2 + 1),
    ({"teller": "zhang.wei"}, N // 2),
    ({"channel": "print"}, N // 3 + 1),
    ({"type": "USB_FILE_WRITTEN"}, N // 3),
    ({"outcome": "redacted"}, N // 3),
    ({"channel": "clipboard", "branch": "0101 东城支行"}, N // 6),
    ({"teller": "nobody"}, 0),
])
def test_filters(seeded: tuple[CollectorProcess, list[Event]], params: dict[str, str],
                 expected: int) -> None:
    c, _ = seeded
    html = _get(c, "/events", **params).text
    shown = _rows(html)
    total = len(shown)
    page = 1
    while 'rel="next"' in html:
        page += 1
        html = _get(c, "/events", page=str(page), **params).text
        total += len(_rows(html))
    assert total == expected
    if expected == 0:
        assert "没有符合条件的事件" in html
    # the filter stays in the form and in the paging links
    for value in params.values():
        assert value in html


def test_time_filter_in_local_time(seeded: tuple[CollectorProcess, list[Event]]) -> None:
    c, events = seeded
    ordered = sorted(events, key=lambda e: e.time)
    since, until = ordered[10].time, ordered[20].time  # [since, until): ten events
    html = _get(c, "/events", since=_local(since), until=_local(until)).text
    assert len(_rows(html)) == 10
    bad = _get(c, "/events", since="yesterday")
    assert bad.status_code == 400 and "since: not a time" in bad.text


def test_detail_page(seeded: tuple[CollectorProcess, list[Event]]) -> None:
    c, _ = seeded
    html = _get(c, "/events", type="CLIPBOARD_COPY").text
    seq = _rows(html)[0]
    assert f'href="/events/{seq}"' in html
    detail = _get(c, f"/events/{seq}")
    assert detail.status_code == 200
    for label in ("事件详情", "复制 CLIPBOARD_COPY", "剪贴板", "已脱敏", "银行卡号", CARD,
                  "TLR-DC-01" if "TLR-DC-01" in detail.text else "TLR-XH-01"):
        assert label in detail.text
    assert "cd" * 16 not in detail.text  # keyed hashes only shortened
    assert _get(c, "/events/999999").status_code == 404


def test_csv_export(seeded: tuple[CollectorProcess, list[Event]]) -> None:
    c, _ = seeded
    r = _get(c, "/events.csv", channel="clipboard")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    assert r.text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(r.text.lstrip("\ufeff"))))
    assert rows[0][0] == "时间 Time (UTC)"
    assert len(rows) == 1 + N // 3
    assert {row[5] for row in rows[1:]} == {"剪贴板 Clipboard"}
    assert all(f"银行卡号×1 {CARD}" == row[9] for row in rows[1:])
    everything = _get(c, "/events.csv").text
    assert len(list(csv.reader(io.StringIO(everything)))) == 1 + N + 1
    # a typed reason that a spreadsheet would run as a formula is exported as text
    assert "'=HYPERLINK" in everything and ",=HYPERLINK" not in everything
    assert RAW_CARD not in everything


def _sign_in(page: Chromium, c: CollectorProcess) -> None:
    page.goto(f"{c}/events")
    assert "请输入管理令牌" in page.js("document.body.innerText")
    page.js_then_load(f"document.querySelector('input[name=token]').value = "
                      f"{c.admin_token!r}; document.querySelector('form').submit()")


@pytest.mark.timeout(300)
def test_events_page_in_chromium(seeded: tuple[CollectorProcess, list[Event]],
                                 tmp_path: Path) -> None:
    c, _ = seeded
    with Chromium(tmp_path / "profile") as page:
        _sign_in(page, c)
        page.goto(f"{c}/events")
        count = "document.querySelectorAll('tr[data-seq]').length"
        assert page.js(count) == 50
        first = page.js("document.querySelector('tr[data-seq]').dataset.seq")
        # paging: the next link, then back
        page.js_then_load("document.querySelector('a[rel=next]').click()")
        assert page.js(count) == 50
        assert "第 2 页" in page.js("document.body.innerText")
        assert first not in page.js("[...document.querySelectorAll('tr[data-seq]')]"
                                    ".map(r => r.dataset.seq)")
        page.js_then_load("document.querySelector('a[rel=prev]').click()")
        assert page.js("document.querySelector('tr[data-seq]').dataset.seq") == first
        # the filter form, as a user fills it: channel and branch
        page.js_then_load(
            "document.querySelector('select[name=channel]').value = 'clipboard';"
            "document.querySelector('input[name=branch]').value = '0101 东城支行';"
            "document.querySelector('form.filters').requestSubmit()")
        assert "channel=clipboard" in page.js("location.search")
        assert page.js(count) == N // 6
        cells = page.js("[...document.querySelectorAll('tr[data-seq] td:nth-child(5)')]"
                        ".map(td => td.innerText)")
        assert set(cells) == {"剪贴板 Clipboard"}
        assert CARD in page.js("document.body.innerText")
        # the export link carries the same filters
        got = page.download("document.querySelector('a[href^=\"/events.csv\"]').click()",
                            tmp_path / "downloads")
        rows = list(csv.reader(io.StringIO(got.read_text(encoding="utf-8-sig"))))
        assert len(rows) == 1 + N // 6
        assert {r[1] for r in rows[1:]} == {"0101 东城支行"}
        assert {r[5] for r in rows[1:]} == {"剪贴板 Clipboard"}
        # one event's detail
        page.js_then_load("document.querySelector('tr[data-seq] a').click()")
        text = page.js("document.body.innerText")
        assert "事件详情" in text and CARD in text and "已脱敏 Redacted" in text
        shot = tmp_path / "events.png"
        page.goto(f"{c}/events")
        page.screenshot(shot)
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
