"""The OCR worker: a child process that reads images, so the guard's own memory never holds OCR.

    worker = OcrWorker(idle_s=60, timeout_s=60)
    result = worker.read(pixels)              # a numpy BGR/BGRA/gray uint8 array (a screen grab)
    result, size = worker.read_encoded(png)   # PNG/JPEG/BMP/TIFF/WebP bytes, decoded in the child
    worker.stop()

The child is started on demand as its own interpreter (`python -m guard.scan.ocr_worker`, not a
fork of a Qt process, nor multiprocessing's spawn, which re-runs the parent's `__main__` — for the
agent that is ui.app and would load PySide6 into the worker); it connects back over a
`multiprocessing.connection` listener with a one-time key handed over on its stdin, loads the models
on its first image and exits by itself after `idle_s` seconds without work, saying "bye" first so a
request sent at that moment is retried on a fresh child instead of failing. Each call has a
timeout; a child that hangs is killed and one that dies mid-call makes that call fail with
`OcrWorkerDiedError`; the next call starts a new child.

The protocol is one dict per message over a `multiprocessing` pipe:
request ``{"id", "op": "read"|"read_encoded"|"black_out"|"ping"|"stop", "mode",
"pixels"+"shape" | "data" (+"boxes", "margin" to black out)}``, response
``{"id", "ok": True, "lines": [(text, (x, y, w, h), score)], "stats", "size"}`` (``"png"`` for
black_out) or
``{"id", "ok": False, "kind": "image"|"ocr", "message"}``; an idle child sends ``{"op": "bye"}``.
Recognised text crosses the pipe in memory only; it is never logged or written anywhere.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import tempfile
import threading
from multiprocessing.connection import Client, Listener
from typing import TYPE_CHECKING, Any, Final

from guard.scan.ocr import Mode, OcrError, ReadResult, TextLine

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

    import numpy as np

    from guard.scan.images import Pixels

MAX_PIXELS: Final = 40_000_000
"""Largest image sent to the worker (an 8K screen is 33 MP); bigger ones are refused."""
MAX_ENCODED_BYTES: Final = 64 * 1024 * 1024
DEFAULT_IDLE_S: Final = 60.0
DEFAULT_TIMEOUT_S: Final = 60.0
CONNECT_TIMEOUT_S: Final = 30.0
"""How long a new child may take to start its interpreter and connect back."""
FROZEN_FLAG: Final = "--ocr-worker"
"""What makes a frozen (PyInstaller) executable run `_child_main` instead of its program: a
frozen build has no `python -m`; its entry scripts under installer/ check this flag first."""


class OcrWorkerError(OcrError):
    """The OCR worker could not answer."""


class OcrTimeoutError(OcrWorkerError):
    """The worker took longer than the timeout; it was stopped."""


class OcrWorkerDiedError(OcrWorkerError):
    """The worker exited while reading an image; the next call starts a new one."""


class OcrInputError(OcrError):
    """The image given to OCR is of a kind or size the worker does not take."""


class OcrWorker:
    """The parent's handle on the OCR child process; safe to share between threads (calls queue).

    `read` and `read_encoded` block until the child answers or `timeout_s` passes.
    """

    def __init__(self, idle_s: float = DEFAULT_IDLE_S, timeout_s: float = DEFAULT_TIMEOUT_S,
                 threads: int | None = None) -> None:
        self._idle_s = idle_s
        self._timeout_s = timeout_s
        self._threads = threads
        self._lock = threading.Lock()
        self._proc: Any = None
        self._conn: Any = None  # a Connection (a PipeConnection on Windows)
        self._next_id = 0
        self.starts = 0

    # -- public ---------------------------------------------------------------------------------

    def read(self, image: np.ndarray | Pixels, mode: Mode = "fast") -> ReadResult:
        """The text lines of an 8-bit image (H x W, H x W x 3 BGR or H x W x 4 BGRA), an array
        or raw `Pixels` (sent as they are: no numpy in this process)."""
        from guard.scan.images import Pixels

        shape = tuple(int(v) for v in image.shape)
        if not isinstance(image, Pixels) and (  # Pixels are checked when made
            str(image.dtype) != "uint8" or len(shape) not in (2, 3)
            or (len(shape) == 3 and shape[2] not in (3, 4))
        ):
            raise OcrInputError(f"OCR takes 8-bit gray, BGR or BGRA images, not {image.dtype} "
                                f"{shape}")
        if shape[0] * shape[1] > MAX_PIXELS:
            raise OcrInputError(f"image of {shape[1]}x{shape[0]} pixels is larger than the "
                                f"{MAX_PIXELS // 1_000_000} MP OCR limit")
        if isinstance(image, Pixels):
            pixels = image.data
        else:
            import numpy as np

            pixels = np.ascontiguousarray(image).tobytes()
        reply = self._call({"op": "read", "mode": mode, "pixels": pixels, "shape": shape})
        return _result(reply)

    def read_encoded(self, data: bytes, mode: Mode = "fast") -> tuple[ReadResult, tuple[int, int]]:
        """The text lines of an encoded image, decoded (with its limits) inside the worker.

        Raises `guard.scan.images.ImageError` for an image that cannot be decoded.
        """
        _check_encoded(data)
        reply = self._call({"op": "read_encoded", "mode": mode, "data": bytes(data)})
        size = reply.get("size") or (0, 0)
        return _result(reply), (int(size[0]), int(size[1]))

    def black_out(self, data: bytes, boxes: list[tuple[int, int, int, int]],
                  margin: int = 3) -> bytes:
        """`data` (an encoded image) as a PNG with the boxes filled black, drawn in the worker.

        Raises `guard.scan.images.ImageError` for an image that cannot be decoded.
        """
        _check_encoded(data)
        reply = self._call({"op": "black_out", "data": bytes(data), "margin": int(margin),
                            "boxes": [tuple(int(v) for v in b) for b in boxes]})
        return bytes(reply["png"])

    def ping(self) -> dict[str, Any]:
        """The worker's pid and peak memory (starting it if needed)."""
        return self._call({"op": "ping"})

    def peak_rss_mb(self) -> float:
        """The worker's peak resident memory in MB (NaN where the platform cannot tell)."""
        return float(self.ping().get("peak_rss_mb", float("nan")))

    @property
    def pid(self) -> int | None:
        proc = self._proc
        return int(proc.pid) if proc is not None and proc.is_alive() else None

    def running(self) -> bool:
        proc = self._proc
        return proc is not None and proc.is_alive()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Ask the worker to exit, and kill it if it does not within `timeout_s`."""
        with self._lock:
            conn, proc = self._conn, self._proc
            if conn is not None and proc is not None and proc.is_alive():
                try:
                    conn.send({"id": -1, "op": "stop"})
                except (OSError, ValueError):
                    pass
                proc.join(timeout_s)
            self._discard()

    def __enter__(self) -> OcrWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the protocol ---------------------------------------------------------------------------

    def _start(self) -> None:
        proc = _Child.spawn(self._idle_s, self._threads)
        self._proc, self._conn = proc, proc.conn
        self.starts += 1

    def _discard(self) -> None:
        """Forget the current child, killing it if it still runs."""
        proc, conn = self._proc, self._conn
        self._proc = self._conn = None
        if conn is not None:
            conn.close()
        if proc is not None:
            if proc.is_alive():
                proc.kill()
            proc.join(5.0)

    def _call(self, request: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            for _attempt in range(2):
                if self._proc is None or not self._proc.is_alive():
                    self._discard()
                    self._start()
                assert self._conn is not None
                self._next_id += 1
                request["id"] = self._next_id
                try:
                    self._conn.send(request)
                except (BrokenPipeError, ConnectionResetError, EOFError):
                    self._discard()  # it exited (idle) just before we wrote: a fresh one
                    continue
                reply = self._wait(request["id"])
                if reply is None:
                    continue  # it said bye before reading our request: resend to a fresh one
                if not reply.get("ok", False):
                    _raise(reply)
                return reply
            raise OcrWorkerDiedError("the OCR worker kept exiting before answering")

    def _wait(self, request_id: int) -> dict[str, Any] | None:
        conn = self._conn
        assert conn is not None
        while True:
            try:
                ready = conn.poll(self._timeout_s)
            except (OSError, EOFError):
                ready = True
            if not ready:
                self._discard()
                raise OcrTimeoutError(
                    f"OCR took longer than {self._timeout_s:.0f} s; the worker was stopped"
                )
            try:
                reply: dict[str, Any] = conn.recv()
            except (EOFError, OSError):
                code = self._proc.exitcode if self._proc is not None else None
                if self._proc is not None:
                    self._proc.join(2.0)
                    code = self._proc.exitcode
                self._discard()
                raise OcrWorkerDiedError(
                    f"the OCR worker exited while reading an image (exit code {code}); "
                    "the next image starts a new worker"
                ) from None
            if reply.get("op") == "bye":
                self._discard()
                return None
            if reply.get("id") == request_id:
                return reply


def _result(reply: dict[str, Any]) -> ReadResult:
    lines = tuple(
        TextLine(str(text), (int(b[0]), int(b[1]), int(b[2]), int(b[3])), float(score))
        for text, b, score in reply.get("lines", ())
    )
    return ReadResult(lines, dict(reply.get("stats", {})))


def _raise(reply: dict[str, Any]) -> None:
    message = str(reply.get("message", "OCR failed"))
    if reply.get("kind") == "image":
        from guard.scan.images import ImageError

        raise ImageError(message)
    if reply.get("kind") == "unavailable":
        from guard.scan.ocr import OcrUnavailableError

        raise OcrUnavailableError(message)
    raise OcrError(message)


class _Child:
    """A worker interpreter started with `subprocess` and the connection it made back; offers
    the `multiprocessing.Process` calls the handle uses (`is_alive`, `join`, `kill`, `exitcode`).
    """

    def __init__(self, popen: subprocess.Popen[bytes], conn: Any) -> None:
        self.popen = popen
        self.conn = conn

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def exitcode(self) -> int | None:
        return self.popen.poll()

    def is_alive(self) -> bool:
        return self.popen.poll() is None

    def join(self, timeout: float | None = None) -> None:
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            pass

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()

    @classmethod
    def spawn(cls, idle_s: float, threads: int | None) -> _Child:
        """Start `python -m guard.scan.ocr_worker` and wait until it has connected back."""
        authkey = secrets.token_bytes(32)
        with tempfile.TemporaryDirectory(prefix="tg-ocr-") as tmp:
            # A Unix socket in a private (0700) directory; a named pipe on Windows.
            address = (None if sys.platform == "win32"
                       else os.path.join(tmp, "ocr.sock"))
            listener = Listener(address, authkey=authkey)
            try:
                popen = subprocess.Popen(
                    worker_command(),
                    stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                    env=_child_env(), close_fds=True)
                assert popen.stdin is not None
                hello = f"{listener.address}\n{authkey.hex()}\n{idle_s}\n{threads or 0}\n"
                try:
                    popen.stdin.write(hello.encode())
                    popen.stdin.close()
                except BrokenPipeError:
                    pass  # the child ended before reading: reported below as not started
                accepted: list[Any] = []
                failed: list[BaseException] = []

                def accept() -> None:
                    try:
                        accepted.append(listener.accept())
                    except (OSError, EOFError) as exc:  # closed below, or a bad handshake
                        failed.append(exc)

                waiter = threading.Thread(target=accept, name="ocr-worker-accept", daemon=True)
                waiter.start()
                deadline = CONNECT_TIMEOUT_S
                while waiter.is_alive() and deadline > 0 and popen.poll() is None:
                    waiter.join(0.05)
                    deadline -= 0.05
            finally:
                listener.close()  # ends a pending accept; the accepted connection stays open
            waiter.join(2.0)
        if not accepted:
            code = popen.poll()
            if code is None:
                popen.kill()
                popen.wait(5)
            why = f"exit code {code}" if code is not None else "it did not connect back"
            raise OcrWorkerDiedError(f"the OCR worker did not start ({why})")
        return cls(popen, accepted[0])


def _check_encoded(data: bytes) -> None:
    """`OcrInputError` for an encoded image too large to send to the worker."""
    if len(data) > MAX_ENCODED_BYTES:
        raise OcrInputError(f"image file of {len(data)} bytes is larger than the "
                            f"{MAX_ENCODED_BYTES >> 20} MiB limit")


def worker_command() -> list[str]:
    """The command line that starts a worker: this interpreter with `-m`, or in a frozen build
    this same executable with `FROZEN_FLAG` (sys.executable is the frozen program there)."""
    if getattr(sys, "frozen", False):
        return [sys.executable, FROZEN_FLAG]
    return [sys.executable, "-m", "guard.scan.ocr_worker"]


def _child_env() -> dict[str, str]:
    """The child's environment: the parent's, with the import path it was started with (so a
    test's or a source tree's `guard` is the one the child imports)."""
    env = dict(os.environ)
    path = [p for p in sys.path if p]
    if path:
        env["PYTHONPATH"] = os.pathsep.join(path)
    return env


def _child_main() -> int:
    """The worker interpreter's entry: read the parent's address and key, connect, serve."""
    address = sys.stdin.readline().strip()
    authkey = bytes.fromhex(sys.stdin.readline().strip())
    idle_s = float(sys.stdin.readline().strip() or DEFAULT_IDLE_S)
    threads = int(sys.stdin.readline().strip() or 0) or None
    conn: Any = Client(address, authkey=authkey)
    serve(conn, idle_s, threads)
    return 0


# -- the child --------------------------------------------------------------------------------


def _peak_rss_mb() -> float:
    if sys.platform == "win32":
        return float("nan")  # no resource module; the figure is for benchmarks only
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def serve(conn: Connection, idle_s: float, threads: int | None) -> None:
    """The worker's loop: answer requests until told to stop, the parent goes, or idle_s pass."""
    from guard.scan.ocr import OcrEngine, OcrUnavailableError

    engine = OcrEngine(threads=threads)
    while True:
        try:
            if not conn.poll(idle_s):
                conn.send({"op": "bye"})
                break
            request = conn.recv()
        except (EOFError, OSError):
            break  # the parent is gone
        op = request.get("op")
        if op == "stop":
            break
        reply: dict[str, Any] = {"id": request.get("id"), "ok": True}
        try:
            if op == "ping":
                reply.update(pid=os.getpid(), peak_rss_mb=_peak_rss_mb())
            elif op in ("read", "read_encoded"):
                reply.update(_read(engine, request))
            elif op == "black_out":
                from guard.scan.images import black_out_png

                reply.update(png=black_out_png(request["data"], request["boxes"],
                                               request.get("margin", 3)))
            else:
                reply.update(ok=False, kind="ocr", message=f"unknown OCR request {op!r}")
        except OcrUnavailableError as exc:
            reply.update(ok=False, kind="unavailable", message=str(exc))
        except OcrError as exc:
            reply.update(ok=False, kind="ocr", message=str(exc))
        except Exception as exc:  # the worker answers every request, whatever broke inside
            from guard.scan.images import ImageError

            if isinstance(exc, ImageError):
                reply.update(ok=False, kind="image", message=str(exc))
            else:
                # the type only: a message from deep inside a decoder could quote image content
                reply.update(ok=False, kind="ocr", message=f"OCR failed ({type(exc).__name__})")
        try:
            conn.send(reply)
        except (OSError, ValueError):
            break
    conn.close()


def _read(engine: Any, request: dict[str, Any]) -> dict[str, Any]:
    import numpy as np

    if request["op"] == "read_encoded":
        from guard.scan.images import decode

        image = decode(request["data"])
    else:
        image = np.frombuffer(request["pixels"], dtype=np.uint8).reshape(request["shape"])
    result = engine.read(image, mode=request.get("mode", "fast"))
    return {
        "lines": [(line.text, line.box, line.score) for line in result.lines],
        "stats": result.stats,
        "size": (int(image.shape[1]), int(image.shape[0])),
    }


if __name__ == "__main__":
    sys.exit(_child_main())
