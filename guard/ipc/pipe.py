"""Windows named-pipe side of the local channel: the pipe's ACL, peer identity, listen and connect.

The pipe ``\\\\.\\pipe\\teller-guard`` is created by the machine service (SYSTEM) with a security
descriptor that gives SYSTEM and Administrators full access and interactive or authenticated
users read and write, but not FILE_CREATE_PIPE_INSTANCE: a teller can talk to the service but
cannot create an instance of the pipe and pose as it. The service creates the first instance
with FILE_FLAG_FIRST_PIPE_INSTANCE, so it notices when someone else got there first. Remote
clients are rejected. Who is on the other end comes from the kernel: the client's process id,
then its token's user SID and account name.

Every Windows call goes through a `PipeApi`; the real one (`Win32PipeApi`) is ctypes and exists
only on Windows, a test fake stands in on Linux. One thread serves each pipe instance (a fixed,
bounded number); an idle connection is ended by cancelling its pending read.
"""


from __future__ import annotations

import logging
import sys
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from guard.ipc.messages import PIPE_NAME, LocalChannelUnavailable
from guard.ipc.unix import Peer

if TYPE_CHECKING:
    from guard.ipc.server import Connection, LocalChannelServer

log = logging.getLogger(__name__)

# D:P protected DACL. Network logons denied outright; SYSTEM and Administrators: GENERIC_ALL;
# authenticated and interactive users: FILE_GENERIC_READ | FILE_WRITE_DATA (0x120089 | 0x2).
# Not GENERIC_WRITE: it includes FILE_APPEND_DATA, which on a pipe is FILE_CREATE_PIPE_INSTANCE.
PIPE_SDDL = "D:P(D;;GA;;;NU)(A;;GA;;;SY)(A;;GA;;;BA)(A;;0x12008b;;;AU)(A;;0x12008b;;;IU)"
CLIENT_ACCESS = 0x0012008B  # what the agent asks for when it opens the pipe: exactly the above
SYSTEM_SID = "S-1-5-18"
INSTANCES = 16
BUFFER_SIZE = 64 * 1024

ERROR_BROKEN_PIPE = 109
ERROR_PIPE_BUSY = 231
ERROR_NO_DATA = 232
ERROR_PIPE_CONNECTED = 535
ERROR_OPERATION_ABORTED = 995
ERROR_ACCESS_DENIED = 5
ERROR_FILE_NOT_FOUND = 2
ERROR_SEM_TIMEOUT = 121
_ENDED = {ERROR_BROKEN_PIPE, ERROR_NO_DATA, ERROR_OPERATION_ABORTED}


@dataclass(frozen=True, slots=True)
class ClientIdentity:
    """Who opened the pipe, from the kernel."""

    pid: int
    sid: str
    login: str  # the account name without its domain


class PipeApi(Protocol):
    """The Windows calls the pipe transport makes. Handles are ints. Errors are OSError with
    `winerror` set (as ctypes.WinError makes them)."""

    def create_instance(self, name: str, *, first: bool, instances: int) -> int:
        """CreateNamedPipeW with the PIPE_SDDL descriptor, byte mode, remote clients rejected."""
    def connect(self, handle: int) -> None:
        """ConnectNamedPipe: blocks until a client opens this instance."""
    def read(self, handle: int, size: int) -> bytes:
        """ReadFile: up to `size` bytes; b"" when the client has gone or the read was cancelled."""
    def write(self, handle: int, data: bytes) -> None:
        """WriteFile, the whole of `data`."""
    def cancel(self, handle: int) -> None:
        """CancelIoEx: ends a blocking connect or read on `handle` from another thread."""
    def disconnect(self, handle: int) -> None:
        """FlushFileBuffers + DisconnectNamedPipe."""
    def close(self, handle: int) -> None:
        """CloseHandle."""
    def client_identity(self, handle: int) -> ClientIdentity:
        """GetNamedPipeClientProcessId, then the process token's user SID and account name."""
    def open_client(self, name: str, timeout_s: float) -> int:
        """The agent's side: WaitNamedPipeW + CreateFileW with CLIENT_ACCESS."""
    def exists(self, name: str, timeout_s: float) -> bool:
        """WaitNamedPipeW: True when an instance of `name` is there (busy counts)."""


def peer_from_identity(identity: ClientIdentity) -> Peer:
    """The channel's `Peer` for a pipe client: SYSTEM is privileged (uid 0, may send events for
    any teller); everyone else is bound to its own login (uid -1; the SID tells users apart)."""
    privileged = identity.sid == SYSTEM_SID
    return Peer(pid=identity.pid, uid=0 if privileged else -1, gid=-1, login=identity.login,
                sid=identity.sid)


