"""Single-process mode: the teller's agent runs its own delivery when no machine service answers.

For development, demos and a PC without the service. The same `Delivery` as the machine
service's, composed in the agent's process: the journal under the agent's data directory, the
shipper to the configured collector, and the embedded local collector when none is configured —
the only way a teller's process loads the collector (an import contract keeps it so).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from guard import __version__
from guard.app import local_collector
from guard.delivery.delivery import Delivery, DeliverySettings
from guard.model import Device
from guard.policy.store import PolicyStore


def open_delivery(data_dir: Path, *, device: Device, store: PolicyStore, tick_s: float,
                  part_states: Callable[[], dict[str, str]]) -> Delivery:
    """The agent's own delivery; raises `DeliveryError` when its journal cannot be opened."""
    return Delivery(DeliverySettings(data_dir=data_dir, tick_s=tick_s), device=device,
                    store=store, agent_version=__version__, part_states=part_states,
                    local_collector=local_collector.start)
