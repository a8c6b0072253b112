"""CN_BANK_ACCOUNT: a bank account number that is not a recognisable card (8–25 digits).

Account formats differ from bank to bank and carry no check digit anyone can verify, so only an
account label makes it a finding: right before the number (账号, 账户, account ...), as the
key of its field or the header of its column; or, for 10 digits and more, a bank or branch name
in the same record (`中国银行XX支行 6222…`), at lower confidence.
"""

from __future__ import annotations

from guard.scan.detectors import CN_BANK_ACCOUNT as TYPE
from guard.scan.detectors import context

MIN_DIGITS = 8
ROW_MIN_DIGITS = 10
MAX_DIGITS = 25


def score(digits: str, label: str | None, bank_in_row: bool = False) -> float | None:
    """Confidence that `digits` is an account number (an account label, or a bank in the row)."""
    if not MIN_DIGITS <= len(digits) <= MAX_DIGITS or digits.count(digits[0]) == len(digits):
        return None
    if label == context.ACCOUNT:
        return 0.8
    if bank_in_row and label is None and len(digits) >= ROW_MIN_DIGITS and not dated(digits):
        return 0.6
    return None


def dated(digits: str) -> bool:
    """Starts with a date (20261124…, 19990101…): a serial or voucher number, not an account."""
    y, m, d = digits[:4], digits[4:6], digits[6:8]
    return y[:2] in ("19", "20") and "01" <= m <= "12" and "01" <= d <= "31"


__all__ = ["MAX_DIGITS", "MIN_DIGITS", "ROW_MIN_DIGITS", "TYPE", "dated", "score"]
