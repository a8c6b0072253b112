"""The Windows print spooler for the print guard, through winspool.drv (ctypes).

The service (SYSTEM) lists the local printers and their jobs (EnumPrintersW / EnumJobsW level
1), pauses each new job as it appears and resumes or deletes it once decided (SetJobW with
JOB_CONTROL_PAUSE / RESUME / DELETE). The spooler keeps a job's data as EMF or printer language,
which is not read here: `document()` is None and the event says the job was not scanned. A
pause holds only if tellers cannot manage the printer's documents: each guarded printer's DACL
is read (GetPrinterW level 3, advapi32) and who else can is reported (`job_managers`).
Importable on any OS: winspool is loaded only on Windows or handed in by tests (`WinspoolApi`
is the boundary); checked with ``mypy --platform win32``.
"""

from __future__ import annotations

import ctypes
import logging
import sys
from collections.abc import Callable
from ctypes import wintypes
from dataclasses import dataclass
from typing import Any, Protocol

from guard.platforms.base import PlatformUnavailable, PrintDocument, PrintJob, SpoolerError

log = logging.getLogger(__name__)

PRINTER_ENUM_LOCAL = 0x2
PRINTER_ENUM_CONNECTIONS = 0x4
JOB_CONTROL_PAUSE = 1
JOB_CONTROL_RESUME = 2
JOB_CONTROL_DELETE = 5
JOB_STATUS_PAUSED = 0x1
JOB_STATUS_DELETING = 0x4
JOB_STATUS_SPOOLING = 0x8
JOB_STATUS_PRINTING = 0x10
JOB_STATUS_PRINTED = 0x80
JOB_STATUS_DELETED = 0x100
PRINTER_ACCESS_ADMINISTER = 0x4
PRINTER_ACCESS_USE = 0x8
ERROR_INSUFFICIENT_BUFFER = 122
# printer security: what lets a holder resume, restart or delete other people's paused jobs
JOB_ACCESS_ADMINISTER = 0x10  # "Manage documents"
READ_CONTROL = 0x20000
WRITE_DAC = 0x40000
WRITE_OWNER = 0x80000
GENERIC_ALL = 0x10000000
MANAGE_RIGHTS = (JOB_ACCESS_ADMINISTER | PRINTER_ACCESS_ADMINISTER | WRITE_DAC | WRITE_OWNER
                 | GENERIC_ALL)
ACCESS_ALLOWED_ACE_TYPE = 0
ACCESS_DENIED_ACE_TYPE = 1
ADMIN_SIDS = frozenset({
    "S-1-5-18",  # LocalSystem: the service itself
    "S-1-5-32-544",  # BUILTIN\Administrators
    "S-1-5-32-550",  # BUILTIN\Print Operators
})
ADMIN_DOMAIN_RIDS = ("-512", "-519")  # Domain Admins, Enterprise Admins (S-1-5-21-…-RID)
SID_NAMES = {"S-1-1-0": "Everyone", "S-1-3-0": "CREATOR OWNER", "S-1-5-4": "INTERACTIVE",
             "S-1-5-11": "Authenticated Users", "S-1-5-32-545": "Users"}


@dataclass(frozen=True, slots=True)
class JobInfo:
    """The fields of JOB_INFO_1W the guard uses."""

    job_id: int
    printer: str
    user: str
    document: str
    datatype: str
    status: int
    total_pages: int


@dataclass(frozen=True, slots=True)
class Ace:
    """One entry of a printer's DACL: an allow or deny of `mask` for the SID `sid`."""

    sid: str
    mask: int
    allow: bool = True


def _is_admin(sid: str) -> bool:
    return sid in ADMIN_SIDS or (sid.startswith("S-1-5-21-") and sid.endswith(ADMIN_DOMAIN_RIDS))


