"""Windows service host for `teller-guard service`: talks to the Service Control Manager.

The SCM starts the process, `StartServiceCtrlDispatcherW` hands a thread to `ServiceHost._main`,
which registers a control handler (`RegisterServiceCtrlHandlerExW`), reports START_PENDING,
starts the machine service, reports RUNNING and waits; a STOP or SHUTDOWN control reports
STOP_PENDING and stops the service, then STOPPED (with the service-specific exit code 2 when it
could not start). Every SCM call goes through an `ScmApi`: ctypes on Windows, a fake in tests.

The MSI leaves IT's enrolment token in a registry value only SYSTEM can read (`ENROL_TOKEN_KEY`,
locked by the package's LockPermissions table); `RegistryToken` is the `TokenStore` that
`guard.app.enrol_token.OneTimeToken` deletes it through once the service is enrolled.
"""


from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from guard.app.enrol_token import Service

log = logging.getLogger(__name__)

SERVICE_NAME = "TellerGuard"
ENROL_TOKEN_KEY = r"SYSTEM\CurrentControlSet\Services\TellerGuard\Enrolment"
"""Under HKLM (64-bit view); the MSI writes it, the service deletes the whole key once enrolled."""
ENROL_TOKEN_VALUE = "Token"

SERVICE_WIN32_OWN_PROCESS = 0x10
SERVICE_STOPPED = 1
SERVICE_START_PENDING = 2
SERVICE_STOP_PENDING = 3
SERVICE_RUNNING = 4
SERVICE_CONTROL_STOP = 1
SERVICE_CONTROL_INTERROGATE = 4
SERVICE_CONTROL_SHUTDOWN = 5
SERVICE_CONTROL_PRESHUTDOWN = 0xF
SERVICE_ACCEPT_STOP = 0x1
SERVICE_ACCEPT_SHUTDOWN = 0x4
NO_ERROR = 0
ERROR_CALL_NOT_IMPLEMENTED = 120
ERROR_SERVICE_SPECIFIC_ERROR = 1066
ERROR_FAILED_SERVICE_CONTROLLER_CONNECT = 1063  # not started by the SCM (run from a console)
START_WAIT_HINT_MS = 60_000
STOP_WAIT_HINT_MS = 30_000
EXIT_CANNOT_START = 2  # the service-specific code, as `teller-guard service` exits with it


class NotUnderScm(Exception):
    """The process was not started by the Service Control Manager; run in the foreground."""


@dataclass(frozen=True, slots=True)
class ReportedStatus:
    """One SetServiceStatus call."""

    state: int
    controls: int = 0
    win32_exit: int = NO_ERROR
    service_exit: int = 0
    checkpoint: int = 0
    wait_hint_ms: int = 0


class ScmApi(Protocol):
    def start_dispatcher(self, name: str, main: Callable[[], None]) -> None:
        """StartServiceCtrlDispatcherW: calls `main` on the SCM's thread, returns once the service
        reported STOPPED. `NotUnderScm` when this process was not started by the SCM."""
    def register_handler(self, name: str, handler: Callable[[int], int]) -> int:
        """RegisterServiceCtrlHandlerExW; returns the status handle."""
    def set_status(self, handle: int, status: ReportedStatus) -> None:
        """SetServiceStatus."""


class ServiceHost:
    """Runs a `Service` under the SCM. `make_service` is called on the SCM's thread; its
    `start()` raising counts as "cannot start" (reported as the service-specific code 2)."""

    def __init__(self, make_service: Callable[[], Service], *, name: str = SERVICE_NAME,
                 api: ScmApi | None = None,
                 start_errors: tuple[type[BaseException], ...] = (Exception,)) -> None:
        self.name = name
        self._make = make_service
        self._api = api
        self._start_errors = start_errors
        self._handle = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._checkpoint = 0
        self.reported: list[ReportedStatus] = []
        self.exit_code = 0
        self.problem = ""

    @property
    def api(self) -> ScmApi:
        if self._api is None:
            self._api = _default_api()
        return self._api

    def run(self) -> int:
        """Hand this process to the SCM until the service stops; its exit code. `NotUnderScm`
        when started from a console."""
        self.api.start_dispatcher(self.name, self._main)
        return self.exit_code

    def _report(self, state: int, **kw: int) -> None:
        with self._lock:
            pending = state in (SERVICE_START_PENDING, SERVICE_STOP_PENDING)
            self._checkpoint = self._checkpoint + 1 if pending else 0
            controls = SERVICE_ACCEPT_STOP | SERVICE_ACCEPT_SHUTDOWN if state == \
                SERVICE_RUNNING else 0
            status = ReportedStatus(state=state, controls=controls, checkpoint=self._checkpoint,
                                    **kw)
            self.reported.append(status)
        try:
            self.api.set_status(self._handle, status)
        except OSError as exc:  # the SCM went away; nothing else to tell
            log.error("cannot report the service state to Windows: %s", exc)

    @property
    def state(self) -> int:
        return self.reported[-1].state if self.reported else SERVICE_STOPPED

    def _control(self, code: int) -> int:
        """The SCM's control handler (its own thread): must return at once."""
        if code in (SERVICE_CONTROL_STOP, SERVICE_CONTROL_SHUTDOWN, SERVICE_CONTROL_PRESHUTDOWN):
            if self.state == SERVICE_RUNNING:
                self._report(SERVICE_STOP_PENDING, wait_hint_ms=STOP_WAIT_HINT_MS)
            self._stop.set()
            return NO_ERROR
        if code == SERVICE_CONTROL_INTERROGATE:
            return NO_ERROR
        return ERROR_CALL_NOT_IMPLEMENTED

    def _main(self) -> None:
        self._handle = self.api.register_handler(self.name, self._control)
        self._report(SERVICE_START_PENDING, wait_hint_ms=START_WAIT_HINT_MS)
        try:
            service = self._make()
            service.start()
        except self._start_errors as exc:
            self.problem = str(exc)
            log.error("the service cannot start: %s", exc)
            self.exit_code = EXIT_CANNOT_START
            self._report(SERVICE_STOPPED, win32_exit=ERROR_SERVICE_SPECIFIC_ERROR,
                         service_exit=EXIT_CANNOT_START)
            return
        if not self._stop.is_set():
            self._report(SERVICE_RUNNING)
        self._stop.wait()
        if self.state != SERVICE_STOP_PENDING:
            self._report(SERVICE_STOP_PENDING, wait_hint_ms=STOP_WAIT_HINT_MS)
        try:
            service.stop()
        except Exception as exc:  # report STOPPED whatever happened, or the SCM waits forever
            log.exception("the service did not stop cleanly")
            self.problem = str(exc)
            self.exit_code = 1
        self._report(SERVICE_STOPPED, win32_exit=(ERROR_SERVICE_SPECIFIC_ERROR if self.exit_code
                                                  else NO_ERROR), service_exit=self.exit_code)

    def request_stop(self) -> None:
        """Stop as if the SCM had sent STOP (a console Ctrl+C, tests)."""
        self._control(SERVICE_CONTROL_STOP)


