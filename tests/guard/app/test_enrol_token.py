"""The installer's one-time enrolment token in a real file (the .deb's `<data dir>/enrol-token`):
read, refused when damaged, deleted by `OneTimeToken` once the service is enrolled. The
registry store and the real machine service's enrolment are in test_winservice.py and
test_machine.py."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from guard.app.enrol_token import TOKEN_FILE_NAME, FileToken, OneTimeToken
from tests.support.waiting import eventually


class StubEnrolling:
    """A machine service whose enrolment state the test sets."""

    def __init__(self, enrolled: bool, embedded: bool = False) -> None:
        self.enrolled, self.embedded = enrolled, embedded
        self.calls: list[str] = []

    def start(self) -> None:
        self.calls.append("start")

    def stop(self) -> None:
        self.calls.append("stop")

    def status(self) -> StubEnrolling:
        return self


def _token_file(tmp_path: Path, text: str | bytes, mode: int = 0o600) -> Path:
    path = tmp_path / TOKEN_FILE_NAME
    (path.write_bytes if isinstance(text, bytes) else path.write_text)(text)  # type: ignore[operator]
    path.chmod(mode)
    return path


def test_the_token_is_the_file_s_first_line_stripped(tmp_path: Path) -> None:
    assert FileToken(_token_file(tmp_path, "  7f3c-fleet-token \n# a comment\n")).read() == \
        "7f3c-fleet-token"
    assert FileToken(_token_file(tmp_path, "tok-no-newline")).read() == "tok-no-newline"


@pytest.mark.parametrize("text", ["", "\n", "   \n"])
def test_an_empty_file_is_no_token(tmp_path: Path, text: str) -> None:
    assert FileToken(_token_file(tmp_path, text)).read() is None


def test_no_file_is_no_token(tmp_path: Path) -> None:
    store = FileToken(tmp_path / TOKEN_FILE_NAME)
    assert store.read() is None
    store.delete()  # already gone: no error
    assert not store.path.exists()


def test_a_damaged_token_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(OSError, match="not UTF-8 text: reinstall with TELLER_GUARD_ENROLL_TOKEN"):
        FileToken(_token_file(tmp_path, b"\xff\xfe\x00tok")).read()
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / TOKEN_FILE_NAME).mkdir()
    with pytest.raises(OSError, match="not a regular file"):
        FileToken(tmp_path / "dir" / TOKEN_FILE_NAME).read()


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX file modes")
def test_a_file_others_can_read_is_used_and_reported_without_the_token(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = _token_file(tmp_path, "tok-6d1e0a\n", mode=0o644)
    with caplog.at_level("WARNING", logger="guard.app.enrol_token"):
        assert FileToken(path).read() == "tok-6d1e0a"  # the PC must still enrol
    assert "can be read by other users (mode 644)" in caplog.text
    assert "tok-6d1e0a" not in caplog.text
    caplog.clear()
    path.chmod(0o600)
    with caplog.at_level("WARNING", logger="guard.app.enrol_token"):
        assert FileToken(path).read() == "tok-6d1e0a"
    assert caplog.text == ""


def test_the_file_is_deleted_once_the_service_is_enrolled(tmp_path: Path) -> None:
    store = FileToken(_token_file(tmp_path, "tok-once\n"))
    inner = StubEnrolling(enrolled=False)
    service = OneTimeToken(inner, store, poll_s=0.01)
    service.start()
    try:
        assert not service.forgotten.wait(0.2)
        assert store.path.read_text() == "tok-once\n"  # not enrolled yet: kept for a retry
        inner.enrolled = True
        assert service.forgotten.wait(30), "the token file was never deleted"
        assert not store.path.exists()
        assert os.listdir(tmp_path) == []
    finally:
        service.stop()
    assert inner.calls == ["start", "stop"]


def test_a_file_that_cannot_be_deleted_stays_and_the_service_runs_on(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # a directory in the token's place: unlink fails (as root too), as on a read-only /var
    stuck = tmp_path / TOKEN_FILE_NAME
    stuck.mkdir()
    (stuck / "tok-stuck").touch()
    inner = StubEnrolling(enrolled=True)
    service = OneTimeToken(inner, FileToken(stuck), poll_s=0.01)
    with caplog.at_level("WARNING", logger="guard.app.enrol_token"):
        service.start()
        eventually("the failed delete", lambda: "cannot delete" in caplog.text, 30,
                   interval=0.01)
        service.stop()
    assert stuck.is_dir() and not service.forgotten.is_set()
    assert inner.calls == ["start", "stop"]
    assert "enrolled, but cannot delete the installer's enrolment token" in caplog.text
