"""ClipboardWatcher: notify/redact/block, auto-clear only if unchanged, own changes ignored,
coalescing, bounds on huge text and images, binary formats, allow-listed applications."""

from __future__ import annotations

import struct
import threading
import zlib
from collections.abc import Callable, Iterator

import pytest

from guard.model import Outcome
from guard.pipeline.prompt import PromptAnswer, PromptRequest, ScriptedPrompter
from guard.platforms._fake import FakePlatform
from guard.ports import ClipboardContent
from guard.watchers.clipboard import ClipboardWatcher, png_size
from tests.support.core import Core
from tests.support.fakes import FakeClipboard, ImageTableScanner
from tests.support.xserver import wait_until

CARD = "6222021234560128"
RID = "11010519491231002X"
TEXT = f"客户卡号 {CARD}，身份证 {RID}。"


@pytest.fixture
def rig(core: Core) -> Iterator[tuple[Core, FakeClipboard, ClipboardWatcher, FakePlatform]]:
    port = FakeClipboard()
    platform = FakePlatform(owner="gedit")
    watcher = ClipboardWatcher(core.pipeline, port, platform=platform)
    port.listener = watcher.on_change  # our own set/clear come back like QClipboard.dataChanged
    watcher.start()
    yield core, port, watcher, platform
    watcher.stop()


def test_notify_then_auto_clear_when_unchanged(rig) -> None:  # type: ignore[no-untyped-def]
    core, port, watcher, _ = rig
    core.use("[clipboard]\nauto_clear_s = 0.2\n")
    watcher.on_change(port.copy(TEXT))
    assert wait_until(lambda: len(core.prompter.notified) == 2)  # the last step of auto-clear
    assert watcher.stats().auto_cleared == 1 and port.clears == 1
    assert port.current() == ClipboardContent()
    assert core.types() == ["CLIPBOARD_COPY", "CLIPBOARD_CLEARED"]
    copy, cleared = core.sink.events
    assert copy.outcome == Outcome.NOTIFIED and copy.source_app == "gedit"
    assert cleared.outcome == Outcome.CLEARED
    assert [r.kind for r in core.prompter.notified] == ["copy", "cleared"]
    assert watcher.wait_idle()
    assert watcher.stats().own_ignored == 0  # clears are empty content: never scanned
    assert len(core.sink.events) == 2


def test_auto_clear_leaves_changed_content_alone(rig) -> None:  # type: ignore[no-untyped-def]
    core, port, watcher, _ = rig
    core.use("[clipboard]\nauto_clear_s = 0.3\n")
    watcher.on_change(port.copy(TEXT))
    assert watcher.wait_idle()
    watcher.on_change(port.copy("会议纪要，无客户信息"))  # the teller copied something else
    assert wait_until(lambda: watcher.stats().auto_clear_kept == 1)
    assert port.clears == 0 and port.current() is not None
    assert port.current().text == "会议纪要，无客户信息"  # type: ignore[union-attr]
    assert core.types() == ["CLIPBOARD_COPY"]


def test_redact_replaces_with_masked_text_and_ignores_its_own_change(rig) -> None:  # type: ignore[no-untyped-def]
    core, port, watcher, _ = rig
    core.use('[clipboard]\naction = "redact"\n')
    watcher.on_change(port.copy(TEXT))
    assert wait_until(lambda: watcher.stats().own_ignored == 1)
    assert watcher.wait_idle()
    assert port.sets == ["客户卡号 622202******0128，身份证 110***********002X。"]
    assert core.types() == ["CLIPBOARD_COPY"]
    assert core.sink.events[0].outcome == Outcome.REDACTED
    assert [r.kind for r in core.prompter.notified] == ["redacted"]
    # the same masked text copied again by the teller is the teller's change, not ours
    watcher.on_change(port.copy(port.sets[0]))
    assert watcher.wait_idle()
    assert watcher.stats().scanned == 2 and core.types() == ["CLIPBOARD_COPY"]  # clean: silent


def test_block_empties_the_clipboard(rig) -> None:  # type: ignore[no-untyped-def]
    core, port, watcher, _ = rig
    core.use('[clipboard]\naction = "block"\n')
    watcher.on_change(port.copy(TEXT))
    assert wait_until(lambda: port.clears == 1)
    assert watcher.wait_idle()
    assert core.sink.events[0].outcome == Outcome.BLOCKED
    assert port.current() == ClipboardContent()


def test_allow_listed_application_is_only_audited(rig) -> None:  # type: ignore[no-untyped-def]
    core, port, watcher, platform = rig
    core.use('[clipboard]\naction = "block"\napp_allowlist = ["CoreBanking.exe"]\n')
    platform.owner = "CoreBanking.exe"
    watcher.on_change(port.copy(TEXT))
    assert watcher.wait_idle()
    assert port.clears == 0 and core.prompter.notified == []
    (event,) = core.sink.events
    assert event.outcome == Outcome.RECORDED and event.decision == "clipboard.allowlist"
    assert event.source_app == "CoreBanking.exe"


