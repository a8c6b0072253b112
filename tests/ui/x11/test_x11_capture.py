"""The real agent on a real X server reads what a capture shows: a teller form is on screen, the
test presses PrintScreen with xdotool, the agent grabs, reads, tells the teller and records the
masked findings with their boxes; a capture tool's image on the clipboard is blacked out; a PNG
written into a screenshot folder is found; a program named like ToDesk is noticed."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import (
    AgentProcess,
    XServer,
    policy_text,
    start_agent,
    wait_until,
    write_policy,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from tests.guard.scan.test_images import render
from tests.support.servers import CollectorProcess, run_collector

pytest.importorskip("rapidocr_onnxruntime")

ID = "11010519491231002X"
CARD = "6222021234567890128"
FORM = [["柜面业务 · 客户信息查询"], ["客户姓名：", "张三"], ["证件号码：", ID],
        ["银行卡号：", CARD], ["联系电话：", "13812345678"]]


def form_png(size: tuple[int, int] = (1100, 360)) -> bytes:
    img, _ = render(FORM, size=size, fs=22)
    out = io.BytesIO()
    img.save(out, format="PNG")  # type: ignore[attr-defined]
    return out.getvalue()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("Screenshots")


@pytest.fixture(scope="module")
def capture_policy(tmp_path_factory: pytest.TempPathFactory, shots: Path) -> Path:
    body = policy_text() + f"""
[screen]
action = "notify"
clean = "none"
default_folders = false
folders = ["{shots}"]

[remote_control]
poll_s = 0.5

[[rules]]
channel = "clipboard"
kind = "copy_image"
action = "redact"

[[rules]]
channel = "screen"
kind = "screenshot_file"
min_count = 1
action = "notify"

[[rules]]
channel = "screen"
kind = "screenshot_file"
action = "none"

