"""The Windows print spooler for the print guard, through winspool.drv (ctypes).

The service (SYSTEM) lists the local printers and their jobs (EnumPrintersW / EnumJobsW level
1), pauses each new job as it appears and resumes or deletes it once decided (SetJobW with
JOB_CONTROL_PAUSE / RESUME / DELETE). The spooler keeps a job's data as EMF or printer language,
which is not read here: `document()` is None and the event says the job was not scanned.
Importable on any OS: winspool is loaded only on Windows or handed in by tests (`WinspoolApi`
is the boundary); checked with ``mypy --platform win32``.
"""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Callable
from ctypes import wintypes
from dataclasses import dataclass
from typing import Any, Protocol

from guard.platforms.base import PlatformUnavailable, PrintDocument, PrintJob, SpoolerError

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


class WinspoolApi(Protocol):
    """The spooler calls `WindowsSpooler` makes (the real one is `Winspool`)."""

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


class PRINTER_DEFAULTSW(ctypes.Structure):
    _fields_ = [("pDatatype", wintypes.LPWSTR), ("pDevMode", ctypes.c_void_p),
                ("DesiredAccess", wintypes.DWORD)]


class Winspool:
    """winspool.drv through ctypes (Windows only)."""

    def __init__(self) -> None:
        if sys.platform != "win32":
            raise PlatformUnavailable("the Windows print spooler exists only on Windows")
        self.dll: Any = ctypes.WinDLL("winspool.drv", use_last_error=True)
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
        defaults = PRINTER_DEFAULTSW(None, None, PRINTER_ACCESS_ADMINISTER | PRINTER_ACCESS_USE)
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
    so only SYSTEM and administrators do), or a teller could resume a paused job."""

    def __init__(self, api: WinspoolApi | None = None) -> None:
        self._api = api

    def _need(self) -> WinspoolApi:
        if self._api is None:
            self._api = Winspool()
        return self._api

    def queues(self) -> list[str]:
        return sorted(self._need().printers())

    def guard(self, queue: str) -> None:
        return None  # each job is paused as it appears (`hold`)

    def unguard(self, queue: str) -> None:
        return None

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