class GatedPrompter(ScriptedPrompter):
    """Holds the worker inside the first ask() until the test opens the gate."""

    def __init__(self) -> None:
        super().__init__(default=PromptAnswer(True))
        self.entered = threading.Event()
        self.gate = threading.Event()

    def ask(self, request: PromptRequest) -> PromptAnswer:
        self.entered.set()
        self.gate.wait(30)
        return super().ask(request)


def test_rapid_fire_changes_are_coalesced(make_core: Callable[..., Core]) -> None:
    core = make_core(GatedPrompter())
    core.use('[clipboard]\naction = "confirm"\nauto_clear_s = 0\n')
    port = FakeClipboard()
    watcher = ClipboardWatcher(core.pipeline, port)
    watcher.start()
    try:
        watcher.on_change(port.copy(f"first {CARD}"))
        prompter = core.prompter
        assert isinstance(prompter, GatedPrompter) and prompter.entered.wait(10)
        for i in range(100):  # 100 changes while the worker is busy with the first
            watcher.on_change(port.copy(f"copy {i} 1380013{i:04d}"))
        watcher.on_change(port.copy(f"last {RID}"))
        prompter.gate.set()
        assert watcher.wait_idle()
        stats = watcher.stats()
        assert stats.changes == 102 and stats.coalesced == 100 and stats.scanned == 2
        assert [e.findings[0].type for e in core.sink.events] == ["BANK_CARD", "CN_RESIDENT_ID"]
    finally:
        watcher.stop()


def test_huge_text_is_scanned_within_bounds(rig) -> None:  # type: ignore[no-untyped-def]
    core, port, watcher, _ = rig
    limit = 8 * 1024 * 1024
    text = f"卡号 {CARD} " + "x" * (200 * 1024 * 1024) + f" 身份证 {RID}"
    watcher.on_change(port.copy(text))
    assert watcher.wait_idle(120)
    (event,) = core.sink.events
    assert [f.type for f in event.findings] == ["BANK_CARD"]  # the ID lies beyond the limit
    assert event.detail["scanned_chars"] == limit
    assert event.detail["skipped_chars"] == len(text) - limit
    assert event.detail["skipped"] == "text beyond the first 8 MB"
    assert core.scanner.scanned_chars < limit * 1.01  # the limit plus chunk overlaps, not 200 MB


def test_huge_clean_text_says_what_was_skipped(rig) -> None:  # type: ignore[no-untyped-def]
    core, port, watcher, _ = rig
    limit = 8 * 1024 * 1024
    text = "x" * (limit + 1000)
    watcher.on_change(port.copy(text))
    assert watcher.wait_idle(120)
    (event,) = core.sink.events
    assert event.findings == []
    assert event.detail["skipped"] == "text beyond the first 8 MB"
    assert event.detail["skipped_chars"] == 1000


def test_small_clean_text_records_nothing(rig) -> None:  # type: ignore[no-untyped-def]
    core, port, watcher, _ = rig
    watcher.on_change(port.copy("今天的会议改到下午三点。"))
    assert watcher.wait_idle(30)
    assert core.sink.events == []


def _png_header(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk
            + struct.pack(">I", zlib.crc32(chunk)))


def big_png(width: int, height: int) -> bytes:
    """A real, valid PNG of width x height black pixels (compressed row by row)."""
    comp = zlib.compressobj(1)
    row = b"\x00" + b"\x00" * (3 * width)
    data = b"".join(comp.compress(row) for _ in range(height)) + comp.flush()
    idat = b"IDAT" + data
    iend = b"IEND"
    return (_png_header(width, height) + struct.pack(">I", len(data)) + idat
            + struct.pack(">I", zlib.crc32(idat)) + struct.pack(">I", 0) + iend
            + struct.pack(">I", zlib.crc32(iend)))


def test_huge_image_is_skipped_with_a_reason(rig) -> None:  # type: ignore[no-untyped-def]
    core, _port, watcher, _ = rig
    reader = ImageTableScanner(lambda png: [])
    core.pipeline.scanner = reader
    scanned = reader.images
    image = big_png(20000, 20000)
    assert png_size(image) == (20000, 20000)
    watcher.on_change(ClipboardContent(image=image, formats=("image/png",), size=len(image)))
    assert watcher.wait_idle(60)
    (event,) = core.sink.events
    assert event.type == "CLIPBOARD_SKIPPED" and event.outcome == Outcome.SKIPPED
    assert event.detail["skipped"] == "image of 20000x20000 pixels exceeds 50000000 pixels"
    assert scanned == []
    assert [(r.kind, r.detail) for r in core.prompter.notified] == [
        ("skipped", {"skipped": "image of 20000x20000 pixels exceeds 50000000 pixels"})]


def test_image_goes_to_the_image_scanner_when_within_limits(rig) -> None:  # type: ignore[no-untyped-def]
    core, _port, watcher, _ = rig
    card = core.scanner.scan_text(CARD)
    reader = ImageTableScanner(lambda png: card)
    core.pipeline.scanner = reader
    scanned = reader.images
    image = big_png(64, 32)
    watcher.on_change(ClipboardContent(image=image, formats=("image/png",), size=len(image)))
    assert watcher.wait_idle()
    assert scanned == [image]
    (event,) = core.sink.events
    assert event.type == "CLIPBOARD_COPY_IMAGE" and event.detail["width"] == 64


