"""The print spooler and removable-volume capabilities: the Windows backends on stand-ins for
winspool and kernel32 with the real call shapes, the Linux mount table parser, the selector,
and the print guard's decisions driving the Windows spooler."""

from __future__ import annotations

from pathlib import Path

import pytest

from guard import platforms
from guard.pipeline.prompt import PromptAnswer, ScriptedPrompter
from guard.platforms import PrintSpooler, RemovableVolumes
from guard.platforms._fake import FakeSpooler, FakeVolumes
from guard.platforms._linux.volumes import LinuxVolumes, parse_mountinfo
from guard.platforms._windows.spooler import (
    JOB_CONTROL_DELETE,
    JOB_CONTROL_PAUSE,
    JOB_CONTROL_RESUME,
    JOB_STATUS_PAUSED,
    JOB_STATUS_SPOOLING,
    PRINTER_ACCESS_USE,
    Ace,
    JobInfo,
    WindowsSpooler,
)
from guard.platforms._windows.volumes import DRIVE_REMOVABLE, WindowsVolumes
from guard.platforms.base import SpoolerError
from guard.watchers.print_hold import PrintHold
from tests.support.core import Core


class Winspool:
    """EnumPrinters/EnumJobs/SetJob as the spooler answers them."""

    def __init__(self) -> None:
        self.job_list = {"HP LaserJet": [JobInfo(7, "HP LaserJet", "zhang", "客户名单.xlsx",
                                                 "NT EMF 1.008", 0, 3)]}
        self.calls: list[tuple[str, int, int]] = []
        self.refuse = 0

    def printers(self) -> list[str]:
        return list(self.job_list)

    def security(self, printer: str) -> list[Ace]:
        return [Ace("S-1-5-32-544", 0xF000C), Ace("S-1-1-0", PRINTER_ACCESS_USE)]

    def jobs(self, printer: str) -> list[JobInfo]:
        return list(self.job_list[printer])

    def set_job(self, printer: str, job_id: int, command: int) -> int:
        self.calls.append((printer, job_id, command))
        if self.refuse:
            return self.refuse
        jobs = self.job_list[printer]
        for i, j in enumerate(jobs):
            if j.job_id == job_id:
                status = {JOB_CONTROL_PAUSE: j.status | JOB_STATUS_PAUSED,
                          JOB_CONTROL_RESUME: j.status & ~JOB_STATUS_PAUSED}.get(command)
                if status is None:
                    del jobs[i]
                else:
                    jobs[i] = JobInfo(j.job_id, j.printer, j.user, j.document, j.datatype,
                                      status, j.total_pages)
        return 0


def test_windows_spooler_pauses_resumes_and_deletes_through_setjob() -> None:
    api = Winspool()
    spooler = WindowsSpooler(api)
    assert isinstance(spooler, PrintSpooler)
    assert spooler.queues() == ["HP LaserJet"]
    (job,) = spooler.jobs(["HP LaserJet"])
    assert (job.user, job.title, job.pages, job.state) == ("zhang", "客户名单.xlsx", 3, "pending")
    spooler.hold(job)
    assert spooler.jobs(["HP LaserJet"])[0].state == "held"
    assert spooler.document(job) is None  # EMF: not read, said so in the event
    spooler.release(job)
    spooler.cancel(job)
    assert [c[2] for c in api.calls] == [JOB_CONTROL_PAUSE, JOB_CONTROL_RESUME,
                                         JOB_CONTROL_DELETE]
    assert spooler.jobs(["HP LaserJet"]) == []
    api.refuse = 5
    with pytest.raises(SpoolerError, match="error 5"):
        spooler.release(job)


def test_windows_job_states() -> None:
    api = Winspool()
    api.job_list["HP LaserJet"][0] = JobInfo(8, "HP LaserJet", "li", "a", "RAW",
                                             JOB_STATUS_SPOOLING, 0)
    (job,) = WindowsSpooler(api).jobs(["HP LaserJet"])
    assert job.state == "incoming" and job.pages is None


