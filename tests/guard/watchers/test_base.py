"""Every watcher offers the `Watcher` protocol its composition root uses."""

from __future__ import annotations

from pathlib import Path

from guard.credentials import Backoff, NoPasswordChecker, PinStore, TellerCredentials
from guard.platforms._fake import FakePlatform
from guard.watchers.base import Watcher
from guard.watchers.clipboard import ClipboardWatcher
from guard.watchers.idle import IdleLock
from tests.support.core import Core
from tests.support.fakes import FakeClipboard, FakeLocker


def test_clipboard_and_idle_are_watchers(core: Core, tmp_path: Path) -> None:
    creds = TellerCredentials(teller="t1", pins=PinStore("t1", tmp_path, use_keyring=False),
                              os_checker=NoPasswordChecker("test"), backoff=Backoff(3, 5, 300))
    watchers: list[Watcher] = [
        ClipboardWatcher(core.pipeline, FakeClipboard()),
        IdleLock(core.pipeline, FakePlatform(idle=0), FakeLocker(), creds, poll_s=0.05),
    ]
    assert [w.name for w in watchers] == ["clipboard", "idle"]
    for w in watchers:
        assert isinstance(w, Watcher)
        w.start()
    try:
        assert [w.state for w in watchers] == ["running", "running"]
    finally:
        for w in watchers:
            w.stop()
    assert watchers[0].state.startswith("unavailable")
