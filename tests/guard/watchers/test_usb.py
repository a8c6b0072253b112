"""The USB guard: decision logic on fake volumes, then real mounts — an ext4 loop image (kept
read-only until the teller justified) and a FAT image through fusefat — written to with `cp`."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from guard.events import EventType, UsbKind
from guard.model import Action, Outcome
from guard.pipeline.prompt import PromptAnswer, PromptRequest, ScriptedPrompter
from guard.platforms._fake import FakeVolumes
from guard.scan.engine import Scanner
from guard.watchers.usb import UsbGuard, scan_file
from tests.support.core import Core

RID = "11010519491231002X"
CSV = f"姓名,身份证号,手机\n张三,{RID},13800138000\n".encode()
WAIT_S = 30.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class NoObserver:
    """No file watching: the unit tests hand files to `file_written` themselves."""

    def start(self) -> None:
        raise OSError("not watching in this test")


def _guard(core: Core, volumes: FakeVolumes, clock: Clock | None = None) -> UsbGuard:
    guard = UsbGuard(core.pipeline, volumes, clock=clock or Clock(), observer_factory=NoObserver)
    return guard


def _settle(guard: UsbGuard) -> None:
    """Wait until no volume prompt is running."""
    assert guard.wait_prompts(WAIT_S), "a volume prompt never finished"


def test_a_new_volume_is_announced_and_justify_opens_a_window(tmp_path: Path) -> None:
    core = Core(ScriptedPrompter([PromptAnswer(proceed=True, reason="客户本人要求")]))
    core.use('[usb]\nread_only_until_justified = true\nallow_window_min = 10\n')
    volumes, clock = FakeVolumes(), Clock()
    guard = _guard(core, volumes, clock)
    volumes.attach(tmp_path)
    guard.poll()
    _settle(guard)
    (asked,) = core.prompter.asked
    assert asked.action is Action.JUSTIFY and asked.detail["volume"] == str(tmp_path)
    assert volumes.remounts == [(tmp_path, True), (tmp_path, False)]  # ro, then rw
    (event,) = core.sink.of_type(EventType.USB_VOLUME_MOUNTED)
    assert event.outcome is Outcome.JUSTIFIED and event.justification == "客户本人要求"
    assert event.detail["volume_state"] == "allowed" and event.detail["allowed_min"] == 10
    # the window ends: read-only again, and the teller is asked again
    clock.now += 10 * 60
    guard.poll()
    _settle(guard)
    assert len(core.prompter.asked) == 2  # the script is empty now: the safe choice ...
    assert volumes.ejected == [tmp_path]  # ... ejects the volume
    second = core.sink.of_type(EventType.USB_VOLUME_MOUNTED)[-1]
    assert second.outcome is Outcome.TIMED_OUT and second.detail["window_expired"] is True
    assert second.detail["volume_state"] == "ejected"


def test_block_ejects_without_asking_and_audit_allows(tmp_path: Path) -> None:
    core = Core()
    core.use('[usb]\nclean = "block"\n')
    volumes = FakeVolumes()
    guard = _guard(core, volumes)
    volumes.attach(tmp_path / "a")
    guard.poll()
    _settle(guard)
    assert core.prompter.asked == [] and volumes.ejected == [tmp_path / "a"]
    assert core.sink.events[-1].outcome is Outcome.BLOCKED
    core.use('[usb]\nclean = "audit"\nread_only_until_justified = true\n')
    volumes.attach(tmp_path / "b")
    guard.poll()
    _settle(guard)
    assert core.sink.events[-1].outcome is Outcome.RECORDED
    assert volumes.remounts[-2:] == [(tmp_path / "b", True), (tmp_path / "b", False)]


def _attached(core: Core, root: Path) -> tuple[UsbGuard, FakeVolumes]:
    core.prompter._answers.append(PromptAnswer(proceed=True, reason="业务办理需要"))
    volumes = FakeVolumes()
    guard = _guard(core, volumes)
    volumes.attach(root)
    guard.poll()
    _settle(guard)
    return guard, volumes


def test_files_with_customer_data_warn_and_may_be_deleted(tmp_path: Path) -> None:
    core = Core()
    guard, _ = _attached(core, tmp_path)
    (tmp_path / "list.csv").write_bytes(CSV)
    (tmp_path / "clean.txt").write_bytes(b"nothing here\n")
    guard.file_written(tmp_path / "list.csv")
    guard.file_written(tmp_path / "clean.txt")
    (event,) = core.sink.of_type(EventType.USB_FILE_WRITTEN)  # the clean file: nothing
    assert event.action is Action.NOTIFY and event.detail["file"] == "list.csv"
    assert RID not in event.to_json()
    (toast,) = core.prompter.notified
    assert toast.detail["file"] == "list.csv" and toast.detail["volume"] == str(tmp_path)
    core.use('[usb]\ndelete_on_findings = true\n')
    guard.file_written(tmp_path / "list.csv")
    assert not (tmp_path / "list.csv").exists()
    assert core.sink.events[-1].detail["file_state"] == "deleted"


def test_unreadable_and_oversized_files_are_reported(tmp_path: Path) -> None:
    core = Core()
    guard, _ = _attached(core, tmp_path)
    (tmp_path / "blob.bin").write_bytes(os.urandom(4096) + b"\x00")
    guard.file_written(tmp_path / "blob.bin")
    event = core.sink.events[-1]
    assert event.type == EventType.USB_FILE_WRITTEN
    assert event.detail["skipped"] == "binary file, not scanned"
    core.use('[usb]\nmax_scan_mb = 1\n')
    big = tmp_path / "big.csv"
    with open(big, "wb") as fh:
        fh.write(CSV * 1200)  # more than the 64 KB sample, so it is text
        fh.truncate(8 * 1024 * 1024)  # the rest is never read: only the first 1 MB
    guard.file_written(big)
    event = core.sink.events[-1]
    assert event.detail["partly_scanned"] is True
    assert event.detail["skipped"] == "only the first 1 MB of 8 MB scanned"
    assert event.findings and event.findings[0].type == "CN_RESIDENT_ID"


def test_scan_file_bounds_documents_and_streams_text(tmp_path: Path) -> None:
    core = Core()
    core.pipeline.scanner = Scanner(key=b"k" * 32)
    sheet = tmp_path / "a.xlsx"
    import openpyxl

    wb = openpyxl.Workbook()
    wb.active.append(["身份证号", RID])  # type: ignore[union-attr]
    wb.save(sheet)
    found = scan_file(core.pipeline, sheet, 1 << 20)
    assert [f.type for f in found.findings] == ["CN_RESIDENT_ID"] and not found.skipped
    over = scan_file(core.pipeline, sheet, 100)
    assert over.skipped.startswith("xlsx document over 0 MB") and over.findings == ()


# ---------------------------------------------------------------------------------------------
# Real volumes.


class Teller(ScriptedPrompter):
    """Answers the volume prompt when the test opens the gate; files' toasts are recorded."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()

    def ask(self, request: PromptRequest) -> PromptAnswer:
        super().ask(request)
        self.gate.wait(WAIT_S)
        return PromptAnswer(proceed=True, reason="客户本人要求拷贝")


