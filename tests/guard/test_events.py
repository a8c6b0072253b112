"""guard.events: one EventType naming every event the guard records, each labelled in Chinese and
English in the core, in the UI's translations and on the dashboard; one factory builds them."""

from __future__ import annotations

import re
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from guard.events import (
    KINDS,
    NOT_SCANNED,
    ClipboardKind,
    EventType,
    IdleKind,
    SystemKind,
    UnknownEventType,
    event_type,
    new_event,
)
from guard.model import Action, Category, Channel, Device, Event, Finding, Outcome

ROOT = Path(__file__).resolve().parents[2]
TS = ROOT / "resources" / "translations" / "teller_guard_zh_CN.ts"
DEVICE = Device(id="dev", hostname="pc")
# Kinds no event carries: prompt kinds (what the teller is told) and the idle poll (decided, and
# recorded only as the warning or the lock it leads to).
NOT_RECORDED = {(Channel.CLIPBOARD, ClipboardKind.REDACTED),
                (Channel.CLIPBOARD, ClipboardKind.BLOCKED),
                (Channel.SYSTEM, SystemKind.ALREADY_RUNNING), (Channel.IDLE, IdleKind.IDLE)}


def test_every_type_has_a_chinese_and_an_english_label() -> None:
    for t in EventType:
        assert t.value == t.name  # the wire string is the name: nothing on the wire changed
        assert t.zh and t.en and t.zh != t.en, t
        assert re.search(r"[\u4e00-\u9fff]", t.zh), f"{t}: {t.zh!r} is not Chinese"
        assert t.en.isascii(), t
        if t.channel is not Channel.SYSTEM:
            assert t.value.lower().startswith(t.channel.value + "_"), t


def test_the_ui_labels_every_type_through_qt_translations() -> None:
    i18n = pytest.importorskip("ui.i18n")
    assert set(i18n.EVENT_TYPES) == set(EventType)
    for t in EventType:
        assert i18n.EVENT_TYPES[t] == t.en, t  # the UI's source string is the core's English
    events = [c for c in ET.parse(TS).getroot().iter("context") if c.findtext("name") == "Events"]
    (context,) = events
    translated: dict[str, str] = {}
    for message in context.iter("message"):
        tr = message.find("translation")
        assert tr is not None
        if tr.get("type") not in ("unfinished", "obsolete", "vanished") and tr.text:
            translated[message.findtext("source") or ""] = tr.text
    for t in EventType:
        assert translated.get(t.en) == t.zh, f"{t}: zh_CN .ts has {translated.get(t.en)!r}"


def test_the_dashboard_shows_a_label_for_every_type() -> None:
    from guard.collector import dashboard
    from guard.collector.store import Overview

    for t in EventType:
        assert dashboard.TYPES[t.value] == t.zh
    html = dashboard.render(Overview(now_us=0, hourly=[], by_branch_channel=[],
                                     by_type=[(t.value, 1) for t in EventType], total_24h=0), 900)
    for t in EventType:
        assert f"{t.zh} <span class=muted>{t.value}</span>" in html, t


def test_every_watcher_kind_names_an_event_type() -> None:
    for channel, kinds in KINDS.items():
        for kind in kinds:
            if (channel, kind) in NOT_RECORDED:
                continue
            assert event_type(channel, kind).channel is channel, (channel, kind)
    assert event_type(Channel.USB, "volume_mounted") == "USB_VOLUME_MOUNTED"
    assert event_type(Channel.IDLE, IdleKind.WARN) is EventType.IDLE_WARN
    assert event_type(Channel.CLIPBOARD, NOT_SCANNED) is EventType.CLIPBOARD_SKIPPED
    with pytest.raises(UnknownEventType, match=r"add it to guard\.events\.EventType"):
        event_type(Channel.PRINT, "faxed")


def _strings_recorded_in(source: str) -> set[str]:
    """Event-type strings a module spells out: record("X", …), Event(type="X"), X = "X"."""
    found = set(re.findall(r'record\(\s*"([A-Z][A-Z_]+)"', source))
    found |= set(re.findall(r'Event\(\s*type="([A-Z][A-Z_]+)"', source))
    found |= {name for name, value in re.findall(r'^([A-Z][A-Z_]+) = "([A-Z][A-Z_]+)"$', source,
                                                 re.MULTILINE) if name == value}
    return found


def test_no_event_type_is_spelled_out_outside_the_enum() -> None:
    """Every producer names its event through `EventType`: no module outside guard/events.py
    records, builds or defines an event type as a free string."""
    spelled: dict[str, str] = {}
    for path in (ROOT / "guard").rglob("*.py"):
        if path.is_relative_to(ROOT / "guard" / "scan") or path == ROOT / "guard" / "events.py":
            continue  # finding types (BANK_CARD …) are not event types
        for s in _strings_recorded_in(path.read_text(encoding="utf-8")):
            spelled[s] = str(path.relative_to(ROOT))
    assert spelled == {}
    # the scan itself finds what it looks for
    assert _strings_recorded_in('record("PIN_SET", x)\nEvent(type="HEARTBEAT")\n'
                                'SERVICE_STARTED = "SERVICE_STARTED"\n') == {
        "PIN_SET", "HEARTBEAT", "SERVICE_STARTED"}


def test_the_factory_builds_a_valid_event_on_the_type_channel() -> None:
    finding = Finding(type="BANK_CARD", start=0, end=16, score=0.9, masked="622202******0128",
                      hash="h" * 32, category=Category.C2)
    event = new_event(EventType.CLIPBOARD_COPY, device=DEVICE, action=Action.NOTIFY,
                      outcome=Outcome.NOTIFIED, findings=[finding, finding], teller="t" * 300,
                      decision="clipboard.action", source_app="gedit", detail={"chars": 40})
    assert isinstance(event.id, uuid.UUID) and event.type == "CLIPBOARD_COPY"
    assert event.channel is Channel.CLIPBOARD and len(event.teller) == 128
    assert [(f.type, f.count, f.masked) for f in event.findings] == [
        ("BANK_CARD", 2, ["622202******0128"])]
    assert Event.from_json(event.to_json()) == event
    assert new_event("HEARTBEAT", device=DEVICE).channel is Channel.SYSTEM
    with pytest.raises(UnknownEventType, match="unknown event type 'HEARTBEET'"):
        new_event("HEARTBEET", device=DEVICE)
    with pytest.raises(UnknownEventType, match="belongs to channel idle"):
        new_event(EventType.IDLE_LOCK, device=DEVICE, channel=Channel.CLIPBOARD)
