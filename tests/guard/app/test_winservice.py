"""The Windows service host's state machine against a fake Service Control Manager, and the
installer's one-time enrolment token (deleted once a real machine service enrolled at a real
collector on loopback)."""

from __future__ import annotations

import shutil
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from guard.app import winservice as ws
from guard.app.enrol_token import OneTimeToken
from guard.app.machine import MachineService, ServiceSettings
from guard.app.winservice import NotUnderScm, ReportedStatus, ServiceHost
from tests.support.servers import run_collector
from tests.support.waiting import eventually


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


# ---------------------------------------------------------------------------------------------
# The installer's one-time enrolment token: deleted once the service is enrolled.


class MemoryToken:
    """A `TokenStore` in memory: the registry value the MSI writes (an OS boundary here)."""

    def __init__(self, token: str | None, fail_delete: bool = False) -> None:
        self.token = token
        self.fail_delete = fail_delete
        self.deletes = 0

    def read(self) -> str | None:
        return self.token

    def delete(self) -> None:
        self.deletes += 1
        if self.fail_delete:
            raise PermissionError("access denied")
        self.token = None


def _machine_service(tmp_path: Path, sock_dir: Path, endpoint: str | None,
                     token: str | None) -> MachineService:
    return MachineService(ServiceSettings(
        data_dir=tmp_path / "machine", socket_path=sock_dir / "agent.sock", endpoint=endpoint,
        enroll_token=token, status_tick_s=0.1, setup_retry_s=0.2, final_flush_s=0.1))


@pytest.fixture
def sock_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="tg-ws-"))  # Unix socket paths are short
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.mark.skipif(sys.platform == "win32", reason="the machine service's Unix socket")
def test_the_token_is_deleted_once_enrolled_at_the_collector(tmp_path: Path,
                                                             sock_dir: Path) -> None:
    with run_collector(f"sqlite:///{tmp_path / 'collector.db'}") as collector:
        store = MemoryToken(collector.enroll_token)
        token = store.read()
        machine = _machine_service(tmp_path, sock_dir, str(collector), token)
        service = OneTimeToken(machine, store, poll_s=0.05)
        scm = FakeScm()
        host = ServiceHost(lambda: service, api=scm)
        t, codes = _run(host)
        try:
            scm.wait_for(ws.SERVICE_RUNNING)
            assert service.forgotten.wait(60), "the token was never deleted"
            status = machine.status()
            assert status.enrolled and not status.embedded
            assert status.endpoint == str(collector)
            assert store.token is None and store.deletes == 1
        finally:
            host.request_stop()
            t.join(60)
    assert codes == [0]


@pytest.mark.skipif(sys.platform == "win32", reason="the machine service's Unix socket")
def test_the_token_stays_while_the_collector_cannot_be_reached(tmp_path: Path,
                                                              sock_dir: Path) -> None:
    from tests.support.servers import free_port

    store = MemoryToken("tok-unused")
    down = f"http://127.0.0.1:{free_port()}"  # nothing listens: enrolment keeps failing
    machine = _machine_service(tmp_path, sock_dir, down, store.read())
    service = OneTimeToken(machine, store, poll_s=0.05)
    service.start()
    try:
        eventually("the failed enrolment to show", lambda: machine.status().problem,
                   60, interval=0.1)
        assert not service.forgotten.wait(0.5)
        assert store.token == "tok-unused" and store.deletes == 0
        assert not machine.status().enrolled
    finally:
        service.stop()


class StubEnrolling(FakeService):
    def __init__(self, enrolled: bool, embedded: bool) -> None:
        super().__init__()
        self.enrolled, self.embedded = enrolled, embedded

    def status(self) -> StubEnrolling:
        return self


def test_enrolment_at_the_embedded_collector_keeps_the_token() -> None:
    store = MemoryToken("tok-for-later")  # IT may set the endpoint later (GPO)
    inner = StubEnrolling(enrolled=True, embedded=True)
    service = OneTimeToken(inner, store, poll_s=0.01)
    service.start()
    assert not service.forgotten.wait(0.3)
    service.stop()
    assert store.deletes == 0 and inner.calls == ["start", "stop"]


def test_a_token_that_cannot_be_deleted_leaves_the_service_running(
        caplog: pytest.LogCaptureFixture) -> None:
    store = MemoryToken("tok-9f3a2c", fail_delete=True)
    inner = StubEnrolling(enrolled=True, embedded=False)
    service = OneTimeToken(inner, store, poll_s=0.01)
    with caplog.at_level("WARNING", logger="guard.app.enrol_token"):
        service.start()
        eventually("the delete attempt", lambda: store.deletes, 30, interval=0.01)
        service.stop()
    assert store.deletes == 1 and store.token == "tok-9f3a2c"  # tried once, not in a loop
    assert not service.forgotten.is_set() and inner.calls == ["start", "stop"]
    assert "cannot delete the installer's enrolment token" in caplog.text
    assert "tok-9f3a2c" not in caplog.text  # the token itself is never logged