def _eventually(what: str, check: Callable[[], Any]) -> Any:
    deadline = time.monotonic() + WAIT_S
    while not (value := check()):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)
    return value


@pytest.fixture
def real_guard(tmp_path: Path) -> Iterator[Callable[[Path, str], tuple[UsbGuard, Core]]]:
    from guard.platforms._linux.volumes import LinuxVolumes

    guards: list[UsbGuard] = []

    def make(point: Path, layer: str) -> tuple[UsbGuard, Core]:
        core = Core(Teller())
        core.pipeline.scanner = Scanner(key=b"k" * 32)
        core.use(f'[usb]\nmount_points = ["{point}"]\n' + layer)
        guard = UsbGuard(core.pipeline, LinuxVolumes(), poll_s=0.05)
        guards.append(guard)
        guard.start()
        return guard, core

    try:
        yield make
    finally:
        for guard in guards:
            guard.stop()


def _cp(src: Path, dst: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["cp", str(src), str(dst)], capture_output=True, check=False)


def _file_events(core: Core, name: str) -> list[Any]:
    return [e for e in core.sink.of_type(EventType.USB_FILE_WRITTEN)
            if e.detail.get("file") == name]


def test_ext4_stick_is_read_only_until_justified_then_copies_are_scanned(
        tmp_path: Path, real_guard: Callable[[Path, str], tuple[UsbGuard, Core]]) -> None:
    from tests.support.volumes import VolumeUnavailable, ext4_volume

    src = tmp_path / "客户名单.csv"
    src.write_bytes(CSV)
    try:
        stick = ext4_volume(tmp_path)
        point = stick.__enter__()
    except VolumeUnavailable as exc:
        pytest.skip(str(exc))
    try:
        _, core = real_guard(point, "read_only_until_justified = true\n"
                                        "max_scan_mb = 16\n")
        teller: Teller = core.prompter  # type: ignore[assignment]
        _eventually("the prompt", lambda: teller.asked)
        assert teller.asked[0].detail["volume"] == str(point)
        refused = _cp(src, point / "before.csv")
        assert refused.returncode != 0 and b"Read-only" in refused.stderr
        teller.gate.set()
        _eventually("read-write again", lambda: _cp(src, point / "list.csv").returncode == 0)
        (event,) = _eventually("the file event", lambda: _file_events(core, "list.csv"))
        masked = {f.type: f.masked for f in event.findings}
        assert event.action is Action.NOTIFY and masked["CN_RESIDENT_ID"] == ["110***********002X"]
        assert any(n.detail.get("file") == "list.csv" for n in teller.notified)  # the warning
        mounted = core.sink.of_type(EventType.USB_VOLUME_MOUNTED)[0]
        assert mounted.outcome is Outcome.JUSTIFIED and mounted.detail["read_only"] == "no"
        # a 1 GB sparse file: only its first 16 MB are read, and the event says so
        big = tmp_path / "big.csv"
        with open(big, "wb") as fh:
            fh.write(CSV * 4000)  # more than a 64 KB sample of text before the sparse part
            fh.truncate(1024 * 1024 * 1024)
        assert _cp(big, point / "big.csv").returncode == 0
        (huge,) = _eventually("the 1 GB file's event", lambda: _file_events(core, "big.csv"))
        assert huge.detail["skipped"] == "only the first 16 MB of 1024 MB scanned"
        assert {f.type for f in huge.findings} >= {"CN_RESIDENT_ID"}
        # a file that cannot be scanned is reported, not ignored
        (tmp_path / "blob.bin").write_bytes(os.urandom(2048) + b"\x00")
        assert _cp(tmp_path / "blob.bin", point / "blob.bin").returncode == 0
        (blob,) = _eventually("the unreadable file's event",
                              lambda: _file_events(core, "blob.bin"))
        assert blob.detail["skipped"] == "binary file, not scanned"
        assert RID not in "".join(e.to_json() for e in core.sink.events)
    finally:
        stick.__exit__(None, None, None)


