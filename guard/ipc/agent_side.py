"""The session agent's side of the machine service: a sink that hands events over or spools them,
keeps the connection alive and answers the service's prompts."""


from __future__ import annotations

import logging
import os
import socket
import stat
import sys
import threading
from pathlib import Path

from guard import identity, paths
from guard.ipc.client import LocalChannelClient
from guard.ipc.messages import PIPE_NAME, SOCKET_NAME, LocalChannelError, LocalChannelUnavailable
from guard.ipc.status import ServiceStatus, read_status
from guard.ipc.unix import is_pipe_name
from guard.model import Device, Event
from guard.pipeline.approval import ApprovalResult
from guard.pipeline.prompt import Prompter

log = logging.getLogger(__name__)

ENV_SOCKET = "TELLER_GUARD_SOCKET"
AGENT_SPOOL_DIR = "agent-spool"
RECONNECT_FIRST_S = 0.1  # after a dropped connection, the first retry; doubling to flush_every_s
# ---------------------------------------------------------------------------------------------
# The session agent's side.


class ServiceSink:
    """The session agent's event sink when the machine service runs: `record(event)` hands the
    event to the service over the local channel, or keeps it in the agent's spool (fsynced)
    while the service is away; a background thread sends the spool once it answers again.

    `record()` is called from any thread and blocks at most the client's timeout (2 s); it raises
    `LocalChannelRefused` only when the service refuses the event itself. The background thread
    also keeps the connection open (pings; reconnects when the client answers prompts), so the
    service can ask this teller while nothing else is said. A client that answers prompts is
    connected before the constructor returns (the service can ask this teller from the start,
    issue 11), and after a dropped connection it reconnects within `RECONNECT_FIRST_S`, backing
    off to `flush_every_s` while the service stays away.
    """

    def __init__(self, client: LocalChannelClient, *, flush_every_s: float = 2.0) -> None:
        self.client = client
        self.flush_every_s = flush_every_s
        self.delivered = 0
        self.spooled_events = 0
        self._stop = threading.Event()
        self._wake = threading.Event()
        client.on_disconnect = self._wake.set
        if client.prompter is not None:
            self._keepalive()
        self._thread = threading.Thread(target=self._flush_loop, name="teller-guard-spool",
                                        daemon=True)
        self._thread.start()

    @property
    def socket_path(self) -> Path:
        return self.client.path

    def record(self, event: Event) -> None:
        self.record_unhashed(event, [])

    def record_unhashed(self, event: Event, hash_inputs: list[list[str]]) -> None:
        """Hand `event` over with the normalised values of its findings (`hash_inputs`, aligned
        with each summary's masked forms): the service hashes them with the install key, which
        never reaches this process. The values are never written: spooled, the event has no
        hashes (`guard.pipeline.HashingSink`)."""
        if self.client.send(event, hash_inputs or None):
            self.delivered += 1
        else:
            self.spooled_events += 1

    def verify_code(self, channel: str, code: str) -> bool:
        """Ask the service (which holds the device key) whether `code` is a valid unused
        one-time code for `channel`; it answers yes or no and records the use."""
        return self.client.verify_code(channel, code)

    def verify_credential(self, method: str, supervisor: str, secret: str) -> ApprovalResult:
        """Ask the service (which alone holds the verifiers) to check a supervisor's credential
        (`method` ``supervisor``) or the IT credential (``it``) for this teller; a refusal when
        it cannot answer (`LocalChannelClient.verify_credential`)."""
        return self.client.verify_credential(method, supervisor, secret)

    def pending_count(self) -> int:
        """Events waiting in the agent's spool (the service was away)."""
        return len(self.client.spooled())

    def service_status(self) -> ServiceStatus | None:
        """The service's status (endpoint, reachability, policy version), asked over the
        channel; the file it publishes next to its socket when it does not answer; None when
        neither is there."""
        reply = self.client.status()
        service = reply.get("service") if reply is not None else None
        if isinstance(service, dict) and service:
            try:
                return ServiceStatus.from_dict(service)
            except TypeError as exc:  # a field missing: an older or newer service
                log.info("service status not understood (%s); reading its status file", exc)
        if is_pipe_name(self.client.path):
            return None
        return read_status(self.client.path.parent)

    def central_policy(self) -> tuple[str, str] | None:
        """The central policy layer the service applies (text, ETag), or None."""
        return self.client.central_policy()

    def channel_state(self) -> str:
        """The service listener's own state (``listening``, ``degraded: …``), or ``unknown``."""
        reply = self.client.status()
        channel = reply.get("channel") if reply is not None else None
        return str(channel.get("state", "unknown")) if isinstance(channel, dict) else "unknown"

    def flush(self) -> bool:
        """Send the spool now; True when it is empty."""
        return self.client.flush()

    def _keepalive(self) -> bool:
        """Send the spool and keep the connection open; True when connected afterwards."""
        try:
            if self.client.spooled():
                self.client.flush()
            return self.client.keepalive()
        except (OSError, LocalChannelError) as exc:
            log.warning("agent spool not sent: %s", exc)
            return False

    def _flush_loop(self) -> None:
        retry = RECONNECT_FIRST_S
        wait = self.flush_every_s if self.client.connected() else retry
        while not self._stop.is_set():
            # A dropped connection wakes the loop: the service can only ask a connected agent.
            self._wake.wait(wait)
            self._wake.clear()
            if self._stop.is_set():
                break
            connected = self._keepalive()
            if connected or self.client.prompter is None:
                retry, wait = RECONNECT_FIRST_S, self.flush_every_s
            else:
                wait, retry = retry, min(self.flush_every_s, retry * 2)

    def close(self) -> None:
        """Stop the background sender (one last flush attempt) and close the connection."""
        self._stop.set()
        self._wake.set()
        self._thread.join(5.0)
        try:
            self.client.flush()
        except (OSError, LocalChannelError) as exc:
            log.info("agent spool kept for the next start: %s", exc)
        self.client.close()


