"""The real agent guards the clipboard of other X clients: another process copies with xclip, the
agent redacts, and `xclip -o` sees the masked text. Bad input keeps it responsive."""

from __future__ import annotations

import struct
import time
import zlib

from harness import AgentProcess, XServer, wait_until

CUSTOMER_TEXT = "客户：张三 卡号 6222021234567890128 手机 13812345678 请核对"
MASKED_CARD = "622202*********0128"
MASKED_MOBILE = "138****5678"


def copy_and_expect_redaction(xs: XServer, agent: AgentProcess, text: str) -> str:
    before = len(agent.events("CLIPBOARD_COPY"))
    xs.clipboard_set(text.encode())
    agent.wait_event("CLIPBOARD_COPY", after=before)
    pasted = wait_until(lambda: (out := xs.clipboard_get().decode()) != text and out,
                        timeout=15, what="the redacted clipboard")
    assert isinstance(pasted, str)
    return pasted


def test_copy_in_another_process_is_redacted(xs: XServer, agent: AgentProcess) -> None:
    pasted = copy_and_expect_redaction(xs, agent, CUSTOMER_TEXT)
    assert pasted == f"客户：张三 卡号 {MASKED_CARD} 手机 {MASKED_MOBILE} 请核对"
    event = agent.events("CLIPBOARD_COPY")[-1]
    assert event.outcome == "redacted"
    assert "6222021234567890128" not in agent.output()
    assert "13812345678" not in agent.output()


def test_the_tray_icon_is_docked_and_a_second_start_exits(xs: XServer,
                                                         agent: AgentProcess) -> None:
    agent.wait_line("tray available=True", timeout=5)
    second = xs.run(*agent.argv(), check=False, timeout=60)
    assert second.returncode == 0
    assert b"already running in this session" in second.stderr
    assert agent.alive


def test_clean_text_is_left_alone(xs: XServer, agent: AgentProcess) -> None:
    xs.clipboard_set("会议纪要：明天九点开会".encode())
    time.sleep(0.5)  # nothing is expected to happen; give the agent the chance to act wrongly
    assert xs.clipboard_get().decode() == "会议纪要：明天九点开会"


def test_binary_format_is_reported_as_skipped(xs: XServer, agent: AgentProcess) -> None:
    before = len(agent.events("CLIPBOARD_SKIPPED"))
    xs.clipboard_set(bytes(range(256)) * 64, target="application/x-core-banking-record")
    event = agent.wait_event("CLIPBOARD_SKIPPED", after=before)
    assert "application/x-core-banking-record" in str(event.detail) or event.detail.get("skipped")
    # still responsive
    assert MASKED_CARD in copy_and_expect_redaction(xs, agent, CUSTOMER_TEXT)


def huge_png(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    row = b"\x00" * (1 + (width + 7) // 8)
    comp = zlib.compressobj(9)
    body = b"".join(comp.compress(row) for _ in range(height)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body)
            + chunk(b"IEND", b""))


def test_huge_image_is_skipped_with_a_reason(xs: XServer, agent: AgentProcess) -> None:
    before = len(agent.events("CLIPBOARD_SKIPPED"))
    xs.clipboard_set(huge_png(20000, 20000), target="image/png")
    event = agent.wait_event("CLIPBOARD_SKIPPED", after=before)
    assert "20000" in str(event.detail["skipped"])
    assert MASKED_CARD in copy_and_expect_redaction(xs, agent, CUSTOMER_TEXT)


def test_200_mb_text_is_scanned_within_bounds(xs: XServer, agent: AgentProcess) -> None:
    before = len(agent.events("CLIPBOARD_COPY"))
    block = ("柜面流水 " * 100 + "\n").encode()
    big = CUSTOMER_TEXT.encode() + b"\n" + block * (200 * 1024 * 1024 // len(block) + 1)
    assert len(big) >= 200 * 1024 * 1024
    xs.clipboard_set(big)
    event = agent.wait_event("CLIPBOARD_COPY", after=before, timeout=120,
                             where=lambda e: "skipped" in e.detail)
    assert "MB" in str(event.detail["skipped"])
    assert int(str(event.detail["skipped_chars"])) > 0
    assert MASKED_CARD in copy_and_expect_redaction(xs, agent, CUSTOMER_TEXT)


def test_rapid_fire_changes_leave_no_raw_data_and_the_agent_responsive(
        xs: XServer, agent: AgentProcess) -> None:
    agent.wait_quiet()
    before = len(agent.events("CLIPBOARD_COPY"))
    started = time.monotonic()
    for i in range(100):  # as fast as xclip can take the selection: about 100 changes a second
        xs.clipboard_set(f"流水 {i} 卡号 6222021234567890128".encode())
    rate = 100 / (time.monotonic() - started)
    agent.wait_quiet()
    final = xs.clipboard_get().decode()
    # The clipboard ends masked: no raw card number survives the burst. (It is the last copy
    # unless a redaction of the one before landed over it: ClipboardPort.set_text(replaces=...)
    # prevents that once the clipboard watcher passes the fingerprint.)
    assert MASKED_CARD in final and "6222021234567890128" not in final, (final, rate)
    assert agent.events("CLIPBOARD_COPY")[before:], "no decision at all during the burst"
    assert MASKED_CARD in copy_and_expect_redaction(xs, agent, CUSTOMER_TEXT)