def test_fat_stick_through_fusefat_warns_on_a_copied_spreadsheet(
        tmp_path: Path, real_guard: Callable[[Path, str], tuple[UsbGuard, Core]]) -> None:
    from tests.support.volumes import VolumeUnavailable, fat_volume

    src = tmp_path / "list.csv"
    src.write_bytes(CSV)
    try:
        stick = fat_volume(tmp_path)
        point = stick.__enter__()
    except VolumeUnavailable as exc:
        pytest.skip(str(exc))
    try:
        _, core = real_guard(point, "read_only_until_justified = true\n")
        teller: Teller = core.prompter  # type: ignore[assignment]
        _eventually("the prompt", lambda: teller.asked)
        teller.gate.set()
        _eventually("the answer", lambda: core.sink.of_type(EventType.USB_VOLUME_MOUNTED))
        mounted = core.sink.of_type(EventType.USB_VOLUME_MOUNTED)[0]
        assert mounted.detail["read_only"] == "not_possible"  # FUSE cannot be remounted
        # fusefat has no chmod, which cp(1) always calls on a new file: a plain copy
        shutil.copyfile(src, point / "LIST.CSV")
        (event,) = _eventually("the file event", lambda: _file_events(core, "LIST.CSV"))
        assert event.action is Action.NOTIFY
        assert "CN_RESIDENT_ID" in {f.type for f in event.findings}
    finally:
        stick.__exit__(None, None, None)


