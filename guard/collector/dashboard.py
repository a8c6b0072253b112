"""The compliance dashboard page, rendered on the server as one self-contained HTML document.

No scripts and no external assets (a bank's network has no CDN): inline CSS and inline SVG only.
Labels are Chinese first with English beside them. Every value from events is HTML-escaped; only
masked values, counts and types are shown, as the events carry nothing else.
"""

from __future__ import annotations

import csv
import io
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from html import escape
from typing import Any

from guard.collector.store import (
    HOUR_US,
    US,
    DeviceRecord,
    IssuedCode,
    Overview,
    StoredEvent,
)
from guard.events import EventType

CHANNELS: dict[str, str] = {
    "clipboard": "剪贴板 Clipboard",
    "screen": "截屏 Screen",
    "print": "打印 Print",
    "usb": "移动存储 USB",
    "idle": "离开锁屏 Idle",
    "file": "文件 File",
    "system": "系统 System",
}
OUTCOMES: dict[str, str] = {
    "recorded": "已记录 Recorded",
    "notified": "已提醒 Notified",
    "acknowledged": "已确认 Acknowledged",
    "justified": "已说明理由 Justified",
    "cancelled": "已取消 Cancelled",
    "timed_out": "超时 Timed out",
    "redacted": "已脱敏 Redacted",
    "blocked": "已阻止 Blocked",
    "cleared": "已清除 Cleared",
    "locked": "已锁屏 Locked",
    "unlocked": "已解锁 Unlocked",
    "allowed": "已放行 Allowed",
}
ACTIONS: dict[str, str] = {
    "audit": "审计 Audit",
    "notify": "提醒 Notify",
    "confirm": "确认 Confirm",
    "justify": "说明理由 Justify",
    "redact": "脱敏 Redact",
    "block": "阻止 Block",
    "lock": "锁屏 Lock",
}
# Chinese names by type code: finding types, and every event type from guard.events' labels.
TYPES: dict[str, str] = {
    "CN_RESIDENT_ID": "身份证号",
    "BANK_CARD": "银行卡号",
    "CN_MOBILE": "手机号",
    "EMAIL": "电子邮箱",
    "CN_USCC": "统一社会信用代码",
    "CN_PASSPORT": "护照号",
    "CN_BANK_ACCOUNT": "银行账号",
    **{t.value: t.zh for t in EventType},
}

CSS = """
*{box-sizing:border-box}
body{margin:0;font-family:"Noto Sans CJK SC","Noto Sans SC","Microsoft YaHei","PingFang SC",
 sans-serif;background:#f3f5f8;color:#1f2933;font-size:14px}
header{background:#12355b;color:#fff;padding:14px 28px;display:flex;align-items:baseline;gap:18px}
header h1{margin:0;font-size:22px;font-weight:600}
header .en{opacity:.75;font-size:14px}
header .when{margin-left:auto;opacity:.8;font-size:13px}
main{padding:18px 28px;display:grid;grid-template-columns:repeat(12,1fr);gap:16px}
.card{background:#fff;border-radius:8px;box-shadow:0 1px 3px rgba(16,42,67,.12);padding:14px 18px}
.card h2{margin:0 0 10px;font-size:16px;font-weight:600;color:#102a43}
.card h2 small{font-weight:400;color:#627d98;font-size:12px;margin-left:6px}
.tiles{grid-column:span 12;display:grid;grid-template-columns:repeat(4,1fr);gap:16px}
.tile{background:#fff;border-radius:8px;box-shadow:0 1px 3px rgba(16,42,67,.12);padding:12px 18px}
.tile .n{font-size:28px;font-weight:700;color:#12355b}
.tile .l{color:#486581;font-size:13px}
.tile.warn .n{color:#c0392b}
.w7{grid-column:span 7}.w5{grid-column:span 5}.w12{grid-column:span 12}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:5px 8px;border-bottom:1px solid #e4e7eb;vertical-align:top}
th{color:#486581;font-weight:500;font-size:12px;white-space:nowrap}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
td.heat{text-align:right;font-variant-numeric:tabular-nums}
.muted{color:#829ab1}
.tag{display:inline-block;background:#e6f0fa;color:#12355b;border-radius:4px;padding:0 6px;
 margin:1px 2px 1px 0;font-size:12px;white-space:nowrap}
.mask{font-family:"Noto Sans Mono CJK SC",monospace;font-size:12px;color:#334e68}
.why{color:#102a43}
.empty{color:#829ab1;padding:8px 0}
header nav{margin-left:24px;display:flex;gap:14px}
header nav a{color:#fff;opacity:.85;text-decoration:none;font-size:14px}
header nav a.on{opacity:1;border-bottom:2px solid #fff}
form.filters{display:flex;flex-wrap:wrap;gap:10px 14px;align-items:flex-end}
form.filters label{display:flex;flex-direction:column;font-size:12px;color:#486581;gap:3px}
form.filters input,form.filters select{padding:4px 6px;font-size:13px;min-width:120px}
form.filters button,a.button{padding:5px 14px;font-size:13px;background:#12355b;color:#fff;
 border:0;border-radius:4px;text-decoration:none;cursor:pointer}
a.button.light{background:#e6f0fa;color:#12355b}
.pager{display:flex;gap:12px;align-items:center;margin-top:10px}
.err{color:#c0392b}
dl.detail{display:grid;grid-template-columns:200px 1fr;gap:6px 14px;margin:0}
dl.detail dt{color:#486581}dl.detail dd{margin:0}
svg text{font-family:inherit}
"""


