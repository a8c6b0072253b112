"""The CUPS print spooler for the print guard: guarded queues, held jobs, release and cancel.

The server is reached the standard way (pycups, i.e. libcups: CUPS_SERVER, then client.conf,
then the local socket), so a test can point the service at a private cupsd. A guarded queue is
*stopped* (no job on it prints) and runs under the `teller-guard` operation policy
(`CUPS_POLICY`, which the installer puts into cupsd.conf), which reserves release, hold,
restart, move and attribute changes to administrators: a job's owner can cancel it but not
release it (``lp -i ID -H resume``), re-time it (``-H immediate``) or move it (``lpmove``). The
service releases a job by moving it to the queue's twin (``<queue>_tg_release``): an enabled
copy of the queue (same device, same PPD) that only root may print to, so only what the service
moved there comes out.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any

from guard.platforms.base import (
    PlatformUnavailable,
    PrintDocument,
    PrintJob,
    SpoolerError,
)

log = logging.getLogger(__name__)

POLICY_NAME = "teller-guard"
TWIN_SUFFIX = "_tg_release"
HOLD_REASON = "held by Teller Guard: each job is checked for customer data"

_STATES = {3: "pending", 4: "held", 5: "processing", 6: "stopped", 7: "done", 8: "done",
           9: "done"}
_JOB_ATTRS = ["job-id", "job-printer-uri", "job-originating-user-name", "job-name", "job-state",
              "job-k-octets", "job-impressions", "document-format-supplied",
              "job-state-reasons"]

CUPS_POLICY = """\
# Teller Guard: a guarded queue's jobs are released, moved or re-timed only by the service.
<Policy teller-guard>
  JobPrivateAccess default
  JobPrivateValues default
  SubscriptionPrivateAccess default
  SubscriptionPrivateValues default
  <Limit Create-Job Print-Job Print-URI Validate-Job>
    Order deny,allow
  </Limit>
  <Limit Hold-Job Release-Job Restart-Job Set-Job-Attributes CUPS-Move-Job CUPS-Get-Document \
Resume-Job Promote-Job Schedule-Job-After Reprocess-Job Purge-Jobs>
    AuthType Default
    Require user @SYSTEM
    Order deny,allow
  </Limit>
  <Limit Send-Document Send-URI Cancel-Job Cancel-My-Jobs Close-Job CUPS-Authenticate-Job \
Create-Job-Subscription Renew-Subscription Cancel-Subscription Get-Notifications>
    Require user @OWNER @SYSTEM
    Order deny,allow
  </Limit>
  <Limit CUPS-Add-Modify-Printer CUPS-Delete-Printer CUPS-Add-Modify-Class CUPS-Delete-Class \
CUPS-Set-Default CUPS-Get-Devices Pause-Printer Resume-Printer Enable-Printer Disable-Printer \
Pause-Printer-After-Current-Job Hold-New-Jobs Release-Held-New-Jobs Deactivate-Printer \
Activate-Printer Restart-Printer Shutdown-Printer Startup-Printer Cancel-Jobs CUPS-Accept-Jobs \
CUPS-Reject-Jobs Cancel-Current-Job Suspend-Current-Job>
    AuthType Default
    Require user @SYSTEM
    Order deny,allow
  </Limit>
  <Limit All>
    Order deny,allow
  </Limit>
