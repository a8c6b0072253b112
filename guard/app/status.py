"""What the tray shows about a teller's agent: one state made of its parts' states.

`summarise` is the one place that turns the parts (each watcher's state, the event sink, the
policy layers, the way to the collector) into protected / degraded / alert.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

AgentState = Literal["protected", "degraded", "alert"]
RUNNING = "running"


@dataclass(frozen=True, slots=True)
class AgentStatus:
    """What the tray shows: overall state and the parts it is made of.

    `state` is ``protected`` (all watchers running, events reaching the collector), ``degraded``
    (a watcher unavailable or the collector unreachable) or ``alert`` (events cannot be
    recorded, or the last policy load rejected a layer, so protection may differ from what IT
    intended). `watchers` maps each watcher's name (``clipboard``, ``idle`` …) to ``running`` or
    ``unavailable: <reason>``. `last_event` is a short machine-readable description
    (``<TYPE> <outcome>``, e.g. ``CLIPBOARD_COPY notified``, or ""); `locked` whether the guard
    holds the screen locked now.
    """

    state: AgentState
    watchers: dict[str, str] = field(default_factory=dict)
    last_event: str = ""
    queue_depth: int = 0
    policy_version: str = ""
    collector_reachable: bool | None = None
    locked: bool = False


def overall(watchers: Mapping[str, str], *, alert: bool,
            reachable: bool | None) -> AgentState:
    """``alert`` when events cannot be recorded or a policy layer was refused; ``degraded`` when
    a watcher is not running or the collector is unreachable; else ``protected``."""
    if alert:
        return "alert"
    if any(state != RUNNING for state in watchers.values()) or reachable is False:
        return "degraded"
    return "protected"
