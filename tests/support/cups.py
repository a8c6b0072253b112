"""A private CUPS server for tests: Debian's `cupsd -f` with every file under one folder.

`private_cups()` writes a cupsd.conf and cups-files.conf whose state, spool, cache, logs and
socket live under a new short folder (a Unix socket path must stay under 108 bytes), starts
`cupsd -f -c ... -s ...`, waits until its socket answers and yields a `Cups` handle: `env` is
what a client needs (`CUPS_SERVER=<dir>/cups.sock`), `add_pdf_queue()` makes a cups-pdf queue.
No system CUPS file is touched; cups-pdf writes each job into its owner's `~/PDF/` (Debian's
/etc/cups/cups-pdf.conf).

`test_user()` makes an ordinary login with a home directory (useradd) for the block and removes
it after (userdel -r): the teller who prints.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

CUPS_PDF_PPD = "lsb/usr/cups-pdf/CUPS-PDF_noopt.ppd"
READY_S = 30.0


class CupsUnavailable(RuntimeError):
    """The private CUPS server cannot run here; the message says what is missing."""


def missing_tools() -> list[str]:
    """The programs the CUPS tests need that are not installed (empty: all there)."""
    need = ["cupsd", "lp", "lpadmin", "lpstat", "cancel", "lpmove", "useradd", "userdel"]
    missing = [t for t in need if shutil.which(t) is None
               and not Path("/usr/sbin", t).exists()]
    if not Path("/usr/lib/cups/backend/cups-pdf").exists():
        missing.append("cups-pdf backend (apt-get install printer-driver-cups-pdf)")
    return missing


def _conf(root: Path, extra_conf: str) -> tuple[Path, Path]:
    for sub in ("etc/ppd", "etc/ssl", "spool/tmp", "cache", "state/certs", "log"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    files = root / "cups-files.conf"
    files.write_text(
        f"ServerRoot {root}/etc\n"
        f"RequestRoot {root}/spool\n"
        f"TempDir {root}/spool/tmp\n"
        f"CacheDir {root}/cache\n"
        f"StateDir {root}/state\n"
        f"AccessLog {root}/log/access_log\n"
        f"ErrorLog {root}/log/error_log\n"
        f"PageLog {root}/log/page_log\n"
        f"Printcap {root}/printcap\n"
        "SystemGroup root\n"
        "FileDevice No\n",
        encoding="utf-8")
    conf = root / "cupsd.conf"
    conf.write_text(
        f"Listen {root}/cups.sock\n"
        "LogLevel info\n"
        "WebInterface No\n"
        "Browsing No\n"
        "BrowseLocalProtocols none\n"
        "DefaultAuthType Basic\n"
        "PreserveJobFiles No\n"
        "PreserveJobHistory Yes\n"
        "JobRetryLimit 0\n"
        "<Location />\n  Order allow,deny\n  Allow all\n</Location>\n"
        "<Location /admin>\n  Order allow,deny\n  Allow all\n</Location>\n"
        "<Location /admin/conf>\n  AuthType Default\n  Require user @SYSTEM\n"
        "  Order allow,deny\n  Allow all\n</Location>\n"
        "<Policy default>\n"
        "  JobPrivateAccess default\n  JobPrivateValues default\n"
        "  SubscriptionPrivateAccess default\n  SubscriptionPrivateValues default\n"
        "  <Limit Create-Job Print-Job Print-URI Validate-Job>\n    Order deny,allow\n"
        "  </Limit>\n"
        "  <Limit Send-Document Send-URI Hold-Job Release-Job Restart-Job Purge-Jobs "
        "Set-Job-Attributes Create-Job-Subscription Renew-Subscription Cancel-Subscription "
        "Get-Notifications Reprocess-Job Cancel-Current-Job Suspend-Current-Job Resume-Job "
        "Cancel-My-Jobs Close-Job CUPS-Move-Job CUPS-Get-Document>\n"
        "    Require user @OWNER @SYSTEM\n    Order deny,allow\n  </Limit>\n"
        "  <Limit CUPS-Add-Modify-Printer CUPS-Delete-Printer CUPS-Add-Modify-Class "
        "CUPS-Delete-Class CUPS-Set-Default CUPS-Get-Devices>\n"
        "    AuthType Default\n    Require user @SYSTEM\n    Order deny,allow\n  </Limit>\n"
        "  <Limit Pause-Printer Resume-Printer Enable-Printer Disable-Printer "
        "Pause-Printer-After-Current-Job Hold-New-Jobs Release-Held-New-Jobs Deactivate-Printer "
        "Activate-Printer Restart-Printer Shutdown-Printer Startup-Printer Promote-Job "
        "Schedule-Job-After Cancel-Jobs CUPS-Accept-Jobs CUPS-Reject-Jobs>\n"
        "    AuthType Default\n    Require user @SYSTEM\n    Order deny,allow\n  </Limit>\n"
        "  <Limit Cancel-Job CUPS-Authenticate-Job>\n"
        "    Require user @OWNER @SYSTEM\n    Order deny,allow\n  </Limit>\n"
        "  <Limit All>\n    Order deny,allow\n  </Limit>\n"
        "</Policy>\n" + extra_conf,
        encoding="utf-8")
    os.chmod(root, 0o755)  # the printing user reaches the socket through it
    return conf, files


@dataclass
class Cups:
    """A running private cupsd."""

    root: Path
    proc: subprocess.Popen[bytes]

    @property
    def socket_path(self) -> Path:
        return self.root / "cups.sock"

    @property
    def env(self) -> dict[str, str]:
        """The environment a CUPS client needs to reach this server (and only it)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("CUPS_")}
        env["CUPS_SERVER"] = str(self.socket_path)
        return env

    def run(self, argv: Sequence[str], *, user: str | None = None, check: bool = True,
            input: bytes | None = None) -> subprocess.CompletedProcess[str]:
        """Run a CUPS client command against this server (as `user` when given)."""
        kwargs: dict[str, object] = {}
        env = self.env
        if user is not None:
            pw = pwd.getpwnam(user)
            kwargs.update(user=pw.pw_uid, group=pw.pw_gid, extra_groups=[])
            env.update(HOME=pw.pw_dir, USER=user, LOGNAME=user)
        result = subprocess.run(list(argv), env=env, capture_output=True, check=False,
                                input=input, cwd="/", **kwargs)  # type: ignore[call-overload]
        out = subprocess.CompletedProcess(result.args, result.returncode,
                                          result.stdout.decode(errors="replace"),
                                          result.stderr.decode(errors="replace"))
        if check and out.returncode != 0:
            raise CupsUnavailable(f"{' '.join(argv)} failed ({out.returncode}): {out.stderr}")
        return out

    def add_pdf_queue(self, name: str) -> None:
        """A cups-pdf queue, enabled and accepting jobs."""
        self.run(["lpadmin", "-p", name, "-E", "-v", "cups-pdf:/", "-m", CUPS_PDF_PPD])

    def log(self) -> str:
        try:
            return (self.root / "log" / "error_log").read_text(errors="replace")[-4000:]
        except OSError:
            return "(no log)"