def job_managers(dacl: list[Ace] | None) -> list[str]:
    """Who other than SYSTEM and administrators may manage the printer's documents (resume a
    job the guard paused): the names of the SIDs `dacl` grants "Manage documents", printer
    administration or the right to rewrite the DACL, after their deny entries. ``None`` is a
    NULL DACL, which grants everyone everything. CREATOR OWNER counts: it makes every teller
    the manager of their own jobs."""
    if dacl is None:
        return ["Everyone (the printer has no DACL)"]
    denied: dict[str, int] = {}
    for ace in dacl:
        if not ace.allow:
            denied[ace.sid] = denied.get(ace.sid, 0) | ace.mask
    found: list[str] = []
    for ace in dacl:
        if ace.allow and not _is_admin(ace.sid) and \
                ace.mask & MANAGE_RIGHTS & ~denied.get(ace.sid, 0):
            name = SID_NAMES.get(ace.sid, ace.sid)
            if name not in found:
                found.append(name)
    return found


class WinspoolApi(Protocol):
    """The spooler calls `WindowsSpooler` makes (the real one is `Winspool`)."""

    def security(self, printer: str) -> list[Ace] | None:
        """The printer's DACL (GetPrinterW level 3); None for a NULL DACL."""

    def printers(self) -> list[str]: ...

    def jobs(self, printer: str) -> list[JobInfo]: ...

    def set_job(self, printer: str, job_id: int, command: int) -> int:
        """SetJobW's result: 0 on success, else the Win32 error code."""


class PRINTER_INFO_4W(ctypes.Structure):
    _fields_ = [("pPrinterName", wintypes.LPWSTR), ("pServerName", wintypes.LPWSTR),
                ("Attributes", wintypes.DWORD)]


class SYSTEMTIME(ctypes.Structure):
    _fields_ = [(n, wintypes.WORD) for n in ("wYear", "wMonth", "wDayOfWeek", "wDay", "wHour",
                                              "wMinute", "wSecond", "wMilliseconds")]


class JOB_INFO_1W(ctypes.Structure):
    _fields_ = [("JobId", wintypes.DWORD), ("pPrinterName", wintypes.LPWSTR),
                ("pMachineName", wintypes.LPWSTR), ("pUserName", wintypes.LPWSTR),
                ("pDocument", wintypes.LPWSTR), ("pDatatype", wintypes.LPWSTR),
                ("pStatus", wintypes.LPWSTR), ("Status", wintypes.DWORD),
                ("Priority", wintypes.DWORD), ("Position", wintypes.DWORD),
                ("TotalPages", wintypes.DWORD), ("PagesPrinted", wintypes.DWORD),
                ("Submitted", SYSTEMTIME)]


class PRINTER_INFO_3(ctypes.Structure):
    _fields_ = [("pSecurityDescriptor", ctypes.c_void_p)]


class ACL(ctypes.Structure):
    _fields_ = [("AclRevision", ctypes.c_ubyte), ("Sbz1", ctypes.c_ubyte),
                ("AclSize", wintypes.WORD), ("AceCount", wintypes.WORD),
                ("Sbz2", wintypes.WORD)]


class ACCESS_ACE(ctypes.Structure):
    """ACCESS_ALLOWED_ACE and ACCESS_DENIED_ACE share this layout; the SID starts at SidStart."""

    _fields_ = [("AceType", ctypes.c_ubyte), ("AceFlags", ctypes.c_ubyte),
                ("AceSize", wintypes.WORD), ("Mask", wintypes.DWORD),
                ("SidStart", wintypes.DWORD)]


class PRINTER_DEFAULTSW(ctypes.Structure):
    _fields_ = [("pDatatype", wintypes.LPWSTR), ("pDevMode", ctypes.c_void_p),
                ("DesiredAccess", wintypes.DWORD)]


