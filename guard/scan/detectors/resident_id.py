"""CN_RESIDENT_ID: the mainland resident identity card number (GB 11643-1999).

18 characters: 6-digit region, 8-digit birth date, 3-digit sequence, check character (ISO 7064
MOD 11-2, digit or X). The check character is computed as python-stdnum's `cn.ric` computes it,
the region is looked up in stdnum's county table (`stdnum/cn/loc.dat`, the table `cn.ric`'s
`get_birth_place` walks), read once into an index: stdnum's own walk cost ~40 ms to load and
~0.3 ms per region and year, and importing `stdnum.cn.ric` ~10 ms of start-up (a test keeps the
index's answers equal to `get_birth_place`'s). The legacy 15-digit form (no century, no check
character) is too easy to hit by chance in other numbers, so it counts only with an identity label
nearby.
"""

from __future__ import annotations

import datetime as _dt
import functools
import importlib.resources
import importlib.util
import os
import re
import time

from guard.scan.detectors import CN_RESIDENT_ID as TYPE
from guard.scan.detectors import context

PROVINCES = frozenset(
    "11 12 13 14 15 21 22 23 31 32 33 34 35 36 37 41 42 43 44 45 46 50 51 52 53 54 "
    "61 62 63 64 65 71 81 82 83 91".split()
)
"""First two digits of every province-level region code."""


def score(value: str, label: str | None) -> float | None:
    """Confidence that the normalised 18-char `value` (17 digits + digit/X) is a resident ID.

    The check character (`check_character`) and the birth date must be right. A county
    code stdnum does not know for that birth year (a new or renamed county) lowers the score but
    does not reject the number: the province code is still checked.
    """
    if value[:2] not in PROVINCES or check_character(value) != value[-1]:
        return None
    if not _birth_ok(value[6:14]):
        return None
    base = 0.96 if _place_known(value[:10]) else 0.88
    if label == context.ID:
        return min(base + 0.03, 0.99)
    if label == context.NEG:
        return base - 0.5
    return base


def check_character(value: str) -> str:
    """The ISO 7064 MOD 11-2 check character of an 18-character `value` (of its first 17 digits),
    as stdnum's `cn.ric.calc_check_digit` computes it."""
    checksum = (1 - 2 * int(value[:17], 13)) % 11
    return "X" if checksum == 10 else str(checksum)


@functools.lru_cache(maxsize=65536)
def _place_known(region_and_year: str) -> bool:
    """Whether a county with the 6-digit region code existed in the 4-digit year (stdnum's
    `get_birth_place` succeeding), remembered per region and year."""
    table = _county_table()
    if table is None:
        return _place_known_by_stdnum(region_and_year)
    region, year = region_and_year[:6], int(region_and_year[6:10])
    if not 1 <= year <= 9999:
        return False  # no such date: stdnum refuses the number
    counties = table.get(region)
    if counties is None:
        return False
    # as stdnum: any county under the code that is valid in the birth year (or has no years)
    for county in counties.split(","):
        if not county.startswith("["):
            return True
        start, end = county[1:].split("]")[0].split("-")
        if (not start or year >= int(start)) and (not end or year <= int(end)):
            return True
    return False


_LINE = re.compile(r"( *)(\S+)\s*(.*)")
_PROP = re.compile(r'([0-9a-zA-Z\-_]+)="([^"]*)"')


@functools.cache
def _county_table() -> dict[str, str] | None:
    """Region code (6 digits) -> its `county` entry in stdnum's table; None when the table is not
    laid out as read here (another stdnum version), and stdnum's own walk is used."""
    try:
        raw = _loc_dat()
    except (OSError, ModuleNotFoundError):
        return None
    table: dict[str, str] = {}
    province = ""
    for line in raw.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        match = _LINE.fullmatch(line)
        if match is None or not match[2].isdigit():
            return None  # ranges or lists of prefixes: stdnum's general format, not read here
        indent, prefix, props = len(match[1]), match[2], dict(_PROP.findall(match[3]))
        if indent == 0 and len(prefix) == 2 and "county" not in props:
            province = prefix
        elif indent > 0 and len(prefix) == 4 and province:
            # a code listed twice: stdnum merges the lines, the later one's entry winning
            county = props.get("county", table.get(province + prefix))
            if county is not None:
                table[province + prefix] = county
        else:
            return None
    return table


def _loc_dat() -> str:
    """stdnum's `cn/loc.dat`, found without importing the `stdnum` package: its `__init__`
    imports `stdnum.util`, which pulls in ssl and pydoc (~20 ms of a scan's start-up)."""
    spec = importlib.util.find_spec("stdnum")  # finds the package without running it
    folders = list(spec.submodule_search_locations or ()) if spec is not None else []
    for folder in folders:
        try:
            with open(os.path.join(folder, "cn", "loc.dat"), encoding="utf-8") as fh:
                return fh.read()
        except OSError:
            continue
    # a packaging that keeps it elsewhere (a zip, a frozen build): ask importlib's own reader
    return importlib.resources.files("stdnum").joinpath("cn/loc.dat").read_text("utf-8")


def _place_known_by_stdnum(region_and_year: str) -> bool:
    from stdnum.cn import ric
    from stdnum.exceptions import ValidationError

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


__all__ = ["PROVINCES", "TYPE", "check_character", "id_layout", "score", "score_legacy"]
