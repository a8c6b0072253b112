"""The capture channels on the real scanner and OCR worker: screen hotkeys, clipboard images,
screenshot folders, remote-control programs, the at-rest sweep and the watermark."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

pytest.importorskip("cv2")
pytest.importorskip("rapidocr_onnxruntime")

from guard.app.image_scanner import ImageCapableScanner
from guard.app.keyboard import SharedKeyboardHook
from guard.enforce.quarantine import Quarantine
from guard.enforce.watermark import WatermarkController
from guard.pipeline.prompt import PromptAnswer, ScriptedPrompter
from guard.ports import ClipboardContent
from guard.scan.engine import Scanner
from guard.scan.ocr_worker import OcrWorker
from guard.watchers.clipboard import ClipboardWatcher
from guard.watchers.files import ScreenshotFolderWatcher
from guard.watchers.remote_control import RemoteControlWatcher
from guard.watchers.screen import ScreenCaptureWatcher
from guard.watchers.sweep import Sweeper, SweepState
from tests.guard.scan.test_images import render, render_id_card
from tests.support.core import Core
from tests.support.fakes import FakeClipboard
from tests.support.waiting import eventually

ID = "11010519491231002X"
CARD = "6222021234567890128"
MASKED_ID = Scanner(key=b"k" * 32).scan_text(f"身份证号 {ID}")[0].masked
FORM = [["客户姓名", "张三"], ["证件号码", ID], ["银行卡号", CARD], ["联系电话", "13812345678"]]


@pytest.fixture(scope="module")
def images() -> Iterator[ImageCapableScanner]:
    reader = ImageCapableScanner(Scanner(key=b"k" * 32), ocr=OcrWorker(idle_s=120))
    yield reader
    reader.stop()


@pytest.fixture
def core(images: ImageCapableScanner) -> Core:
    core = Core(ScriptedPrompter())
    core.pipeline.scanner = images
    return core


def png(img: object) -> bytes:
    out = io.BytesIO()
    img.save(out, format="PNG")  # type: ignore[attr-defined]
    return out.getvalue()


class Keys:
    """The OS keyboard hook's boundary: combos registered, presses delivered by the test."""

    def __init__(self) -> None:
        self.combos: dict[str, Callable[[], None]] = {}
        self.started = self.stopped = 0

    def __call__(self, on_error: object = None) -> Keys:
        return self

    def register(self, combo: str, callback: Callable[[], None]) -> None:
        self.combos[combo] = callback

    def start(self) -> None:
        self.started += 1

    def stop(self) -> None:
        self.stopped += 1

    def check(self) -> None:
        return None


def test_printscreen_grabs_reads_and_asks_with_masked_findings_and_boxes(
        core: Core, images: ImageCapableScanner) -> None:
    import numpy as np

    screen = np.asarray(render(FORM, size=(1280, 400))[0].convert("RGB"))[:, :, ::-1].copy()
    core.prompter = ScriptedPrompter([PromptAnswer(proceed=True, reason="客户本人要求")])
    core.pipeline.prompter = core.prompter
    keys = Keys()
    watcher = ScreenCaptureWatcher(core.pipeline, SharedKeyboardHook(keys), images,
                                   grab=lambda: screen)
    done = threading.Event()
    watcher.on_handled = lambda handled: done.set()
    watcher.start()
    try:
        assert set(keys.combos) >= {"<print_screen>", "<alt>+<print_screen>", "<cmd>+<shift>+s",
                                    "<ctrl>+<alt>+a", "<alt>+a"}
        keys.combos["<print_screen>"]()
        assert done.wait(120)
    finally:
        watcher.stop()
    event = core.sink.of_type("SCREEN_HOTKEY")[-1]
    assert event.outcome.value == "justified"
    masked = {s.type: s.masked for s in event.findings}
    assert masked["CN_RESIDENT_ID"] == [MASKED_ID]
    assert masked["BANK_CARD"] == ["622202*********0128"]
    assert event.detail["hotkey"] == "<print_screen>"
    assert len(str(event.detail["boxes"]).split(";")) >= 3
    assert ID not in event.to_json() and CARD not in event.to_json()
    request = core.prompter.asked[-1]
    assert request.kind == "hotkey" and request.action.value == "justify"
    assert keys.stopped == 1


def test_the_shared_hook_stops_only_when_its_last_user_stops() -> None:
    keys = Keys()
    hook = SharedKeyboardHook(keys)
    hook.register("<ctrl>+<alt>+l", lambda: None)
    hook.start()
    hook.start()
    hook.stop()
    assert keys.stopped == 0 and hook.users == 1
    hook.stop()
    assert keys.stopped == 1 and "<ctrl>+<alt>+l" in keys.combos