</Policy>
"""


def _load_cups() -> Any:
    try:
        import cups
    except ImportError as exc:
        raise PlatformUnavailable(
            f"pycups is not installed ({exc}); apt-get install libcups2-dev, then "
            "pip install pycups") from exc
    return cups


def twin_name(queue: str) -> str:
    return queue + TWIN_SUFFIX


def _uri(queue: str) -> str:
    return f"ipp://localhost/printers/{queue}"


class CupsSpooler:
    """`guard.platforms.base.PrintSpooler` on CUPS through pycups (one connection, one lock:
    a pycups connection is not thread-safe)."""

    def __init__(self, cups_module: Any = None) -> None:
        self._cups = cups_module
        self._conn: Any = None
        self._lock = threading.Lock()

    # -- the connection
    def _call(self, what: str, fn: str, *args: Any, **kwargs: Any) -> Any:
        cups = self._cups = self._cups or _load_cups()
        with self._lock:
            for attempt in (1, 2):
                try:
                    if self._conn is None:
                        self._conn = cups.Connection()
                    return getattr(self._conn, fn)(*args, **kwargs)
                except cups.IPPError as exc:
                    status, message = exc.args if len(exc.args) == 2 else (0, str(exc))
                    raise SpoolerError(f"CUPS refused to {what}: {message} ({status})") from exc
                except (cups.HTTPError, RuntimeError) as exc:
                    self._conn = None  # the server restarted or went away: connect again once
                    if attempt == 2:
                        raise PlatformUnavailable(
                            f"the CUPS server does not answer ({exc}); is cupsd running, and "
                            "CUPS_SERVER or /etc/cups/client.conf right?") from exc
        raise AssertionError("unreachable")

    # -- PrintSpooler
    def queues(self) -> list[str]:
        printers = self._call("list the queues", "getPrinters")
        return sorted(n for n in printers if not n.endswith(TWIN_SUFFIX))

    def guard(self, queue: str) -> None:
        attrs = self._call(f"read queue {queue}", "getPrinterAttributes", queue,
                           requested_attributes=["printer-op-policy", "printer-state",
                                                 "device-uri", "printer-op-policy-supported"])
        if attrs.get("printer-op-policy") != POLICY_NAME:
            known = attrs.get("printer-op-policy-supported", [])
            if POLICY_NAME not in (known if isinstance(known, list) else [known]):
                # Asked first: pycups' setPrinterOpPolicy double-frees (aborts the whole
                # service) when the server refuses an unknown policy.
                raise SpoolerError(
                    f"the CUPS server has no <Policy {POLICY_NAME}>, so {queue} cannot be "
                    f"guarded: the CUPS server needs Teller Guard's <Policy {POLICY_NAME}> in "
                    "cupsd.conf (run `teller-guard service setup-cups` as root, the installer "
                    "does), then restart cupsd")
            self._call(f"set {queue}'s operation policy", "setPrinterOpPolicy", queue,
                       POLICY_NAME)
        if attrs.get("printer-state") != 5:
            self._call(f"stop queue {queue}", "disablePrinter", queue, reason=HOLD_REASON)
        twin = twin_name(queue)
        if twin not in self._call("list the queues", "getPrinters"):
            self._make_twin(queue, twin, str(attrs.get("device-uri", "")))
            log.info("print queue %s guarded (release queue %s)", queue, twin)

    def _make_twin(self, queue: str, twin: str, device: str) -> None:
        ppd: str | None = None
        try:
            try:
                ppd = self._call(f"read {queue}'s PPD", "getPPD", queue)
            except SpoolerError:
                ppd = None  # a raw queue has none
            self._call(f"create the release queue {twin}", "addPrinter", twin,
                       **({"filename": ppd} if ppd else {}), device=device,
                       info=f"Teller Guard release queue for {queue}")
            self._call(f"restrict {twin}", "setPrinterUsersAllowed", twin, ["root"])
            self._call(f"set {twin}'s policy", "setPrinterOpPolicy", twin, POLICY_NAME)
            self._call(f"share {twin}", "setPrinterShared", twin, False)
            self._call(f"enable {twin}", "enablePrinter", twin)
            self._call(f"open {twin}", "acceptJobs", twin)
        finally:
            if ppd:
                Path(ppd).unlink(missing_ok=True)

    def unguard(self, queue: str) -> None:
        twin = twin_name(queue)
        if twin not in self._call("list the queues", "getPrinters"):
            return
        self._call(f"delete {twin}", "deletePrinter", twin)
        self._call(f"set {queue}'s policy", "setPrinterOpPolicy", queue, "default")
        self._call(f"start {queue}", "enablePrinter", queue)
        log.info("print queue %s no longer guarded", queue)

    def jobs(self, queues: list[str]) -> list[PrintJob]:
        wanted = set(queues)
        raw = self._call("list the jobs", "getJobs", which_jobs="not-completed",
                         requested_attributes=_JOB_ATTRS)
        out = []
        for job_id, a in sorted(raw.items()):
            queue = str(a.get("job-printer-uri", "")).rsplit("/", 1)[-1]
            if queue not in wanted:
                continue
            pages = a.get("job-impressions")
            state = _STATES.get(a.get("job-state", 0), "?")
            reasons = a.get("job-state-reasons", [])
            if "job-incoming" in (reasons if isinstance(reasons, list) else [reasons]):
                state = "incoming"  # its document is still arriving: not readable yet
            out.append(PrintJob(
                id=int(job_id), queue=queue, user=str(a.get("job-originating-user-name", "")),
                title=str(a.get("job-name", "")), state=state,
                pages=int(pages) if isinstance(pages, int) and pages > 0 else None,
                size_bytes=int(a.get("job-k-octets", 0) or 0) * 1024,
                format=str(a.get("document-format-supplied", "") or "")))
        return out

    def hold(self, job: PrintJob) -> None:
        return None  # the guarded queue is stopped: nothing on it prints until moved

    def document(self, job: PrintJob) -> PrintDocument | None:
        doc = self._call(f"read job {job.id}'s document", "getDocument", _uri(job.queue),
                         job.id, 1)
        path = Path(doc["file"])
        try:
            os.chmod(path, 0o600)
        except OSError:
            pass
        return PrintDocument(path=path, format=str(doc.get("document-format", "")))

    def release(self, job: PrintJob) -> None:
        self._call(f"release job {job.id}", "moveJob", job_id=job.id,
                   job_printer_uri=_uri(twin_name(job.queue)))

    def cancel(self, job: PrintJob) -> None:
        self._call(f"cancel job {job.id}", "cancelJob", job.id, purge_job=True)


# -- cupsd.conf: what the installer adds (`teller-guard service setup-cups`)

CONF_BEGIN = "# BEGIN Teller Guard (teller-guard service setup-cups manages this block)"
CONF_END = "# END Teller Guard"
CONF_DISABLED = "#teller-guard# "  # prefix of a directive the block overrides, restored on removal
CONF_BLOCK = (f"{CONF_BEGIN}\n"
              "# Document files of finished jobs do not stay in the spool.\n"
              "PreserveJobFiles No\n"
              f"{CUPS_POLICY}"
              f"{CONF_END}\n")
_OVERRIDDEN = ("preservejobfiles",)  # top-level directives the block sets


class CupsConfError(ValueError):
    """cupsd.conf cannot be set up safely as it is; the message says what to fix by hand."""


def _split_block(lines: list[str]) -> tuple[int | None, list[str]]:
    """(index where the block was, the lines without it); refuses a broken or doubled block."""
    begins = [i for i, line in enumerate(lines) if line.strip() == CONF_BEGIN]
    ends = [i for i, line in enumerate(lines) if line.strip() == CONF_END]
    if not begins and not ends:
        return None, lines
    if len(begins) != 1 or len(ends) != 1 or ends[0] < begins[0]:
        raise CupsConfError("Teller Guard's block in cupsd.conf is broken (its BEGIN and END "
                            "lines do not pair up): remove what is left of it by hand")
    return begins[0], lines[:begins[0]] + lines[ends[0] + 1:]


def _first_word(line: str) -> str:
    words = line.split(None, 1)
    return words[0].lower() if words else ""


def cupsd_conf_with_guard(text: str) -> str:
    """`text` (a cupsd.conf) with Teller Guard's block: ``PreserveJobFiles No`` and the
    ``<Policy teller-guard>`` the guarded queues run under. The block replaces an earlier one
    where it was (else it is appended); a ``PreserveJobFiles`` set elsewhere is commented out
    with a marker, so `cupsd_conf_without_guard` can restore it. Applying it twice changes
    nothing more."""
    where, rest = _split_block(text.splitlines(keepends=True))
    out: list[str] = []
    for line in rest:
        word, words = _first_word(line), line.replace(">", " ").split()
        if word == "<policy" and len(words) > 1 and words[1].lower() == POLICY_NAME:
            raise CupsConfError(f"cupsd.conf already has a <Policy {POLICY_NAME}> outside "
                                "Teller Guard's block: remove it, then run this again")
        out.append(CONF_DISABLED + line if word in _OVERRIDDEN else line)
    if where is None:
        if out and not out[-1].endswith("\n"):
            out[-1] += "\n"
        where = len(out)
    return "".join(out[:where]) + CONF_BLOCK + "".join(out[where:])


def cupsd_conf_without_guard(text: str) -> str:
    """`text` with Teller Guard's block taken out and the directives it overrode restored."""
    _, rest = _split_block(text.splitlines(keepends=True))
    return "".join(line[len(CONF_DISABLED):] if line.startswith(CONF_DISABLED) else line
                   for line in rest)
