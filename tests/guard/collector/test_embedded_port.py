"""The embedded collector's dashboard stays at one address between starts."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import httpx
import pytest

from guard.collector import embedded
from guard.collector.embedded import TOKENS_FILE, address, start_embedded


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


@pytest.fixture
def own_default_port(monkeypatch: pytest.MonkeyPatch) -> int:
    """A first-start port of this test's own (TELLER_GUARD_EMBEDDED_PORT): no other test of the
    run takes it between this test's stop and its next start."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    monkeypatch.setenv(embedded.PORT_ENV, str(port))
    return port


def test_port_is_kept_between_starts(tmp_path: Path, own_default_port: int) -> None:
    first = start_embedded(tmp_path)
    try:
        assert _port(first.url) == own_default_port
        assert httpx.get(f"{first.url}/api/v1/health").status_code == 200
    finally:
        first.stop()
    stored = json.loads((tmp_path / TOKENS_FILE).read_text())
    assert stored["port"] == _port(first.url)
    assert address(tmp_path) == first.url  # what a start script prints before the agent runs
    again = start_embedded(tmp_path)
    try:
        assert again.url == first.url
        assert httpx.get(f"{again.url}/api/v1/health").status_code == 200
    finally:
        again.stop()


def test_taken_port_moves_this_start_only(tmp_path: Path, own_default_port: int) -> None:
    first = start_embedded(tmp_path)
    assert _port(first.url) == own_default_port
    first.stop()
    holder = socket.socket()
    holder.bind(("127.0.0.1", _port(first.url)))
    holder.listen()
    try:
        moved = start_embedded(tmp_path)
        try:
            assert moved.url != first.url
            assert httpx.get(f"{moved.url}/api/v1/health").status_code == 200
        finally:
            moved.stop()
    finally:
        holder.close()
    # the recorded port is still the dashboard's: the next start is back on it
    assert json.loads((tmp_path / TOKENS_FILE).read_text())["port"] == _port(first.url)
    back = start_embedded(tmp_path)
    try:
        assert back.url == first.url
    finally:
        back.stop()


def test_address_before_the_first_start_is_the_default(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(embedded.PORT_ENV, raising=False)
    assert address(tmp_path / "never-started") == "http://127.0.0.1:8471"


def test_the_first_port_can_be_set_and_a_bad_value_falls_back(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv(embedded.PORT_ENV, "18999")
    assert address(tmp_path / "never-started") == "http://127.0.0.1:18999"
    for bad in ("0", "65536", "http", "-1"):
        monkeypatch.setenv(embedded.PORT_ENV, bad)
        assert address(tmp_path / "never-started") == "http://127.0.0.1:8471"
    assert "is no port" in caplog.text
