"""What the machine service publishes about itself, and how commands and agents read it.

The service writes it to ``service-status.json`` (in its data directory and next to its socket)
for `teller-guard events status`, and answers a status request on the local channel with it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from guard import paths, platforms

log = logging.getLogger(__name__)

STATUS_FILE = "service-status.json"
ServiceState = Literal["starting", "running", "stopping", "stopped"]


@dataclass(frozen=True, slots=True)
class ServiceStatus:
    """What `teller-guard events status` and session agents learn about the running service.

    Holds no secret: no key, no token, no customer data.
    """

    state: ServiceState
    pid: int
    version: str
    started_at: str
    updated_at: str
    data_dir: str
    socket: str
    endpoint: str = ""
    embedded: bool = False
    enrolled: bool = False
    device_id: str = ""
    queue_depth: int = 0
    agent_events: int = 0
    agent_refused: int = 0
    shipped: int = 0
    ship_failures: int = 0
    collector_reachable: bool | None = None
    policy_version: str = ""
    policy_etag: str = ""
    policy_fetch: str = ""
    problem: str = ""

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ServiceStatus:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    @property
    def running(self) -> bool:
        """True when the file says the service is up and its process still exists."""
        return self.state in ("starting", "running") and _process_exists(self.pid)


def _process_exists(pid: int) -> bool:
    try:
        return platforms.current_machine().processes.process_exists(pid)
    except platforms.PlatformUnavailable:
        return pid > 0  # no process table here: the state field has to do


def read_status(data_dir: Path | None = None) -> ServiceStatus | None:
    """The last status the machine service wrote in `data_dir`, or None when there is none."""
    path = Path(data_dir if data_dir is not None else paths.data_dir()) / STATUS_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("service status %s unreadable (%s)", path, exc)
        return None
    if not isinstance(data, dict):
        return None
    try:
        return ServiceStatus.from_dict(data)
    except TypeError as exc:
        log.warning("service status %s incomplete (%s)", path, exc)
        return None


def format_status(status: ServiceStatus | None) -> list[str]:
    """Lines for `teller-guard events status` about the machine service."""
    if status is None:
        return ["service:      not running here (single-process mode, or never started)"]
    if not status.running:
        how = "stopped" if status.state == "stopped" else "not running (ended without stopping)"
        return [f"service:      {how}; last seen {status.updated_at} (pid {status.pid})"]
    collector = status.endpoint or "not configured"
    if status.embedded:
        collector += " (embedded local collector)"
    reach = {True: "reachable", False: "unreachable", None: "not tried yet"}
    lines = [
        f"service:      running since {status.started_at} (pid {status.pid}), agents hand "
        f"events over {status.socket}",
        f"agents:       {status.agent_events} event(s) taken, {status.agent_refused} refused",
        f"shipping to:  {collector}, {reach[status.collector_reachable]}; "
        f"{status.shipped} shipped since start",
        f"policy:       {status.policy_version or '?'} (last central poll: "
        f"{status.policy_fetch or 'not yet'})",
    ]
    if status.problem:
        lines.append(f"problem:      {status.problem}")
    return lines


