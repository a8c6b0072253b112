"""Real servers for tests on loopback: a throw-away PostgreSQL and the collector as a process.

`start_postgres()` runs PostgreSQL from the Debian package binaries in a temporary directory (as
the `postgres` user when the tests run as root, since PostgreSQL refuses to run as root) and yields
a SQLAlchemy URL; `create_database(url, name)` gives each test its own database on it.

`run_collector(db_url)` starts the real `teller-guard collector` as a subprocess and yields its
base URL once it answers. The yielded value is a `str` (the base URL, e.g.
``http://127.0.0.1:41234``) that also has `.stop()` (SIGTERM), `.kill()` (SIGKILL), `.start()`
(again, on the same port), `.running`, `.port`, `.enroll_token`, `.admin_token` and `.log_path`,
so tests can fault the collector while a shipper talks to it.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

PG_BIN_CANDIDATES = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)


class ServerError(Exception):
    """A test server did not start; the message carries the tail of its log."""


def free_port() -> int:
    """A loopback TCP port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _pg_bin() -> Path:
    for d in PG_BIN_CANDIDATES:
        if (d / "postgres").exists() and (d / "initdb").exists():
            return d
    raise ServerError("PostgreSQL binaries not found: apt-get install postgresql")


@contextlib.contextmanager
def start_postgres(timeout: float = 60.0) -> Iterator[str]:
    """Run a throw-away PostgreSQL on a free loopback port; yield `postgresql+psycopg://` URL."""
    import psycopg

    bindir = _pg_bin()
    root = Path(tempfile.mkdtemp(prefix="tg-pg-"))
    data = root / "data"
    log_path = root / "postgres.log"
    kwargs: dict[str, object] = {"cwd": str(root)}
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.chown(root, pw.pw_uid, pw.pw_gid)
        kwargs.update(user=pw.pw_uid, group=pw.pw_gid, extra_groups=[])
    proc: subprocess.Popen[bytes] | None = None
    try:
        init = subprocess.run(
            [str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres",
             "-E", "UTF8", "--locale=C", "--no-sync"],
            capture_output=True, check=False, **kwargs,  # type: ignore[call-overload]
        )
        if init.returncode != 0:
            raise ServerError(f"initdb failed: {init.stderr.decode(errors='replace')[-2000:]}")
        port = free_port()
        with open(log_path, "wb") as log:
            if os.geteuid() == 0:
                os.chown(log_path, pw.pw_uid, pw.pw_gid)
            proc = subprocess.Popen(
                [str(bindir / "postgres"), "-D", str(data), "-p", str(port),
                 "-h", "127.0.0.1", "-k", str(root),
                 "-c", "fsync=off", "-c", "synchronous_commit=off",
                 "-c", "full_page_writes=off", "-c", "max_connections=200"],
                stdout=log, stderr=subprocess.STDOUT, **kwargs,  # type: ignore[call-overload]
            )
        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(host="127.0.0.1", port=port, user="postgres",
                                     dbname="postgres", connect_timeout=2):
                    break
            except psycopg.OperationalError as exc:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise ServerError(
                        f"PostgreSQL did not start: {exc}\n{_tail(log_path)}") from exc
                time.sleep(0.1)
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        if proc is not None and proc.poll() is None:
            # "immediate" shutdown: the data is thrown away, so no final checkpoint is written
            proc.send_signal(signal.SIGQUIT)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(root, ignore_errors=True)


def create_database(url: str, name: str) -> str:
    """Create database `name` on the server of `url` (dropping an older one); return its URL."""
    import psycopg
    from sqlalchemy.engine import make_url

    if not name.replace("_", "").isalnum():
        raise ValueError("database name: letters, digits and underscores only")
    u = make_url(url)
    with psycopg.connect(host=u.host, port=u.port, user=u.username, dbname=u.database,
                         autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[arg-type]
        conn.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]
    return u.set(database=name).render_as_string(hide_password=False)


