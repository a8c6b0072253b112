"""EMAIL: e-mail addresses, found from their `@` outwards.

The scanner hands over the position of an `@`; the local part is read backwards and the domain
forwards, each with a bounded pattern, so a hostile run of `@` or letters costs linear time. The
domain must have the shape of a real one: labels of letters, digits and hyphens, and a final
label of 2–24 letters.
"""

from __future__ import annotations

import functools
import re

from guard.scan.detectors import EMAIL as TYPE

# The usual local-part characters only: RFC 5322 allows = / ? ! and more, but in logs and
# key=value exports they are far more often the separator before the address than part of it.
_LOCAL_BACK = re.compile(r"[A-Za-z0-9._%+\-]{1,64}\Z")
_DOMAIN = (r"(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.){1,8}[A-Za-z]{2,24}"
           r"(?![A-Za-z0-9\-])")


@functools.cache
def _domain() -> re.Pattern[str]:
    # compiled on first use (~8 ms): the compiled core finds addresses without this module
    return re.compile(_DOMAIN)


_LOCAL_TRIM = ".-+%"


def find(text: str, at: int) -> tuple[int, int, str] | None:
    """(start, end, normalised value) of the address around the `@` at `text[at]`, or None."""
    back = _LOCAL_BACK.search(text, max(0, at - 64), at)
    if back is None:
        return None
    start = back.start()
    # an Excel apostrophe or a sentence's dot before the address is not part of it
    while start < at and text[start] in _LOCAL_TRIM:
        start += 1
    if start == at or text[at - 1] == ".":
        return None
    dom = _domain().match(text, at + 1)
    if dom is None:
        return None
    end = dom.end()
    value = text[start:at] + "@" + text[at + 1:end].lower()
    return start, end, value


def score(value: str) -> float:
    """Confidence for an address `find` accepted."""
    return 0.95


__all__ = ["TYPE", "find", "score"]
