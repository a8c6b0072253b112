"""The customer-data detectors: one module per identifier type, plus masking shared by all.

Each detector module exposes `TYPE` and a pure scoring function over an already normalised value
(the scanner finds candidates, folds them and asks the detectors what they are). Validation uses
python-stdnum and phonenumbers; context words come from `guard.scan.detectors.context`.
"""

from __future__ import annotations

from guard.model import Category

CN_RESIDENT_ID = "CN_RESIDENT_ID"
BANK_CARD = "BANK_CARD"
CN_MOBILE = "CN_MOBILE"
EMAIL = "EMAIL"
CN_USCC = "CN_USCC"
CN_PASSPORT = "CN_PASSPORT"
CN_BANK_ACCOUNT = "CN_BANK_ACCOUNT"

TYPES: tuple[str, ...] = (
    CN_RESIDENT_ID, BANK_CARD, CN_MOBILE, EMAIL, CN_USCC, CN_PASSPORT, CN_BANK_ACCOUNT,
)
"""Every finding type the engine reports."""

CATEGORIES: dict[str, Category] = dict.fromkeys(TYPES, Category.C2)
"""JR/T 0171-2020 category of each type (all of these identifiers are C2)."""

# How many leading and trailing characters each type keeps visible.
_KEEP: dict[str, tuple[int, int]] = {
    BANK_CARD: (6, 4),
    CN_MOBILE: (3, 4),
    CN_RESIDENT_ID: (3, 4),
}


class UnknownTypeError(ValueError):
    """A finding type that no detector defines was asked for."""


def mask(type: str, value: str) -> str:
    """The masked form of a normalised `value` of `type` (safe to log, show and ship).

    Card: first 6 + last 4; mobile: first 3 + last 4; resident ID: first 3 + last 4; e-mail: first
    character + domain; everything else: last 4. A value too short to keep that much is starred
    completely.
    """
    keep = _KEEP.get(type)
    if keep is not None and len(value) > keep[0] + keep[1]:  # the common case, first
        return value[: keep[0]] + "*" * (len(value) - keep[0] - keep[1]) + value[-keep[1] :]
    if type not in CATEGORIES:
        raise UnknownTypeError(f"unknown finding type {type!r}; known: {', '.join(TYPES)}")
    if type == EMAIL:
        local, sep, domain = value.rpartition("@")
        if not sep or not local:
            return "*" * len(value)
        return local[0] + "***@" + domain
    head, tail = _KEEP.get(type, (0, 4))
    if len(value) <= head + tail:
        return "*" * len(value)
    return value[:head] + "*" * (len(value) - head - tail) + value[len(value) - tail:]


__all__ = [
    "BANK_CARD", "CATEGORIES", "CN_BANK_ACCOUNT", "CN_MOBILE", "CN_PASSPORT", "CN_RESIDENT_ID",
    "CN_USCC", "EMAIL", "TYPES", "UnknownTypeError", "mask",
]