def _winerror(exc: OSError) -> int:
    return int(getattr(exc, "winerror", None) or 0)


class PipeStream:
    """A connected client handle as the agent's `Stream` (recv / sendall / close)."""

    def __init__(self, api: PipeApi, handle: int) -> None:
        self.api = api
        self.handle = handle
        self._closed = False

    def recv(self, n: int) -> bytes:
        if self._closed:
            return b""
        try:
            return self.api.read(self.handle, n)
        except OSError as exc:
            if _winerror(exc) in _ENDED:
                return b""
            raise

    def sendall(self, data: bytes) -> None:
        if self._closed:
            raise OSError("the pipe is closed")
        self.api.write(self.handle, data)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self.api.cancel(self.handle)  # the reader thread's ReadFile returns
        except OSError:
            pass
        try:
            self.api.close(self.handle)
        except OSError:
            pass


def _default_api() -> PipeApi:
    if sys.platform == "win32":
        return Win32PipeApi()
    raise LocalChannelUnavailable(f"named pipes are a Windows transport; this is "
                                  f"{sys.platform} (use the Unix socket)")


def connect_pipe(name: str = PIPE_NAME, timeout_s: float = 2.0,
                 api: PipeApi | None = None) -> PipeStream:
    """The agent's connection to the service's pipe; OSError when nobody listens."""
    api = api or _default_api()
    return PipeStream(api, api.open_client(name, timeout_s))


def pipe_exists(name: str = PIPE_NAME, timeout_s: float = 1.0,
                api: PipeApi | None = None) -> bool:
    try:
        api = api or _default_api()
    except LocalChannelUnavailable:
        return False
    return api.exists(name, timeout_s)