class CollectorProcess(str):
    """The base URL of a running `teller-guard collector` process, with controls to fault it."""

    port: int
    enroll_token: str
    admin_token: str
    log_path: Path
    _argv: list[str]
    _env: dict[str, str]
    _proc: subprocess.Popen[bytes] | None
    _ready_timeout: float
    _nofile: int | None = None
    _verify: Any = True  # True or an ssl.SSLContext

    def __new__(cls, url: str) -> CollectorProcess:
        return super().__new__(cls, url)

    @property
    def url(self) -> str:
        return str.__str__(self)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def start(self) -> None:
        """Start the collector (again) on the same port and wait until it answers."""
        if self.running:
            raise ServerError("collector is already running")
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(self._argv, env=self._env, stdout=log,
                                          stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                          preexec_fn=self._limits if self._nofile else None)
        deadline = time.monotonic() + self._ready_timeout
        while True:
            try:
                r = httpx.get(f"{self.url}/api/v1/health", timeout=2.0, verify=self._verify)
                if r.status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self._proc.poll() is not None:
                raise ServerError(
                    f"collector exited with {self._proc.returncode}:\n{_tail(self.log_path)}")
            if time.monotonic() > deadline:
                self.kill()
                raise ServerError(f"collector did not answer in time:\n{_tail(self.log_path)}")
            time.sleep(0.05)

    def _limits(self) -> None:
        import resource

        assert self._nofile is not None
        resource.setrlimit(resource.RLIMIT_NOFILE, (self._nofile, self._nofile))

    def stop(self, timeout: float = 15.0) -> None:
        """Graceful stop (SIGTERM), SIGKILL if it does not exit in `timeout` seconds."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None

    def kill(self) -> None:
        """SIGKILL: the collector dies mid-request, as on a crash or power loss of the process."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._proc = None


@contextlib.contextmanager
def run_collector(
    db_url: str,
    port: int = 0,
    enroll_token: str = "test-enroll-token",
    admin_token: str = "test-admin-token",
    extra_args: Sequence[str] = (),
    ready_timeout: float = 60.0,
    env: Mapping[str, str] | None = None,
    key_file: Path | None = None,
    nofile: int | None = None,
    https_ca: Path | None = None,
) -> Iterator[CollectorProcess]:
    """Run `teller-guard collector` on 127.0.0.1 (a free port when `port` is 0) for the block.

    Yields the base URL (`CollectorProcess`, a `str`) once `GET /api/v1/health` answers.
    `extra_args` go to the command line (e.g. ``["--syslog", "tcp://127.0.0.1:5514"]``); `env`
    adds environment variables (e.g. ``{"TZ": "Asia/Shanghai"}`` for the dashboard's clock).
    `key_file` is the server key that encrypts device keys (default: one per database URL in the
    temporary directory, so processes sharing a database share it); `nofile` caps the process's
    open files (RLIMIT_NOFILE), as a small server would. With `https_ca` (the CA of the
    `--tls-cert` given in `extra_args`) the collector is reached over HTTPS.
    """
    import hashlib

    if key_file is None:
        keys = Path(tempfile.gettempdir()) / f"tg-collector-keys-{os.getuid()}"
        keys.mkdir(mode=0o700, exist_ok=True)
        key_file = keys / (hashlib.sha256(db_url.encode()).hexdigest()[:24] + ".key")
    port = port or free_port()
    logdir = Path(tempfile.mkdtemp(prefix="tg-collector-"))
    proc = CollectorProcess(f"{'https' if https_ca else 'http'}://127.0.0.1:{port}")
    if https_ca:
        import ssl

        proc._verify = ssl.create_default_context(cafile=str(https_ca))
    else:
        proc._verify = True
    proc.port = port
    proc.enroll_token = enroll_token
    proc.admin_token = admin_token
    proc.log_path = logdir / "collector.log"
    proc._argv = [sys.executable, "-m", "guard.cli", "collector", "--db", db_url,
                  "--listen", f"127.0.0.1:{port}", "--key-file", str(key_file), *extra_args]
    proc._nofile = nofile
    proc._env = {
        **os.environ,
        "TELLER_GUARD_ENROLL_TOKEN": enroll_token,
        "TELLER_GUARD_ADMIN_TOKEN": admin_token,
        "PYTHONUNBUFFERED": "1",
        **(env or {}),
    }
    proc._proc = None
    proc._ready_timeout = ready_timeout
    try:
        proc.start()
        yield proc
    finally:
        proc.stop()
        shutil.rmtree(logdir, ignore_errors=True)