def _default_api() -> ScmApi:
    if sys.platform == "win32":
        return Win32ScmApi()
    raise NotUnderScm(f"the Windows Service Control Manager does not exist on {sys.platform}")


if sys.platform == "win32":
    import ctypes
    import winreg
    from ctypes import wintypes

    _adv = ctypes.WinDLL("advapi32", use_last_error=True)
    _MAIN = ctypes.WINFUNCTYPE(None, wintypes.DWORD, ctypes.POINTER(wintypes.LPWSTR))
    _HANDLER_EX = ctypes.WINFUNCTYPE(wintypes.DWORD, wintypes.DWORD, wintypes.DWORD,
                                     wintypes.LPVOID, wintypes.LPVOID)

    class _TableEntry(ctypes.Structure):
        _fields_ = [("lpServiceName", wintypes.LPWSTR), ("lpServiceProc", _MAIN)]

    class _Status(ctypes.Structure):
        _fields_ = [("dwServiceType", wintypes.DWORD), ("dwCurrentState", wintypes.DWORD),
                    ("dwControlsAccepted", wintypes.DWORD),
                    ("dwWin32ExitCode", wintypes.DWORD),
                    ("dwServiceSpecificExitCode", wintypes.DWORD),
                    ("dwCheckPoint", wintypes.DWORD), ("dwWaitHint", wintypes.DWORD)]

    class Win32ScmApi:
        """`ScmApi` through ctypes (advapi32). Keeps its callbacks alive while the SCM holds
        them."""

        def __init__(self) -> None:
            self._keep: list[object] = []

        def start_dispatcher(self, name: str, main: Callable[[], None]) -> None:
            def service_main(_argc: int, _argv: object) -> None:
                try:
                    main()
                except Exception:  # an exception here would vanish inside the SCM's thread
                    log.exception("service main failed")

            proc = _MAIN(service_main)
            self._keep.append(proc)
            table = (_TableEntry * 2)(_TableEntry(name, proc), _TableEntry(None, _MAIN()))
            if not _adv.StartServiceCtrlDispatcherW(table):
                err = ctypes.get_last_error()
                if err == ERROR_FAILED_SERVICE_CONTROLLER_CONNECT:
                    raise NotUnderScm("not started by the Service Control Manager")
                raise ctypes.WinError(err)

        def register_handler(self, name: str, handler: Callable[[int], int]) -> int:
            def handler_ex(code: int, _event: int, _data: object, _ctx: object) -> int:
                return handler(code)

            proc = _HANDLER_EX(handler_ex)
            self._keep.append(proc)
            handle = _adv.RegisterServiceCtrlHandlerExW(name, proc, None)
            if not handle:
                raise ctypes.WinError(ctypes.get_last_error())
            return int(handle)

        def set_status(self, handle: int, status: ReportedStatus) -> None:
            raw = _Status(SERVICE_WIN32_OWN_PROCESS, status.state, status.controls,
                          status.win32_exit, status.service_exit, status.checkpoint,
                          status.wait_hint_ms)
            if not _adv.SetServiceStatus(wintypes.HANDLE(handle), ctypes.byref(raw)):
                raise ctypes.WinError(ctypes.get_last_error())

    class RegistryToken:
        """`TokenStore` in HKLM (64-bit view), `key` holding the string value `value`."""

        def __init__(self, key: str = ENROL_TOKEN_KEY, value: str = ENROL_TOKEN_VALUE) -> None:
            self.key = key
            self.value = value

        def read(self) -> str | None:
            try:
                with winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE, self.key, 0,
                                    winreg.KEY_READ | winreg.KEY_WOW64_64KEY) as key:
                    data, kind = winreg.QueryValueEx(key, self.value)
            except FileNotFoundError:
                return None
            if kind not in (winreg.REG_SZ, winreg.REG_EXPAND_SZ) or not isinstance(data, str):
                raise OSError(f"HKLM\\{self.key}\\{self.value} is not a string value "
                              f"(type {kind}): reinstall with ENROLL_TOKEN=...")
            return data.strip() or None

        def delete(self) -> None:
            try:
                winreg.DeleteKeyEx(winreg.HKEY_LOCAL_MACHINE, self.key,
                                   winreg.KEY_WOW64_64KEY, 0)
            except FileNotFoundError:
                pass
