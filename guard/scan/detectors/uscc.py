"""CN_USCC: the 18-character unified social credit code of an organisation (GB 32100-2015).

python-stdnum's `cn.uscc` checks the format and the check character. A code made only of digits
is less distinctive, so it needs a plausible registration-authority/organisation-type pair, and
scores higher with a label (统一社会信用代码, 税号 ...). Without a label, an all-digit code laid
out like a resident ID (province, then a birth date) is a mistyped ID: about one in thirty of
those passes the USCC check by chance.
"""

from __future__ import annotations

import functools
from types import ModuleType

from guard.scan.detectors import CN_USCC as TYPE
from guard.scan.detectors import context
from guard.scan.detectors.resident_id import PROVINCES, id_layout

_AUTHORITY = frozenset("123456789ANY")
_ORG_TYPE = frozenset("12359")


def plausible(value: str) -> bool:
    """Cheap shape check of an all-digit 18-char `value` (authority, type, province)."""
    return value[0] in _AUTHORITY and value[1] in _ORG_TYPE and value[2:4] in PROVINCES


@functools.cache
def _stdnum_uscc() -> ModuleType:
    # imported when the first code-shaped value is checked: importing stdnum's helpers costs
    # ~10 ms of every scan's start-up, and most scans never meet a USCC
    from stdnum.cn import uscc

    return uscc


def score(value: str, label: str | None) -> float | None:
    """Confidence that the upper-case 18-char `value` is a USCC."""
    if len(value) != 18 or value[0] not in _AUTHORITY or label == context.NEG:
        return None
    digits_only = value.isdigit()
    if digits_only and (value[1] not in _ORG_TYPE or value[2:4] not in PROVINCES):
        return None
    if digits_only and label != context.USCC and id_layout(value):
        return None  # a resident ID with a typo in it (wrong check digit), not a code
    if not _stdnum_uscc().is_valid(value):
        return None
    if label == context.USCC:
        return 0.97
    return 0.6 if digits_only else 0.93


__all__ = ["TYPE", "score"]