def test_a_captured_image_on_the_clipboard_is_blacked_out_per_policy(core: Core) -> None:
    from PIL import Image

    core.use('[[rules]]\nchannel = "clipboard"\nkind = "copy_image"\naction = "redact"\n')
    port = FakeClipboard()
    watcher = ClipboardWatcher(core.pipeline, port)
    watcher.start()
    try:
        image = png(render(FORM)[0])
        content = ClipboardContent(image=image, formats=("image/png",), size=len(image))
        port.content = content
        watcher.on_change(content)
        assert watcher.wait_idle(120)
    finally:
        watcher.stop()
    event = core.sink.of_type("CLIPBOARD_COPY_IMAGE")[-1]
    assert event.outcome.value == "redacted"
    assert port.images and port.clears == 0
    out = Image.open(io.BytesIO(port.images[-1])).convert("L")
    # the rescanned copy shows no identifier any more
    assert core.pipeline.scanner.scan_image(port.images[-1]) == []  # type: ignore[union-attr]
    assert min(out.getdata()) == 0


def test_a_captured_image_is_cleared_when_policy_blocks(core: Core) -> None:
    core.use('[[rules]]\nchannel = "clipboard"\nkind = "copy_image"\naction = "block"\n')
    port = FakeClipboard()
    watcher = ClipboardWatcher(core.pipeline, port)
    watcher.start()
    try:
        image = png(render(FORM)[0])
        watcher.on_change(ClipboardContent(image=image, formats=("image/png",), size=len(image)))
        assert watcher.wait_idle(120)
    finally:
        watcher.stop()
    assert core.sink.of_type("CLIPBOARD_COPY_IMAGE")[-1].outcome.value == "blocked"
    assert port.clears == 1 and not port.images


def test_a_png_written_into_a_screenshot_folder_is_found_and_quarantined(
        core: Core, images: ImageCapableScanner, tmp_path: Path) -> None:
    core.use('[[rules]]\nchannel = "screen"\nkind = "screenshot_file"\nmin_count = 1\n'
             'action = "block"\n')
    folder = tmp_path / "Screenshots"
    folder.mkdir()
    box = Quarantine(tmp_path / "data" / "quarantine")
    watcher = ScreenshotFolderWatcher(core.pipeline, images, quarantine=box,
                                      folders=lambda: [folder])
    watcher.start()
    try:
        target = folder / f"截图 {ID}.png"
        target.write_bytes(png(render(FORM)[0]))
        eventually("the screenshot event", lambda: core.sink.of_type("SCREEN_SCREENSHOT_FILE"),
                   timeout=120)
    finally:
        watcher.stop()
    event = core.sink.of_type("SCREEN_SCREENSHOT_FILE")[-1]
    assert event.outcome.value == "blocked" and event.detail["quarantined"] is True
    assert event.detail["quarantine_encrypted"] is False  # no key in policy: moved, readable
    assert ID not in str(event.detail["file"]) and MASKED_ID in str(event.detail["file"])
    assert not target.exists()
    assert oct((tmp_path / "data" / "quarantine").stat().st_mode & 0o777) == "0o700"
    moved = [p for p in box.directory.iterdir() if p.suffix == ".png"]
    assert len(moved) == 1 and ID not in (box.directory / "index.jsonl").read_text()


