"""Fixtures for the local channel's tests: a short socket directory, a real server, raw clients."""

from __future__ import annotations

import os
import pwd
import socket
import struct
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from guard.delivery.journal import Journal
from guard.ipc.messages import FrameDecoder, Message, decode, encode
from guard.ipc.server import LocalChannelServer
from guard.model import Channel, Device, Event
from tests.support import waiting

WAIT_S = 30.0  # a bound for "eventually"; nothing asserts on speed

if sys.platform == "win32":
    pytest.skip("Unix-socket tests", allow_module_level=True)


def login() -> str:
    return pwd.getpwuid(os.getuid()).pw_name


def event(i: int = 0, teller: str | None = None) -> Event:
    return Event(type="CLIPBOARD_COPY", device=Device(id="pc", hostname="pc"),
                 teller=login() if teller is None else teller, channel=Channel.CLIPBOARD,
                 detail={"i": i})


def eventually(what: str, check: Callable[[], Any], timeout: float = WAIT_S) -> Any:
    return waiting.eventually(what, check, timeout, interval=0.02)


class RawClient:
    """A framed client that speaks the wire format by hand (no LocalChannelClient)."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(WAIT_S)
        self.sock.connect(str(path))
        self.decoder = FrameDecoder()
        self.queue: list[Message] = []

    def send(self, msg: Message) -> None:
        self.sock.sendall(encode(msg))

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read(self) -> Message | None:
        """The next message, or None at the end of the connection."""
        while not self.queue:
            data = self.sock.recv(65536)
            if not data:
                return None
            self.queue.extend(decode(p) for p in self.decoder.feed(data))
        return self.queue.pop(0)

    def ask(self, msg: Message) -> Message:
        self.send(msg)
        reply = self.read()
        assert reply is not None, f"the server closed the connection after {msg.type}"
        return reply

    def hello(self, **body: Any) -> Message:
        return self.ask(Message(type="hello", body={"versions": [1], **body}))

    def at_end(self) -> bool:
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True

    def close(self) -> None:
        self.sock.close()


def frame_header(length: int) -> bytes:
    return struct.pack(">I", length)


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    j = Journal(tmp_path / "journal.db", device=Device(id="pc", hostname="pc"))
    try:
        yield j
    finally:
        j.close()


@pytest.fixture
def serve(journal: Journal, short_dir: Path) -> Iterator[Callable[..., LocalChannelServer]]:
    """Start a real `LocalChannelServer` on a real socket; stopped at the end."""
    started: list[LocalChannelServer] = []

    def make(**kwargs: Any) -> LocalChannelServer:
        server = LocalChannelServer(kwargs.pop("journal", journal),
                                    short_dir / f"s{len(started)}.sock", **kwargs)
        server.start()
        started.append(server)
        return server

    yield make
    for s in started:
        s.stop()