def _answers(path: Path) -> bool:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(str(path))
        return True
    except OSError:
        return False
    finally:
        s.close()


@contextlib.contextmanager
def private_cups(extra_conf: str = "") -> Iterator[Cups]:
    """Run a private cupsd for the block (needs root, like the system one)."""
    missing = missing_tools()
    if missing:
        raise CupsUnavailable(f"not installed: {', '.join(missing)}")
    root = Path(tempfile.mkdtemp(prefix="tgcups-", dir="/tmp"))
    conf, files = _conf(root, extra_conf)
    out = open(root / "log" / "cupsd.out", "wb")
    proc = subprocess.Popen(["cupsd", "-f", "-c", str(conf), "-s", str(files)],
                            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    cups = Cups(root, proc)
    try:
        deadline = time.monotonic() + READY_S
        while not _answers(cups.socket_path):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise CupsUnavailable(f"cupsd did not start ({proc.poll()}):\n{cups.log()}\n"
                                      f"{(root / 'log' / 'cupsd.out').read_text()}")
            time.sleep(0.05)
        yield cups
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        out.close()
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def test_user(prefix: str = "tgteller") -> Iterator[str]:
    """An ordinary (non-root) login with a home directory, removed after the block."""
    if shutil.which("useradd") is None and not Path("/usr/sbin/useradd").exists():
        raise CupsUnavailable("useradd is not installed (apt-get install passwd)")
    name = f"{prefix}{uuid.uuid4().hex[:6]}"
    subprocess.run(["useradd", "-m", "-s", "/bin/sh", name], check=True, capture_output=True)
    try:
        yield name
    finally:
        subprocess.run(["userdel", "-r", "-f", name], check=False, capture_output=True)


def simple_pdf(lines: Sequence[str], pages: int = 1) -> bytes:
    """A small valid PDF with a text layer (Helvetica, ASCII `lines` on every page)."""
    objects: list[bytes] = []
    page_ids = [4 + 2 * i for i in range(pages)]
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    kids = " ".join(f"{p} 0 R" for p in page_ids).encode()
    objects.append(b"<< /Type /Pages /Kids [" + kids + b"] /Count " + str(pages).encode()
                   + b" >>")
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    for i in range(pages):
        text = b"BT /F1 12 Tf 72 720 Td 14 TL "
        for line in lines:
            safe = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
            text += b"(" + safe.encode("ascii") + b") Tj T* "
        text += b"ET"
        objects.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources "
                       f"<< /Font << /F1 3 0 R >> >> /Contents {5 + 2 * i} 0 R >>".encode())
        objects.append(b"<< /Length " + str(len(text)).encode() + b" >>\nstream\n" + text
                       + b"\nendstream")
    out = b"%PDF-1.4\n"
    offsets = []
    for n, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{n} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for off in offsets:
        out += f"{off:010d} 00000 n \n".encode()
    out += (f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n"
            ).encode()
    return out
