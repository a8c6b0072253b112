"""BANK_CARD: payment card numbers (13–19 digits), Luhn plus a known issuer range.

Chinese cards are checked against the BIN table shipped in `resources/data/cn-card-bins.csv`
(bank, card type and full length per prefix); other cards against the public IIN ranges of the
international schemes. About one random number in ten passes Luhn, so Luhn alone is never enough:

- Chinese BIN (5+ digits) with the right length and Luhn: confident, with or without a label.
- International IIN with Luhn: confident with a card label or a 4-4-4-4 grouping; otherwise a
  bare number (a serial that happens to start with 4 or 2221–2720) stays under the threshold.
- Some Chinese debit cards fail Luhn: a 6+ digit Chinese BIN with the right length plus a card or
  account label still counts, at lower confidence.
- Numbers whose first eight digits read as a date (20261124…) are timestamps or serials unless
  they are grouped like a card or labelled.
- 18 digits laid out like a resident ID (province, birth date) without a card label or
  grouping are a mistyped ID (wrong check digit), not a card.

Speed: the scanner asks about every 13–19 digit run, so the issuer look-ups are remembered per
leading digits and length, and the Luhn check is `luhn_valid` (a table-driven form of the same
algorithm, tested against python-stdnum's `luhn` on random numbers; stdnum's generic version
costs seven times as much per number).
"""

from __future__ import annotations

import csv
import datetime as _dt
import functools

from teller_guard_resources import resource

from guard.scan.detectors import context, resident_id

MIN_DIGITS = 13
MAX_DIGITS = 19


class BinTableError(RuntimeError):
    """The packaged BIN table is missing or malformed; reinstall the package."""


@functools.cache
def bin_table() -> dict[str, frozenset[int]]:
    """Chinese BIN prefix -> the card lengths issued under it (from the packaged CSV)."""
    path = resource("data", "cn-card-bins.csv")
    table: dict[str, set[int]] = {}
    try:
        with path.open("r", encoding="utf-8", newline="") as fh:
            for row in csv.DictReader(fh):
                table.setdefault(row["bin"].strip(), set()).add(int(row["length"]))
    except (OSError, KeyError, ValueError) as exc:
        raise BinTableError(f"cannot read the card BIN table {path}: {exc}") from exc
    return {prefix: frozenset(lengths) for prefix, lengths in table.items()}


@functools.cache
def _prefix_lengths_by_head() -> dict[str, tuple[int, ...]]:
    """First 3 digits -> the BIN prefix lengths that start with them, longest first."""
    heads: dict[str, set[int]] = {}
    for prefix in bin_table():
        heads.setdefault(prefix[:3], set()).add(len(prefix))
    return {h: tuple(sorted(ns, reverse=True)) for h, ns in heads.items()}


_DOUBLED = str.maketrans("0123456789", "0246813579")  # digit sum of 2*d, for Luhn


def luhn_valid(digits: str) -> bool:
    """Luhn check of an ASCII digit string (same answer as `stdnum.luhn.is_valid`).

    From the right, digits in odd places count as they are, those in even places doubled (digit
    sum); the total must end in 0. The digit sums are taken in C over the bytes.
    """
    mixed = digits[-1::-2] + digits[-2::-2].translate(_DOUBLED)
    return (sum(mixed.encode("ascii")) - 48 * len(digits)) % 10 == 0


@functools.cache
def _heads_of_long_prefixes() -> frozenset[str]:
    """First 6 digits of the BIN prefixes longer than 6 digits."""
    return frozenset(prefix[:6] for prefix in bin_table() if len(prefix) > 6)


@functools.lru_cache(maxsize=65536)
def _bin_of_head(head: str) -> tuple[int, frozenset[int]] | None:
    """(prefix length, card lengths) of the longest BIN prefix of the 6-digit `head`, or None."""
    table = bin_table()
    for n in _prefix_lengths_by_head()[head[:3]]:
        if n > 6:
            continue  # none of those starts with this head (the caller checked)
        lengths = table.get(head[:n])
        if lengths is not None:
            return n, lengths
    return None


