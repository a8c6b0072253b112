"""The collector's own check that an incoming event carries no unmasked customer identifier.

The agent masks and hashes before anything leaves the detector; the collector does not trust
that. It runs the same detectors (`guard.scan.engine.Scanner`) over every text field of an event
(device hostname and branch, teller, decision, justification, source app, versions, detail keys and
values, finding hashes, the domain of masked e-mails), checks that every finding type is one the
detectors know, that each masked value has its type's mask shape and that each hash is a hex
digest. A failure names the field and the type found, never the value.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any

from guard.model import Event
from guard.scan.detectors import (
    BANK_CARD,
    CN_MOBILE,
    CN_RESIDENT_ID,
    EMAIL,
    TYPES,
)
from guard.scan.engine import Scanner

_MASKS: dict[str, re.Pattern[str]] = {
    # first 6 + last 4 of 13-19 digits: 3 to 9 stars between
    BANK_CARD: re.compile(r"[0-9]{6}\*{3,9}[0-9]{4}"),
    # first 3 + last 4 of 11 digits
    CN_MOBILE: re.compile(r"[0-9]{3}\*{4}[0-9]{4}"),
    # first 3 + last 4 of 18 (or legacy 15) characters
    CN_RESIDENT_ID: re.compile(r"[0-9]{3}(?:\*{11}[0-9]{3}[0-9Xx]|\*{8}[0-9]{4})"),
    # first character + ***@ + domain
    EMAIL: re.compile(r"[^\s@*]\*\*\*@([A-Za-z0-9\u00a1-\uffff](?:[A-Za-z0-9.\-\u00a1-\uffff]"
                      r"{0,252}))"),
}
# every other type keeps its last 4 characters; a value too short for that is all stars
_OTHER = re.compile(r"\*{1,60}[0-9A-Za-z]{4}|\*{1,64}")
_ALL_STARS = re.compile(r"\*{1,64}")
_HASH = re.compile(r"[0-9a-fA-F]{16,128}")
_EMAIL_TYPES = frozenset({EMAIL})


@dataclass(frozen=True, slots=True)
class Leak:
    """Why an event was refused: where (a field path) and what (a finding type or a shape)."""

    field: str
    what: str

    def message(self, index: int) -> str:
        return f"events[{index}].{self.field}: {self.what}"


class PrivacyCheck:
    """Finds unmasked identifiers in events; safe to share between threads."""

    def __init__(self) -> None:
        # The hashes it computes are thrown away: any key does, and none is kept.
        self._scanner = Scanner(key=secrets.token_bytes(32))
        self._no_email = Scanner(key=secrets.token_bytes(32),
                                 types=[t for t in TYPES if t not in _EMAIL_TYPES])

    def check(self, ev: Event) -> Leak | None:
        """The first problem of `ev`, or None when it carries only masked forms and hashes."""
        for f in ev.findings:
            if f.type not in TYPES:
                return Leak("findings.type", f"unknown finding type (known: {', '.join(TYPES)})")
        texts: list[tuple[str, str, Scanner]] = [
            ("device.hostname", ev.device.hostname, self._scanner),
            ("device.branch", ev.device.branch, self._scanner),
            # an OS login may be a UPN (user@domain): a staff address, not customer data
            ("teller", ev.teller, self._no_email),
            ("type", ev.type, self._scanner),
            ("decision", ev.decision, self._scanner),
            ("justification", ev.justification, self._scanner),
            ("source_app", ev.source_app, self._scanner),
            ("agent_version", ev.agent_version, self._scanner),
            ("policy_version", ev.policy_version, self._scanner),
        ]
        for key, value in ev.detail.items():
            texts.append(("detail", key, self._scanner))
            if isinstance(value, str):
                texts.append((f"detail.{_safe_key(key)}", value, self._scanner))
            elif isinstance(value, int | float) and not isinstance(value, bool):
                texts.append((f"detail.{_safe_key(key)}", _number(value), self._scanner))
        for i, f in enumerate(ev.findings):
            where = f"findings[{i}]"
            for m in f.masked:
                leak = self._masked(f.type, m, where)
                if leak is not None:
                    return leak
            for h in f.hashes:
                if not _HASH.fullmatch(h):
                    return Leak(f"{where}.hashes", "a hash must be a hex digest")
                texts.append((f"{where}.hashes", h, self._scanner))
        for where, text, scanner in texts:
            if not text:
                continue
            found = scanner.scan_text(text)
            if found:
                return Leak(where, f"carries an unmasked {found[0].type}")
        return None

    def check_texts(self, fields: dict[str, str]) -> Leak | None:
        """The first of `fields` (name -> text) that carries an identifier, if any."""
        for where, text in fields.items():
            found = self._scanner.scan_text(text) if text else []
            if found:
                return Leak(where, f"carries an unmasked {found[0].type}")
        return None

    def _masked(self, type_: str, value: str, where: str) -> Leak | None:
        shape = _MASKS.get(type_, _OTHER)
        m = shape.fullmatch(value)
        if m is None and not _ALL_STARS.fullmatch(value):
            return Leak(f"{where}.masked", f"not the mask shape of {type_}")
        if type_ == EMAIL and m is not None:
            found = self._scanner.scan_text(m.group(1))
            if found:
                return Leak(f"{where}.masked", f"carries an unmasked {found[0].type}")
        return None


def _safe_key(key: str) -> str:
    # a detail key is named in the error only when it is plainly a name, never a value
    plain = re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]{0,40}", key) and not re.search(r"[0-9]{5}", key)
    return key if plain else "<key>"


def _number(value: Any) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e20:
        return str(int(value))
    return str(value)
