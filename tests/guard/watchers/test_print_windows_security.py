"""The Windows print hold holds only if tellers cannot manage the printer's documents: the DACL
decision (`job_managers`) on tables of real-shaped entries, and the print guard's state on the
Windows spooler driven through a stand-in for winspool (the OS boundary that cannot run here)."""

from __future__ import annotations

import pytest

from guard.pipeline.prompt import PromptAnswer, ScriptedPrompter
from guard.platforms._windows.spooler import (
    GENERIC_ALL,
    JOB_ACCESS_ADMINISTER,
    JOB_CONTROL_PAUSE,
    PRINTER_ACCESS_ADMINISTER,
    PRINTER_ACCESS_USE,
    READ_CONTROL,
    WRITE_DAC,
    Ace,
    JobInfo,
    WindowsSpooler,
    job_managers,
)
from guard.platforms.base import SpoolerError
from guard.watchers.print_hold import PrintHold
from tests.support.core import Core

ADMINS, SYSTEM, EVERYONE, OWNER = "S-1-5-32-544", "S-1-5-18", "S-1-1-0", "S-1-3-0"
USERS, TELLER = "S-1-5-32-545", "S-1-5-21-1004336348-1177238915-682003330-1107"
DOMAIN_ADMINS = "S-1-5-21-1004336348-1177238915-682003330-512"
PRINTER_ALL = 0xF000C
JOB_ALL = 0xF0030

# Windows' default printer DACL: Everyone may print, CREATOR OWNER manages its own documents
# (an inherit-only entry for jobs), administrators and SYSTEM manage everything.
DEFAULT = [Ace(EVERYONE, PRINTER_ACCESS_USE), Ace(OWNER, JOB_ALL), Ace(ADMINS, PRINTER_ALL),
           Ace(ADMINS, JOB_ALL), Ace(SYSTEM, PRINTER_ALL)]
HARDENED = [Ace(EVERYONE, PRINTER_ACCESS_USE | READ_CONTROL), Ace(ADMINS, PRINTER_ALL),
            Ace(ADMINS, JOB_ALL), Ace(SYSTEM, PRINTER_ALL), Ace(DOMAIN_ADMINS, JOB_ALL)]


@pytest.mark.parametrize("dacl, managers", [
    (HARDENED, []),
    (DEFAULT, ["CREATOR OWNER"]),  # every teller manages their own (paused) job
    (None, ["Everyone (the printer has no DACL)"]),
    ([], []),  # an empty DACL grants nobody anything
    ([*HARDENED, Ace(USERS, JOB_ACCESS_ADMINISTER)], ["Users"]),
    ([*HARDENED, Ace(TELLER, PRINTER_ACCESS_ADMINISTER)], [TELLER]),
    ([*HARDENED, Ace(EVERYONE, WRITE_DAC)], ["Everyone"]),  # may rewrite the DACL itself
    ([*HARDENED, Ace(TELLER, GENERIC_ALL)], [TELLER]),
    ([Ace(OWNER, JOB_ALL, allow=False), *DEFAULT], []),  # denied first
    # JOB_ALL holds WRITE_DAC: denying only Manage documents leaves the owner able to undo it
    ([Ace(OWNER, JOB_ACCESS_ADMINISTER, allow=False), *DEFAULT], ["CREATOR OWNER"]),
    ([Ace(OWNER, JOB_ACCESS_ADMINISTER, allow=False), Ace(OWNER, JOB_ALL | WRITE_DAC)],
     ["CREATOR OWNER"]),  # the deny leaves WRITE_DAC
    ([Ace(OWNER, JOB_ALL), Ace(OWNER, JOB_ACCESS_ADMINISTER)], ["CREATOR OWNER"]),  # once
])
def test_who_can_manage_the_printers_documents(dacl: list[Ace] | None,
                                               managers: list[str]) -> None:
    assert job_managers(dacl) == managers


class Winspool:
    """EnumPrinters/EnumJobs/SetJob/GetPrinter(level 3) as the spooler answers them."""

    def __init__(self, dacl: list[Ace] | None) -> None:
        self.dacl = dacl
        self.fail = False
        self.job_list = [JobInfo(7, "Counter", "zhang", "客户名单.xlsx", "NT EMF 1.008", 0, 1)]
        self.calls: list[int] = []

    def printers(self) -> list[str]:
        return ["Counter"]

    def jobs(self, printer: str) -> list[JobInfo]:
        return list(self.job_list)

    def security(self, printer: str) -> list[Ace] | None:
        if self.fail:
            raise SpoolerError("cannot read Counter's security (5)")
        return self.dacl

    def set_job(self, printer: str, job_id: int, command: int) -> int:
        self.calls.append(command)
        self.job_list = []
        return 0


def test_a_printer_tellers_can_manage_is_reported_and_its_jobs_still_paused() -> None:
    core = Core(ScriptedPrompter([PromptAnswer(proceed=False)]))
    core.use('[print]\nclean = "confirm"\nexempt_clean = false\n')
    api = Winspool(DEFAULT)
    spooler = WindowsSpooler(api)
    hold = PrintHold(core.pipeline, spooler)
    hold.poll()
    assert api.calls[0] == JOB_CONTROL_PAUSE  # held all the same
    assert hold.state == ("degraded: printer Counter: CREATOR OWNER can manage its documents "
                          "and so resume a paused job: give Manage documents to "
                          "administrators only")
    # the printer's security is fixed: the next queue sync sees it
    api.dacl = HARDENED
    hold.sync_queues()
    assert hold.state == "running" and spooler.weakness("Counter") is None


def test_a_security_descriptor_that_cannot_be_read_is_a_weakness_too() -> None:
    api = Winspool(HARDENED)
    api.fail = True
    spooler = WindowsSpooler(api)
    spooler.guard("Counter")
    assert spooler.weakness("Counter") == ("its security cannot be checked: cannot read "
                                           "Counter's security (5)")
    spooler.unguard("Counter")
    assert spooler.weakness("Counter") is None


def test_a_spooler_without_weaknesses_keeps_the_state_running() -> None:
    from guard.platforms._fake import FakeSpooler

    core = Core()
    hold = PrintHold(core.pipeline, FakeSpooler())
    hold.sync_queues()
    assert hold.weaknesses() == {} and hold.state == "running"
