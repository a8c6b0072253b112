"""The Windows service host's state machine against a fake Service Control Manager."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from guard.app import winservice as ws
from guard.app.winservice import NotUnderScm, ReportedStatus, ServiceHost


class FakeScm:
    """Plays the SCM: runs the service main on its own thread, sends controls, records status."""

    def __init__(self, under_scm: bool = True) -> None:
        self.under_scm = under_scm
        self.handler: Callable[[int], int] | None = None
        self.statuses: list[ReportedStatus] = []
        self.changed = threading.Condition()

    def start_dispatcher(self, name: str, main: Callable[[], None]) -> None:
        if not self.under_scm:
            raise NotUnderScm("not started by the Service Control Manager")
        t = threading.Thread(target=main)
        t.start()
        t.join(30)

    def register_handler(self, name: str, handler: Callable[[int], int]) -> int:
        self.handler = handler
        return 77

    def set_status(self, handle: int, status: ReportedStatus) -> None:
        assert handle == 77
        with self.changed:
            self.statuses.append(status)
            self.changed.notify_all()

    def wait_for(self, state: int) -> None:
        with self.changed:
            assert self.changed.wait_for(lambda: any(s.state == state for s in self.statuses),
                                         30)

    def states(self) -> list[int]:
        return [s.state for s in self.statuses]


class FakeService:
    def __init__(self, fail: Exception | None = None) -> None:
        self.fail = fail
        self.calls: list[str] = []

    def start(self) -> None:
        self.calls.append("start")
        if self.fail is not None:
            raise self.fail

    def stop(self) -> None:
        self.calls.append("stop")


def _run(host: ServiceHost) -> tuple[threading.Thread, list[int]]:
    codes: list[int] = []
    t = threading.Thread(target=lambda: codes.append(host.run()))
    t.start()
    return t, codes


@pytest.mark.parametrize("control", [ws.SERVICE_CONTROL_STOP, ws.SERVICE_CONTROL_SHUTDOWN])
def test_start_run_and_stop_on_the_scm_controls(control: int) -> None:
    scm, service = FakeScm(), FakeService()
    host = ServiceHost(lambda: service, api=scm)
    t, codes = _run(host)
    scm.wait_for(ws.SERVICE_RUNNING)
    running = scm.statuses[-1]
    assert running.controls == ws.SERVICE_ACCEPT_STOP | ws.SERVICE_ACCEPT_SHUTDOWN
    assert scm.handler is not None
    assert scm.handler(ws.SERVICE_CONTROL_INTERROGATE) == ws.NO_ERROR
    assert scm.handler(0x80) == ws.ERROR_CALL_NOT_IMPLEMENTED  # a control we do not take
    assert scm.handler(control) == ws.NO_ERROR
    t.join(30)
    assert codes == [0]
    assert scm.states() == [ws.SERVICE_START_PENDING, ws.SERVICE_RUNNING,
                            ws.SERVICE_STOP_PENDING, ws.SERVICE_STOPPED]
    assert service.calls == ["start", "stop"]
    assert scm.statuses[0].wait_hint_ms > 0 and scm.statuses[0].checkpoint == 1
    assert scm.statuses[-1].win32_exit == ws.NO_ERROR and scm.statuses[-1].controls == 0


def test_a_service_that_cannot_start_reports_stopped_with_its_code() -> None:
    class ServiceError(Exception):
        pass

    scm = FakeScm()
    host = ServiceHost(lambda: FakeService(fail=ServiceError("the data directory is a file")),
                       api=scm, start_errors=(ServiceError,))
    assert host.run() == ws.EXIT_CANNOT_START
    assert scm.states() == [ws.SERVICE_START_PENDING, ws.SERVICE_STOPPED]
    last = scm.statuses[-1]
    assert last.win32_exit == ws.ERROR_SERVICE_SPECIFIC_ERROR and last.service_exit == 2
    assert "data directory" in host.problem


def test_a_failing_stop_still_reports_stopped() -> None:
    class BadStop(FakeService):
        def stop(self) -> None:
            raise RuntimeError("journal would not close")

    scm = FakeScm()
    host = ServiceHost(BadStop, api=scm)
    t, codes = _run(host)
    scm.wait_for(ws.SERVICE_RUNNING)
    host.request_stop()
    t.join(30)
    assert codes == [1] and scm.states()[-1] == ws.SERVICE_STOPPED
    assert scm.statuses[-1].win32_exit == ws.ERROR_SERVICE_SPECIFIC_ERROR


def test_outside_the_scm_the_host_says_so() -> None:
    with pytest.raises(NotUnderScm):
        ServiceHost(FakeService, api=FakeScm(under_scm=False)).run()
    with pytest.raises(NotUnderScm):  # this is not Windows
        ServiceHost(FakeService).run()
