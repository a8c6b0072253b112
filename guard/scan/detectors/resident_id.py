"""CN_RESIDENT_ID: the mainland resident identity card number (GB 11643-1999).

18 characters: 6-digit region, 8-digit birth date, 3-digit sequence, check character (ISO 7064
MOD 11-2, digit or X). python-stdnum's `cn.ric` checks the check character, the birth date and
the region. The legacy 15-digit form (no century, no check character) is too easy to hit by chance
in other numbers, so it counts only with an identity label nearby.
"""

from __future__ import annotations

import datetime as _dt
import functools
import time

from stdnum.cn import ric
from stdnum.exceptions import ValidationError

from guard.scan.detectors import CN_RESIDENT_ID as TYPE
from guard.scan.detectors import context

PROVINCES = frozenset(
    "11 12 13 14 15 21 22 23 31 32 33 34 35 36 37 41 42 43 44 45 46 50 51 52 53 54 "
    "61 62 63 64 65 71 81 82 83 91".split()
)
"""First two digits of every province-level region code."""


def score(value: str, label: str | None) -> float | None:
    """Confidence that the normalised 18-char `value` (17 digits + digit/X) is a resident ID.

    The check character (stdnum's `calc_check_digit`) and the birth date must be right. A county
    code stdnum does not know for that birth year (a new or renamed county) lowers the score but
    does not reject the number: the province code is still checked.
    """
    if value[:2] not in PROVINCES or ric.calc_check_digit(value) != value[-1]:
        return None
    if not _birth_ok(value[6:14]):
        return None
    base = 0.96 if _place_known(value[:10]) else 0.88
    if label == context.ID:
        return min(base + 0.03, 0.99)
    if label == context.NEG:
        return base - 0.5
    return base


@functools.lru_cache(maxsize=65536)
def _place_known(region_and_year: str) -> bool:
    """stdnum's `get_birth_place` (slow: a database walk), remembered per region and year."""
    try:
        ric.get_birth_place(region_and_year + "01010000")
    except (ValidationError, KeyError):  # KeyError: a region entry without county data
        return False
    return True


def score_legacy(value: str, label: str | None) -> float | None:
    """Confidence that the 15-digit `value` is a legacy (first generation) resident ID."""
    if label != context.ID or value[:2] not in PROVINCES or not _birth_ok("19" + value[6:12]):
        return None
    return 0.85


def id_layout(value: str) -> bool:
    """Whether 18 characters are laid out like a resident ID: province code, then a birth date.

    True for a real ID and for one with a typo in it (wrong check character), which other
    detectors then leave alone.
    """
    return value[:2] in PROVINCES and _birth_ok(value[6:14])


def _birth_ok(yyyymmdd: str) -> bool:
    """A real calendar date from 1890 up to today."""
    return _real_date(yyyymmdd) and "18900101" <= yyyymmdd <= _today()


@functools.lru_cache(maxsize=65536)
def _real_date(yyyymmdd: str) -> bool:
    try:
        _dt.date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:8]))
    except ValueError:
        return False
    return True


def _today() -> str:
    """Today as YYYYMMDD (asked of the clock once a minute, not once per number)."""
    return _today_in_minute(int(time.time() // 60))


@functools.lru_cache(maxsize=1)
def _today_in_minute(minute: int) -> str:
    return _dt.date.today().strftime("%Y%m%d")


__all__ = ["PROVINCES", "TYPE", "id_layout", "score", "score_legacy"]