def chinese_bin(digits: str) -> tuple[int, bool] | None:
    """(prefix length, length matches) of the longest Chinese BIN prefix of `digits`, or None."""
    lengths_here = _prefix_lengths_by_head().get(digits[:3])
    if lengths_here is None:
        return None
    head = digits[:6]
    if len(head) == 6 and head not in _heads_of_long_prefixes():
        found = _bin_of_head(head)  # no BIN longer than 6 digits starts here: remembered
        return None if found is None else (found[0], len(digits) in found[1])
    table = bin_table()
    for n in lengths_here:
        lengths = table.get(digits[:n])
        if lengths is not None:
            return n, len(digits) in lengths
    return None


def international_iin(digits: str) -> bool:
    """True when `digits` starts in a public IIN range with a length that scheme issues."""
    return _iin(digits[:4], len(digits))


@functools.lru_cache(maxsize=16384)
def _iin(head: str, n: int) -> bool:
    """`international_iin` from the first four digits and the length (all it depends on)."""
    digits = head
    d1 = digits[0]
    if d1 == "4":
        return n in (13, 16, 19)  # Visa
    if d1 not in "23568":
        return False
    d2, d4 = int(digits[:2]), int(digits[:4])
    if 51 <= d2 <= 55 or 2221 <= d4 <= 2720:
        return n == 16  # Mastercard
    if d2 in (34, 37):
        return n == 15  # American Express
    if d2 == 62 or d2 == 81:
        return 16 <= n <= 19  # UnionPay
    if 3528 <= d4 <= 3589:
        return 16 <= n <= 19  # JCB
    if d2 == 36 or 300 <= int(digits[:3]) <= 305:
        return 14 <= n <= 19  # Diners
    if d4 == 6011 or d2 == 65 or 644 <= int(digits[:3]) <= 649:
        return 16 <= n <= 19  # Discover
    return False


def _date_like(digits: str) -> bool:
    try:
        year, month, day = int(digits[:4]), int(digits[4:6]), int(digits[6:8])
        if not 1990 <= year <= 2099:
            return False
        _dt.date(year, month, day)
    except ValueError:
        return False
    return True


def _junk(digits: str) -> bool:
    return digits.count(digits[0]) == len(digits)


def score(digits: str, label: str | None, grouped: bool, row_hint: bool = False) -> float | None:
    """Confidence that `digits` (13–19 ASCII digits) is a card number.

    `grouped` is True when the teller wrote it in card groups (4-4-4-4, 4-4-4-4-3, 6-13);
    `row_hint` when its record is a customer list's (a name column) or a payment's: a 16–19 digit
    number on an issuer range with Luhn is then a card even without a card word.
    """
    if not MIN_DIGITS <= len(digits) <= MAX_DIGITS or label == context.NEG or _junk(digits):
        return None
    labelled = label in (context.CARD, context.ACCOUNT)
    if len(digits) == 18 and not (labelled or grouped) and resident_id.id_layout(digits):
        return None  # a resident ID with a typo in it (wrong check digit), not a card
    found = chinese_bin(digits)
    iin = found is None and international_iin(digits)
    if found is None and not iin and label != context.CARD:
        return None  # no issuer and no label: whatever Luhn says, not a card
    valid = luhn_valid(digits)
    if found is not None:
        prefix_len, length_ok = found
        strong = prefix_len >= 5  # 3-4 digit BINs are hit by chance too often to stand alone
        if valid and length_ok and strong:
            return 0.97 if labelled or grouped else 0.9
        if valid and (length_ok or prefix_len >= 6):
            if labelled:
                return 0.92
            if grouped or (row_hint and length_ok and len(digits) >= 16):
                return 0.8
            return 0.6 if strong else 0.45
        if not valid and length_ok and prefix_len >= 6 and labelled:
            return 0.65
    if not valid:
        return None
    if iin:
        if label == context.CARD:
            return 0.93
        if labelled:  # an account label on a foreign-looking number: the account reading wins
            return 0.7
        if grouped:
            return 0.8
        if row_hint and len(digits) >= 16 and not _date_like(digits):
            return 0.75
        return None if _date_like(digits) else 0.45
    if label == context.CARD and len(digits) >= 16:
        return 0.7
    return None
