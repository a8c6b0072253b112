"""CN_BANK_ACCOUNT: a bank account number that is not a recognisable card (10–25 digits).

Account formats differ from bank to bank and carry no check digit anyone can verify, so only an
account label right before the number (账号, 账户, account ...) makes it a finding.
"""

from __future__ import annotations

from guard.scan.detectors import CN_BANK_ACCOUNT as TYPE
from guard.scan.detectors import context

MIN_DIGITS = 10
MAX_DIGITS = 25


def score(digits: str, label: str | None) -> float | None:
    """Confidence that `digits` is an account number (needs an account or card label)."""
    if not MIN_DIGITS <= len(digits) <= MAX_DIGITS:
        return None
    if label == context.ACCOUNT:
        return 0.8
    return None


__all__ = ["MAX_DIGITS", "MIN_DIGITS", "TYPE", "score"]
