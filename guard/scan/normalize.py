"""Fold full-width digits and letters and odd spaces and dashes to their ASCII forms, one for one.

Teller text mixes half- and full-width forms (１３８ｘｘ, Ｘ, ideographic spaces, non-breaking
spaces, full-width hyphens). Every fold here maps ONE character to ONE character, so the folded
text has the same length as the original and the offset map back to the teller's own characters
is the identity: a span found in `fold(text)` is the same span in `text`. That is why no explicit
offset table is carried around, and why zero-width spaces become a plain space instead of being
dropped. Text with nothing to fold (plain ASCII, or no foldable character) is returned as is.
"""

from __future__ import annotations

import re

_FOLD: dict[int, int] = {}
for _cp in range(0xFF10, 0xFF1A):  # ０-９
    _FOLD[_cp] = _cp - 0xFF10 + ord("0")
for _cp in range(0xFF21, 0xFF3B):  # Ａ-Ｚ
    _FOLD[_cp] = _cp - 0xFF21 + ord("A")
for _cp in range(0xFF41, 0xFF5B):  # ａ-ｚ
    _FOLD[_cp] = _cp - 0xFF41 + ord("a")
for _ch, _to in {
    "\uff0b": "+", "\uff0d": "-", "\uff20": "@", "\uff0e": ".", "\uff3f": "_",
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2212": "-",
    "\u00a0": " ", "\u3000": " ", "\u202f": " ", "\u205f": " ", "\u200b": " ",
}.items():
    _FOLD[ord(_ch)] = ord(_to)
for _cp in range(0x2000, 0x200B):  # en quad .. hair space
    _FOLD[_cp] = ord(" ")

FOLD_TABLE: dict[int, int] = dict(_FOLD)
"""`str.translate` table: every key and value is a single code point (length-preserving)."""

_NEEDS_FOLD = re.compile("[" + "".join(re.escape(chr(c)) for c in sorted(FOLD_TABLE)) + "]")

SPACE_CHARS = " \u00a0\u3000\u202f\u205f\u200b" + "".join(chr(c) for c in range(0x2000, 0x200B))
"""Characters that may separate digit groups (before folding)."""
DASH_CHARS = "-\uff0d\u2010\u2011\u2012\u2013\u2014\u2212"
"""Hyphen-like characters that may separate digit groups (before folding)."""
DIGIT_CLASS = "0-9\uff10-\uff19"
"""Regex class body for ASCII and full-width digits."""


def needs_fold(text: str) -> bool:
    """True when `text` holds a character that `fold` would change."""
    return not text.isascii() and _NEEDS_FOLD.search(text) is not None


def fold(text: str) -> str:
    """`text` with full-width forms and odd spaces/dashes folded; same length, same offsets."""
    if text.isascii():
        return text
    return text.translate(FOLD_TABLE)
