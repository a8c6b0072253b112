"""CN_MOBILE: mainland China mobile numbers (11 digits, number plan checked with phonenumbers).

Which prefixes are mobile is phonenumbers' knowledge, not ours. Asking it costs about 20 µs, so
the answer is kept per 4-digit prefix when every number under that prefix gets the same answer,
and per number (bounded cache) otherwise.
"""

from __future__ import annotations

import functools

import phonenumbers
from phonenumbers import PhoneNumberType

from guard.scan.detectors import CN_MOBILE as TYPE
from guard.scan.detectors import context

_MOBILE_TYPES = (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE)
_PROBES = ("0000000", "1234567", "5555555", "9999999")


@functools.cache
def _prefix_verdict(prefix: str) -> bool | None:
    answers = {_ask(prefix + tail) for tail in _PROBES}
    return answers.pop() if len(answers) == 1 else None


@functools.lru_cache(maxsize=65536)
def _ask(number: str) -> bool:
    try:
        parsed = phonenumbers.parse("+86" + number)
    except phonenumbers.NumberParseException:
        return False
    return phonenumbers.number_type(parsed) in _MOBILE_TYPES and phonenumbers.is_valid_number(
        parsed
    )


def is_mobile(digits: str) -> bool:
    """True when the 11 ASCII digits are a valid mainland mobile number."""
    if len(digits) != 11 or digits[0] != "1" or digits[1] in "012":
        return False
    verdict = _prefix_verdict(digits[:4])
    return _ask(digits) if verdict is None else verdict


def shaped(digits: str) -> bool:
    """11 digits starting 13–19: the shape of every mainland mobile number."""
    return len(digits) == 11 and digits[0] == "1" and digits[1] in "3456789"


def score(digits: str, label: str | None, formatted: bool) -> float | None:
    """Confidence for an 11-digit `digits`; `formatted` when written 3-4-4 or with +86/0086.

    A number whose block phonenumbers does not know (its plan data lags behind new blocks such
    as 14x data cards and 19x) still counts when a mobile label vouches for it.
    """
    if not is_mobile(digits):
        if label == context.MOBILE and shaped(digits):
            return 0.85
        return None
    if label == context.NEG:
        return 0.3
    if label == context.MOBILE:
        return 0.98
    return 0.95 if formatted else 0.9


__all__ = ["TYPE", "is_mobile", "score", "shaped"]