class PipeServer:
    """The named-pipe transport of `LocalChannelServer`: `instances` threads, each serving one
    pipe instance at a time (connect, identify, read until the client goes, disconnect)."""

    def __init__(self, server: LocalChannelServer, name: str = PIPE_NAME, *,
                 api: PipeApi | None = None, instances: int = INSTANCES,
                 retry_s: float = 0.5) -> None:
        self.server = server
        self.name = name
        self.instances = instances
        self.retry_s = retry_s
        self.failure = ""
        self._api = api
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._handles: set[int] = set()
        self._room: dict[int, threading.Event] = {}  # per connection: reading may go on
        self._sweeper: threading.Thread | None = None

    @property
    def api(self) -> PipeApi:
        if self._api is None:
            self._api = _default_api()
        return self._api

    def start(self) -> None:
        try:
            first = self.api.create_instance(self.name, first=True, instances=self.instances)
        except OSError as exc:
            if _winerror(exc) == ERROR_ACCESS_DENIED:
                raise LocalChannelUnavailable(
                    f"another process already owns {self.name}; stop it (or the other "
                    f"teller-guard service) and start again") from exc
            raise
        self._stop.clear()
        for i in range(self.instances):
            t = threading.Thread(target=self._serve, args=(first if i == 0 else None,),
                                 name=f"teller-guard-pipe-{i}", daemon=True)
            t.start()
            self._threads.append(t)
        self._sweeper = threading.Thread(target=self._sweep, name="teller-guard-pipe-sweep",
                                         daemon=True)
        self._sweeper.start()

    def alive(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    def wake(self, conn: Connection | None = None) -> None:
        if conn is not None:
            event = self._room.get(conn.cid)
            if event is not None:
                event.set()

    def half_close(self, conn: Connection) -> None:
        """Pipes do not half-close; the server's linger time closes the connection."""

    def stop(self, timeout: float) -> None:
        self._stop.set()
        with self._lock:
            handles = list(self._handles)
        for h in handles:
            try:
                self.api.cancel(h)
            except OSError:
                pass
        for event in list(self._room.values()):
            event.set()
        for t in [*self._threads, *([self._sweeper] if self._sweeper else [])]:
            t.join(timeout)
        self._threads.clear()

    def _sweep(self) -> None:
        while not self._stop.wait(0.25):
            self.server.sweep()

    def _serve(self, handle: int | None) -> None:
        try:
            while not self._stop.is_set():
                if handle is None:
                    handle = self._create()
                    if handle is None:
                        continue
                try:
                    self._one_client(handle)
                finally:
                    with self._lock:
                        self._handles.discard(handle)
                    for call in (self.api.disconnect, self.api.close):
                        try:
                            call(handle)
                        except OSError:
                            pass
                    handle = None
        except Exception as exc:  # the server's state then says stopped, with this reason
            self.failure = f"{type(exc).__name__}: {exc}"
            log.exception("local channel: a pipe instance failed")

    def _create(self) -> int | None:
        try:
            handle = self.api.create_instance(self.name, first=False, instances=self.instances)
        except OSError as exc:
            self.server.degrade(f"cannot create a pipe instance (error {_winerror(exc)}: "
                                f"{exc.strerror or exc}); new connections wait")
            self._stop.wait(self.retry_s)
            return None
        self.server.recover()
        with self._lock:
            self._handles.add(handle)
        return handle

    def _one_client(self, handle: int) -> None:
        with self._lock:
            self._handles.add(handle)
        try:
            self.api.connect(handle)
        except OSError as exc:
            if _winerror(exc) != ERROR_PIPE_CONNECTED:  # connected before we waited: fine
                if not self._stop.is_set() and _winerror(exc) not in _ENDED:
                    log.info("local channel: pipe connect failed: %s", exc)
                return
        if self._stop.is_set():
            return
        try:
            peer = peer_from_identity(self.api.client_identity(handle))
        except OSError as exc:
            log.warning("local channel: cannot tell who opened the pipe (%s); closed", exc)
            return
        api = self.api

        def send(data: bytes) -> None:
            api.write(handle, data)

        def close() -> None:
            try:
                api.cancel(handle)
            except OSError:
                pass

        conn = self.server.admit(peer, send, close)
        if conn is None:
            return
        room = threading.Event()
        room.set()
        self._room[conn.cid] = room
        try:
            while not self._stop.is_set() and not conn.gone:
                if not self.server.room(conn):
                    room.clear()
                    if not self.server.room(conn):
                        room.wait(1.0)
                    continue
                want = conn.decoder.wants() if conn.decoder is not None and \
                    conn.linger_until is None else BUFFER_SIZE
                try:
                    data = api.read(handle, want)
                except OSError as exc:
                    if _winerror(exc) not in _ENDED:
                        log.info("local channel: pipe read failed: %s", exc)
                    break
                if not data:
                    break
                self.server.received(conn, data)
        finally:
            self._room.pop(conn.cid, None)
            self.server.closed(conn)


if sys.platform == "win32":
    import ctypes
    from ctypes import wintypes

    _k32 = ctypes.WinDLL("kernel32", use_last_error=True)
    _adv = ctypes.WinDLL("advapi32", use_last_error=True)

    PIPE_ACCESS_DUPLEX = 0x00000003
    FILE_FLAG_FIRST_PIPE_INSTANCE = 0x00080000
    PIPE_TYPE_BYTE = 0x0
    PIPE_READMODE_BYTE = 0x0
    PIPE_WAIT = 0x0
    PIPE_REJECT_REMOTE_CLIENTS = 0x00000008
    OPEN_EXISTING = 3
    PROCESS_QUERY_LIMITED_INFORMATION = 0x1000
    TOKEN_QUERY = 0x0008
    TOKEN_USER_CLASS = 1
    SDDL_REVISION_1 = 1
    INVALID_HANDLE = wintypes.HANDLE(-1).value

    class _SecurityAttributes(ctypes.Structure):
        _fields_ = [("nLength", wintypes.DWORD), ("lpSecurityDescriptor", wintypes.LPVOID),
                    ("bInheritHandle", wintypes.BOOL)]

    class _SidAndAttributes(ctypes.Structure):
        _fields_ = [("Sid", wintypes.LPVOID), ("Attributes", wintypes.DWORD)]

    def _fail(what: str) -> OSError:
        err = ctypes.get_last_error()
        exc = ctypes.WinError(err)
        exc.strerror = f"{what}: {exc.strerror}"
        return exc

    class Win32PipeApi:
        """`PipeApi` through ctypes (kernel32, advapi32)."""

        def __init__(self) -> None:
            sd = wintypes.LPVOID()
            if not _adv.ConvertStringSecurityDescriptorToSecurityDescriptorW(
                    PIPE_SDDL, SDDL_REVISION_1, ctypes.byref(sd), None):
                raise _fail("ConvertStringSecurityDescriptorToSecurityDescriptorW")
            self._sd = sd  # kept for the process's lifetime (every instance uses it)
            self._sa = _SecurityAttributes(ctypes.sizeof(_SecurityAttributes), sd, False)

        def create_instance(self, name: str, *, first: bool, instances: int) -> int:
            flags = PIPE_ACCESS_DUPLEX | (FILE_FLAG_FIRST_PIPE_INSTANCE if first else 0)
            handle = _k32.CreateNamedPipeW(
                name, flags, PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT
                | PIPE_REJECT_REMOTE_CLIENTS, instances, BUFFER_SIZE, BUFFER_SIZE, 0,
                ctypes.byref(self._sa))
            if handle in (None, 0, INVALID_HANDLE):
                raise _fail("CreateNamedPipeW")
            return int(handle)

        def connect(self, handle: int) -> None:
            if not _k32.ConnectNamedPipe(wintypes.HANDLE(handle), None):
                raise _fail("ConnectNamedPipe")

        def read(self, handle: int, size: int) -> bytes:
            buf = ctypes.create_string_buffer(size)
            got = wintypes.DWORD()
            if not _k32.ReadFile(wintypes.HANDLE(handle), buf, size, ctypes.byref(got), None):
                err = ctypes.get_last_error()
                if err in _ENDED:
                    return b""
                raise ctypes.WinError(err)
            return buf.raw[: got.value]

        def write(self, handle: int, data: bytes) -> None:
            view = memoryview(data)
            while view:
                done = wintypes.DWORD()
                chunk = bytes(view[:BUFFER_SIZE])
                if not _k32.WriteFile(wintypes.HANDLE(handle), chunk, len(chunk),
                                      ctypes.byref(done), None):
                    raise _fail("WriteFile")
                view = view[done.value:]

        def cancel(self, handle: int) -> None:
            _k32.CancelIoEx(wintypes.HANDLE(handle), None)  # nothing pending is not an error

        def disconnect(self, handle: int) -> None:
            _k32.FlushFileBuffers(wintypes.HANDLE(handle))
            _k32.DisconnectNamedPipe(wintypes.HANDLE(handle))

        def close(self, handle: int) -> None:
            _k32.CloseHandle(wintypes.HANDLE(handle))

        def client_identity(self, handle: int) -> ClientIdentity:
            pid = wintypes.ULONG()
            if not _k32.GetNamedPipeClientProcessId(wintypes.HANDLE(handle), ctypes.byref(pid)):
                raise _fail("GetNamedPipeClientProcessId")
            proc = _k32.OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, False, pid.value)
            if not proc:
                raise _fail("OpenProcess")
            try:
                token = wintypes.HANDLE()
                if not _adv.OpenProcessToken(proc, TOKEN_QUERY, ctypes.byref(token)):
                    raise _fail("OpenProcessToken")
                try:
                    sid, login = _token_user(token)
                    return ClientIdentity(pid=pid.value, sid=sid, login=login)
                finally:
                    _k32.CloseHandle(token)
            finally:
                _k32.CloseHandle(proc)

        def open_client(self, name: str, timeout_s: float) -> int:
            _k32.WaitNamedPipeW(name, max(1, int(timeout_s * 1000)))
            handle = _k32.CreateFileW(name, CLIENT_ACCESS, 0, None, OPEN_EXISTING, 0, None)
            if handle in (None, 0, INVALID_HANDLE):
                raise _fail(f"CreateFileW({name})")
            return int(handle)

        def exists(self, name: str, timeout_s: float) -> bool:
            if _k32.WaitNamedPipeW(name, max(1, int(timeout_s * 1000))):
                return True
            return ctypes.get_last_error() in (ERROR_SEM_TIMEOUT, ERROR_PIPE_BUSY)

    def _token_user(token: wintypes.HANDLE) -> tuple[str, str]:
        """(user SID string, account name) of a token."""
        need = wintypes.DWORD()
        _adv.GetTokenInformation(token, TOKEN_USER_CLASS, None, 0, ctypes.byref(need))
        buf = ctypes.create_string_buffer(need.value)
        if not _adv.GetTokenInformation(token, TOKEN_USER_CLASS, buf, need, ctypes.byref(need)):
            raise _fail("GetTokenInformation(TokenUser)")
        user = _SidAndAttributes.from_buffer(buf)
        text = wintypes.LPWSTR()
        if not _adv.ConvertSidToStringSidW(user.Sid, ctypes.byref(text)):
            raise _fail("ConvertSidToStringSidW")
        try:
            sid = str(text.value)
        finally:
            _k32.LocalFree(text)
        name = ctypes.create_unicode_buffer(256)
        domain = ctypes.create_unicode_buffer(256)
        n_name, n_domain, use = wintypes.DWORD(256), wintypes.DWORD(256), wintypes.DWORD()
        if not _adv.LookupAccountSidW(None, user.Sid, name, ctypes.byref(n_name), domain,
                                      ctypes.byref(n_domain), ctypes.byref(use)):
            raise _fail("LookupAccountSidW")
        return sid, name.value