# ---------------------------------------------------------------------------------------------
# Through the real machine service.


def test_the_machine_service_guards_a_real_stick_and_asks_the_agent(tmp_path: Path) -> None:
    """The real `teller-guard service` (root) watches an ext4 loop image named in the central
    policy: it keeps it read-only and asks the teller's agent over the local channel; after the
    justification it remounts it writable; a `cp` of a spreadsheet with customer data warns the
    agent; both events reach the real collector, masked."""
    import contextlib
    import json

    import openpyxl

    from tests.guard.watchers.real_service import RealService
    from tests.support.servers import run_collector
    from tests.support.volumes import VolumeUnavailable, ext4_volume

    if os.geteuid() != 0:
        pytest.skip("the machine service remounts as root (CI runs as root)")
    root = Path(os.path.realpath(tmp_path))
    sheet = root / "客户名单.xlsx"
    wb = openpyxl.Workbook()
    wb.active.append(["姓名", "身份证号", "手机"])  # type: ignore[union-attr]
    wb.active.append(["张三", RID, "13800138000"])  # type: ignore[union-attr]
    wb.save(sheet)
    with contextlib.ExitStack() as stack:
        try:
            point = stack.enter_context(ext4_volume(root))
        except VolumeUnavailable as exc:
            pytest.skip(str(exc))
        policy = root / "policy.toml"
        policy.write_text(f'version = "usb-service-test"\n[prompts]\ntimeout_s = 20\n'
                          f'[usb]\nmount_points = ["{point}"]\nread_only_until_justified = true\n',
                          encoding="utf-8")
        collector = stack.enter_context(run_collector(
            f"sqlite:///{root}/collector.db", extra_args=["--policy", str(policy)]))
        teller = Teller()
        service = RealService(root, collector, "tgteller", prompter=teller)
        stack.callback(service.stop)
        service.start()
        # the central policy names the stick: the service announces it to the agent
        _eventually("the volume prompt", lambda: teller.asked or service._died())
        (asked,) = teller.asked
        assert asked.action is Action.JUSTIFY and asked.detail["volume"] == str(point)
        refused = _cp(sheet, point / "before.xlsx")
        assert refused.returncode != 0 and b"Read-only" in refused.stderr
        teller.gate.set()
        _eventually("read-write again", lambda: _cp(sheet, point / "名单.xlsx").returncode == 0)
        _eventually("the warning to the agent",
                    lambda: [n for n in teller.notified if n.detail.get("file") == "名单.xlsx"])
        (warning,) = [n for n in teller.notified if n.detail.get("file") == "名单.xlsx"]
        assert warning.kind == UsbKind.FILE_WRITTEN and warning.detail["volume"] == str(point)
        assert "CN_RESIDENT_ID" in {f.type for f in warning.findings}
        (mounted,) = _eventually("the volume event at the collector",
                                 lambda: service.events("USB_VOLUME_MOUNTED"))
        assert mounted["outcome"] == "justified"
        assert mounted["justification"] == "客户本人要求拷贝"
        assert mounted["detail"]["read_only"] == "no"
        assert mounted["detail"]["volume_state"] == "allowed"
        (copied,) = _eventually("the file event at the collector",
                                lambda: service.events("USB_FILE_WRITTEN"))
        assert copied["detail"]["file"] == "名单.xlsx" and copied["action"] == "notify"
        found = {f["type"]: f["masked"] for f in copied["findings"]}
        assert found["CN_RESIDENT_ID"] == ["110***********002X"]
        assert all(f["hashes"] for f in copied["findings"])  # keyed by the service
        assert RID not in json.dumps(copied) and "13800138000" not in json.dumps(copied)
