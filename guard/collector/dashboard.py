"""The compliance dashboard page, rendered on the server as one self-contained HTML document.

No scripts and no external assets (a bank's network has no CDN): inline CSS and inline SVG only.
Labels are Chinese first with English beside them. Every value from events is HTML-escaped; only
masked values, counts and types are shown, as the events carry nothing else.
"""

from __future__ import annotations

from datetime import datetime
from html import escape
from typing import Any

from guard.collector.store import HOUR_US, US, DeviceRecord, Overview
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
    "acknowledged": "已确认 Acknowledged",
    "justified": "已说明理由 Justified",
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
<header><h1>柜面隐私卫士 · 合规看板</h1><span class="en">Teller Guard · Compliance dashboard</span>
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