class Winspool:
    """winspool.drv through ctypes (Windows only)."""

    def __init__(self) -> None:
        if sys.platform != "win32":
            raise PlatformUnavailable("the Windows print spooler exists only on Windows")
        self.dll: Any = ctypes.WinDLL("winspool.drv", use_last_error=True)
        self.advapi: Any = ctypes.WinDLL("advapi32", use_last_error=True)
        self.kernel: Any = ctypes.WinDLL("kernel32", use_last_error=True)
        self.last_error: Callable[[], int] = ctypes.get_last_error

    def _enum(self, call: Any, *args: Any) -> tuple[Any, int]:
        needed, returned = wintypes.DWORD(0), wintypes.DWORD(0)
        call(*args, None, 0, ctypes.byref(needed), ctypes.byref(returned))
        if needed.value == 0:
            return None, 0
        buf = ctypes.create_string_buffer(needed.value)
        if not call(*args, buf, needed, ctypes.byref(needed), ctypes.byref(returned)):
            raise SpoolerError(f"the spooler refused to list ({self.last_error()})")
        return buf, returned.value

    def printers(self) -> list[str]:
        buf, n = self._enum(self.dll.EnumPrintersW,
                            PRINTER_ENUM_LOCAL | PRINTER_ENUM_CONNECTIONS, None, 4)
        if buf is None:
            return []
        items = ctypes.cast(buf, ctypes.POINTER(PRINTER_INFO_4W))
        return [str(items[i].pPrinterName) for i in range(n)]

    def _open(self, printer: str) -> wintypes.HANDLE:
        handle = wintypes.HANDLE()
        # READ_CONTROL: GetPrinterW level 3 (the security descriptor) needs it
        defaults = PRINTER_DEFAULTSW(None, None, PRINTER_ACCESS_ADMINISTER | PRINTER_ACCESS_USE
                                     | READ_CONTROL)
        if not self.dll.OpenPrinterW(printer, ctypes.byref(handle), ctypes.byref(defaults)):
            raise SpoolerError(f"cannot open printer {printer} ({self.last_error()})")
        return handle

    def jobs(self, printer: str) -> list[JobInfo]:
        handle = self._open(printer)
        try:
            buf, n = self._enum(self.dll.EnumJobsW, handle, 0, 0xFFFF, 1)
            if buf is None:
                return []
            items = ctypes.cast(buf, ctypes.POINTER(JOB_INFO_1W))
            return [JobInfo(int(j.JobId), printer, str(j.pUserName or ""),
                            str(j.pDocument or ""), str(j.pDatatype or ""), int(j.Status),
                            int(j.TotalPages)) for j in (items[i] for i in range(n))]
        finally:
            self.dll.ClosePrinter(handle)

    def security(self, printer: str) -> list[Ace] | None:
        handle = self._open(printer)
        try:
            needed = wintypes.DWORD(0)
            self.dll.GetPrinterW(handle, 3, None, 0, ctypes.byref(needed))
            if needed.value == 0:
                raise SpoolerError(f"cannot read {printer}'s security ({self.last_error()})")
            buf = ctypes.create_string_buffer(needed.value)
            if not self.dll.GetPrinterW(handle, 3, buf, needed, ctypes.byref(needed)):
                raise SpoolerError(f"cannot read {printer}'s security ({self.last_error()})")
            sd = ctypes.cast(buf, ctypes.POINTER(PRINTER_INFO_3))[0].pSecurityDescriptor
            present, defaulted = wintypes.BOOL(), wintypes.BOOL()
            dacl = ctypes.c_void_p()
            if not self.advapi.GetSecurityDescriptorDacl(
                    ctypes.c_void_p(sd), ctypes.byref(present), ctypes.byref(dacl),
                    ctypes.byref(defaulted)):
                raise SpoolerError(f"cannot read {printer}'s DACL ({self.last_error()})")
            if not present.value or not dacl.value:
                return None
            return self._aces(dacl)
        finally:
            self.dll.ClosePrinter(handle)

    def _aces(self, dacl: ctypes.c_void_p) -> list[Ace]:
        out: list[Ace] = []
        count = ctypes.cast(dacl, ctypes.POINTER(ACL))[0].AceCount
        for i in range(count):
            ace_p = ctypes.c_void_p()
            if not self.advapi.GetAce(dacl, i, ctypes.byref(ace_p)):
                raise SpoolerError(f"cannot read entry {i} of a printer's DACL "
                                   f"({self.last_error()})")
            ace = ctypes.cast(ace_p, ctypes.POINTER(ACCESS_ACE))[0]
            if ace.AceType not in (ACCESS_ALLOWED_ACE_TYPE, ACCESS_DENIED_ACE_TYPE):
                continue  # object and callback entries: not used on printers
            sid_p = ctypes.c_void_p(int(ace_p.value or 0) + ACCESS_ACE.SidStart.offset)
            text = wintypes.LPWSTR()
            if not self.advapi.ConvertSidToStringSidW(sid_p, ctypes.byref(text)):
                raise SpoolerError(f"cannot read a SID in a printer's DACL ({self.last_error()})")
            try:
                out.append(Ace(str(text.value), int(ace.Mask),
                               ace.AceType == ACCESS_ALLOWED_ACE_TYPE))
            finally:
                self.kernel.LocalFree(text)
        return out

    def set_job(self, printer: str, job_id: int, command: int) -> int:
        handle = self._open(printer)
        try:
            if self.dll.SetJobW(handle, job_id, 0, None, command):
                return 0
            return int(self.last_error()) or 1
        finally:
            self.dll.ClosePrinter(handle)


