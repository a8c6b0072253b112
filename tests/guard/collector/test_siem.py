"""SIEM forwarding: a real rsyslogd receives one parseable CEF line per stored event."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from guard.collector.siem import cef, cef_header, cef_value, frame, syslog_message
from guard.model import Action, Channel, Device, Event, FindingSummary, Outcome
from tests.support.servers import free_port, run_collector, start_rsyslog

from ._helpers import Terminal

TRICKY = "客户要求 a=b | c\\d\nsecond line\r end"


def parse_cef(record: str) -> tuple[list[str], dict[str, str]]:
    """An independent CEF reader: 7 header fields (after CEF:0) and the extension map."""
    assert record.startswith("CEF:"), record
    header: list[str] = []
    cur: list[str] = []
    i = 0
    while len(header) < 7:
        ch = record[i]
        if ch == "\\" and record[i + 1] in "\\|":
            cur.append(record[i + 1])
            i += 2
            continue
        if ch == "|":
            header.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
        i += 1
    ext_text = record[i:]
    ext: dict[str, str] = {}
    key: str | None = None
    buf: list[str] = []
    j = 0
    unescape = {"\\": "\\", "=": "=", "n": "\n", "r": "\r"}
    while j < len(ext_text):
        ch = ext_text[j]
        if ch == "\\" and j + 1 < len(ext_text) and ext_text[j + 1] in unescape:
            buf.append("\0" + unescape[ext_text[j + 1]])  # marked as escaped
            j += 2
            continue
        if ch == "=":
            # the key is the word just before '=', after the last plain space
            plain = "".join(buf)
            cut = plain.rfind(" ")
            new_key = plain[cut + 1:]
            if key is not None:
                ext[key] = plain[:cut].replace("\0", "")
            key = new_key
            buf = []
        else:
            buf.append(ch)
        j += 1
    if key is not None:
        ext[key] = "".join(buf).replace("\0", "")
    return header[1:], ext


def _event(**kw: object) -> Event:
    base: dict[str, object] = {
        "type": "PRINT_JUSTIFY",
        "device": Device(id="dev-siem", hostname="TLR-DC-01", branch="0101 东城支行"),
        "channel": Channel.PRINT, "action": Action.JUSTIFY, "outcome": Outcome.JUSTIFIED,
        "teller": "zhang.wei", "justification": TRICKY, "source_app": "核心业务系统",
        "findings": [FindingSummary(type="CN_RESIDENT_ID", count=2, masked=["110***********123X"],
                                    hashes=["ab" * 16])],
    }
    base.update(kw)
    return Event.model_validate(base)


@pytest.mark.parametrize(
    ("raw", "header", "value"),
    [
        ("plain", "plain", "plain"),
        ("a|b", "a\\|b", "a|b"),
        ("a=b", "a=b", "a\\=b"),
        ("a\\b", "a\\\\b", "a\\\\b"),
        ("l1\nl2", "l1 l2", "l1\\nl2"),
        ("l1\r\nl2", "l1  l2", "l1\\nl2"),
        ("cr\r", "cr ", "cr\\r"),
        ("中文", "中文", "中文"),
    ],
)
def test_cef_escaping(raw: str, header: str, value: str) -> None:
    assert cef_header(raw) == header
    assert cef_value(raw) == value


def test_cef_round_trips_through_an_independent_parser() -> None:
    ev = _event(decision="print.id_card|strict")
    head, ext = parse_cef(cef(ev))
    assert head[:3] == ["Teller Guard", "Teller Guard", head[2]]
    assert head[3] == "PRINT_JUSTIFY"
    assert head[5] == "5"
    assert ext["msg"] == TRICKY
    assert ext["externalId"] == str(ev.id)
    assert ext["cs1"] == "0101 东城支行"
    assert ext["cs2"] == "CN_RESIDENT_ID:2"
    assert ext["cs3"] == "110***********123X"
    assert ext["cs4"] == "print.id_card|strict"
    assert ext["sproc"] == "核心业务系统"
    assert int(ext["rt"]) == int(ev.time.timestamp() * 1000)


def test_syslog_message_is_rfc5424_and_octet_counted() -> None:
    ev = _event(time=datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC),
                device=Device(id="d", hostname="bad host name", branch=""))
    msg = syslog_message(ev)
    assert msg.startswith(b"<109>1 2026-01-02T03:04:05.678000Z badhostname teller-guard - "
                          b"PRINT_JUSTIFY - CEF:0|")
    framed = frame(msg)
    length, _, rest = framed.partition(b" ")
    assert int(length) == len(rest) == len(msg)


@pytest.mark.parametrize("tls", [False, True], ids=["tcp", "tls"])
def test_rsyslog_receives_parseable_cef(tmp_path: Path, tls: bool) -> None:
    with start_rsyslog(tmp_path / "rsyslog", tls=tls) as rsyslog:
        scheme = "tls" if tls else "tcp"
        extra = ["--syslog", f"{scheme}://127.0.0.1:{rsyslog.port}"]
        if tls:
            extra += ["--syslog-ca", str(rsyslog.ca_file)]
        with run_collector(f"sqlite:///{tmp_path / 'c.db'}", extra_args=extra) as c:
            t = Terminal(c, c.enroll_token, "dev-siem", hostname="TLR-DC-01",
                         branch="0101 东城支行")
            events = [_event(id=uuid.uuid4()) for _ in range(20)]
            assert t.send(events).status_code == 200
            # duplicates are acknowledged but not forwarded again
            assert t.send(events[:5]).status_code == 200
            lines = rsyslog.wait_for_lines(20)
        time.sleep(0.2)
        lines = rsyslog.lines()
    assert len(lines) == 20, lines[:3]
    seen: dict[str, dict[str, str]] = {}
    for line in lines:
        host, app, msgid, facility, severity, _ts, record = line.split(" ", 6)
        assert (host, app, msgid, facility, severity) == (
            "TLR-DC-01", "teller-guard", "PRINT_JUSTIFY", "13", "5")
        head, ext = parse_cef(record)
        assert head[3] == "PRINT_JUSTIFY"
        seen[ext["externalId"]] = ext
    assert set(seen) == {str(e.id) for e in events}
    for ext in seen.values():
        assert ext["msg"] == TRICKY
        assert ext["dvchost"] == "TLR-DC-01"
        assert ext["suser"] == "zhang.wei"
        assert ext["cs3"] == "110***********123X"


def test_siem_away_does_not_block_ingestion_and_catches_up(tmp_path: Path) -> None:
    port = free_port()
    with run_collector(f"sqlite:///{tmp_path / 'c.db'}",
                       extra_args=["--syslog", f"tcp://127.0.0.1:{port}"]) as c:
        t = Terminal(c, c.enroll_token, "dev-siem", hostname="TLR-DC-01", branch="0101")
        events = [_event(id=uuid.uuid4()) for _ in range(10)]
        assert t.send(events).status_code == 200  # nobody listens on the SIEM port yet
        with start_rsyslog(tmp_path / "late", port=port) as rsyslog:
            lines = rsyslog.wait_for_lines(10, timeout=60)
    ids = {parse_cef(line.split(" ", 6)[6])[1]["externalId"] for line in lines}
    assert ids == {str(e.id) for e in events}


def test_a_siem_that_stops_reading_does_not_stall_ingestion(tmp_path: Path) -> None:
    """The SIEM accepts the connection but never reads: its socket buffers fill, the collector's
    forwarder blocks in send, and batches are still accepted and stored."""
    import socket

    with socket.socket() as stuck:
        stuck.bind(("127.0.0.1", 0))
        stuck.listen(1)
        port = stuck.getsockname()[1]
        with run_collector(f"sqlite:///{tmp_path / 'c.db'}",
                           extra_args=["--syslog", f"tcp://127.0.0.1:{port}"]) as c:
            t = Terminal(c, c.enroll_token, "dev-siem", hostname="TLR-DC-01", branch="0101")
            sent = 0
            for _ in range(12):  # ~12 MB of CEF, far beyond loopback socket buffers
                events = [_event(id=uuid.uuid4(), justification="说明" * 490) for _ in range(400)]
                r = t.send(events, compress=True)
                assert r.status_code == 200, r.text
                sent += len(events)
            page = httpx.get(f"{c}/api/v1/events", params={"limit": 1, "offset": sent - 1},
                             headers={"Authorization": f"Bearer {c.admin_token}"}).json()
            assert len(page["events"]) == 1
            c.stop()
            # proof that the SIEM really was stuck while all of the above was accepted
            assert "messages unsent" in c.log_path.read_text(encoding="utf-8")