def socket_candidates(data_dir: Path, socket_path: Path | None = None) -> list[Path]:
    """Where a session agent looks for the service's socket, in order.

    An explicit path wins; else TELLER_GUARD_SOCKET, the system service's /run/teller-guard
    socket, and a service started with this data directory.
    """
    if socket_path is not None:
        return [Path(socket_path)]
    found: list[Path] = []
    if os.environ.get(ENV_SOCKET):
        found.append(Path(os.environ[ENV_SOCKET]))
    if sys.platform == "win32":
        found.append(Path(PIPE_NAME))
    else:
        run_dir = paths.run_dir()
        if run_dir is not None:
            found.append(run_dir / SOCKET_NAME)
        found.append(Path(data_dir) / SOCKET_NAME)
    unique: list[Path] = []
    for p in found:
        if p not in unique:
            unique.append(p)
    return unique


def _answers(path: Path, timeout_s: float = 1.0) -> bool:
    """True when a listening Unix socket (or, on Windows, the named pipe) is at `path` (a
    leftover socket file refuses)."""
    if sys.platform == "win32":
        if not is_pipe_name(path):
            return False
        from guard.ipc.pipe import pipe_exists

        return pipe_exists(str(path), timeout_s)
    try:
        if not stat.S_ISSOCK(path.stat().st_mode):
            return False
    except OSError:
        return False
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout_s)
    try:
        sock.connect(str(path))
    except OSError:
        return False
    finally:
        sock.close()
    return True


def agent_sink(data_dir: Path | None = None, *, socket_path: Path | None = None,
               device: Device | None = None, teller: str | None = None,
               flush_every_s: float = 2.0,
               prompter: Prompter | None = None) -> ServiceSink | None:
    """A sink that hands the agent's events to the machine service, or None when no service
    answers (the agent then runs the journal and shipper itself: single-process mode).

    The spool lives in `data_dir` (the agent's own data directory). With a `prompter` the
    service may ask this teller (a held print job, a new volume) through it.
    """
    data = Path(data_dir) if data_dir is not None else paths.data_dir()
    for candidate in socket_candidates(data, socket_path):
        if not _answers(candidate):
            continue
        try:
            client = LocalChannelClient(candidate, data / AGENT_SPOOL_DIR,
                                        device=device or identity.device(),
                                        teller=identity.teller() if teller is None else teller,
                                        prompter=prompter)
        except (LocalChannelUnavailable, OSError) as exc:
            log.warning("machine service at %s not usable: %s", candidate, exc)
            return None
        log.info("handing events to the machine service at %s", candidate)
        return ServiceSink(client, flush_every_s=flush_every_s)
    return None