def test_a_program_named_like_a_remote_control_tool_is_noticed(core: Core,
                                                                tmp_path: Path) -> None:
    todesk = tmp_path / "ToDesk"
    shutil.copy("/bin/sleep", todesk)
    proc = subprocess.Popen([str(todesk), "60"])
    try:
        core.use('[[rules]]\nchannel = "screen"\nkind = "remote_control"\naction = "justify"\n')
        core.prompter = ScriptedPrompter([PromptAnswer(proceed=False)])
        core.pipeline.prompter = core.prompter
        watcher = RemoteControlWatcher(core.pipeline)
        found = watcher.poll()
        assert [p.pid for p in found] == [proc.pid]
        assert watcher.poll() == []  # noticed once
        event = core.sink.of_type("SCREEN_REMOTE_CONTROL")[-1]
        assert event.detail["program"] == "ToDesk" and event.outcome.value == "cancelled"
        assert event.detail["ended"] is True  # the teller did not justify it: ended
        assert proc.wait(5) is not None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_the_sweep_finds_id_cards_and_customer_lists_and_is_incremental(
        core: Core, images: ImageCapableScanner, tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "Desktop").mkdir(parents=True)
    (home / "Documents" / "WeChat Files" / "wxid_1" / "FileStorage").mkdir(parents=True)
    (home / "Downloads").mkdir()
    png_bytes = png(render_id_card(ID))
    (home / "Desktop" / "身份证正面.png").write_bytes(png_bytes)
    (home / "Documents" / "WeChat Files" / "wxid_1" / "FileStorage" / f"{ID}.jpg").write_bytes(
        png(render_id_card(ID, cover=True)))
    (home / "Documents" / "客户名单.csv").write_text(
        f"姓名,身份证号,手机\n张三,{ID},13812345678\n", encoding="utf-8")
    (home / "Documents" / "会议纪要.txt").write_text("明天九点开会", encoding="utf-8")
    (home / "Downloads" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    state = SweepState(tmp_path / "state.json")
    sweeper = Sweeper(core.pipeline, images, state, cpu_share=1.0)
    report = sweeper.run([home])
    files = {r.masked_path.rsplit("/", 1)[-1]: r for r in report.retained}
    assert set(files) == {"身份证正面.png", f"{MASKED_ID}.jpg", "客户名单.csv"}
    assert report.errors == 1 and report.unreadable[0].endswith("broken.png")
    assert report.scanned == 5
    events = core.sink.of_type("FILE_RETAINED")
    assert len(events) == 3 and all(ID not in e.to_json() for e in events)
    assert {e.detail.get("document") for e in events} >= {"ID_CARD"}
    assert core.sink.of_type("FILE_SWEEP_DONE")[-1].detail["retained"] == 3
    # the next sweep (or this one after a restart) reads only what changed
    again = Sweeper(core.pipeline, images, SweepState(tmp_path / "state.json"), cpu_share=1.0)
    (home / "Documents" / "会议纪要.txt").write_text(f"卡号 {CARD}", encoding="utf-8")
    second = again.run([home])
    assert second.unchanged == 3 and second.scanned == 2  # the changed file and the broken one
    assert [r.masked_path.rsplit("/", 1)[-1] for r in second.retained] == ["会议纪要.txt"]


def test_the_sweep_quarantines_when_policy_says_so(core: Core, images: ImageCapableScanner,
                                                   tmp_path: Path) -> None:
    folder = tmp_path / "Desktop"
    folder.mkdir()
    (folder / "list.csv").write_text(f"{ID}\n", encoding="utf-8")
    box = Quarantine(tmp_path / "q")
    report = Sweeper(core.pipeline, images, SweepState(tmp_path / "s.json"), quarantine=box,
                     cpu_share=1.0).run([folder], quarantine=True)
    assert report.retained[0].quarantined and not (folder / "list.csv").exists()
    assert os.listdir(box.directory)


class Marks:
    def __init__(self) -> None:
        self.shown: list[tuple[str, float]] = []
        self.hidden = 0

    def show_watermark(self, text: str, opacity: float) -> None:
        self.shown.append((text, opacity))

    def hide_watermark(self) -> None:
        self.hidden += 1


def test_the_watermark_follows_policy(core: Core) -> None:
    marks = Marks()
    control = WatermarkController(core.pipeline, marks, device="PC-0420", clock=lambda: 0.0)
    control.tick()
    assert marks.shown == []  # off by default
    core.use("[watermark]\nenabled = true\nopacity = 0.1\n")
    control.tick()
    text, opacity = marks.shown[-1]
    assert text.startswith("t1 · PC-0420 · 19") and opacity == 0.1
    core.use("")
    control.tick()
    assert marks.hidden == 1
    assert [e.detail["watermark"] for e in core.sink.of_type("SCREEN_WATERMARK")] == [
        "shown", "hidden"]


def test_the_sweep_command_lists_masked_files_and_resumes_from_its_state(tmp_path: Path) -> None:
    import json as _json
    import subprocess as _sp
    import sys as _sys

    folder = tmp_path / "Desktop"
    folder.mkdir()
    (folder / f"客户{ID}.csv").write_text(f"姓名,身份证号\n张三,{ID}\n", encoding="utf-8")
    (folder / "clean.txt").write_text("明天开会", encoding="utf-8")
    env = {**os.environ, "TELLER_GUARD_DATA_DIR": str(tmp_path / "data"),
           "PYTHONPATH": str(Path(__file__).resolve().parents[3])}
    argv = [_sys.executable, "-m", "guard.cli", "sweep", "--format", "json", str(folder)]
    first = _sp.run(argv, env=env, capture_output=True, text=True, timeout=120)
    assert first.returncode == 1, first.stderr
    report = _json.loads(first.stdout)
    assert report["scanned"] == 2 and len(report["retained"]) == 1
    assert ID not in first.stdout and MASKED_ID in report["retained"][0]["file"]
    second = _json.loads(_sp.run(argv, env=env, capture_output=True, text=True,
                                 timeout=120).stdout)
    assert second["scanned"] == 0 and second["unchanged"] == 2
    assert second["still_retained"] == [report["retained"][0]["file"]]