def test_image_without_image_scanner_is_reported_quietly(rig) -> None:  # type: ignore[no-untyped-def]
    core, _port, watcher, _ = rig
    image = big_png(64, 32)
    watcher.on_change(ClipboardContent(image=image, formats=("image/png",), size=len(image)))
    assert watcher.wait_idle()
    (event,) = core.sink.events
    assert event.detail["skipped"] == "image not scanned: no image scanner loaded"
    assert core.prompter.notified == []


def test_binary_formats_are_reported_not_scanned(rig) -> None:  # type: ignore[no-untyped-def]
    core, _port, watcher, _ = rig
    watcher.on_change(ClipboardContent(formats=("application/x-qt-windows-mime;value=\"Biff8\"",
                                                "application/octet-stream"), size=40960))
    assert watcher.wait_idle()
    (event,) = core.sink.events
    assert event.type == "CLIPBOARD_SKIPPED" and event.detail["bytes"] == 40960
    assert "binary formats not scanned" in str(event.detail["skipped"])
    assert "application/octet-stream" in str(event.detail["formats"])
    assert core.scanner.calls == 0


def test_a_failing_content_does_not_stop_the_watcher(rig) -> None:  # type: ignore[no-untyped-def]
    core, port, watcher, platform = rig

    def broken() -> str:
        raise RuntimeError("owner lookup exploded")

    platform.clipboard_owner_app = broken  # type: ignore[method-assign]
    watcher.on_change(port.copy(TEXT))
    assert watcher.wait_idle()
    assert core.types() == ["CLIPBOARD_ERROR"] and watcher.state == "running"
    platform.clipboard_owner_app = lambda: "gedit"  # type: ignore[method-assign]
    watcher.on_change(port.copy(TEXT))
    assert watcher.wait_idle()
    assert core.types() == ["CLIPBOARD_ERROR", "CLIPBOARD_COPY"]


def test_state_reports_a_stopped_watcher(core: Core) -> None:
    watcher = ClipboardWatcher(core.pipeline, FakeClipboard())
    assert watcher.state.startswith("unavailable")
    watcher.start()
    assert watcher.state == "running"
    watcher.stop()
    assert watcher.state.startswith("unavailable")


def test_redaction_never_overwrites_a_newer_copy(make_core: Callable[..., Core]) -> None:
    """The teller copies again while the first copy is being handled: the redaction of the first
    must not replace the second."""
    core = make_core()
    core.use('[clipboard]\naction = "redact"\n')
    port = FakeClipboard()
    watcher = ClipboardWatcher(core.pipeline, port)
    first = port.copy(TEXT)

    def redact_late(findings):  # type: ignore[no-untyped-def]
        port.copy("新的内容")  # the teller's newer copy lands before the redaction is applied
        return watcher.set_text("masked", replaces=first.fingerprint())

    from guard.model import Channel, Observation
    from guard.pipeline.pipeline import Enforcement

    handled = core.pipeline.handle(Observation(Channel.CLIPBOARD, "copy", text=TEXT),
                                   Enforcement(redact=redact_late, block=watcher.clear))
    assert handled.outcome == Outcome.REDACTED
    assert port.stale_sets == 1 and port.sets == []
    assert port.current().text == "新的内容"  # type: ignore[union-attr]


def test_empty_contents_are_ignored(rig) -> None:  # type: ignore[no-untyped-def]
    core, _port, watcher, _ = rig
    watcher.on_change(ClipboardContent())
    assert watcher.wait_idle()
    watcher.on_change(ClipboardContent(text="", formats=("text/plain",)))
    assert watcher.wait_idle()
    assert core.sink.events == [] and watcher.stats().skipped == 0


def test_copied_files_are_scanned_within_bounds(rig, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from guard.scan.engine import Scanner

    core, _port, watcher, _ = rig
    core.pipeline.scanner = Scanner(key=b"k" * 32)
    core.use("[clipboard]\nmax_text_mb = 1\n")
    letter = tmp_path / "客户资料.txt"
    letter.write_text(f"客户身份证号码 {RID}\n", encoding="utf-8")
    big = tmp_path / "big.txt"
    big.write_bytes(b"x" * (2 * 1024 * 1024))
    paths = (str(letter), str(big), str(tmp_path / "gone.txt"))
    watcher.on_change(ClipboardContent(paths=paths, formats=("text/uri-list",)))
    assert watcher.wait_idle()
    (event,) = core.sink.events
    assert event.type == "CLIPBOARD_COPY_FILES" and event.outcome == Outcome.NOTIFIED
    assert [f.type for f in event.findings] == ["CN_RESIDENT_ID"]
    assert event.detail["files"] == 3 and event.detail["files_scanned"] == 1
    assert event.detail["files_skipped"] == 2