def _fmt_time(us: int | None) -> str:
    if us is None:
        return "—"
    try:
        return datetime.fromtimestamp(us / US).astimezone().strftime("%m-%d %H:%M")
    except (OverflowError, OSError, ValueError):  # a time no local zone can show
        return "—"


def _fmt_iso(value: Any) -> str:
    try:
        t = datetime.fromisoformat(str(value))
        return t.astimezone().strftime("%m-%d %H:%M:%S")
    except (OverflowError, OSError, ValueError):  # older rows may hold a time out of range
        return escape(str(value)[:40])


def _ago(now_us: int, us: int | None) -> str:
    if us is None:
        return "从未 never"
    minutes = max(0, (now_us - us) // (60 * US))
    if minutes < 120:
        return f"{minutes} 分钟 min"
    hours = minutes // 60
    if hours < 48:
        return f"{hours} 小时 h"
    return f"{hours // 24} 天 d"


def _page(title: str, body: str, refresh: bool) -> str:
    meta = '<meta http-equiv="refresh" content="60">' if refresh else ""
    return (
        "<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\">"
        f"<meta name=\"viewport\" content=\"width=device-width\">{meta}"
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>{body}</body></html>"
    )


def _header(on: str) -> str:
    def link(href: str, label: str, name: str) -> str:
        cls = ' class="on"' if name == on else ""
        return f'<a href="{href}"{cls}>{label}</a>'

    return ("<header><h1>柜面隐私卫士 · 合规看板</h1><span class=\"en\">Teller Guard · "
            "Compliance dashboard</span><nav>" + link("/", "总览 Overview", "overview")
            + link("/events", "事件查询 Events", "events")
            + link("/codes", "一次性授权码 Codes", "codes") + "</nav>")


def login_page(failed: bool) -> str:
    """The page shown without a valid admin session: a token form, POSTed to /login."""
    note = ('<p style="color:#c0392b">令牌不正确 Wrong token</p>' if failed else "")
    body = (
        "<header><h1>柜面隐私卫士 · 合规看板</h1><span class=\"en\">Teller Guard · "
        "Compliance dashboard</span></header><main><div class=\"card w5\">"
        "<h2>请输入管理令牌<small>Admin token</small></h2>" + note +
        "<form method=\"post\" action=\"/login\"><input type=\"password\" name=\"token\" "
        "autocomplete=\"off\" style=\"width:100%;padding:6px;font-size:14px\" required>"
        "<p><button type=\"submit\" style=\"padding:6px 18px\">登录 Sign in</button></p>"
        "</form></div></main>"
    )
    return _page("柜面隐私卫士 · 登录", body, refresh=False)


def _hourly_chart(ov: Overview) -> str:
    now_hour = ov.now_us // HOUR_US
    hours = list(range(now_hour - 23, now_hour + 1))
    counts = dict(ov.hourly)
    values = [counts.get(h, 0) for h in hours]
    top = max(4, (max(values) + 3) // 4 * 4)  # four even steps on the axis
    w, h, left, bottom, top_pad = 760, 210, 40, 26, 14
    bw = (w - left - 8) / len(hours)
    plot_h = h - bottom - top_pad
    parts = [f'<svg viewBox="0 0 {w} {h}" width="100%" role="img" '
             'aria-label="events per hour, last 24 hours">']
    for i in range(5):
        y = top_pad + plot_h * i / 4
        label = top * (4 - i) // 4
        parts.append(f'<line x1="{left}" x2="{w - 4}" y1="{y:.1f}" y2="{y:.1f}" '
                     'stroke="#e4e7eb" stroke-width="1"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="11" fill="#829ab1" '
                     f'text-anchor="end">{label}</text>')
    for i, (hour, v) in enumerate(zip(hours, values, strict=True)):
        bh = plot_h * v / top
        x = left + i * bw + 2
        y = top_pad + plot_h - bh
        parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bw - 4:.1f}" height="{bh:.1f}" '
                     f'rx="2" fill="#2f80ed"><title>{v}</title></rect>')
        if v:
            parts.append(f'<text x="{x + (bw - 4) / 2:.1f}" y="{y - 3:.1f}" font-size="10" '
                         f'fill="#334e68" text-anchor="middle">{v}</text>')
        if i % 3 == 0 or i == len(hours) - 1:
            when = datetime.fromtimestamp(hour * 3600).astimezone().strftime("%H:00")
            parts.append(f'<text x="{x + (bw - 4) / 2:.1f}" y="{h - 8}" font-size="11" '
                         f'fill="#627d98" text-anchor="middle">{when}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _branch_channel_table(ov: Overview) -> str:
    if not ov.by_branch_channel:
        return '<div class="empty">暂无事件 No events yet</div>'
    channels = [c for c in CHANNELS if any(ch == c for _b, ch, _n in ov.by_branch_channel)]
    channels += sorted({ch for _b, ch, _n in ov.by_branch_channel} - set(channels))
    grid: dict[str, dict[str, int]] = {}
    for branch, ch, n in ov.by_branch_channel:
        grid.setdefault(branch, {})[ch] = n
    top = max(n for _b, _c, n in ov.by_branch_channel) or 1
    rows = sorted(grid.items(), key=lambda kv: -sum(kv[1].values()))[:20]
    head = "".join(f'<th class="num">{escape(CHANNELS.get(c, c))}</th>' for c in channels)
    out = [f'<table><tr><th>网点 Branch</th>{head}<th class="num">合计 Total</th></tr>']
    for branch, per in rows:
        cells = []
        for c in channels:
            n = per.get(c, 0)
            alpha = 0.08 + 0.55 * n / top if n else 0
            style = f' style="background:rgba(47,128,237,{alpha:.2f})"' if n else ""
            cells.append(f'<td class="heat"{style}>{n or "<span class=muted>·</span>"}</td>')
        name = escape(branch) if branch else '<span class="muted">（未设置 none）</span>'
        out.append(f"<tr><td>{name}</td>{''.join(cells)}"
                   f'<td class="num"><b>{sum(per.values())}</b></td></tr>')
    out.append("</table>")
    return "".join(out)


def _type_list(ov: Overview) -> str:
    if not ov.by_type:
        return '<div class="empty">暂无发现 No findings yet</div>'
    top = max(n for _t, n in ov.by_type) or 1
    rows = []
    for t, n in ov.by_type:
        zh = TYPES.get(t, "")
        label = f"{escape(zh)} <span class=muted>{escape(t)}</span>" if zh else escape(t)
        width = 100 * n / top
        rows.append(
            f"<tr><td>{label}</td><td style=\"width:45%\"><div style=\"background:#2f80ed;"
            f"height:10px;border-radius:3px;width:{width:.0f}%\"></div></td>"
            f'<td class="num">{n}</td></tr>'
        )
    return "<table>" + "".join(rows) + "</table>"


def _findings(ev: dict[str, Any]) -> str:
    tags = []
    for f in ev.get("findings") or []:
        t = str(f.get("type", ""))
        zh = TYPES.get(t, t)
        masked = " ".join(str(m) for m in (f.get("masked") or [])[:3])
        tags.append(f'<span class="tag">{escape(zh)}×{int(f.get("count", 0))}</span>'
                    f'<span class="mask">{escape(masked)}</span>')
    return "<br>".join(tags) or '<span class="muted">—</span>'


def _responses(ov: Overview) -> str:
    if not ov.responses:
        return '<div class="empty">暂无确认或说明 No acknowledgements yet</div>'
    out = ["<table><tr><th>时间 Time</th><th>网点 Branch</th><th>终端 Terminal</th>"
           "<th>柜员 Teller</th><th>渠道 Channel</th><th>发现 Findings</th><th>结果 Outcome</th>"
           "<th>理由 Justification</th></tr>"]
    for ev in ov.responses:
        dev = ev.get("device") or {}
        ch = str(ev.get("channel", ""))
        outcome = str(ev.get("outcome", ""))
        why = str(ev.get("justification", "")) or "—"
        out.append(
            f"<tr><td style=\"white-space:nowrap\">{_fmt_iso(ev.get('time'))}</td>"
            f"<td>{escape(str(dev.get('branch', '')))}</td>"
            f"<td>{escape(str(dev.get('hostname', '')))}</td>"
            f"<td>{escape(str(ev.get('teller', '')))}</td>"
            f"<td>{escape(CHANNELS.get(ch, ch))}</td>"
            f"<td>{_findings(ev)}</td>"
            f"<td style=\"white-space:nowrap\">{escape(OUTCOMES.get(outcome, outcome))}</td>"
            f"<td class=\"why\">{escape(why[:200])}</td></tr>"
        )
    out.append("</table>")
    return "".join(out)


def _silent(ov: Overview) -> str:
    if not ov.silent:
        return '<div class="empty">全部终端按时上报 Every terminal reported in time</div>'
    out = ["<table><tr><th>终端 Terminal</th><th>网点 Branch</th>"
           "<th>最后心跳 Last heartbeat</th><th class=num>失联 Silent for</th></tr>"]
    for d in ov.silent:
        out.append(_silent_row(ov.now_us, d))
    out.append("</table>")
    return "".join(out)


def _silent_row(now_us: int, d: DeviceRecord) -> str:
    return (
        f"<tr><td title=\"{escape(d.id)}\">{escape(d.hostname) or '—'}</td>"
        f"<td>{escape(d.branch) or '—'}</td><td>{_fmt_time(d.last_heartbeat_us)}</td>"
        f"<td class=num style=\"color:#c0392b\">{_ago(now_us, d.last_heartbeat_us)}</td></tr>"
    )


ALERTS: dict[str, str] = {
    "chain_rewind": "日志被回退或改写 Journal rewound",
    "chain_gap": "日志缺失 Journal gap",
    "chain_wipe": "日志被清空 Journal wiped",
    "code_reused": "一次性授权码被重复使用 One-time code reused",
    "code_unrecorded": "未登记的一次性授权码 Unrecorded one-time code",
}


def _alerts(ov: Overview) -> str:
    if not ov.alerts and not ov.refused_24h:
        return ""
    rows = []
    for a in ov.alerts:
        rows.append(f"<tr><td style=\"white-space:nowrap\">{_fmt_time(a.created_us)}</td>"
                    f"<td>{escape(a.device_id)}</td>"
                    f"<td style=\"color:#c0392b\">{escape(ALERTS.get(a.kind, a.kind))}</td>"
                    f"<td>{escape(a.detail)}</td></tr>")
    table = ("<table><tr><th>时间 Time</th><th>终端 Device</th><th>告警 Alert</th>"
             "<th>说明 Detail</th></tr>" + "".join(rows) + "</table>") if rows else ""
    refused = (f"<p>近24小时拒收含未脱敏客户信息的事件 Events refused for unmasked customer data, "
               f"last 24 h: <b class=\"refused\">{ov.refused_24h}</b></p>")
    return (f'<section class="card w12"><h2>安全告警<small>Security alerts · 近7天 last 7 days'
            f"</small></h2>{refused}{table}</section>")


def render(ov: Overview, heartbeat_window_s: int) -> str:
    """The whole dashboard page for one overview."""
    window_min = max(1, heartbeat_window_s // 60)
    generated = datetime.fromtimestamp(ov.now_us / US).astimezone().strftime("%Y-%m-%d %H:%M %Z")
    silent_cls = "tile warn" if ov.silent else "tile"
    body = f"""
{_header("overview")}
<span class="when">更新于 Updated {escape(generated)}</span></header>
<main>
<div class="tiles">
 <div class="tile"><div class="n">{ov.total_24h}</div>
  <div class="l">近24小时事件 Events, last 24 h</div></div>
 <div class="tile"><div class="n">{ov.device_count}</div>
  <div class="l">已登记终端 Enrolled terminals</div></div>
 <div class="{silent_cls}"><div class="n">{len(ov.silent)}</div>
  <div class="l">失联终端 Silent terminals (&gt; {window_min} 分钟 min)</div></div>
 <div class="tile"><div class="n">{ov.responses_24h}</div>
  <div class="l">近24小时确认与说明 Acknowledged or justified</div></div>
</div>
<section class="card w7"><h2>事件趋势<small>Events over time · 近24小时 last 24 h, per hour</small>
</h2>{_hourly_chart(ov)}</section>
<section class="card w5"><h2>按发现类型<small>By finding type · 近24小时 last 24 h</small></h2>
{_type_list(ov)}</section>
<section class="card w7"><h2>按网点与渠道<small>By branch and channel · 近7天 last 7 days
</small></h2>{_branch_channel_table(ov)}</section>
<section class="card w5"><h2>失联终端<small>No heartbeat within {window_min} 分钟 min</small></h2>
{_silent(ov)}</section>
{_alerts(ov)}
<section class="card w12"><h2>最新确认与说明<small>Latest acknowledgements and justifications
</small></h2>{_responses(ov)}</section>
</main>"""
    return _page("柜面隐私卫士 · 合规看板", body, refresh=True)


# ---------------------------------------------------------------------------------------------
# The events page: every event, newest first, filtered, paged, one event's detail, CSV export.
# Events hold only masked values, types, counts and keyed hashes; nothing else is shown.

EVENT_FILTERS: tuple[str, ...] = (
    "since", "until", "branch", "device", "teller", "channel", "type", "outcome")
PAGE_SIZE = 50


def _list_page(name: str, title: str, subtitle: str, filters: str, listing: str) -> str:
    """A filtered list page: the header with `name` current, the filter card, the list card."""
    body = (f"{_header(name)}</header><main>"
            f'<section class="card w12"><h2>{title}<small>{subtitle}</small></h2>{filters}'
            f'</section><section class="card w12">{listing}</section></main>')
    return _page(f"柜面隐私卫士 · {title}", body, refresh=False)


def _pager(path: str, page: int, has_next: bool, query: Callable[[int], str]) -> str:
    """The previous/next links of a paged list (`query(n)`: the query string of page n)."""
    prev_link = (f'<a class="button light" rel="prev" href="{path}?'
                 f'{escape(query(page - 1))}">上一页 Previous</a>' if page > 1 else "")
    next_link = (f'<a class="button light" rel="next" href="{path}?'
                 f'{escape(query(page + 1))}">下一页 Next</a>' if has_next else "")
    return (f'<div class="pager">{prev_link}<span>第 {page} 页 Page {page} · '
            f"每页 {PAGE_SIZE} 条 {PAGE_SIZE} per page</span>{next_link}</div>")


def _type_label(code: str) -> str:
    zh = TYPES.get(code)
    return f"{zh} {code}" if zh else code


def _select(name: str, label: str, options: Mapping[str, str], chosen: str) -> str:
    opts = ['<option value="">全部 All</option>']
    for value, text in options.items():
        sel = " selected" if value == chosen else ""
        opts.append(f'<option value="{escape(value)}"{sel}>{escape(text)}</option>')
    return (f'<label>{label}<select name="{name}">' + "".join(opts) + "</select></label>")


def _text_input(name: str, label: str, value: str, kind: str = "text") -> str:
    return (f'<label>{label}<input type="{kind}" name="{name}" value="{escape(value)}">'
            "</label>")


def query_string(filters: Mapping[str, str], **extra: str | int) -> str:
    """The URL query for these filters (empty ones left out) plus `extra` (e.g. the page)."""
    pairs = [(k, v) for k, v in filters.items() if v and k in EVENT_FILTERS]
    pairs += [(k, str(v)) for k, v in extra.items()]
    return urllib.parse.urlencode(pairs)


def _finding_tags(ev: Mapping[str, Any]) -> str:
    return _findings(dict(ev))


def events_page(rows: list[StoredEvent], filters: Mapping[str, str], page: int, has_next: bool,
                error: str = "") -> str:
    """The events list: the filter form, one page of events (newest first), the pager."""
    f = {k: filters.get(k, "") for k in EVENT_FILTERS}
    event_types = {t.value: f"{t.zh} {t.value}" for t in EventType}
    form = (
        '<form class="filters" method="get" action="/events">'
        + _text_input("since", "起始时间 From", f["since"], "datetime-local")
        + _text_input("until", "截止时间 To", f["until"], "datetime-local")
        + _text_input("branch", "网点 Branch", f["branch"])
        + _text_input("device", "终端 Terminal (ID)", f["device"])
        + _text_input("teller", "柜员 Teller", f["teller"])
        + _select("channel", "渠道 Channel", CHANNELS, f["channel"])
        + _select("type", "事件类型 Type", event_types, f["type"])
        + _select("outcome", "结果 Outcome", OUTCOMES, f["outcome"])
        + '<button type="submit">查询 Search</button>'
        + f'<a class="button light" href="/events.csv?{escape(query_string(f))}">'
        "导出 CSV Export</a></form>"
    )
    note = f'<p class="err">{escape(error)}</p>' if error else ""
    if rows:
        out = ["<table class=\"events\"><tr><th>时间 Time</th><th>网点 Branch</th>"
               "<th>终端 Terminal</th><th>柜员 Teller</th><th>渠道 Channel</th>"
               "<th>事件类型 Type</th><th>处置 Action</th><th>结果 Outcome</th>"
               "<th>发现 Findings</th><th></th></tr>"]
        for r in rows:
            ev = r.event
            dev = ev.get("device") or {}
            ch, outcome = str(ev.get("channel", "")), str(ev.get("outcome", ""))
            action = str(ev.get("action", ""))
            out.append(
                f'<tr data-seq="{r.seq}"><td style="white-space:nowrap">'
                f"{_fmt_iso(ev.get('time'))}</td>"
                f"<td>{escape(str(dev.get('branch', '')))}</td>"
                f"<td title=\"{escape(str(dev.get('id', '')))}\">"
                f"{escape(str(dev.get('hostname', '')))}</td>"
                f"<td>{escape(str(ev.get('teller', '')))}</td>"
                f"<td>{escape(CHANNELS.get(ch, ch))}</td>"
                f"<td>{escape(_type_label(str(ev.get('type', ''))))}</td>"
                f"<td>{escape(ACTIONS.get(action, action))}</td>"
                f"<td style=\"white-space:nowrap\">{escape(OUTCOMES.get(outcome, outcome))}</td>"
                f"<td>{_finding_tags(ev)}</td>"
                f'<td><a href="/events/{r.seq}">详情 Detail</a></td></tr>')
        out.append("</table>")
        table = "".join(out)
    else:
        table = '<div class="empty">没有符合条件的事件 No events match</div>'
    pager = _pager("/events", page, has_next, lambda n: query_string(f, page=n))
    return _list_page("events", "事件查询", "Events · 最新在前 newest first", form + note,
                      table + pager)


def event_detail_page(row: StoredEvent) -> str:
    """Everything one event carries (all of it masked), one field per line."""
    ev = row.event
    dev = ev.get("device") or {}
    ch, outcome = str(ev.get("channel", "")), str(ev.get("outcome", ""))
    action = str(ev.get("action", ""))
    findings = []
    for fs in ev.get("findings") or []:
        t = str(fs.get("type", ""))
        masked = ", ".join(str(m) for m in fs.get("masked") or [])
        hashes = ", ".join(str(h)[:16] + "…" for h in fs.get("hashes") or [])
        findings.append(f'<span class="tag">{escape(_type_label(t))} × {int(fs.get("count", 0))}'
                        f'</span> <span class="mask">{escape(masked)}</span>'
                        f' <span class="muted" title="keyed hash">{escape(hashes)}</span>')
    detail = ", ".join(f"{k} = {v}" for k, v in sorted((ev.get("detail") or {}).items()))
    fields = [
        ("时间 Time", _fmt_iso(ev.get("time"))),
        ("收到 Received", escape(_fmt_time(row.received_us))),
        ("事件编号 Event id", escape(str(ev.get("id", "")))),
        ("事件类型 Type", escape(_type_label(str(ev.get("type", ""))))),
        ("渠道 Channel", escape(CHANNELS.get(ch, ch))),
        ("网点 Branch", escape(str(dev.get("branch", "")))),
        ("终端 Terminal", escape(f"{dev.get('hostname', '')} ({dev.get('id', '')})")),
        ("柜员 Teller", escape(str(ev.get("teller", "")))),
        ("处置 Action", escape(ACTIONS.get(action, action))),
        ("策略规则 Rule", escape(str(ev.get("decision", "")))),
        ("结果 Outcome", escape(OUTCOMES.get(outcome, outcome))),
        ("发现 Findings", "<br>".join(findings) or "—"),
        ("理由 Justification", escape(str(ev.get("justification", ""))) or "—"),
        ("来源程序 Application", escape(str(ev.get("source_app", ""))) or "—"),
        ("详细 Detail", escape(detail) or "—"),
        ("版本 Versions", escape(f"agent {ev.get('agent_version', '')} · policy "
                                 f"{ev.get('policy_version', '')}")),
    ]
    dl = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in fields)
    body = (f"{_header('events')}</header><main><section class=\"card w12\">"
            f"<h2>事件详情<small>Event detail</small></h2><dl class=\"detail\">{dl}</dl>"
            '<p><a class="button light" href="/events">返回列表 Back to events</a></p>'
            "</section></main>")
    return _page("柜面隐私卫士 · 事件详情", body, refresh=False)


CSV_COLUMNS: tuple[str, ...] = (
    "时间 Time (UTC)", "网点 Branch", "终端 Terminal", "终端ID Device id", "柜员 Teller",
    "渠道 Channel", "事件类型 Type", "处置 Action", "结果 Outcome", "发现 Findings",
    "理由 Justification", "来源程序 Application", "策略规则 Rule", "事件编号 Event id",
)


def _cell(value: object) -> str:
    text = str(value)
    # a cell a spreadsheet would run as a formula (a teller's typed reason could start with =)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def csv_header() -> str:
    """The export's first line, with a BOM so a spreadsheet reads the Chinese as UTF-8."""
    buf = io.StringIO()
    csv.writer(buf).writerow(CSV_COLUMNS)
    return "\ufeff" + buf.getvalue()


def csv_rows(rows: Iterable[StoredEvent]) -> str:
    """Export lines for these events: the same masked values the page shows."""
    buf = io.StringIO()
    w = csv.writer(buf)
    for r in rows:
        ev = r.event
        dev = ev.get("device") or {}
        ch, outcome = str(ev.get("channel", "")), str(ev.get("outcome", ""))
        action = str(ev.get("action", ""))
        findings = "; ".join(
            f"{TYPES.get(str(f.get('type', '')), f.get('type', ''))}×{int(f.get('count', 0))} "
            + " ".join(str(m) for m in f.get("masked") or [])
            for f in ev.get("findings") or [])
        w.writerow([_cell(v) for v in (
            ev.get("time", ""), dev.get("branch", ""), dev.get("hostname", ""),
            dev.get("id", ""), ev.get("teller", ""), CHANNELS.get(ch, ch),
            _type_label(str(ev.get("type", ""))), ACTIONS.get(action, action),
            OUTCOMES.get(outcome, outcome), findings, ev.get("justification", ""),
            ev.get("source_app", ""), ev.get("decision", ""), ev.get("id", ""))])
    return buf.getvalue()


# ---------------------------------------------------------------------------------------------
# The codes page: every one-time approval code issued (its id, issuer, reason and use; never the
# code), newest first, filtered by status, terminal and channel.

CODE_FILTERS: tuple[str, ...] = ("status", "device", "channel")
CODE_STATUS_LABELS: dict[str, str] = {
    "valid": "有效 Valid",
    "spent": "已使用 Spent",
    "reused": "重复使用 Reused",
    "expired": "已过期未用 Expired",
    "unrecorded": "未登记 Unrecorded",
}
CODE_CHANNELS: dict[str, str] = {
    "clipboard": CHANNELS["clipboard"], "screen": CHANNELS["screen"],
    "print": CHANNELS["print"], "usb": CHANNELS["usb"], "file": CHANNELS["file"],
    "unlock": "解锁 Unlock",
}
_STATUS_COLOURS = {"reused": "#c0392b", "unrecorded": "#c0392b", "valid": "#1e7b34"}


def _code_query_string(filters: Mapping[str, str], **extra: str | int) -> str:
    pairs = [(k, v) for k, v in filters.items() if v and k in CODE_FILTERS]
    pairs += [(k, str(v)) for k, v in extra.items()]
    return urllib.parse.urlencode(pairs)


def codes_page(rows: list[IssuedCode], filters: Mapping[str, str], page: int, has_next: bool,
               now_us: int, error: str = "") -> str:
    """The issued one-time codes: the filter form, one page (newest first), the pager."""
    f = {k: filters.get(k, "") for k in CODE_FILTERS}
    form = (
        '<form class="filters" method="get" action="/codes">'
        + _select("status", "状态 Status", CODE_STATUS_LABELS, f["status"])
        + _text_input("device", "终端 Terminal (ID)", f["device"])
        + _select("channel", "用途 Channel", CODE_CHANNELS, f["channel"])
        + '<button type="submit">查询 Search</button></form>'
    )
    note = f'<p class="err">{escape(error)}</p>' if error else ""
    if rows:
        out = ["<table class=\"codes\"><tr><th>编号 No.</th><th>签发时间 Issued</th>"
               "<th>网点 Branch</th><th>终端 Terminal</th><th>用途 Channel</th>"
               "<th>有效至 Valid until</th><th>签发人 Issuer</th><th>事由 Reason</th>"
               "<th>状态 Status</th><th>使用时间 Used</th><th class=num>次数 Uses</th></tr>"]
        for c in rows:
            status = c.status(now_us)
            colour = _STATUS_COLOURS.get(status)
            style = f' style="color:{colour}"' if colour else ""
            out.append(
                f'<tr data-code="{c.seq}" data-status="{status}"><td class=num>#{c.seq}</td>'
                f'<td style="white-space:nowrap">{_fmt_time(c.issued_us)}</td>'
                f"<td>{escape(c.branch) or '—'}</td>"
                f'<td title="{escape(c.device_id)}">{escape(c.hostname or c.device_id)}</td>'
                f"<td>{escape(CODE_CHANNELS.get(c.channel, c.channel))}</td>"
                f'<td style="white-space:nowrap">{_fmt_time(c.valid_until_us)}</td>'
                f"<td>{escape(c.issuer) or '—'}</td><td class=why>{escape(c.reason) or '—'}</td>"
                f"<td{style}>{escape(CODE_STATUS_LABELS[status])}</td>"
                f'<td style="white-space:nowrap">{_fmt_time(c.spent_us)}</td>'
                f"<td class=num>{c.uses}</td></tr>")
        out.append("</table>")
        table = "".join(out)
    else:
        table = '<div class="empty">没有符合条件的授权码 No codes match</div>'
    pager = _pager("/codes", page, has_next, lambda n: _code_query_string(f, page=n))
    return _list_page("codes", "一次性授权码", "One-time approval codes · "
                      "签发、使用、过期与重复使用 issued, spent, expired and reused · "
                      "不显示授权码本身 the codes themselves are never shown",
                      form + note, table + pager)