class SyslogReceiver:
    """A running rsyslogd that writes every received message as one line to `log_path`."""

    def __init__(self, port: int, log_path: Path, ca_file: Path | None,
                 proc: subprocess.Popen[bytes]) -> None:
        self.port = port
        self.log_path = log_path
        self.ca_file = ca_file
        self.proc = proc

    def lines(self) -> list[str]:
        try:
            return self.log_path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []

    def wait_for_lines(self, n: int, timeout: float = 30.0) -> list[str]:
        """The received lines once there are at least `n` (fewer if `timeout` passes first)."""
        deadline = time.monotonic() + timeout
        while len(self.lines()) < n and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.lines()


# fields of each received message, space separated, the raw MSG (the CEF record) last
SYSLOG_LINE_TEMPLATE = ("%hostname% %app-name% %msgid% %syslogfacility% %syslogseverity% "
                        "%timereported:::date-rfc3339% %msg%\\n")


def _make_tls_files(root: Path) -> tuple[Path, Path, Path]:
    """A throw-away CA and a server certificate for 127.0.0.1 / localhost (openssl CLI)."""
    def ossl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=root, check=True, capture_output=True)

    ossl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
         "-days", "2", "-subj", "/CN=Teller Guard test CA")
    ossl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
         "-subj", "/CN=localhost")
    (root / "san.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    ossl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
         "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "san.ext")
    return root / "ca.pem", root / "server.pem", root / "server.key"


@contextlib.contextmanager
def start_rsyslog(workdir: Path, *, tls: bool = False, port: int = 0,
                  timeout: float = 30.0) -> Iterator[SyslogReceiver]:
    """Run Debian's rsyslogd in the foreground with its own config, receiving syslog over TCP
    (octet-counted or LF framing) or TLS on a loopback port, and writing to a file in `workdir`.

    No system daemon is touched: own config (-f), own pid file (-i), own work directory.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    log_path = workdir / "received.log"
    ca_file = None
    global_extra = ""
    module_extra = ""
    if tls:
        ca_file, cert, key = _make_tls_files(workdir)
        global_extra = (f' DefaultNetstreamDriver="gtls" DefaultNetstreamDriverCAFile="{ca_file}"'
                        f' DefaultNetstreamDriverCertFile="{cert}"'
                        f' DefaultNetstreamDriverKeyFile="{key}"')
        module_extra = ' StreamDriver.Name="gtls" StreamDriver.Mode="1"' \
                       ' StreamDriver.AuthMode="anon"'
    conf = workdir / "rsyslog.conf"
    conf.write_text(
        f'global(workDirectory="{workdir}"{global_extra})\n'
        f'module(load="imtcp"{module_extra})\n'
        f'template(name="tg" type="string" string="{SYSLOG_LINE_TEMPLATE}")\n'
        f'ruleset(name="tg") {{ action(type="omfile" file="{log_path}" template="tg") }}\n'
        f'input(type="imtcp" address="127.0.0.1" port="{port}" ruleset="tg")\n',
        encoding="utf-8",
    )
    out = workdir / "rsyslogd.out"
    with open(out, "wb") as sink:
        proc = subprocess.Popen(
            ["rsyslogd", "-n", "-f", str(conf), "-i", str(workdir / "rsyslogd.pid")],
            stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise ServerError(f"rsyslogd did not listen on {port}:\n{_tail(out)}") from None
                time.sleep(0.05)
        yield SyslogReceiver(port, log_path, ca_file, proc)
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