[[rules]]
channel = "screen"
kind = "remote_control"
action = "notify"
"""
    return write_policy(tmp_path_factory.mktemp("cpolicy") / "policy.toml", body)


@pytest.fixture(scope="module")
def capture_collector(tmp_path_factory: pytest.TempPathFactory,
                      capture_policy: Path) -> Iterator[CollectorProcess]:
    db = tmp_path_factory.mktemp("ccollector") / "collector.db"
    with run_collector(f"sqlite:///{db}", extra_args=["--policy", str(capture_policy)]) as url:
        yield url


@pytest.fixture(scope="module")
def capture_agent(xs: XServer, capture_collector: CollectorProcess, capture_policy: Path,
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentProcess]:
    # the OCR worker exits 5 s after its last image (60 s by default), for the memory test
    proc = start_agent(xs, capture_collector, tmp_path_factory.mktemp("cagent"),
                       capture_policy, extra_env={"TELLER_GUARD_OCR_IDLE_S": "5"})
    yield proc
    assert proc.stop() == 0, proc.output()


@pytest.fixture
def form_window(xs: XServer, tmp_path: Path) -> Iterator[None]:
    """A teller form on screen (ImageMagick's `display`, at the top left)."""
    if shutil.which("display") is None:
        pytest.skip("ImageMagick display missing")
    path = tmp_path / "form.png"
    path.write_bytes(form_png())
    proc = subprocess.Popen(["display", "-title", "core-banking", "-geometry", "+0+0",
                             str(path)], env=xs.env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: xs.visible_windows("core-banking"), timeout=15,
                   what="the teller form window")
        yield
    finally:
        proc.terminate()
        proc.wait(5)


def test_printscreen_over_a_teller_form_is_read_and_reported(
        xs: XServer, capture_agent: AgentProcess, form_window: None) -> None:
    before = len(capture_agent.events("SCREEN_HOTKEY"))
    xs.key("Print")
    event = capture_agent.wait_event("SCREEN_HOTKEY", after=before, timeout=120)
    assert event.outcome == "notified"
    assert event.detail["hotkey"] == "<print_screen>"
    assert event.detail["width"] == 1920 and event.detail["height"] == 1080
    boxes = [tuple(int(v) for v in b.split(",")) for b in str(event.detail["boxes"]).split(";")]
    assert len(boxes) >= 3 and all(x < 1100 and y < 360 for x, y, _w, _h in boxes)
    wait_until(lambda: xs.visible_windows("Teller Guard notice"), timeout=10,
               what="the capture notice")
    assert ID not in capture_agent.output() and CARD not in capture_agent.output()


def test_a_capture_tools_image_on_the_clipboard_is_blacked_out(
        xs: XServer, capture_agent: AgentProcess, tmp_path: Path) -> None:
    from PIL import Image

    before = len(capture_agent.events("CLIPBOARD_COPY_IMAGE"))
    data = form_png()
    (tmp_path / "capture.png").write_bytes(data)
    xs.clipboard_set(data, target="image/png")
    event = capture_agent.wait_event("CLIPBOARD_COPY_IMAGE", after=before, timeout=120)
    assert event.outcome == "redacted"

    def blacked() -> bytes | None:
        out = xs.clipboard_get("image/png")
        return out if out.startswith(b"\x89PNG") and out != data else None

    pasted = wait_until(blacked, timeout=15, what="the blacked-out image")
    assert isinstance(pasted, bytes)
    img = Image.open(io.BytesIO(pasted)).convert("L")
    assert img.size == (1100, 360)
    # the ID's and the card's cells are black now; the label beside them is not
    _, where = render(FORM, size=(1100, 360), fs=22)
    for value in (ID, CARD):
        x, y, w, h = where[value]
        cell = list(img.crop((x, y, x + w, y + h)).getdata())
        assert sum(1 for v in cell if v == 0) > 0.9 * len(cell), value
    x, y, w, h = where["证件号码："]
    assert max(img.crop((x, y, x + w, y + h)).getdata()) > 200


def ocr_workers(parent: int) -> list[int]:
    """The pids of `parent`'s children running the OCR worker."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmd = (entry / "cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            continue
        if ppid == parent and b"guard.scan.ocr_worker" in cmd:
            found.append(int(entry.name))
    return found


def test_after_a_capture_the_agent_keeps_no_image_library(
        xs: XServer, capture_agent: AgentProcess, form_window: None) -> None:
    assert capture_agent.proc is not None
    pid = capture_agent.proc.pid
    before = len(capture_agent.events("SCREEN_HOTKEY"))
    xs.key("Print")
    event = capture_agent.wait_event("SCREEN_HOTKEY", after=before, timeout=120)
    assert event.outcome == "notified" and event.detail.get("boxes"), event
    before = len(capture_agent.events("CLIPBOARD_COPY_IMAGE"))
    xs.clipboard_set(form_png(), target="image/png")
    event = capture_agent.wait_event("CLIPBOARD_COPY_IMAGE", after=before, timeout=120)
    assert event.outcome == "redacted", event
    wait_until(lambda: not ocr_workers(pid), timeout=60, what="the OCR worker's idle exit")
    maps = Path(f"/proc/{pid}/maps").read_text()
    libraries = sorted({line.split()[-1] for line in maps.splitlines() if ".so" in line and (
        "/numpy" in line or "/PIL/" in line or "/cv2/" in line or "onnxruntime" in line)})
    assert libraries == [], libraries  # decoding, blacking out and OCR ran in the worker


def test_a_png_written_into_a_screenshot_folder_is_found(
        capture_agent: AgentProcess, shots: Path) -> None:
    before = len(capture_agent.events("SCREEN_SCREENSHOT_FILE"))
    (shots / "Screenshot_2026-01-31.png").write_bytes(form_png())
    event = capture_agent.wait_event("SCREEN_SCREENSHOT_FILE", after=before, timeout=120)
    assert event.outcome == "notified"
    assert str(event.detail["file"]).endswith("Screenshot_2026-01-31.png")


def test_a_program_named_like_todesk_is_noticed(capture_agent: AgentProcess,
                                                tmp_path: Path) -> None:
    todesk = tmp_path / "ToDesk"
    shutil.copy("/bin/sleep", todesk)
    before = len(capture_agent.events("SCREEN_REMOTE_CONTROL"))
    proc = subprocess.Popen([str(todesk), "30"])
    try:
        event = capture_agent.wait_event(
            "SCREEN_REMOTE_CONTROL", after=before, timeout=30,
            where=lambda e: e.detail.get("pid") == proc.pid)
        assert event.detail["program"] == "ToDesk" and event.outcome == "notified"
    finally:
        proc.kill()
        proc.wait(5)
