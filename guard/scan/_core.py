"""Loads the compiled scanning core (`guard_core`, core/ in the repository) when it is there.

The core is a Rust extension that runs the engine's per-candidate path in one pass over the text
(see core/src/lib.rs); `guard.scan.engine` stays the reference and the fallback. It is used when
it imports and the environment variable TELLER_GUARD_ENGINE is not `python`; without it (no
compiler at install time, another platform) the Python path runs and one log line says so.

The tables the core needs come from the same places the Python detectors read them (the provinces
of `resident_id`, the packaged BIN table of `bank_card`, the engine's glued labels and card
groupings, the context words of `context`), passed in here at construction: there is one copy of
each. The answers only a library knows (phonenumbers' number plan, stdnum's county table) are asked
through the detectors' own cached functions, once per prefix. The document structure is computed in
the core on the `structure.Layout`'s own state, the key before a `key: value` pair included; a
header-like line is classified by `structure._header_of` (once per line) and a key by
`structure._key_kind` (once per distinct key).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Collection, Mapping
from typing import Any, Protocol

from guard.model import Finding
from guard.scan import structure
from guard.scan.detectors import CATEGORIES, bank_card, context, mobile, resident_id, uscc

log = logging.getLogger(__name__)

ENGINE_VARIABLE = "TELLER_GUARD_ENGINE"
"""`python` selects the reference engine even when the compiled core is installed."""


class Core(Protocol):
    """What the engine calls: `scan` appends the findings of text[lo:hi] to `out`.

    It returns True when `out` was empty and what it appended is in (start, end) order already,
    so the engine need not sort it. `scan_json` (the CLI's JSON Lines) writes them as text.
    """

    def scan(self, text: str, lo: int, hi: int, base: int, out: list[Finding], layout: Any,
             today: str) -> bool: ...

    @property
    def types(self) -> list[str]:
        """The finding types in the order of `scan_json`'s `heads` and `mids`."""

    def scan_json(self, text: str, lo: int, hi: int, base: int, layout: Any, today: str,
                  heads: list[str], mids: list[str]) -> tuple[int, str]:
        """`scan`'s findings written as JSON objects (`Finding.as_dict`'s keys) joined by ", ",
        in (start, end) order, with how many there are; no `Finding` is built. A core built
        before this method existed lacks it: the engine asks with `hasattr` first."""


_module: Any = None
_tried = False


def _load() -> Any:
    """The `guard_core` module, or None (logged once) when it is missing or switched off."""
    global _module, _tried
    if _tried:
        return _module
    _tried = True
    if os.environ.get(ENGINE_VARIABLE, "").strip().lower() == "python":
        log.info("scan engine: Python reference path (%s=python)", ENGINE_VARIABLE)
        return None
    try:
        import guard_core  # type: ignore[import-not-found]
    except ImportError as exc:
        log.info("scan engine: compiled core not installed (%s); using the Python path "
                 "(scripts/setup.sh builds it when cargo is present)", exc)
        return None
    _module = guard_core
    return _module


def available() -> bool:
    """Whether the compiled core is installed and selected."""
    return _load() is not None


def make(
    key: bytes, thresholds: Mapping[str, float], glued: Mapping[str, str],
    groupings: Collection[tuple[int, ...]],
) -> Core | None:
    """A compiled core for one scanner, or None when the Python path is to run.

    A core built from other sources than this package's (its constructor takes other tables) is
    set aside for the process, with one log line: the Python path runs instead of every scanner
    failing to start.
    """
    global _module
    module = _load()
    if module is None:
        return None
    try:
        return _construct(module, key, thresholds, glued, groupings)
    except TypeError as exc:
        log.warning("scan engine: the compiled core at %s does not fit this package (%s); using "
                    "the Python path (rebuild it: scripts/setup.sh)",
                    getattr(module, "__file__", "?"), exc)
        _module = None
        return None


def _construct(
    module: Any, key: bytes, thresholds: Mapping[str, float], glued: Mapping[str, str],
    groupings: Collection[tuple[int, ...]],
) -> Core:
    core: Core = module.Core(
        key,
        dict(thresholds),
        Finding,
        dict(CATEGORIES),
        sorted(resident_id.PROVINCES),
        "".join(sorted(uscc._AUTHORITY)),
        "".join(sorted(uscc._ORG_TYPE)),
        bank_card.bin_table(),
        dict(glued),
        [tuple(g) for g in groupings],
        mobile._prefix_verdict,
        mobile._ask,
        resident_id._place_known,
        # the context words as the Python label search's trie has them: each variant, reversed
        sorted({v[::-1] for ws in context.WORDS.values() for w in ws
                for v in context._variants(w)}),
        dict(context._KIND_OF),
        structure._header_of,  # a header row's classification, asked once per header-like line
        structure._key_kind,  # a key's kind (the key pattern runs in the core), once per key
    )
    return core


def today() -> str:
    """Today as YYYYMMDD, from the same clock the Python detectors ask."""
    return resident_id._today()
