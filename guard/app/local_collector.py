"""Starts the embedded local collector for a process that has no collector endpoint configured.

Only the composition roots that may run a collector (the machine service and single-process mode)
pass `start` to their `Delivery`; a teller's agent that hands its events to the machine service
never imports the collector's server (an import contract in pyproject.toml keeps it so).
"""

from __future__ import annotations

import logging
from pathlib import Path

from guard.delivery.delivery import DeliveryError, LocalCollector

log = logging.getLogger(__name__)


def start(where: Path) -> LocalCollector:
    """Start the embedded collector with its database and tokens in `where`; `DeliveryError`
    when it cannot start. The collector, its web server and its database library are imported
    here, when it starts, not when this module is."""
    from guard.collector.embedded import TOKENS_FILE, EmbeddedError, start_embedded
    from guard.collector.serve import ServeError

    try:
        embedded = start_embedded(where)
    except (EmbeddedError, ServeError) as exc:
        raise DeliveryError(str(exc)) from exc
    # The port is kept in the tokens file: the dashboard stays at this address between starts.
    log.info("no central endpoint configured: events go to the local collector at %s "
             "(dashboard %s/ ; sign in with the admin_token in %s)", embedded.url, embedded.url,
             where / TOKENS_FILE)
    return embedded