def test_the_print_guard_on_the_windows_spooler_pauses_asks_and_cancels() -> None:
    core = Core(ScriptedPrompter([PromptAnswer(proceed=False)]))
    core.use('[print]\nclean = "confirm"\nexempt_clean = false\n')
    api = Winspool()
    hold = PrintHold(core.pipeline, WindowsSpooler(api))
    hold.poll()
    (asked,) = core.prompter.asked
    assert asked.detail["printer"] == "HP LaserJet" and asked.detail["pages"] == "3"
    assert asked.detail["skipped"] == "the spooler keeps no readable document for this job"
    assert [c[2] for c in api.calls] == [JOB_CONTROL_PAUSE, JOB_CONTROL_DELETE]
    assert core.sink.events[-1].detail["print_job"] == "cancelled"


class Drives:
    def __init__(self) -> None:
        self.mask = 0b10100  # C: and E:
        self.types = {"C:\\": 3, "E:\\": DRIVE_REMOVABLE}
        self.ejected: list[str] = []

    def logical_drives(self) -> int:
        return self.mask

    def drive_type(self, root: str) -> int:
        return self.types.get(root, 0)

    def file_system(self, root: str) -> str:
        return "FAT32" if root == "E:\\" else "NTFS"

    def eject(self, letter: str) -> bool:
        self.ejected.append(letter)
        return True


def test_windows_removable_drive_letters() -> None:
    api = Drives()
    volumes = WindowsVolumes(api)
    assert isinstance(volumes, RemovableVolumes)
    (stick,) = volumes.volumes()
    assert (stick.device, stick.fs_type, str(stick.mount_point)) == ("E:", "FAT32", "E:\\")
    assert [v.device for v in volumes.volumes(("C:\\",))] == ["C:", "E:"]  # named by policy
    assert volumes.remount(stick, read_only=True) is False
    assert volumes.eject(stick) and api.ejected == ["E"]


MOUNTINFO = """\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
40 22 7:0 / /media/zhang/KINGSTON rw,nosuid shared:2 - vfat /dev/sdb1 rw
41 22 7:1 / /mnt/loop\\040stick ro,relatime - ext4 /dev/loop1 ro
42 22 0:50 / /srv/data rw - fuse.fusefat /tmp/x.img rw
"""


def test_linux_mounts_under_media_or_named_by_policy_are_removable(tmp_path: Path) -> None:
    info = tmp_path / "mountinfo"
    info.write_text(MOUNTINFO)
    assert parse_mountinfo(MOUNTINFO)[2][1] == Path("/mnt/loop stick")
    volumes = LinuxVolumes(mountinfo=info, sysfs=tmp_path)
    assert [str(v.mount_point) for v in volumes.volumes()] == ["/media/zhang/KINGSTON"]
    named = volumes.volumes(("/mnt/loop stick", "/srv"))
    assert [(str(v.mount_point), v.read_only) for v in named] == [
        ("/media/zhang/KINGSTON", False), ("/mnt/loop stick", True), ("/srv/data", False)]
    fuse = named[2]
    assert volumes.remount(fuse, read_only=True) is False  # FUSE: not possible


def test_linux_removable_block_device_from_sysfs(tmp_path: Path) -> None:
    info = tmp_path / "mountinfo"
    info.write_text("50 22 8:17 / /data/stick rw - exfat /dev/sdb1 rw\n")
    disk = tmp_path / "devices" / "sdb"
    (disk / "sdb1").mkdir(parents=True)
    (disk / "removable").write_text("1\n")
    (tmp_path / "dev" / "block").mkdir(parents=True)
    (tmp_path / "dev" / "block" / "8:17").symlink_to(disk / "sdb1")
    (stick,) = LinuxVolumes(mountinfo=info, sysfs=tmp_path).volumes()
    assert stick.device == "/dev/sdb1"


def test_the_fake_backends_and_the_selectors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(platforms.ENV_PLATFORM, "fake")
    assert isinstance(platforms.print_spooler(), FakeSpooler)
    assert isinstance(platforms.removable_volumes(), FakeVolumes)
    monkeypatch.setenv(platforms.ENV_PLATFORM, "linux")
    from guard.platforms._linux.cups import CupsSpooler

    assert isinstance(platforms.print_spooler(), CupsSpooler)
    assert isinstance(platforms.removable_volumes(), LinuxVolumes)
    monkeypatch.setenv(platforms.ENV_PLATFORM, "windows")
    assert isinstance(platforms.print_spooler(), WindowsSpooler)  # imports cleanly on Linux
    assert isinstance(platforms.removable_volumes(), WindowsVolumes)
