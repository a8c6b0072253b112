"""The gateway between worker threads and the Qt thread."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from PySide6.QtCore import QThread
from pytestqt.qtbot import QtBot

from ui.mainthread import MainThread, MainThreadTimeout


def test_call_on_main_runs_on_the_qt_thread_and_returns(qtbot: QtBot,
                                                        main_thread: MainThread) -> None:
    qt_thread = QThread.currentThread()
    with ThreadPoolExecutor(1) as pool:
        fut = pool.submit(main_thread.call_on_main,
                          lambda: (QThread.currentThread() is qt_thread, 42))
        qtbot.waitUntil(fut.done, timeout=5000)
        assert fut.result() == (True, 42)


def test_call_on_main_reraises_in_the_caller(qtbot: QtBot, main_thread: MainThread) -> None:
    def boom() -> None:
        raise KeyError("from the Qt thread")

    with ThreadPoolExecutor(1) as pool:
        fut = pool.submit(main_thread.call_on_main, boom)
        qtbot.waitUntil(fut.done, timeout=5000)
        with pytest.raises(KeyError, match="from the Qt thread"):
            fut.result()


def test_call_on_main_times_out_when_the_qt_thread_is_busy(main_thread: MainThread) -> None:
    ran = threading.Event()
    with ThreadPoolExecutor(1) as pool:
        # The Qt thread (this test) does not run its event loop while it waits here.
        fut = pool.submit(main_thread.call_on_main, ran.set, 0.2)
        with pytest.raises(MainThreadTimeout, match="did not answer"):
            fut.result(timeout=10)
    assert not ran.is_set()


def test_on_the_qt_thread_calls_run_at_once(main_thread: MainThread) -> None:
    seen: list[int] = []
    main_thread.run_on_main(lambda: seen.append(1))
    assert seen == [1]
    assert main_thread.call_on_main(lambda: 7) == 7
    assert main_thread.on_main()


def test_run_on_main_from_a_worker_keeps_order_and_survives_errors(
        qtbot: QtBot, main_thread: MainThread) -> None:
    seen: list[int] = []

    def post() -> None:
        for i in range(50):
            main_thread.run_on_main(lambda i=i: seen.append(i))
            if i == 10:
                main_thread.run_on_main(lambda: 1 / 0)  # logged, never kills the gateway

    t = threading.Thread(target=post)
    t.start()
    t.join()
    qtbot.waitUntil(lambda: len(seen) == 50, timeout=5000)
    assert seen == list(range(50))
