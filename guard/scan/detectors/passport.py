"""CN_PASSPORT: PRC passport numbers (E/G + 8 digits, E + letter + 7 digits, D/P/S + 7 digits).

The format alone matches too many codes, so only a passport label nearby makes it a finding.
"""

from __future__ import annotations

import re

from guard.scan.detectors import CN_PASSPORT as TYPE
from guard.scan.detectors import context

_FORMAT = re.compile(r"(?:[EG][0-9]{8}|E[A-HJ-NP-Z][0-9]{7}|[DPS][0-9]{7}|1[45][0-9]{7})")


def score(value: str, label: str | None) -> float | None:
    """Confidence that the upper-case `value` is a passport number."""
    if label != context.PASSPORT or _FORMAT.fullmatch(value) is None:
        return None
    return 0.85


__all__ = ["TYPE", "score"]