def _state(status: int) -> str:
    if status & (JOB_STATUS_DELETING | JOB_STATUS_DELETED | JOB_STATUS_PRINTED):
        return "done"
    if status & JOB_STATUS_PRINTING:
        return "processing"
    if status & JOB_STATUS_PAUSED:
        return "held"
    if status & JOB_STATUS_SPOOLING:
        return "incoming"
    return "pending"


class WindowsSpooler:
    """`guard.platforms.base.PrintSpooler` on the Windows spooler: a guarded printer's jobs
    are paused as they appear, resumed when released and deleted when cancelled. Tellers must
    not hold "Manage documents" on guarded printers (the installer sets the printers' security
    so only SYSTEM and administrators do), or a teller could resume a paused job: `guard()`
    reads each printer's DACL, and `weakness()` says who else can (the print guard reports it
    as its degraded state, in the service's status and heartbeat events). Jobs are paused all
    the same."""

    def __init__(self, api: WinspoolApi | None = None) -> None:
        self._api = api
        self._weak: dict[str, str] = {}

    def _need(self) -> WinspoolApi:
        if self._api is None:
            self._api = Winspool()
        return self._api

    def queues(self) -> list[str]:
        return sorted(self._need().printers())

    def guard(self, queue: str) -> None:
        """Each job is paused as it appears (`hold`); here the printer's security is checked."""
        try:
            managers = job_managers(self._need().security(queue))
        except SpoolerError as exc:
            weakness: str | None = f"its security cannot be checked: {exc}"
        else:
            weakness = (f"{', '.join(managers)} can manage its documents and so resume a "
                        "paused job: give Manage documents to administrators only"
                        if managers else None)
        if weakness is None:
            self._weak.pop(queue, None)
        elif self._weak.get(queue) != weakness:
            self._weak[queue] = weakness
            log.warning("printer %s: %s", queue, weakness)

    def weakness(self, queue: str) -> str | None:
        """Why tellers could lift the hold on `queue` (as of the last `guard`), or None."""
        return self._weak.get(queue)

    def unguard(self, queue: str) -> None:
        self._weak.pop(queue, None)

    def jobs(self, queues: list[str]) -> list[PrintJob]:
        api = self._need()
        out = []
        for queue in queues:
            for j in api.jobs(queue):
                out.append(PrintJob(id=j.job_id, queue=queue, user=j.user, title=j.document,
                                    state=_state(j.status), pages=j.total_pages or None,
                                    format=j.datatype))
        return out

    def _control(self, job: PrintJob, command: int, what: str) -> None:
        error = self._need().set_job(job.queue, job.id, command)
        if error:
            raise SpoolerError(f"the spooler refused to {what} job {job.id} on {job.queue} "
                               f"(error {error})")

    def hold(self, job: PrintJob) -> None:
        if job.state != "held":
            self._control(job, JOB_CONTROL_PAUSE, "pause")

    def document(self, job: PrintJob) -> PrintDocument | None:
        return None  # EMF or printer language in the spool file: not read

    def release(self, job: PrintJob) -> None:
        self._control(job, JOB_CONTROL_RESUME, "resume")

    def cancel(self, job: PrintJob) -> None:
        self._control(job, JOB_CONTROL_DELETE, "delete")
